import type { Codec } from './codec.js'
import type { Duration } from './duration.js'
import { toMs } from './duration.js'
import { SessionImmutableError, SessionSerializeError, SessionStateError } from './errors.js'
import { hashSessionId, newSessionId } from './ids.js'
import type { CookiePresence, SessionMeta } from './store.js'

/** The shape of session data: top-level keys to values. */
export type SessionData = Record<string, unknown>

/** Keys of `Data` usable with `get`/`set`. */
export type SessionKey<Data> = Extract<keyof Data, string>

/** Field-name prefixes the core keeps for itself; data keys cannot start with `$`. */
const FLASH = '$flash:'
const IMMUTABLE = '$imm:'
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
const MAX_KEY_LENGTH = 200

/** @internal The symbol under which a session keeps its state for the manager. */
export const STATE: unique symbol = Symbol('tessera.session')

/** @internal What the manager needs to know about a session to commit it. */
export interface SessionState {
  readonly codec: Codec
  /** Meta for a session starting now (after destroy). */
  readonly freshMeta: () => SessionMeta
  /** Current id, made on first need. */
  id: string | undefined
  /**
   * hash(id): made with the id, or, for a session a client-side store opened, at its first
   * need ({@link keyOf}): a cookie-store request that reads its session never hashes the id.
   */
  key: string | undefined
  /** A record exists in the store under `key`. */
  persisted: boolean
  /** Loaded from the store (not new) when the request began. */
  readonly isNew: boolean
  /** The request carried a session cookie (valid or not): a clearing cookie may be due. */
  hadCookie: boolean
  /** Whether the request came over HTTPS, for the cookie's Secure flag. */
  readonly secure: boolean
  /** Encoded fields: data, flash messages, immutability markers. */
  fields: Map<string, string>
  /**
   * Decoded objects and arrays, by field, so that each `get` of one gives the same value; made
   * at the first. Primitives are decoded again at each `get`, which costs less than keeping
   * them: most requests read a counter or an id once, and this `Map` and the `Set` below,
   * made with every session, were almost half of what a read of a hot session allocated.
   */
  decoded: Map<string, unknown> | undefined
  /** Fields set or removed since the last commit; made at the first (most requests change none). */
  changed: Set<string> | undefined
  /** clear() was called since the last commit. */
  cleared: boolean
  meta: SessionMeta
  /** Meta changed in a way that must be written (user binding, lifetime). */
  metaChanged: boolean
  /** The cookie must be sent again (lifetime changed). */
  cookieChanged: boolean
  /** extend() was called. */
  extend: boolean
  /** A stored record to remove at commit (regenerate, destroy). */
  replaces: string | undefined
  /** What happened to `replaces`: it moved to a new id, or the session was destroyed. */
  replacedBy: 'regenerate' | 'destroy' | undefined
  /** Set by an adapter: commit now and put the cookies on the response (`session.save()`). */
  saver: Saver | undefined
  /**
   * Which of a client-side store's cookies the request carried, then which the last commit
   * sent: the cookies a commit may have to clear. Always 0 with a server store.
   */
  present: CookiePresence
  /**
   * The request carried the cookie of a session that moved to a new id moments ago (a login):
   * its commits write nothing and send no cookie (see the `moved` rejection), unless it
   * regenerates (a login of its own), which makes it an ordinary new session. Also set when a
   * commit finds the record gone (a logout or login elsewhere), so no later commit of the same
   * request writes it back. Set on such a session only, never in the state's literal: one
   * more field there moved V8's collections so that a hot `/read` cost 1,100 instructions
   * more, 6,400 more with the collector's (`bench:instructions --route read`).
   */
  moved?: boolean
}

/** @internal What an adapter gives a session for `session.save()`. */
export interface Saver {
  /** Commit now and put the cookies on the response. */
  save(): Promise<void>
}

/** Options of {@link Session.set}. */
export interface SetOptions {
  /** Later `set()`s of this key throw `SessionImmutableError`; `get()` returns a frozen copy. */
  immutable?: boolean
}

/** Options of {@link Session.setLifetime}. */
export interface LifetimeOptions {
  /** Idle timeout for this session only. */
  idleTimeout?: Duration
  /** Absolute timeout for this session only, counted from its creation. */
  absoluteTimeout?: Duration
  /**
   * Give the cookie a Max-Age so it survives a browser restart ("remember me").
   * @default true
   */
  persistent?: boolean
}

