/**
 * express-session's shape on Tessera's core, for apps (and passport) written against
 * express-session: `req.session.userId = id`, `delete req.session.x`, nested objects mutated
 * in place, `regenerate(cb)`, `save(cb)`, `destroy(cb)`, `reload(cb)`, `touch()`,
 * `req.session.id`, `req.session.cookie.maxAge` and `req.sessionID`. Commits happen before the
 * headers go out, and write only the top-level keys whose encoded value changed.
 *
 * @example
 * ```ts
 * import { sessionMiddleware } from 'tessera/express-session'
 * app.use(sessionMiddleware(sessions))   // instead of app.use(session({ secret, store, ... }))
 * app.use(passport.session())
 * ```
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SessionStateError } from '../core/errors.js'
import type { SessionManager } from '../core/manager.js'
import { type Session, type SessionData, STATE } from '../core/session.js'
import { commitBeforeHeaders, isSecure, respondWithError, saveInto } from './node.js'
import { checkAdapter } from './options.js'

type Callback = (error?: unknown) => void

/** Express gives each response its prototype: the hold goes there (see `HoldOptions`). */
const THROUGH_PROTOTYPE = { prototype: true } as const

/**
 * `req.session.cookie`: the session's expiry as express-session's `Cookie` shows it.
 * @example
 * ```ts
 * if (req.body.remember) req.session.cookie.maxAge = 14 * 86_400_000 // persistent cookie
 * ```
 */
export interface CompatCookie {
  /** Milliseconds left; setting it gives this session that idle timeout and a persistent cookie. */
  maxAge: number
  /** When the session expires; `false`/`null` makes the cookie a browser-session cookie again. */
  expires: Date | null | false
  /** The session's idle timeout, in ms. */
  readonly originalMaxAge: number
}

/**
 * `req.session`: data keys as properties, plus express-session's methods. Values are copied
 * through the session's codec (JSON by default) and compared by encoding at commit.
 * @example
 * ```ts
 * req.session.views = ((req.session.views as number) ?? 0) + 1
 * ```
 */
export interface CompatSession {
  /** SHA-256 of the session id (hex), never the cookie's secret value. Changes on regenerate. */
  readonly id: string
  cookie: CompatCookie
  /** A new, empty session with a new id (express-session semantics); the old one is removed. */
  regenerate(callback: Callback): this
  /** Commit now (before a redirect, say); called by passport at login and logout. */
  save(callback?: Callback): this
  /** Remove the session now, clear the cookie and `delete req.session`. */
  destroy(callback?: Callback): this
  /** Drop this request's unsaved changes and read the session again from the store. */
  reload(callback: Callback): this
  /** Extend the idle expiry at this commit. */
  touch(): this
  resetMaxAge(): this
  [key: string]: unknown
}

/**
 * Options of {@link sessionMiddleware}.
 * @example
 * ```ts
 * app.use(sessionMiddleware(sessions, { trustProxy: true }))
 * ```
 */
export interface CompatOptions {
  /** Trust `X-Forwarded-Proto` for the cookie's Secure flag. @default sessions.trustProxy */
  trustProxy?: boolean
  /** Answers when loading or committing fails. Default: a plain `500`, no stack. */
  onError?: (error: unknown, req: IncomingMessage, res: ServerResponse) => void
}

declare global {
  namespace Express {
    interface Request {
      /**
       * The session's idHash (never the cookie value), as express-session's `req.sessionID`.
       * Declared exactly as `@types/express-session` does, so both can be in one program.
       */
      sessionID: string
    }
  }
}

const METHODS = new Set(['regenerate', 'save', 'destroy', 'reload', 'touch', 'resetMaxAge'])
const tessera = new WeakMap<object, { ts: Session }>()
const later = (callback: Callback | undefined, error?: unknown) =>
  callback && process.nextTick(() => (error === undefined ? callback() : callback(error)))

