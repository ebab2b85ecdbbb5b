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
 * With `randomFrom` each generation also keeps a table of bits, one set for every key it
 * holds, so a {@link get} for a key in neither generation usually ends at one bit, read from
 * a table small enough to stay in the CPU's caches, instead of two lookups in large maps
 * whose every step is a cache miss (the spread's case: keys seen once in a long while).
 * @module
 */

/** Bits in each table (a power of two): 8 KB a table. */
const SLOTS = 1 << 16
const WORDS = SLOTS >>> 5

/**
 * A key's slot in the tables: four of its characters from `from` on (24 random bits of
 * base64url), mixed by a multiplicative hash so that each of the 16 bits kept is evenly
 * spread. (An XOR of the shifted character codes reached only 45,824 of the 65,536 slots.) A
 * plain function, not one given per cache: a call site that saw several closures would no
 * longer inline it.
 */
export const slotOf = (key: string, from: number): number =>
  Math.imul(
    key.charCodeAt(from) |
      (key.charCodeAt(from + 1) << 8) |
      (key.charCodeAt(from + 2) << 16) |
      (key.charCodeAt(from + 3) << 24),
    0x9e3779b1,
  ) >>> 16

const NO_BITS = new Uint32Array(0)

export class RecentMap<V> {
  readonly size: number
  #recent = new Map<string, V>()
  #older = new Map<string, V>()
  /** Where keys' random characters start; -1: no doorkeeper and no tables. */
  readonly #from: number
  /** The doorkeeper's marks. */
  readonly #marks: Uint32Array
  #marked = 0
  /** A bit for every key in the newer generation; none set for a key it lacks. */
  #recentBits: Uint32Array
  /** The same for the older generation. */
  #olderBits: Uint32Array

  /**
   * @param size entries per generation
   * @param randomFrom where the keys' random characters start (base64url of CSPRNG bytes, four
   * at least), for the doorkeeper ({@link admits}) and the tables that answer most misses;
   * without it, every key is admitted and every miss looks in both maps
   */
  constructor(size: number, randomFrom?: number) {
    this.size = size
    this.#from = randomFrom ?? -1
    const words = randomFrom === undefined ? 0 : WORDS
    this.#marks = words === 0 ? NO_BITS : new Uint32Array(words)
    this.#recentBits = words === 0 ? NO_BITS : new Uint32Array(words)
    this.#olderBits = words === 0 ? NO_BITS : new Uint32Array(words)
  }

  /** The value under `key`, if still kept; one found in the older generation moves up. */
  get(key: string): V | undefined {
    if (this.#from < 0) {
      const hit = this.#recent.get(key)
      return hit !== undefined ? hit : this.#promote(key)
    }
    // each generation's map is looked in only when its table has the key's bit: a map lookup
    // of a key its table lacks would be a walk through entries no CPU cache holds, for nothing
    const slot = slotOf(key, this.#from)
    const word = slot >>> 5
    const bit = 1 << (slot & 31)
    if ((this.#recentBits[word]! & bit) !== 0) {
      const hit = this.#recent.get(key)
      if (hit !== undefined) return hit
    }
    return (this.#olderBits[word]! & bit) !== 0 ? this.#promote(key) : undefined
  }

  /** The value under `key` in the older generation, moved up to the newer one. */
  #promote(key: string): V | undefined {
    const old = this.#older.get(key)
    if (old !== undefined) this.set(key, old)
    return old
  }

  /** Keep `value` under `key`. */
  set(key: string, value: V): void {
    if (this.#recent.size >= this.size) {
      this.#older = this.#recent
      this.#recent = new Map()
      const dropped = this.#olderBits
      this.#olderBits = this.#recentBits
      this.#recentBits = dropped.fill(0)
    }
    this.#recent.set(key, value)
    if (this.#from >= 0) {
      const slot = slotOf(key, this.#from)
      this.#recentBits[slot >>> 5]! |= 1 << (slot & 31)
    }
  }

  /**
   * Whether to keep an entry for `key` now, one that {@link get} missed: true when `key` was
   * asked about before, since the last `size` first askings; otherwise `key` is marked and the
   * answer is false. Always true without `randomFrom`.
   * @example
   * ```ts
   * if (cache.admits(key)) cache.set(key, value)
   * ```
   */
  admits(key: string): boolean {
    return this.#from < 0 || this.#mark(key)
  }

  /**
   * Marks `key` as asked about once, so that its next {@link admits} is true, without keeping
   * anything: for a key known to come back soon (a cookie just sent), whose entry would only
   * be worth its cost if it does.
   */
  mark(key: string): void {
    if (this.#from >= 0) this.#mark(key)
  }

  /** Whether `key` was marked already; marks it if not. */
  #mark(key: string): boolean {
    const slot = slotOf(key, this.#from)
    const word = slot >>> 5
    const bit = 1 << (slot & 31)
    if ((this.#marks[word]! & bit) !== 0) return true
    this.#marks[word]! |= bit
    // forget the marks as often as a generation fills: a key asked about again only after
    // that many others would not have stayed long anyway
    if (++this.#marked >= this.size) {
      this.#marks.fill(0)
      this.#marked = 0
    }
    return false
  }
}
