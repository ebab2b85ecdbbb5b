import type { Codec } from './codec.js'
import { jsonCodec, richCodec } from './codec.js'
import type { CookieOptions, ResolvedCookie } from './cookies.js'
import { resolveCookie } from './cookies.js'
import type { Duration } from './duration.js'
import { parseDuration, toMs } from './duration.js'
import {
  SessionConfigError,
  SessionStateError,
  SessionStoreError,
  SessionValidationError,
  type StoreOperation,
} from './errors.js'
import type { SessionEventName, SessionListener } from './events.js'
import { Emitter } from './events.js'
import { hashSessionId, hashSessionIdUncached, isStoreKey, movedKey } from './ids.js'
import { Keyring } from './keyring.js'
import { ensureId, keyOf, Session, type SessionData, type SessionState, STATE } from './session.js'
import type { StandardSchemaV1 } from './standard-schema.js'
import type {
  ClientSideStore,
  CookiePresence,
  SessionMeta,
  SessionPatch,
  SessionRecord,
  SessionStore,
} from './store.js'
import { expiresAt, isClientSideStore, markerMeta, metaOf } from './store.js'

/** Options of `createSessions()`. */
export interface SessionsOptions<Data extends SessionData = SessionData> {
  /**
   * One secret of at least 32 random bytes (`npx tessera keygen`). Use `secrets` to rotate.
   * `undefined` is accepted so `process.env.SESSION_SECRET` can be passed as it is: a missing
   * secret is a `SessionConfigError` at startup.
   */
  secret?: string | undefined
  /** Secrets, newest first: the newest signs, every one verifies. */
  secrets?: readonly string[]
  /**
   * Where sessions live: a server store, or the cookie store (`tessera/stores/cookie`), which
   * keeps each session encrypted in the browser.
   * @default memoryStore()
   */
  store?: SessionStore | ClientSideStore
  /** The session cookie. */
  cookie?: CookieOptions
  /**
   * A session unused for this long expires (sliding). OWASP suggests 15 to 30 minutes for an
   * ordinary web app.
   * @default '30m'
   */
  idleTimeout?: Duration
  /**
   * A session expires this long after its creation, however active.
   * @default '12h'
   */
  absoluteTimeout?: Duration
  /**
   * An unchanged session's idle expiry is extended (one cheap store write) at most this often;
   * `0` extends on every request. Must be shorter than `idleTimeout`. A session given a shorter
   * idle timeout of its own by `setLifetime()` is extended every half of that instead.
   * @default '1m'
   */
  touchAfter?: Duration
  /**
   * How values are encoded: `'json'` (plain data), `'rich'` (Date, Map, Set, BigInt, URL,
   * typed arrays), or `richCodec({ classes })` to add the app's classes.
   * @default 'json'
   */
  codec?: 'json' | 'rich' | Codec
  /** A Standard Schema (zod, valibot, ...) checked against the stored data on every load. */
  schema?: StandardSchemaV1<unknown, Partial<Data>>
  /**
   * What happens when stored data fails `schema`: `'reset'` starts a fresh session (the old
   * record is left to expire) and emits `invalid`; `'error'` throws `SessionValidationError`.
   * @default 'reset'
   */
  onInvalidData?: 'reset' | 'error'
  /**
   * Trust `X-Forwarded-Proto` from a reverse proxy when deciding whether the request was
   * HTTPS (for the cookie's Secure flag). Only turn it on behind a proxy that sets it.
   * @default false
   */
  trustProxy?: boolean
  /** The time in ms since the epoch; inject a fake clock in tests. @default Date.now */
  clock?: () => number
}

/** Per-request facts an adapter passes to `load()`. */
export interface LoadOptions {
  /** The request came over HTTPS. @default false */
  secure?: boolean
}

/** One session of a user, as listed by `listByUser`. */
export interface UserSession {
  idHash: string
  createdAt: number
  lastSeenAt: number
  expiresAt: number
  /** This is the session given as `current`. */
  current: boolean
}

/**
 * How long a session that moved to a new id (`regenerate()`) leaves a marker under its old key,
 * in ms: requests that set out with the old cookie before the browser had the new one, and reach
 * the server after the move, get an empty session that sends no cookie instead of a new one
 * that would replace the new cookie (see the `moved` rejection reason).
 */
export const MOVED_MARKER_MS = 60_000

/** The timeouts a manager has when its options give none, in ms. */
export const DEFAULT_TIMES = {
  idleTimeout: 30 * 60_000,
  absoluteTimeout: 12 * 3_600_000,
  touchAfter: 60_000,
} as const

/**
 * The session manager: turns a `Cookie` header into a {@link Session} and a session back into
 * `Set-Cookie` values. Framework-free; the adapters call exactly this.
 */