/** Flash messages: set in one request, read once in a later one. Stored with the session. */
export interface Flash {
  /** Store a message under `key`, replacing any there. */
  set(key: string, value: unknown): void
  /** The message under `key`, removed from the session. */
  get<T = unknown>(key: string): T | undefined
  /** The message under `key`, left in place. */
  peek<T = unknown>(key: string): T | undefined
  has(key: string): boolean
  /** Every message by key, all removed from the session. */
  all(): Record<string, unknown>
  /** Remove every message. */
  clear(): void
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new SessionSerializeError(
      String(key),
      `keys are strings of 1 to ${MAX_KEY_LENGTH} characters`,
    )
  }
  if (key.charCodeAt(0) === 36 /* $ */) {
    throw new SessionSerializeError(key, 'keys starting with "$" are reserved by Tessera')
  }
  if (FORBIDDEN_KEYS.has(key)) throw new SessionSerializeError(key, 'this key name is not allowed')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
  if (/[\u0000-\u001f\u007f]/.test(key)) {
    throw new SessionSerializeError(key, 'keys cannot hold control characters')
  }
  // UTF-8, which every store and driver speaks, has no lone surrogate: Redis would keep the
  // key as U+FFFD (another key), and PostgreSQL and MySQL refuse the record
  if (!key.isWellFormed()) {
    throw new SessionSerializeError(key, 'keys must be well-formed Unicode (no lone surrogate)')
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/**
 * One visitor's session, for the length of one request. Values are copied into the session
 * by `set()` (encoded at once, so a value that cannot be stored fails there, naming the
 * key): mutate an object you read, then `set()` it again to keep the change.
 */
export class Session<Data extends SessionData = SessionData> {
  /** @internal */
  readonly [STATE]: SessionState
  #flash: Flash | undefined

  /** @internal Sessions are made by the manager's `load()`. */
  constructor(state: SessionState) {
    this[STATE] = state
  }

  /** Flash messages: read-once values that survive a redirect. */
  get flash(): Flash {
    // made on first use: most requests never touch it
    this.#flash ??= makeFlash(this[STATE])
    return this.#flash
  }

  /** True when the request had no stored session (first visit, expired, refused cookie). */
  get isNew(): boolean {
    return this[STATE].isNew
  }

  /**
   * SHA-256 of the session id, hex: safe to log, show in a device list and revoke by
   * (`sessions.destroy(idHash)`); it cannot be turned back into a cookie.
   */
  get idHash(): string {
    return ensureId(this[STATE]).key
  }

  /** The user bound by {@link setUser}. */
  get userId(): string | undefined {
    return this[STATE].meta.userId
  }

  /** When the session was created (ms since the epoch). */
  get createdAt(): number {
    return this[STATE].meta.createdAt
  }

  /** When the session expires if nothing more happens (ms since the epoch). */
  get expiresAt(): number {
    const { meta } = this[STATE]
    return Math.min(meta.idleExpiresAt, meta.absoluteExpiresAt)
  }

  get<K extends SessionKey<Data>>(key: K): Data[K] | undefined {
    const s = this[STATE]
    const text = s.fields.get(key)
    if (text === undefined || key.charCodeAt(0) === 36) return undefined
    if (s.fields.has(IMMUTABLE + key)) return deepFreeze(decode(s, key, text)) as Data[K]
    const known = s.decoded?.get(key)
    if (known !== undefined) return known as Data[K]
    const value = decode(s, key, text)
    if (typeof value === 'object' && value !== null) {
      s.decoded ??= new Map()
      s.decoded.set(key, value)
    }
    return value as Data[K]
  }

  /**
   * Stores a copy of `value` under `key`, saved at commit. A key is 1 to 200 characters of
   * well-formed Unicode, with no control characters, not starting with `$` (Tessera's own) and
   * not `__proto__`, `constructor` or `prototype`; another key, or a value the codec cannot
   * hold, throws a `SessionSerializeError`.
   */
  set<K extends SessionKey<Data>>(key: K, value: Data[K], options?: SetOptions): void {
    checkKey(key)
    const s = this[STATE]
    if (s.fields.has(IMMUTABLE + key)) throw new SessionImmutableError(key)
    const text = encode(s, key, value)
    if (options?.immutable) write(s, IMMUTABLE + key, '1')
    if (s.fields.get(key) === text) return
    write(s, key, text)
    s.decoded?.delete(key)
  }

  has(key: string): boolean {
    return key.charCodeAt(0) !== 36 && this[STATE].fields.has(key)
  }

  /** Remove `key` (immutable keys too). */
  delete(key: SessionKey<Data>): void {
    const s = this[STATE]
    if (key.charCodeAt(0) === 36) return
    remove(s, key)
    remove(s, IMMUTABLE + key)
  }

  /** Remove every key and flash message. */
  clear(): void {
    const s = this[STATE]
    // nothing stored and nothing here: nothing to clear. A regenerated session still has its
    // old record, which other requests may have filled since (see regenerate)
    if (s.fields.size === 0 && !s.persisted && s.replaces === undefined) return
    s.fields.clear()
    s.decoded = undefined
    s.changed = undefined
    s.cleared = true
  }

  keys(): SessionKey<Data>[] {
    const keys: string[] = []
    for (const field of this[STATE].fields.keys()) if (field.charCodeAt(0) !== 36) keys.push(field)
    return keys as SessionKey<Data>[]
  }

  entries(): [SessionKey<Data>, Data[SessionKey<Data>]][] {
    return this.keys().map((key) => [key, this.get(key) as Data[SessionKey<Data>]])
  }

  /** `key` as a string: strings as they are, numbers and booleans as text, else `fallback`. */
  getString(key: SessionKey<Data>, fallback = ''): string {
    const v: unknown = this.get(key)
    if (typeof v === 'string') return v
    if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
    return fallback
  }

  /** `key` as a finite number (numeric strings parsed), else `fallback`. */
  getNumber(key: SessionKey<Data>, fallback = 0): number {
    const v: unknown = this.get(key)
    const n =
      typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN
    return Number.isFinite(n) ? n : fallback
  }

  /** `key` as a boolean (`'true'`/`'false'`, `1`/`0` accepted), else `fallback`. */
  getBoolean(key: SessionKey<Data>, fallback = false): boolean {
    const v: unknown = this.get(key)
    if (typeof v === 'boolean') return v
    if (v === 'true' || v === 1 || v === '1') return true
    if (v === 'false' || v === 0 || v === '0') return false
    return fallback
  }

  /** `key` as a Date (a Date, an ISO string or epoch ms), else `fallback`. */
  getDate(key: SessionKey<Data>, fallback?: Date): Date | undefined {
    const v: unknown = this.get(key)
    const d =
      v instanceof Date
        ? v
        : typeof v === 'string' || typeof v === 'number'
          ? new Date(v)
          : undefined
    return d && !Number.isNaN(d.getTime()) ? d : fallback
  }

  /**
   * Give the session a new id, keeping its data; the old record is removed at commit.
   * Call it at login and on every privilege change (session fixation). With a server store,
   * the commit reads the old record again and carries what other requests saved to it
   * meanwhile, with this request's changes on top (after `clear()`, this request's alone).
   */
  regenerate(): void {
    const s = this[STATE]
    // a login of its own on a request whose session had moved: a session of its own from here
    if (s.moved) s.moved = false
    if (s.persisted && s.replaces === undefined) {
      s.replaces = keyOf(s)
      s.replacedBy = 'regenerate'
    }
    s.persisted = false
    s.id = undefined
    s.key = undefined
  }

  /**
   * End the session (logout): its record is removed and the cookie cleared at commit.
   * The session object stays usable as a fresh, empty session with a new id.
   */
  destroy(): void {
    const s = this[STATE]
    if (s.persisted || s.replaces !== undefined) {
      s.replaces ??= keyOf(s)
      s.replacedBy = 'destroy'
    }
    s.persisted = false
    s.id = undefined
    s.key = undefined
    s.fields.clear()
    s.decoded = undefined
    s.changed = undefined
    s.cleared = false
    s.meta = s.freshMeta()
    s.metaChanged = false
    s.cookieChanged = false
  }

  /** Extend the idle expiry at this commit, even if `touchAfter` has not passed. */
  extend(): void {
    this[STATE].extend = true
  }

  /**
   * Bind the session to a user (or unbind it with `undefined`), for listing and revoking. A
   * stored session whose binding changes is regenerated (a new id at commit, as a login must
   * have anyway): the binding is part of the session's meta, which each commit writes whole,
   * so a request that loaded the session before this one and committed after it would write
   * the old binding back, and the session would drop out of `listByUser` and
   * `destroyByUser`. Under a new id, that request finds no record and writes nothing.
   */
  setUser(userId: string | undefined): void {
    if (
      userId !== undefined &&
      (typeof userId !== 'string' ||
        userId.length === 0 ||
        userId.length > 256 ||
        // a lone surrogate: see checkKey
        !userId.isWellFormed())
    ) {
      throw new SessionStateError(
        'setUser takes a user id of 1 to 256 characters of well-formed Unicode, or undefined',
      )
    }
    const s = this[STATE]
    if (s.meta.userId === userId) return
    this.regenerate()
    const { userId: _old, ...rest } = s.meta
    s.meta = userId === undefined ? rest : { ...rest, userId }
    s.metaChanged = true
  }

  /**
   * Change this session's lifetime ("remember me"): its own idle and absolute timeouts, and a
   * persistent cookie. The lifetime is part of the session's meta, which each commit writes
   * whole: a request that loaded the session before this one and commits after it writes the
   * old lifetime back (see {@link setUser}). At login, call it with `setUser()` or
   * `regenerate()`, which move the session to a new id.
   *
   * @example
   * ```ts
   * if (form.rememberMe) session.setLifetime({ idleTimeout: '14d', absoluteTimeout: '30d' })
   * ```
   */
  setLifetime(options: LifetimeOptions): void {
    const s = this[STATE]
    const meta = { ...s.meta }
    if (options.idleTimeout !== undefined) {
      meta.idleTimeout = toMs(options.idleTimeout, 'setLifetime idleTimeout')
      meta.idleExpiresAt = meta.lastSeenAt + meta.idleTimeout
    }
    if (options.absoluteTimeout !== undefined) {
      meta.absoluteExpiresAt =
        meta.createdAt + toMs(options.absoluteTimeout, 'setLifetime absoluteTimeout')
    }
    if (options.persistent ?? true) meta.persistent = true
    else delete meta.persistent
    s.meta = meta
    s.metaChanged = true
    s.cookieChanged = true
  }

  /**
   * Commit now, before the response starts (a streamed body, server-sent events). The adapter
   * commits again at the end, writing only what changed since. Needs an adapter that supports
   * it (every Tessera adapter does); with the bare core, call `sessions.commit(session)`.
   */
  async save(): Promise<void> {
    const saver = this[STATE].saver
    if (saver === undefined) {
      throw new SessionStateError(
        'save() needs an adapter; with the core alone, call sessions.commit(session)',
      )
    }
    await saver.save()
  }

  /** Plain data, decoded (for debugging and schema checks); flash messages not included. */
  toJSON(): Partial<Data> {
    return Object.fromEntries(this.entries()) as unknown as Partial<Data>
  }
}

/** @internal Makes the session's id on first need. */
export function ensureId(s: SessionState): { id: string; key: string } {
  if (s.id === undefined) {
    s.id = newSessionId()
    s.key = hashSessionId(s.id)
  }
  return { id: s.id, key: keyOf(s)! }
}

/** @internal The session's store key (its `idHash`), hashed at first need; none without an id. */
export function keyOf(s: SessionState): string | undefined {
  if (s.key === undefined && s.id !== undefined) s.key = hashSessionId(s.id)
  return s.key
}

/**
 * @internal A string the core keeps in a field of its own (its name starts with `$`, which no
 * data key can), apart from the app's data: for parts of Tessera with per-session state (CSRF).
 * Undefined when absent or not a string.
 */
export function reservedField<D extends SessionData>(
  session: Session<D>,
  field: `$${string}`,
): string | undefined {
  const s = session[STATE]
  const text = s.fields.get(field)
  if (text === undefined) return undefined
  const value = decode(s, field, text)
  return typeof value === 'string' ? value : undefined
}

/** @internal Sets a reserved field ({@link reservedField}) to `value`, encoded by the codec. */
export function setReservedField<D extends SessionData>(
  session: Session<D>,
  field: `$${string}`,
  value: string,
): void {
  const s = session[STATE]
  write(s, field, encode(s, field, value))
}

/** @internal Removes a reserved field ({@link reservedField}), if the session has it. */
export function deleteReservedField<D extends SessionData>(
  session: Session<D>,
  field: `$${string}`,
): void {
  remove(session[STATE], field)
}

function write(s: SessionState, field: string, text: string): void {
  s.fields.set(field, text)
  markChanged(s, field)
}

function remove(s: SessionState, field: string): void {
  if (!s.fields.delete(field)) return
  s.decoded?.delete(field)
  markChanged(s, field)
}

function markChanged(s: SessionState, field: string): void {
  s.changed ??= new Set()
  s.changed.add(field)
}

function encode(s: SessionState, key: string, value: unknown): string {
  try {
    return s.codec.encode(value)
  } catch (err) {
    throw new SessionSerializeError(key, (err as Error).message, { cause: err })
  }
}

function decode(s: SessionState, key: string, text: string): unknown {
  try {
    return s.codec.decode(text)
  } catch (err) {
    throw new SessionSerializeError(
      key,
      `stored value cannot be decoded: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
}

function makeFlash(s: SessionState): Flash {
  const read = (key: string, consume: boolean): unknown => {
    const text = s.fields.get(FLASH + key)
    if (text === undefined) return undefined
    if (consume) remove(s, FLASH + key)
    return decode(s, key, text)
  }
  return {
    set(key, value) {
      checkKey(key)
      write(s, FLASH + key, encode(s, key, value))
    },
    get: <T>(key: string) => read(key, true) as T | undefined,
    peek: <T>(key: string) => read(key, false) as T | undefined,
    has: (key) => s.fields.has(FLASH + key),
    all() {
      const out: Record<string, unknown> = {}
      for (const field of [...s.fields.keys()]) {
        if (field.startsWith(FLASH))
          out[field.slice(FLASH.length)] = read(field.slice(FLASH.length), true)
      }
      return out
    },
    clear() {
      for (const field of [...s.fields.keys()]) if (field.startsWith(FLASH)) remove(s, field)
    },
  }
}
