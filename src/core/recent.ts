/**
 * A bounded map of what was used lately: two generations of at most `size` entries each. A
 * new entry goes into the newer one; when it is full, it becomes the older one and the older
 * one is dropped as a whole. An approximate least-recently-used cache at O(1) a use, with no
 * per-entry bookkeeping. The keyring's verified signatures, the id hashes and the cookie
 * store's opened tokens use it.
 *
 * With a `slot` function (a number from the key's own random characters), two kinds of bits
 * work beside the maps, in one table:
 * - **held**, one bit per slot and generation: set when a key goes into that generation, and
 *   moved along when the generations turn over. A key whose bit is clear in both is in neither
 *   map, so {@link get} answers at once. On a busy site most lookups miss (a session comes back
 *   after thousands of others), and a missed `Map.get` in a map of thousands of entries costs
 *   more than the hit it hopes for: between two requests the CPU's caches have gone cold, and
 *   a miss walks bucket chains through keys scattered over the heap. The bit is one read.
 * - **the doorkeeper** ({@link admits}, as in TinyLFU): an entry is let in only the second
 *   time its key is asked about within a while; a key seen once is marked, not stored. When
 *   there are many more keys than the cache holds, each seen once in a long while (a busy
 *   site's sessions, the benchmark's spread), entries would be stored only to be dropped
 *   unused, and that churn costs more than the cache saves; with the doorkeeper a miss
 *   allocates nothing, while a key used twice in a row is kept from its second use.
 *
 * A slot's three words (held in the newer generation, held in the older, door) lie side by
 * side, so a miss reads one cache line.
 * @module
 */

/** Slots in the bit tables (a power of two). */
const SLOTS = 1 << 16
/** Words per slot group of 32: held (newer), held (older), door. */
const STRIDE = 3
const HELD_NEWER = 0
const HELD_OLDER = 1
const DOOR = 2

interface Bits<K> {
  readonly slot: (key: K) => number
  /** {@link STRIDE} words for each 32 slots. */
  readonly words: Uint32Array
}

export class RecentMap<K, V> {
  readonly size: number
  #recent = new Map<K, V>()
  #older = new Map<K, V>()
  /** The held and doorkeeper bits; only with a `slot` function. */
  readonly #bits: Bits<K> | undefined
  #marks = 0

  /**
   * @param size entries per generation
   * @param slot a number from the key that is well spread (the key's own random characters,
   * say); only its low 16 bits are used. Without it, every lookup reads the maps and
   * {@link admits} is always true.
   */
  constructor(size: number, slot?: (key: K) => number) {
    this.size = size
    this.#bits =
      slot === undefined ? undefined : { slot, words: new Uint32Array((SLOTS >>> 5) * STRIDE) }
  }

  /** The value under `key`, if still kept; one found in the older generation moves up. */
  get(key: K): V | undefined {
    const bits = this.#bits
    if (bits !== undefined) {
      const slot = bits.slot(key) & (SLOTS - 1)
      const at = (slot >>> 5) * STRIDE
      const held = bits.words[at + HELD_NEWER]! | bits.words[at + HELD_OLDER]!
      if ((held & (1 << (slot & 31))) === 0) return undefined
    }
    const hit = this.#recent.get(key)
    if (hit !== undefined) return hit
    const old = this.#older.get(key)
    if (old !== undefined) this.set(key, old)
    return old
  }

  /** Keep `value` under `key`. */
  set(key: K, value: V): void {
    const bits = this.#bits
    if (this.#recent.size >= this.size) {
      this.#older = this.#recent
      this.#recent = new Map()
      if (bits !== undefined) {
        const { words } = bits
        for (let at = 0; at < words.length; at += STRIDE) {
          words[at + HELD_OLDER] = words[at + HELD_NEWER]!
          words[at + HELD_NEWER] = 0
        }
      }
    }
    this.#recent.set(key, value)
    if (bits !== undefined) {
      const slot = bits.slot(key) & (SLOTS - 1)
      bits.words[(slot >>> 5) * STRIDE + HELD_NEWER]! |= 1 << (slot & 31)
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
    return this.#bits === undefined || this.#mark(this.#bits, key)
  }

  /**
   * Marks `key` as asked about once, so that its next {@link admits} is true, without keeping
   * anything: for a key known to come back soon (a cookie just sent), whose entry would only
   * be worth its cost if it does.
   */
  mark(key: K): void {
    if (this.#bits !== undefined) this.#mark(this.#bits, key)
  }

  /** Whether `key` was marked already; marks it if not. */
  #mark(bits: Bits<K>, key: K): boolean {
    const slot = bits.slot(key) & (SLOTS - 1)
    const at = (slot >>> 5) * STRIDE + DOOR
    const bit = 1 << (slot & 31)
    const { words } = bits
    if ((words[at]! & bit) !== 0) return true
    words[at]! |= bit
    // forget the marks as often as a generation fills: a key asked about again only after
    // that many others would not have stayed long anyway
    if (++this.#marks >= this.size) {
      for (let door = DOOR; door < words.length; door += STRIDE) words[door] = 0
      this.#marks = 0
    }
    return false
  }
}

/**
 * A {@link RecentMap} `slot` for keys whose characters from `offset` on are random (base64url
 * of CSPRNG bytes): four of them, mixed.
 */
export function randomTextSlot(offset: number): (key: string) => number {
  return (key) =>
    key.charCodeAt(offset) ^
    (key.charCodeAt(offset + 1) << 6) ^
    (key.charCodeAt(offset + 2) << 12) ^
    (key.charCodeAt(offset + 3) << 15)
}
