/**
 * A bounded map of what was used lately: two generations of at most `size` entries each. A
 * new entry goes into the newer one; when it is full, it becomes the older one and the older
 * one is dropped as a whole. An approximate least-recently-used cache at O(1) a use, with no
 * per-entry bookkeeping. The keyring's verified signatures, the id hashes and the cookie
 * store's opened tokens use it.
 * @module
 */
export class RecentMap<K, V> {
  readonly size: number
  #recent = new Map<K, V>()
  #older = new Map<K, V>()

  constructor(size: number) {
    this.size = size
  }

  /** The value under `key`, if still kept; one found in the older generation moves up. */
  get(key: K): V | undefined {
    const hit = this.#recent.get(key)
    if (hit !== undefined) return hit
    const old = this.#older.get(key)
    if (old !== undefined) this.set(key, old)
    return old
  }

  set(key: K, value: V): void {
    if (this.#recent.size >= this.size) {
      this.#older = this.#recent
      this.#recent = new Map()
    }
    this.#recent.set(key, value)
  }
}
