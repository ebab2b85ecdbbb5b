/**
 * The memory store: sessions in this process's memory. Fast and needs nothing, but every
 * session is lost on restart and not shared between processes: use it for development, tests
 * and single-process apps. Bounded: past `maxSessions`, a session not used lately goes (CLOCK,
 * the usual O(1) approximation of least-recently-used).
 *
 * @example
 * ```ts
 * import { memoryStore } from 'tessera/stores/memory'
 * createSessions({ secret, store: memoryStore({ maxSessions: 50_000 }) })
 * ```
 * @module
 */
import { SessionConfigError } from '../core/errors.js'
import type {
  SessionMeta,
  SessionPatch,
  SessionRecord,
  SessionStore,
  StoredSession,
} from '../core/store.js'
import { expiresAt } from '../core/store.js'
import { checkStoreOptions, MAX_TIMER_MS } from './options.js'

export interface MemoryStoreOptions {
  /**
   * Most sessions kept; past it, a session not read or written lately is evicted (CLOCK: a
   * used session is spared once, so the first unused one in age order goes).
   * @default 100_000
   */
  maxSessions?: number
  /**
   * How often expired sessions are swept, in ms (one timer per store, `unref`ed, so it never
   * keeps the process alive). `0` turns the sweep off; expired records are still dropped when
   * read, evicted or `prune()`d. At most 2^31 - 1 (about 24 days), the longest a Node timer
   * keeps.
   * @default 60_000
   */
  sweepInterval?: number
  /** The time in ms since the epoch. @default Date.now */
  clock?: () => number
}

/**
 * A stored session. The meta is kept field by field on the entry rather than as an object of
 * its own: a write or touch updates it in place, allocating nothing that would outlive the
 * request (a new meta object per write is referenced from the long-lived entry, so V8 copies
 * it to its old generation), and a read of a session not used lately follows one pointer
 * fewer through memory no cache holds.
 */
interface Entry {
  /**
   * A plain object made by a spread: two thirds of a Map's heap (or of a null-prototype
   * object's, which V8 keeps in dictionary mode), and cheap to copy. A spread defines a
   * `__proto__` field as an own property; {@link setField} does the same on a patch.
   */
  fields: Record<string, string>
  createdAt: number
  lastSeenAt: number
  idleExpiresAt: number
  absoluteExpiresAt: number
  /** The optional meta fields: `undefined` when absent, so every entry has one shape. */
  userId: string | undefined
  idleTimeout: number | undefined
  persistent: boolean | undefined
  /** Read or written since the eviction hand last passed it: spared once (CLOCK). */
  used: boolean
}

function entryOf(fields: Record<string, string>, meta: SessionMeta, used: boolean): Entry {
  return {
    fields,
    createdAt: meta.createdAt,
    lastSeenAt: meta.lastSeenAt,
    idleExpiresAt: meta.idleExpiresAt,
    absoluteExpiresAt: meta.absoluteExpiresAt,
    userId: meta.userId,
    idleTimeout: meta.idleTimeout,
    persistent: meta.persistent,
    used,
  }
}

function setMeta(entry: Entry, meta: SessionMeta): void {
  entry.createdAt = meta.createdAt
  entry.lastSeenAt = meta.lastSeenAt
  entry.idleExpiresAt = meta.idleExpiresAt
  entry.absoluteExpiresAt = meta.absoluteExpiresAt
  entry.userId = meta.userId
  entry.idleTimeout = meta.idleTimeout
  entry.persistent = meta.persistent
}

/**
 * The entry's meta as a new object, with only the optional fields it has, built in the
 * order of core/store.ts's `metaOf`, so it has the hidden class of the manager's meta. A
 * function of its own, not `metaOf` itself, so that each one's property loads meet one kind
 * of object (an entry here, a meta there).
 */
function metaOfEntry(entry: Entry): SessionMeta {
  const meta: SessionMeta = {
    createdAt: entry.createdAt,
    lastSeenAt: entry.lastSeenAt,
    idleExpiresAt: entry.idleExpiresAt,
    absoluteExpiresAt: entry.absoluteExpiresAt,
  }
  if (entry.userId !== undefined) meta.userId = entry.userId
  if (entry.idleTimeout !== undefined) meta.idleTimeout = entry.idleTimeout
  if (entry.persistent !== undefined) meta.persistent = entry.persistent
  return meta
}

function setField(fields: Record<string, string>, field: string, text: string): void {
  if (field === '__proto__') {
    Object.defineProperty(fields, field, {
      value: text,
      enumerable: true,
      writable: true,
      configurable: true,
    })
  } else fields[field] = text
}

/** The memory store and what it adds to the contract. */
export interface MemoryStore extends Required<Omit<SessionStore, 'name'>> {
  readonly name: 'memory'
}