/**
 * The express-session-compatible middleware: `app.use(sessionMiddleware(sessions))` where
 * `app.use(session({ ... }))` was. The session lives under `req.session` and `req.sessionID`;
 * it is committed when the response is first written, before its headers.
 *
 * @example
 * ```ts
 * app.use(sessionMiddleware(createSessions({ secret, store: redisStore({ client }) })))
 * app.post('/login', (req, res, next) => req.session.regenerate((err) => {
 *   if (err) return next(err)
 *   req.session.userId = user.id
 *   res.redirect('/')
 * }))
 * ```
 */
export function sessionMiddleware<Data extends SessionData>(
  sessions: SessionManager<Data>,
  options: CompatOptions = {},
): (req: IncomingMessage, res: ServerResponse, next: Callback) => void {
  checkAdapter('tessera/express-session', sessions, options)
  const trustProxy = options.trustProxy ?? sessions.trustProxy
  const onError = options.onError ?? respondWithError
  const load = (header: string | undefined, req: IncomingMessage) =>
    sessions.load(header, { secure: isSecure(req, trustProxy) }) as Promise<Session>
  return (req, res, next) => {
    // mounted again on this request's way (the app and a router both `use` it): the session is
    // here already, as express-session's own `if (req.session) return next()`. A second load
    // would put a copy in its place, without what the handlers before it changed, and commit
    // both: a new visitor would get two sessions, two cookies, and keep only one's changes
    if (tessera.has(req)) {
      next()
      return
    }
    load(req.headers.cookie, req).then(
      (first) => {
        const bag = req as unknown as Record<string, unknown>
        const current = { ts: first }
        tessera.set(req, current)
        /** Objects handed out or assigned, re-encoded at commit to catch in-place mutation. */
        const live = new Map<string, unknown>()
        const sync = () => {
          for (const [key, value] of live) if (current.ts.has(key)) current.ts.set(key, value)
        }
        const commit = () => {
          sync()
          return sessions.commit(current.ts as unknown as Session<Data>)
        }
        const bind = (ts: Session) => {
          current.ts = ts
          ts[STATE].saver = saveInto(res, commit)
        }
        bind(first)
        const view = (): CompatSession => {
          let detached: Record<string, unknown> | undefined
          const data = () =>
            detached ?? Object.fromEntries(current.ts.keys().map((k) => [k, get(k)]))
          const get = (key: string): unknown => {
            if (detached) return detached[key]
            if (live.has(key)) return live.get(key)
            const value = current.ts.get(key)
            if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
              live.set(key, value)
            }
            return value
          }
          const methods: Record<string, (cb?: Callback) => CompatSession> = {
            regenerate(cb) {
              sync()
              // passport's keepSessionInfo merges the old session's data back. Without a
              // prototype, a key such as `toString` is the snapshot's only if it was stored,
              // and `old.__proto__ = x` makes a key instead of changing what the view reads
              detached = Object.assign(Object.create(null) as Record<string, unknown>, data())
              current.ts.regenerate()
              current.ts.clear()
              current.ts.setUser(undefined)
              live.clear()
              bag.session = view()
              later(cb)
              return proxy
            },
            save(cb) {
              current.ts.save().then(() => later(cb), cb ?? onSaveError)
              return proxy
            },
            destroy(cb) {
              current.ts.destroy()
              live.clear()
              delete bag.session
              current.ts.save().then(() => later(cb), cb ?? onSaveError)
              return proxy
            },
            reload(cb) {
              const { id, persisted } = current.ts[STATE]
              if (!persisted || id === undefined) {
                later(cb, new Error('failed to load session'))
                return proxy
              }
              const header = `${sessions.cookie.name}=${sessions.keyring.sign(id)}`
              load(header, req).then((ts) => {
                live.clear()
                bind(ts)
                later(cb, ts.isNew ? new Error('failed to load session') : undefined)
              }, cb)
              return proxy
            },
            touch() {
              current.ts.extend()
              return proxy
            },
            resetMaxAge() {
              current.ts.extend()
              return proxy
            },
          }
          const cookie = cookieOf(() => current.ts, sessions.idleTimeout)
          const own = (key: string) => key === 'cookie' || (!detached && current.ts.has(key))
          const proxy = new Proxy({} as CompatSession, {
            get: (_, key, receiver) => {
              if (typeof key !== 'string') return undefined
              if (key === 'id') return current.ts.idHash
              if (key === 'cookie') return cookie
              if (METHODS.has(key)) return methods[key]
              // `req.session.hasOwnProperty(k)`, `String(req.session)`: as on express-session's
              // Session, an object like any other. Taken from Object.prototype itself, before
              // the data, so a stored key named `hasOwnProperty` shadows no method (the core
              // refuses `__proto__`, `constructor` and `prototype` as keys)
              if (key in Object.prototype) return Reflect.get(Object.prototype, key, receiver)
              return get(key)
            },
            set: (_, key, value) => {
              if (typeof key !== 'string' || key === 'cookie' || key === 'id' || METHODS.has(key)) {
                return true
              }
              if (detached) detached[key] = value
              else if (value === undefined) {
                current.ts.delete(key) // `req.session.returnTo = undefined`
                live.delete(key)
              } else {
                current.ts.set(key, value)
                if (typeof value === 'object' && value !== null) live.set(key, value)
                else live.delete(key)
              }
              return true
            },
            deleteProperty: (_, key) => {
              if (typeof key !== 'string') return true
              if (detached) delete detached[key]
              else {
                current.ts.delete(key)
                live.delete(key)
              }
              return true
            },
            has: (_, key) =>
              typeof key === 'string' &&
              (own(key) ||
                key === 'id' ||
                METHODS.has(key) ||
                (detached !== undefined && key in detached) ||
                key in Object.prototype),
            ownKeys: () => ['cookie', ...(detached ? Object.keys(detached) : current.ts.keys())],
            getOwnPropertyDescriptor: (_, key) => {
              // `id` is an own property of express-session's session, not enumerable
              if (key === 'id')
                return {
                  value: current.ts.idHash,
                  writable: false,
                  enumerable: false,
                  configurable: true,
                }
              if (typeof key !== 'string' || !(own(key) || (detached && key in detached)))
                return undefined
              const value = key === 'cookie' ? cookie : get(key)
              return { value, writable: true, enumerable: true, configurable: true }
            },
            // its prototype is Object.prototype's, as the methods above read it; not another's
            setPrototypeOf: () => false,
          })
          return proxy
        }
        const onSaveError = (error: unknown) => onError(error, req, res)
        bag.session = view()
        Object.defineProperty(req, 'sessionID', {
          get: () => current.ts.idHash,
          configurable: true,
          enumerable: true,
        })
        commitBeforeHeaders(res, commit, onSaveError, undefined, THROUGH_PROTOTYPE)
        next()
      },
      (error: unknown) => onError(error, req, res),
    )
  }
}