export class SessionManager<Data extends SessionData = SessionData> {
  /**
   * The server store. With a client-side store (the cookie store) there is none: this is a
   * stand-in whose every operation fails with a `SessionConfigError` saying so.
   */
  readonly store: SessionStore
  readonly cookie: ResolvedCookie
  readonly trustProxy: boolean
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly touchAfter: number
  readonly #keyring: Keyring
  readonly #codec: Codec
  readonly #clock: () => number
  readonly #schema: StandardSchemaV1<unknown, Partial<Data>> | undefined
  readonly #onInvalidData: 'reset' | 'error'
  readonly #events = new Emitter()
  /** The client-side store, when sessions live in the browser. */
  readonly #client: ClientSideStore | undefined

  constructor(options: SessionsOptions<Data> & { store: SessionStore | ClientSideStore }) {
    if (options.secret !== undefined && options.secrets !== undefined) {
      throw new SessionConfigError('give either `secret` or `secrets`, not both')
    }
    this.#keyring = new Keyring(
      options.secrets ?? (options.secret === undefined ? [] : [options.secret]),
    )
    this.cookie = resolveCookie(options.cookie)
    if (isClientSideStore(options.store)) {
      this.#client = options.store
      this.#client.bind({ keyring: this.#keyring, cookie: this.cookie })
      this.store = noServerStore(options.store.name)
    } else {
      this.#client = undefined
      this.store = options.store
    }
    this.trustProxy = options.trustProxy ?? false
    this.idleTimeout = toMs(options.idleTimeout ?? DEFAULT_TIMES.idleTimeout, 'idleTimeout')
    this.absoluteTimeout = toMs(
      options.absoluteTimeout ?? DEFAULT_TIMES.absoluteTimeout,
      'absoluteTimeout',
    )
    const touchAfter = options.touchAfter ?? DEFAULT_TIMES.touchAfter
    // 0 (extend on every request) also written with a unit, '0s'
    this.touchAfter =
      touchAfter === 0 || (typeof touchAfter === 'string' && parseDuration(touchAfter) === 0)
        ? 0
        : toMs(touchAfter, 'touchAfter')
    if (this.touchAfter >= this.idleTimeout) {
      throw new SessionConfigError(
        `touchAfter (${this.touchAfter} ms) must be shorter than idleTimeout (${this.idleTimeout} ms), or active sessions would expire`,
      )
    }
    const codec = options.codec ?? 'json'
    this.#codec = codec === 'json' ? jsonCodec : codec === 'rich' ? richCodec() : codec
    if (typeof this.#codec?.encode !== 'function' || typeof this.#codec.decode !== 'function') {
      throw new SessionConfigError(
        "codec must be 'json', 'rich' or an object with encode() and decode()",
      )
    }
    this.#clock = options.clock ?? Date.now
    this.#schema = options.schema
    this.#onInvalidData = options.onInvalidData ?? 'reset'
  }

  /** The keyring, for parts that derive their own keys from the app's secrets (cookie store, CSRF). */
  get keyring(): Keyring {
    return this.#keyring
  }

  /** Listen to an event; returns a function that stops listening. */
  on<E extends SessionEventName>(event: E, listener: SessionListener<E>): () => void {
    return this.#events.on(event, listener)
  }

  /**
   * The session of a request, from its `Cookie` header. A missing, malformed, badly signed,
   * unknown or expired cookie gives a new empty session; only a valid signature reaches the
   * store. A store failure throws `SessionStoreError`.
   */
  load(cookieHeader: string | null | undefined, options: LoadOptions = {}): Promise<Session<Data>> {
    const loaded = this.loadNow(cookieHeader, options)
    return loaded instanceof Promise ? loaded : Promise.resolve(loaded)
  }

  /**
   * {@link load}, but the session itself when it could be had without waiting: no cookie, a
   * forged one, the cookie store, or a store with `getNow` (memory, SQLite). Otherwise a promise,
   * as `load` gives. Failures always come as a rejected promise, never as a throw. For adapters:
   * a framework resumed from a promise pays for the tick (4 µs a request on Express).
   * @example
   * ```ts
   * const loaded = sessions.loadNow(req.headers.cookie)
   * if (loaded instanceof Promise) loaded.then(next, fail)
   * else next(loaded)
   * ```
   */
  loadNow(
    cookieHeader: string | null | undefined,
    options: LoadOptions = {},
  ): Session<Data> | Promise<Session<Data>> {
    const secure = options?.secure ?? false
    try {
      return this.#client !== undefined
        ? this.#loadClient(this.#client, cookieHeader, secure)
        : this.#loadServer(cookieHeader, secure)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * Whether sessions live in the browser (a client-side store such as the cookie store), so
   * there is no server-side record: nothing to list, revoke or keep secrets in.
   */
  get clientSide(): boolean {
    return this.#client !== undefined
  }

  /** Load from a server store: verify the cookie's signature, then one store read. */
  #loadServer(
    cookieHeader: string | null | undefined,
    secure: boolean,
  ): Session<Data> | Promise<Session<Data>> {
    const raw = this.cookie.read(cookieHeader)
    if (raw === undefined) return this.#fresh(secure, false)
    const verified = this.#keyring.verify(raw)
    if ('rejected' in verified) {
      this.#events.emit('rejected', { reason: verified.rejected })
      return this.#fresh(secure, true)
    }
    // the keyring keeps the key of every id it remembers; one it does not has been seen at most
    // once lately, so the id-hash cache (the cookie store's) would not know it either
    const key = verified.key ?? hashSessionIdUncached(verified.id)
    const store = this.store
    const { id, stale } = verified
    if (store.getNow === undefined) return this.#loadAsync(store, id, key, secure, stale)
    return this.#opened(this.#getNow(store, key), id, key, secure, stale)
  }

  /** The store's `getNow(key)`; a throw is a store error, as a rejected `get` is. */
  #getNow(store: SessionStore, key: string): SessionRecord | undefined {
    try {
      return store.getNow!(key)
    } catch (err) {
      throw this.#storeError('get', err)
    }
  }

  /** The store read of {@link #loadServer} for a store without `getNow`. */
  async #loadAsync(
    store: SessionStore,
    id: string,
    key: string,
    secure: boolean,
    stale: boolean,
  ): Promise<Session<Data>> {
    // not through #call: on the hot path, each async wrapper is one more promise and tick
    let record: SessionRecord | undefined
    try {
      record = await store.get(key)
    } catch (err) {
      throw this.#storeError('get', err)
    }
    return this.#opened(record, id, key, secure, stale)
  }

  /**
   * The session a store read gave: unknown, expired (destroyed now), or loaded and checked.
   * `stale`: its cookie was signed with an older secret, so this request sends it signed again.
   */
  #opened(
    record: SessionRecord | undefined,
    id: string,
    key: string,
    secure: boolean,
    stale: boolean,
  ): Session<Data> | Promise<Session<Data>> {
    if (record === undefined) return this.#unknown(key, secure)
    const now = this.#clock()
    const { meta } = record
    // written so that a meta without its expiry times (a hand-edited or damaged record) has
    // expired: the comparisons with `undefined` are false
    if (!(now < meta.absoluteExpiresAt && now < meta.idleExpiresAt)) {
      return this.#call('destroy', () => this.store.destroy(key)).then(() => {
        this.#events.emit('expired', {
          idHash: key,
          kind: now >= meta.absoluteExpiresAt ? 'absolute' : 'idle',
        })
        return this.#fresh(secure, true)
      })
    }
    const fields = new Map<string, string>()
    for (const field of Object.keys(record.fields)) fields.set(field, record.fields[field]!)
    // the record is the caller's (see SessionStore.get): no copy of its meta
    const state = this.#state(secure, true, { id, key, meta, fields })
    if (stale) state.cookieChanged = true
    const session = new Session<Data>(state)
    return this.#schema === undefined ? session : this.#checked(session, key, secure, 0)
  }

  /**
   * A validly signed cookie whose session the store does not hold: one that moved to a new id
   * within {@link MOVED_MARKER_MS} (its marker is there) gives a session marked `moved`, which
   * commits nothing and sends no cookie; any other, a new session, and a clearing cookie if it
   * stays empty. One more store read, only for such cookies (a forged one never gets here).
   */
  #unknown(key: string, secure: boolean): Session<Data> | Promise<Session<Data>> {
    const marker = movedKey(key)
    const settle = (found: SessionRecord | undefined): Session<Data> => {
      if (found === undefined || this.#clock() >= expiresAt(found.meta)) {
        this.#events.emit('rejected', { reason: 'unknown', idHash: key })
        return this.#fresh(secure, true)
      }
      this.#events.emit('rejected', { reason: 'moved', idHash: key })
      const session = this.#fresh(secure, false)
      session[STATE].moved = true
      return session
    }
    const store = this.store
    if (store.getNow === undefined) return this.#call('get', () => store.get(marker)).then(settle)
    return settle(this.#getNow(store, marker))
  }

  /** A loaded session, or a fresh one when the schema refuses its data. */
  #checked(
    session: Session<Data>,
    key: string,
    secure: boolean,
    present: CookiePresence,
  ): Session<Data> | Promise<Session<Data>> {
    const settle = (issues: readonly StandardSchemaV1.Issue[] | undefined): Session<Data> => {
      if (issues === undefined) return session
      if (this.#onInvalidData === 'error') throw new SessionValidationError(issues)
      this.#events.emit('invalid', { idHash: key, issues })
      return this.#fresh(secure, true, present)
    }
    const issues = this.#validate(session)
    return isThenable(issues) ? Promise.resolve(issues).then(settle) : settle(issues)
  }

  /**
   * Load from a client-side store: no id signature (the store's encryption authenticates the
   * cookie) and no store read; expiry, revocation and the schema are checked as for a server
   * store, with the same events.
   */
  #loadClient(
    client: ClientSideStore,
    cookieHeader: string | null | undefined,
    secure: boolean,
  ): Session<Data> | Promise<Session<Data>> {
    const now = this.#clock()
    const opened = client.open(cookieHeader, now)
    if (opened === undefined) return this.#fresh(secure, false)
    if ('rejected' in opened) {
      this.#events.emit('rejected', { reason: opened.rejected })
      return this.#fresh(secure, true, opened.present)
    }
    const { id, fields, meta, issuedAt } = opened.session
    if (!(now < meta.absoluteExpiresAt && now < meta.idleExpiresAt)) {
      this.#events.emit('expired', {
        idHash: hashSessionId(id),
        kind: now >= meta.absoluteExpiresAt ? 'absolute' : 'idle',
      })
      return this.#fresh(secure, true, opened.present)
    }
    const isRevoked = client.isRevoked
    // the id's hash only when isRevoked needs it now; otherwise the session makes it at its first
    // need (session.idHash, an event), and a request that only reads or writes never does
    const key = isRevoked === undefined ? undefined : hashSessionId(id)
    const accept = (revoked: boolean): Session<Data> | Promise<Session<Data>> => {
      if (revoked) {
        this.#events.emit('rejected', { reason: 'revoked', idHash: key! })
        return this.#fresh(secure, true, opened.present)
      }
      const state = this.#state(secure, true, { id, key, meta, fields }, opened.present)
      const session = new Session<Data>(state)
      return this.#schema === undefined
        ? session
        : this.#checked(session, keyOf(state)!, secure, opened.present)
    }
    if (isRevoked === undefined) return accept(false)
    const info = { idHash: key!, userId: meta.userId, createdAt: meta.createdAt, issuedAt }
    let revoked: boolean | Promise<boolean>
    try {
      revoked = isRevoked.call(client, info)
    } catch (err) {
      throw this.#storeError('get', err)
    }
    if (!isThenable(revoked)) return accept(revoked === true)
    return Promise.resolve(revoked).then(
      (r) => accept(r === true),
      (err: unknown) => {
        throw this.#storeError('get', err)
      },
    )
  }

  /**
   * Whether {@link commit} would write to the store or send a cookie now: something changed,
   * a touch is due, or a stale cookie must be cleared. Adapters skip the commit (and holding
   * the response for it) when it is false, which it is on most reads.
   * @example
   * ```ts
   * if (sessions.needsCommit(session)) applySetCookies(headers, await sessions.commit(session))
   * ```
   */
  needsCommit(session: Session<Data>): boolean {
    const s = session[STATE]
    if (s.moved) return false
    // the state holds the changes not taken yet, in the same fields a commit takes
    return this.#due(s, s, this.#clock())
  }

  /**
   * Whether a commit of changes `c` at `now` writes or sends a cookie. A persisted session is
   * written when something changed or a touch is due; a new one when it holds data or a user,
   * and a cookie is cleared when the request carried one that is no good.
   */
  #due(s: SessionState, c: Changes, now: number): boolean {
    if (c.changed !== undefined || c.cleared || c.metaChanged || c.cookieChanged || c.extend) {
      return true
    }
    if (c.replaces !== undefined) return true
    if (s.persisted) return this.#touchDue(s.meta, now)
    return s.fields.size > 0 || s.meta.userId !== undefined || s.hadCookie || s.present !== 0
  }

  /**
   * Whether an unchanged session's idle expiry is due to move: `touchAfter` after the last
   * activity written, or half the session's own idle timeout when {@link Session.setLifetime}
   * gave it one that is shorter than twice `touchAfter`, so that it never lapses while in use.
   */
  #touchDue(meta: SessionMeta, now: number): boolean {
    const own = meta.idleTimeout
    const after = own === undefined || own >= 2 * this.touchAfter ? this.touchAfter : own / 2
    return now - meta.lastSeenAt >= after
  }

  /**
   * Write what the request changed and return the `Set-Cookie` values to send (often none).
   * Call it once, before the response headers go out; a failure throws and the response must
   * not claim success. Calling it again writes only what changed since.
   */
  commit(session: Session<Data>): Promise<string[]> {
    const done = this.commitNow(session)
    return done instanceof Promise ? done : Promise.resolve(done)
  }

  /**
   * {@link commit}, but the `Set-Cookie` values themselves when the commit could be done
   * without waiting: nothing to write, the cookie store, or a store with `patchNow` and
   * `touchNow` (memory, SQLite) writing a session it already holds. Otherwise a promise, as
   * `commit` gives. Failures always come as a rejected promise, never as a throw. For adapters,
   * as {@link loadNow}: the response goes out in the same tick.
   * @example
   * ```ts
   * const done = sessions.commitNow(session)
   * if (done instanceof Promise) done.then(send, fail)
   * else send(done)
   * ```
   */
  commitNow(session: Session<Data>): string[] | Promise<string[]> {
    const s = session[STATE]
    // Take this commit's changes now: changes made while it runs belong to the next commit.
    const taken = takeChanges(s)
    // a request that set out before its session moved (see #unknown): its changes are not kept
    if (s.moved) return []
    const now = this.#clock()
    const store = this.store
    try {
      if (this.#client !== undefined) return this.#writeClient(this.#client, s, taken, now)
      if (s.persisted && writesAtOnce(store)) {
        return this.#writePersistedNow(store, s, taken, now)
      }
    } catch (error) {
      giveBack(s, taken)
      return Promise.reject(error)
    }
    return this.#write(s, taken, now).then(undefined, (error: unknown) => {
      giveBack(s, taken)
      throw error
    })
  }

  /** A server store's commit, waiting for the store. */
  async #write(s: SessionState, c: Changes, now: number): Promise<string[]> {
    if (s.persisted) {
      const write = this.#storeWrite(s, c, now)
      if (write === undefined) return this.#written(s, c, now, undefined, true)
      // not through #call, as in #loadServer: one async wrapper less on every write
      let ok = true
      try {
        if (write.op === 'patch') ok = await this.store.patch(s.key!, write.patch, write.meta)
        else await this.store.touch(s.key!, write.meta)
      } catch (err) {
        throw this.#storeError(write.op, err)
      }
      return this.#written(s, c, now, write.meta, ok)
    }
    const cookies: string[] = []
    const previous = c.replaces
    const moving = previous !== undefined && c.replacedBy === 'regenerate'
    if (moving && !c.cleared) {
      // A session moving to a new id (a login) carries what other requests committed to it
      // since this one loaded it (a cart change from another tab), with this request's own
      // changes on top, instead of this request's view of it alone.
      const stored = await this.#call('get', () => this.store.get(previous!))
      if (stored !== undefined) rebase(s, stored.fields, patchOf(s, c))
    }
    const keep = s.fields.size > 0 || s.meta.userId !== undefined
    if (keep) {
      const { key } = ensureId(s)
      const meta = this.#activity(s.meta, now)
      await this.#call('set', () =>
        this.store.set(key, { fields: Object.fromEntries(s.fields), meta }),
      )
      s.meta = meta
      cookies.push(this.#cookieFor(s, now))
      if (moving) {
        // Requests of this browser already on their way carry the old cookie; one that loads
        // after this commit would find no session, start a new one and send its cookie, or a
        // clearing one, either replacing this new cookie in the browser: signed out right after
        // signing in. The marker, written before the old record goes, tells them apart.
        const marker = { fields: {}, meta: markerMeta(now, MOVED_MARKER_MS) }
        await this.#call('set', () => this.store.set(movedKey(previous!), marker))
      }
    } else if (s.hadCookie || c.replaces !== undefined) {
      cookies.push(this.cookie.clear(s.secure))
    }
    if (previous !== undefined) await this.#call('destroy', () => this.store.destroy(previous))
    // persisted only once the old record is gone: a commit that failed after writing the new
    // record (at the marker or the destroy) is retried whole, not as a patch of the new record,
    // which would leave the old id valid and send no new cookie
    if (keep) s.persisted = true
    this.#emitLifecycle(s, c)
    return cookies
  }

  /** {@link #write} of a persisted session, through the store's `patchNow` and `touchNow`. */
  #writePersistedNow(store: AtOnceStore, s: SessionState, c: Changes, now: number): string[] {
    const write = this.#storeWrite(s, c, now)
    if (write === undefined) return this.#written(s, c, now, undefined, true)
    let ok = true
    try {
      if (write.op === 'patch') ok = store.patchNow(s.key!, write.patch, write.meta)
      else store.touchNow(s.key!, write.meta)
    } catch (err) {
      throw this.#storeError(write.op, err)
    }
    return this.#written(s, c, now, write.meta, ok)
  }

  /**
   * What the commit of a persisted session writes to the store: a patch of what changed, a
   * touch when the idle expiry is due to move, or nothing.
   */
  #storeWrite(s: SessionState, c: Changes, now: number): StoreWrite | undefined {
    if (c.changed !== undefined || c.cleared || c.metaChanged) {
      return { op: 'patch', patch: patchOf(s, c), meta: this.#activity(s.meta, now) }
    }
    if (c.extend || this.#touchDue(s.meta, now)) {
      return { op: 'touch', meta: this.#activity(s.meta, now) }
    }
    return undefined
  }

  /**
   * The cookies of a persisted session's commit, once the store holds `meta` (when anything was
   * written); `ok` false means the record was gone.
   */
  #written(
    s: SessionState,
    c: Changes,
    now: number,
    meta: SessionMeta | undefined,
    ok: boolean,
  ): string[] {
    if (!ok) {
      // Destroyed or regenerated by another request meanwhile (a logout, a login): never
      // resurrect it. No clearing cookie either: the browser may hold that other request's
      // new cookie by now (a login's), which a clearing cookie would throw away, and a stale
      // cookie is refused at its next load anyway (no record), which clears it then.
      s.persisted = false
      // nor bring it back at a later commit of this request (`session.save()`, then the
      // adapter's): as for a request that loaded it now, see #unknown, its commits write nothing
      // and send no cookie, unless it logs in itself (regenerate, setUser)
      s.moved = true
      return []
    }
    if (meta !== undefined) s.meta = meta
    return c.cookieChanged ? [this.#cookieFor(s, now)] : []
  }

  /** Emits created, regenerated or destroyed for what this commit did; notes the cookie is out. */
  #emitLifecycle(s: SessionState, c: Changes): void {
    const previous = c.replaces
    if (previous !== undefined) {
      if (c.replacedBy === 'regenerate' && s.persisted) {
        this.#events.emit('regenerated', { idHash: keyOf(s)!, previousIdHash: previous })
      } else {
        this.#events.emit('destroyed', { idHash: previous })
        // destroy() then new data (a flash saying "logged out"): a new session was stored too
        if (s.persisted) this.#events.emit('created', { idHash: keyOf(s)! })
      }
    } else if (s.persisted) {
      this.#events.emit('created', { idHash: keyOf(s)! })
    }
    s.hadCookie = s.persisted
  }

  /**
   * Commit to a client-side store: the whole session is sealed into the cookies whenever it
   * changed or its idle expiry is due to move (the record is small; patches do not apply).
   * Nothing is written anywhere else, so a regenerated or destroyed session's old cookie stays
   * valid until it expires if replayed (documented; `isRevoked` is the answer).
   */
  #writeClient(client: ClientSideStore, s: SessionState, c: Changes, now: number): string[] {
    const present = s.present
    if (s.persisted) {
      if (this.#due(s, c, now)) {
        const meta = this.#activity(s.meta, now)
        const sealed = client.seal(
          { id: s.id!, fields: s.fields, meta },
          { secure: s.secure, now, present },
        )
        s.meta = meta
        s.present = sealed.present
        return sealed.cookies
      }
      return []
    }
    let cookies: string[] = []
    if (s.fields.size > 0 || s.meta.userId !== undefined) {
      const { id } = ensureId(s)
      const meta = this.#activity(s.meta, now)
      const sealed = client.seal({ id, fields: s.fields, meta }, { secure: s.secure, now, present })
      s.meta = meta
      s.persisted = true
      s.present = sealed.present
      cookies = sealed.cookies
    } else if (present !== 0 || s.hadCookie || c.replaces !== undefined) {
      cookies = client.clear(s.secure, present)
      s.present = 0
    }
    this.#emitLifecycle(s, c)
    return cookies
  }

  /**
   * The sessions bound to `userId` ("your devices"). Needs a store with `listByUser`.
   * @example
   * ```ts
   * const devices = await sessions.listByUser(user.id, { current: session })
   * ```
   */
  async listByUser(
    userId: string,
    options: { current?: Session<Data> } = {},
  ): Promise<UserSession[]> {
    const list = this.#capability('listByUser')
    checkUserId(userId, 'listByUser')
    // no session is bound to an id setUser refuses; in UTF-8 a lone surrogate would read as
    // U+FFFD, another user's id
    if (!userId.isWellFormed()) return []
    const now = this.#clock()
    const current = options.current?.[STATE]
    const currentKey = current === undefined ? undefined : keyOf(current)
    const stored = await this.#call('listByUser', () => list.call(this.store, userId))
    return stored
      .filter(({ meta }) => expiresAt(meta) > now)
      .map(({ key, meta }) => ({
        idHash: key,
        createdAt: meta.createdAt,
        lastSeenAt: meta.lastSeenAt,
        expiresAt: expiresAt(meta),
        current: key === currentKey,
      }))
  }

  /**
   * Revoke every session of `userId` ("log out other devices"), except `except`'s.
   * Resolves to how many were removed. Needs a store with `destroyByUser`.
   */
  async destroyByUser(userId: string, options: { except?: Session<Data> } = {}): Promise<number> {
    const destroy = this.#capability('destroyByUser')
    checkUserId(userId, 'destroyByUser')
    if (!userId.isWellFormed()) return 0 // as in listByUser
    const except = options.except?.[STATE]
    const exceptKey = except === undefined ? undefined : keyOf(except)
    return this.#call('destroyByUser', () => destroy.call(this.store, userId, exceptKey))
  }

  /** Revoke one session by its `idHash` (from `listByUser` or a log). */
  async destroy(idHash: string): Promise<void> {
    if (!isStoreKey(idHash))
      throw new SessionConfigError('destroy() takes an idHash: 64 hex characters')
    if (this.#client !== undefined) {
      throw new SessionConfigError(
        `the ${this.#client.name} store keeps sessions in the browser and cannot revoke one by its idHash; refuse it with the store's isRevoked option, or use a server store such as redis or postgres`,
      )
    }
    await this.#call('destroy', () => this.store.destroy(idHash))
    this.#events.emit('destroyed', { idHash })
  }

  /** Close the store's own timers and connections. */
  async close(): Promise<void> {
    const close = this.store.close
    if (close) await this.#call('close', () => close.call(this.store))
  }

  #capability<K extends 'listByUser' | 'destroyByUser'>(name: K): NonNullable<SessionStore[K]> {
    const fn = this.store[name]
    if (typeof fn !== 'function') {
      throw new SessionConfigError(
        `the ${this.store.name} store cannot ${name === 'listByUser' ? 'list' : 'revoke'} sessions by user; use a server store such as redis or postgres`,
      )
    }
    return fn as NonNullable<SessionStore[K]>
  }

  /** A new, empty session; `present` is which client-side cookies the request carried. */
  #fresh(secure: boolean, hadCookie: boolean, present: CookiePresence = 0): Session<Data> {
    const state = this.#state(
      secure,
      hadCookie,
      { id: undefined, key: undefined, meta: this.#freshMeta(), fields: new Map() },
      present,
    )
    return new Session<Data>(state)
  }

  #freshMeta = (): SessionMeta => {
    const now = this.#clock()
    return {
      createdAt: now,
      lastSeenAt: now,
      idleExpiresAt: now + this.idleTimeout,
      absoluteExpiresAt: now + this.absoluteTimeout,
    }
  }

  #state(
    secure: boolean,
    hadCookie: boolean,
    from: {
      id: string | undefined
      key: string | undefined
      meta: SessionMeta
      fields: Map<string, string>
    },
    present: CookiePresence = 0,
  ): SessionState {
    const persisted = from.id !== undefined
    return {
      codec: this.#codec,
      freshMeta: this.#freshMeta,
      id: from.id,
      key: from.key,
      persisted,
      isNew: !persisted,
      hadCookie,
      secure,
      fields: from.fields,
      decoded: undefined,
      changed: undefined,
      cleared: false,
      meta: from.meta,
      metaChanged: false,
      cookieChanged: false,
      extend: false,
      replaces: undefined,
      replacedBy: undefined,
      saver: undefined,
      present,
    }
  }

  /** Meta after activity at `now`: idle expiry slides, absolute expiry stays. */
  #activity(meta: SessionMeta, now: number): SessionMeta {
    // field by field (metaOf): a spread with overrides is several times slower on this hot path
    return metaOf(meta, now, now + (meta.idleTimeout ?? this.idleTimeout))
  }

  #cookieFor(s: SessionState, now: number): string {
    const value = this.#keyring.sign(s.id!)
    return this.cookie.serialize(
      value,
      s.secure,
      s.meta.persistent ? s.meta.absoluteExpiresAt - now : undefined,
    )
  }

  /** The schema's issues with the session's data; a promise only when the schema is async. */
  #validate(
    session: Session<Data>,
  ):
    | readonly StandardSchemaV1.Issue[]
    | undefined
    | Promise<readonly StandardSchemaV1.Issue[] | undefined> {
    let data: unknown
    try {
      data = session.toJSON()
    } catch (err) {
      return [{ message: (err as Error).message }]
    }
    const result = this.#schema!['~standard'].validate(data)
    return isThenable(result) ? Promise.resolve(result).then((r) => r.issues) : result.issues
  }

  async #call<T>(operation: StoreOperation, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw this.#storeError(operation, err)
    }
  }

  /** `err` from the store as a `SessionStoreError`, announced on the `storeError` event. */
  #storeError(operation: StoreOperation, err: unknown): SessionStoreError {
    const error =
      err instanceof SessionStoreError
        ? err
        : new SessionStoreError(
            this.store.name,
            operation,
            err instanceof Error ? err.message : String(err),
            { cause: err },
          )
    this.#events.emit('storeError', { error })
    return error
  }
}

