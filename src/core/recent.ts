/**
 * A bounded map of what was used lately: two generations of at most `size` entries each. A
 * new entry goes into the newer one; when it is full, it becomes the older one and the older
 * one is dropped as a whole. An approximate least-recently-used cache at O(1) a use, with no
 * per-entry bookkeeping. The keyring's verified signatures, the id hashes and the cookie
 * store's opened tokens use it.
 *
 * {@link admits} lets an entry in only the second time its key is asked about within a
 * while (a "doorkeeper", as in TinyLFU): a key seen once is marked in a fixed table of bits,
 * not stored. When there are many more keys than the cache holds, each seen once in a long while
 * (a busy site's sessions, the benchmark's spread), entries would be stored only to be
 * dropped unused, and that churn costs more than the cache saves; with the doorkeeper a miss
 * allocates nothing, while a key used twice in a row is kept from its second use.
 *
 * With a `slot` function each generation also keeps a table of bits, one set for every key it
 * holds, so a {@link get} for a key in neither generation usually ends at one bit, read from
 * a table small enough to stay in the CPU's caches, instead of two lookups in large maps
 * whose every step is a cache miss (the spread's case: keys seen once in a long while).
 * @module
 */

/** Bits in each table (a power of two): 8 KB a table. */
const DOOR_SLOTS = 1 << 16

/** The tables of bits, all indexed by the same slot of a key. */
interface Tables<K> {
  readonly slot: (key: K) => number
  /** The doorkeeper's marks. */
  readonly marks: Uint32Array
  /** A bit for every key in the newer generation; none set for a key it lacks. */
  recent: Uint32Array
  /** The same for the older generation. */
  older: Uint32Array
}

export class RecentMap<K, V> {
  readonly size: number
  #recent = new Map<K, V>()
  #older = new Map<K, V>()
  /** Where a key's bit goes, the doorkeeper's marks and each generation's bits; only with a `slot` function. */
  readonly #door: Tables<K> | undefined
  #marks = 0

  /**
   * @param size entries per generation
   * @param slot for {@link admits}: a number from the key that is well spread (the key's own
   * random characters, say); only its low 16 bits are used
   */
  constructor(size: number, slot?: (key: K) => number) {
    this.size = size
    this.#door =
      slot === undefined
        ? undefined
        : {
            slot,
            marks: new Uint32Array(DOOR_SLOTS >>> 5),
            recent: new Uint32Array(DOOR_SLOTS >>> 5),
            older: new Uint32Array(DOOR_SLOTS >>> 5),
          }
  }

  /** The value under `key`, if still kept; one found in the older generation moves up. */
  get(key: K): V | undefined {
    const door = this.#door
    if (door !== undefined) {
      const slot = door.slot(key) & (DOOR_SLOTS - 1)
      // in neither generation: no map lookup needed
      if (((door.recent[slot >>> 5]! | door.older[slot >>> 5]!) & (1 << (slot & 31))) === 0) {
        return undefined
      }
    }
    const hit = this.#recent.get(key)
    if (hit !== undefined) return hit
    const old = this.#older.get(key)
    if (old !== undefined) this.set(key, old)
    return old
  }

  /** Keep `value` under `key`. */
  set(key: K, value: V): void {
    const door = this.#door
    if (this.#recent.size >= this.size) {
      this.#older = this.#recent
      this.#recent = new Map()
      if (door !== undefined) {
        const dropped = door.older
        door.older = door.recent
        door.recent = dropped.fill(0)
      }
    }
    this.#recent.set(key, value)
    if (door !== undefined) {
      const slot = door.slot(key) & (DOOR_SLOTS - 1)
      door.recent[slot >>> 5]! |= 1 << (slot & 31)
    }
  }

  /**
   * Whether to keep an entry for `key` now, one that {@link get} missed: true when `key` was
   * asked about before, since the last `size` first askings; otherwise `key` is marked and the
   * answer is false. Always true without a `slot` function.
   * @example
   * ```ts
   * if (cache.admits(key)) cache.set(key, value)
   * ```
   */
  admits(key: K): boolean {
    return this.#door === undefined || this.#mark(this.#door, key)
  }

  /**
   * Marks `key` as asked about once, so that its next {@link admits} is true, without keeping
   * anything: for a key known to come back soon (a cookie just sent), whose entry would only
   * be worth its cost if it does.
   */
  mark(key: K): void {
    if (this.#door !== undefined) this.#mark(this.#door, key)
  }

  /** Whether `key` was marked already; marks it if not. */
  #mark(door: Tables<K>, key: K): boolean {
    const slot = door.slot(key) & (DOOR_SLOTS - 1)
    const word = slot >>> 5
    const bit = 1 << (slot & 31)
    if ((door.marks[word]! & bit) !== 0) return true
    door.marks[word]! |= bit
    // forget the marks as often as a generation fills: a key asked about again only after
    // that many others would not have stayed long anyway
    if (++this.#marks >= this.size) {
      door.marks.fill(0)
      this.#marks = 0
    }
    return false
  }
}

/**
 * A {@link RecentMap} `slot` for keys whose characters from `offset` on are random (base64url
 * of CSPRNG bytes): four of them (24 random bits), mixed by a multiplicative hash so that every
 * one of the 16 bits used is evenly spread.
 */
export function randomTextSlot(offset: number): (key: string) => number {
  return (key) =>
    Math.imul(
      key.charCodeAt(offset) |
        (key.charCodeAt(offset + 1) << 8) |
        (key.charCodeAt(offset + 2) << 16) |
        (key.charCodeAt(offset + 3) << 24),
      0x9e3779b1,
    ) >>> 16
}