function cookieOf(session: () => Session, idleTimeout: number): CompatCookie {
  const meta = () => session()[STATE].meta
  // the manager's clock (its `clock` option), which it keeps to itself: a fresh meta is stamped
  // with it, so its `createdAt` is the manager's now
  const now = () => session()[STATE].freshMeta().createdAt
  return {
    get maxAge() {
      return session().expiresAt - now()
    },
    set maxAge(ms: number) {
      const m = meta()
      const elapsed = now() - m.createdAt
      session().setLifetime({
        idleTimeout: ms,
        absoluteTimeout: Math.max(m.absoluteExpiresAt - m.createdAt, elapsed + ms),
      })
    },
    get expires() {
      return new Date(session().expiresAt)
    },
    set expires(date: Date | null | false) {
      if (date) this.maxAge = date.getTime() - now()
      else session().setLifetime({ persistent: false })
    },
    get originalMaxAge() {
      return meta().idleTimeout ?? idleTimeout
    },
  }
}

/**
 * The Tessera session behind `req.session`, for code moving off the express-session shape
 * (`setUser`, `flash`, typed `get`/`set`). Throws when the middleware did not run.
 *
 * @example
 * ```ts
 * getSession<AppData>(req).setUser(user.id)
 * ```
 */
export function getSession<Data extends SessionData = SessionData>(req: object): Session<Data> {
  const current = tessera.get(req)
  if (current === undefined) {
    throw new SessionStateError(
      'no session on this request: app.use(sessionMiddleware(sessions)) must come first',
    )
  }
  return current.ts as unknown as Session<Data>
}