/**
 * The `store` of a manager whose sessions live in the browser: every operation fails, saying
 * why, so code written for server stores (an admin tool, a migration) stops with a clear message.
 */
function noServerStore(name: string): SessionStore {
  const fail = async (): Promise<never> => {
    throw new SessionConfigError(
      `the ${name} store keeps sessions in the browser: there is no server-side record to read or change; use a server store such as redis or postgres for that`,
    )
  }
  return { name, get: fail, set: fail, patch: fail, touch: fail, destroy: fail }
}

/**
 * Whether an app's hook answered with a promise, or any thenable: an answer from another promise
 * library must be waited for too, or `isRevoked` and the schema would see `[object Promise]`.
 */
function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/** A store that writes at once: the memory and SQLite stores. */
type AtOnceStore = SessionStore & Required<Pick<SessionStore, 'patchNow' | 'touchNow'>>

function writesAtOnce(store: SessionStore): store is AtOnceStore {
  return store.patchNow !== undefined && store.touchNow !== undefined
}

/** The store write of a persisted session's commit (see `#storeWrite`). */
type StoreWrite =
  | { op: 'patch'; patch: SessionPatch; meta: SessionMeta }
  | { op: 'touch'; meta: SessionMeta }

/** What one commit writes, taken from the session when the commit starts. */
interface Changes {
  /** Never empty: absent when no field changed. */
  changed: Set<string> | undefined
  cleared: boolean
  metaChanged: boolean
  cookieChanged: boolean
  extend: boolean
  replaces: string | undefined
  replacedBy: 'regenerate' | 'destroy' | undefined
}

