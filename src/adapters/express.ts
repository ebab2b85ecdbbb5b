/**
 * Express / Connect adapter: a middleware that loads the session into `req.session` (or the
 * property you name) and commits it before the response headers go out, so a handler that
 * sets a flash message and calls `res.redirect()` never races the browser's next request.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { getSession, sessionMiddleware } from 'tessera/express'
 * const app = express()
 * app.use(sessionMiddleware(sessions))
 * app.get('/', (req, res) => {
 *   const session = getSession(req, sessions)
 *   session.set('count', (session.get('count') ?? 0) + 1)
 *   res.send(`visit ${session.get('count')}`)
 * })
 * ```
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SessionStateError } from '../core/errors.js'
import type { SessionManager } from '../core/manager.js'
import { Session, type SessionData } from '../core/session.js'
import { holdFor, isSecure, ResponseSession, respondWithError } from './node.js'
import { checkAdapter } from './options.js'

/**
 * Maps request properties to session data, for `req.<property>` types. Empty by default, so
 * Tessera adds nothing to `Express.Request` (and cannot clash with `@types/express-session`)
 * until the app registers its sessions once:
 *
 * @example
 * ```ts
 * declare module 'tessera/express' {
 *   interface RequestSessions { session: AppData; cart: CartData }
 * }
 * // now req.session: Session<AppData> and req.cart: Session<CartData>, in every handler
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: augmented by the app
export interface RequestSessions {}

/**
 * `{ [property]: Session<Data> }` for each property in {@link RequestSessions}; what
 * `Express.Request` extends. Empty until the app registers its sessions.
 * @example
 * ```ts
 * type Cart = RegisteredSessions['cart'] // Session<CartData> once registered
 * ```
 */
export type RegisteredSessions = {
  [K in keyof RequestSessions]: Session<
    RequestSessions[K] extends SessionData ? RequestSessions[K] : SessionData
  >
}

declare global {
  namespace Express {
    interface Request extends RegisteredSessions {}
  }
}

/**
 * Options of {@link sessionMiddleware}.
 * @example
 * ```ts
 * app.use(sessionMiddleware(carts, { property: 'cart', trustProxy: true }))
 * ```
 */
export interface ExpressSessionOptions {
  /**
   * The request property the session is put on; give each manager its own to use several
   * sessions per request (`req.session`, `req.cart`).
   * @default 'session'
   */
  property?: string
  /**
   * Trust `X-Forwarded-Proto` for the cookie's Secure flag.
   * @default sessions.trustProxy
   */
  trustProxy?: boolean
  /**
   * Answers when loading or committing fails. The default answers `500` with a plain body
   * (never a stack) and logs errors that are not the store's (those go to `storeError`).
   */
  onError?: (error: unknown, req: IncomingMessage, res: ServerResponse) => void
}

type Next = (error?: unknown) => void

/** Express gives each response its prototype: the hold goes there (see `HoldOptions`). */
const THROUGH_PROTOTYPE = { prototype: true } as const

/**
 * The Express middleware. It loads the session before the next handler and commits it when
 * the response is first written (`res.send`, `res.redirect`, `res.end`, `res.write`).
 *
 * @example
 * ```ts
 * app.use(sessionMiddleware(sessions))                        // req.session
 * app.use(sessionMiddleware(carts, { property: 'cart' }))     // req.cart, its own cookie name
 * ```
 */
export function sessionMiddleware<Data extends SessionData>(
  sessions: SessionManager<Data>,
  options: ExpressSessionOptions = {},
): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  checkAdapter('tessera/express', sessions, options, 'property')
  const property = options.property ?? 'session'
  const trustProxy = options.trustProxy ?? sessions.trustProxy
  const onError = options.onError ?? respondWithError
  const start = (req: IncomingMessage, res: ServerResponse, next: Next, session: Session<Data>) => {
    ;(req as unknown as Record<string, unknown>)[property] = session
    holdFor(res, new ResponseSession(sessions, session, req, res, onError), THROUGH_PROTOTYPE)
    next()
  }
  return (req, res, next) => {
    const loaded = sessions.loadNow(req.headers.cookie, { secure: isSecure(req, trustProxy) })
    // a session had at once goes on in this tick: resuming the router from a promise costs more
    // than the session's own work on a read
    if (loaded instanceof Promise) {
      loaded.then(
        (session) => start(req, res, next, session),
        (error: unknown) => onError(error, req, res),
      )
    } else start(req, res, next, loaded)
  }
}

/**
 * The session the middleware loaded for `req`, typed by the manager (or by `Data`).
 * Throws `SessionStateError` when the middleware did not run for this request.
 *
 * @example
 * ```ts
 * const cart = getSession(req, carts, 'cart') // Session<CartData>
 * ```
 */
export function getSession<Data extends SessionData>(
  req: object,
  _sessions?: SessionManager<Data>,
  property = 'session',
): Session<Data> {
  const session = (req as Record<string, unknown>)[property]
  if (!(session instanceof Session)) {
    throw new SessionStateError(
      `no session on this request under "${property}": app.use(sessionMiddleware(sessions${property === 'session' ? '' : `, { property: '${property}' }`})) must come before this handler`,
    )
  }
  return session as Session<Data>
}