export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  checkStoreOptions('memory', options, { clock: 'function' })
  const maxSessions = options.maxSessions ?? 100_000
  if (!Number.isInteger(maxSessions) || maxSessions < 1) {
    throw new SessionConfigError('[store:memory] maxSessions must be a whole number of at least 1')
  }
  const clock = options.clock ?? Date.now
  // Eviction is CLOCK: the Map's insertion order is the ring, a live iterator is the hand, and
  // a use only sets `entry.used`. Moving an entry on use (delete + set, the textbook Map LRU)
  // costs V8 time that grows with the Map: 45 µs a read at 20,000 sessions.
  const sessions = new Map<string, Entry>()
  let hand: Iterator<[string, Entry]> | undefined
  const byUser = new Map<string, Set<string>>()

  const index = (key: string, before: string | undefined, after: string | undefined) => {
    if (before === after) return
    if (before !== undefined) {
      const keys = byUser.get(before)
      keys?.delete(key)
      if (keys?.size === 0) byUser.delete(before)
    }
    if (after !== undefined) {
      let keys = byUser.get(after)
      if (!keys) {
        keys = new Set()
        byUser.set(after, keys)
      }
      keys.add(key)
    }
  }
  const drop = (key: string): boolean => {
    const entry = sessions.get(key)
    if (!entry) return false
    sessions.delete(key)
    index(key, entry.userId, undefined)
    return true
  }
  /** Drops the first entry the hand finds unused, sparing (and clearing) used ones. */
  const evictOne = () => {
    for (;;) {
      hand ??= sessions.entries()
      const next = hand.next()
      if (next.done)
        hand = undefined // wrap around; ends within two turns
      else if (next.value[1].used) next.value[1].used = false
      else return void drop(next.value[0])
    }
  }
  const put = (key: string, entry: Entry) => {
    const before = sessions.get(key)
    // room is made first, so the hand never takes the session being stored
    if (!before) while (sessions.size >= maxSessions) evictOne()
    sessions.set(key, entry) // an existing key keeps its place in the ring
    index(key, before?.userId, entry.userId)
  }
  const read = (key: string): SessionRecord | undefined => {
    const entry = sessions.get(key)
    if (!entry) return undefined
    // an expired record is returned as it is: the manager destroys it and emits `expired`
    entry.used = true
    return { fields: { ...entry.fields }, meta: metaOfEntry(entry) }
  }
  const patch = (key: string, changes: SessionPatch, meta: SessionMeta): boolean => {
    const entry = sessions.get(key)
    if (!entry) return false
    if (changes.clear) entry.fields = {}
    for (const field in changes.set) setField(entry.fields, field, changes.set[field]!)
    for (const field of changes.delete) delete entry.fields[field]
    index(key, entry.userId, meta.userId)
    setMeta(entry, meta)
    entry.used = true
    return true
  }
  const touch = (key: string, meta: SessionMeta): void => {
    const entry = sessions.get(key)
    if (!entry) return
    index(key, entry.userId, meta.userId)
    setMeta(entry, meta)
    entry.used = true
  }
  const prune = () => {
    const now = clock()
    let removed = 0
    for (const [key, entry] of sessions) if (expiresAt(entry) <= now && drop(key)) removed++
    return removed
  }

  const interval = options.sweepInterval ?? 60_000
  // Node runs a timer of more than 2^31 - 1 ms after 1 ms instead, with only a warning: a
  // sweep of every session each millisecond, and a NaN, negative or text one (`'1m'`) would
  // turn the sweep off without a word
  if (typeof interval !== 'number' || !(interval >= 0 && interval <= MAX_TIMER_MS)) {
    throw new SessionConfigError(
      `[store:memory] sweepInterval must be a number of ms from 0 (no sweep) to ${MAX_TIMER_MS} (about 24 days); got ${String(interval)}`,
    )
  }
  const timer = interval > 0 ? setInterval(prune, interval) : undefined
  timer?.unref()

  return {
    name: 'memory',
    getNow: read,
    async get(key) {
      return read(key)
    },
    async set(key, record) {
      put(key, entryOf({ ...record.fields }, record.meta, sessions.has(key)))
    },
    async add(key, record) {
      const entry = sessions.get(key)
      if (entry !== undefined && expiresAt(entry) > clock()) return false
      put(key, entryOf({ ...record.fields }, record.meta, entry !== undefined))
      return true
    },
    patchNow: patch,
    async patch(key, changes, meta) {
      return patch(key, changes, meta)
    },
    touchNow: touch,
    async touch(key, meta) {
      touch(key, meta)
    },
    async destroy(key) {
      drop(key)
    },
    async listByUser(userId) {
      const now = clock()
      const out: StoredSession[] = []
      for (const key of byUser.get(userId) ?? []) {
        const entry = sessions.get(key)
        if (entry && expiresAt(entry) > now) out.push({ key, meta: metaOfEntry(entry) })
      }
      return out
    },
    async destroyByUser(userId, exceptKey) {
      let removed = 0
      for (const key of [...(byUser.get(userId) ?? [])])
        if (key !== exceptKey && drop(key)) removed++
      return removed
    },
    async count() {
      return sessions.size
    },
    async *scan() {
      for (const [key, entry] of [...sessions]) yield { key, meta: metaOfEntry(entry) }
    },
    async prune() {
      return prune()
    },
    async close() {
      if (timer) clearInterval(timer)
    },
  }
}