function takeChanges(s: SessionState): Changes {
  const taken: Changes = {
    changed: s.changed,
    cleared: s.cleared,
    metaChanged: s.metaChanged,
    cookieChanged: s.cookieChanged,
    extend: s.extend,
    replaces: s.replaces,
    replacedBy: s.replacedBy,
  }
  s.changed = undefined
  s.cleared = false
  s.metaChanged = false
  s.cookieChanged = false
  s.extend = false
  s.replaces = undefined
  s.replacedBy = undefined
  return taken
}

/** Puts back changes a failed commit took, so a retry writes them. */
function giveBack(s: SessionState, taken: Changes): void {
  if (taken.changed !== undefined) {
    for (const field of s.changed ?? []) taken.changed.add(field)
    s.changed = taken.changed
  }
  s.cleared ||= taken.cleared
  s.metaChanged ||= taken.metaChanged
  s.cookieChanged ||= taken.cookieChanged
  s.extend ||= taken.extend
  s.replaces ??= taken.replaces
  s.replacedBy ??= taken.replacedBy
}

/**
 * Throws unless `userId` is a user id (a non-empty string): `destroyByUser(user.id)` with an
 * id that is missing must not quietly revoke nothing.
 */
function checkUserId(userId: unknown, what: string): asserts userId is string {
  if (typeof userId !== 'string' || userId.length === 0)
    throw new SessionStateError(`${what} takes a user id, a non-empty string; got ${typeof userId}`)
}

/**
 * Makes `s`'s fields `stored` with `patch` (this request's changes) applied: the record as
 * other requests left it, and what this one changed.
 */
function rebase(s: SessionState, stored: Record<string, string>, patch: SessionPatch): void {
  s.fields.clear()
  s.decoded = undefined
  for (const field in stored) s.fields.set(field, stored[field]!)
  for (const field of patch.delete) s.fields.delete(field)
  for (const field in patch.set) s.fields.set(field, patch.set[field]!)
}

/** The store patch for `c`: only the fields that changed, or every field after a clear. */
function patchOf(s: SessionState, c: Changes): SessionPatch {
  const set: Record<string, string> = {}
  const del: string[] = []
  if (c.cleared) {
    for (const [field, text] of s.fields) set[field] = text
  } else {
    for (const field of c.changed ?? []) {
      const text = s.fields.get(field)
      if (text === undefined) del.push(field)
      else set[field] = text
    }
  }
  return { clear: c.cleared, set, delete: del }
}
