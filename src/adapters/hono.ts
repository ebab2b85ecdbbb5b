/**
 * Hono adapter: a middleware that loads the session into `c.get('session')` (or the variable
 * you name) and commits it after the handler, before the response leaves the middleware
 * chain. Works on any runtime Hono runs on (`@hono/node-server`, Bun, Deno, `app.request()`).
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { type SessionEnv, sessionMiddleware } from 'tessera/hono'
 * const app = new Hono<SessionEnv<AppData>>()
 * app.use(sessionMiddleware(sessions))
 * app.get('/', (c) => {
 *   const session = c.get('session')
 *   session.set('count', (session.get('count') ?? 0) + 1)
 *   return c.json({ count: session.get('count') })
 * })
 * ```
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono'
import { SessionStateError } from '../core/errors.js'
import { applySetCookies, discardBody } from '../core/http.js'
import type { SessionManager } from '../core/manager.js'
import { type Session, type SessionData, STATE } from '../core/session.js'
import { isSecure } from './fetch.js'
import { checkAdapter } from './options.js'

/**
 * The Hono `Env` that types `c.get(name)` as `Session<Data>`; intersect several for several
 * sessions: `SessionEnv<AppData> & SessionEnv<CartData, 'cart'>`.
 *
 * @example
 * ```ts
 * const app = new Hono<SessionEnv<AppData> & { Bindings: Env }>()
 * ```
 */
export type SessionEnv<Data extends SessionData = SessionData, Name extends string = 'session'> = {
  Variables: { [K in Name]: Session<Data> }
}

/**
 * Options of {@link sessionMiddleware}.
 * @example
 * ```ts
 * app.use(sessionMiddleware(carts, { name: 'cart', trustProxy: true }))
 * ```
 */
export interface HonoSessionOptions<Name extends string = 'session'> {
  /**
   * The context variable the session is put under; one middleware per manager, each with its
   * own name, for several sessions per request.
   * @default 'session'
   */
  name?: Name
  /**
   * Trust `X-Forwarded-Proto` for the cookie's Secure flag.
   * @default sessions.trustProxy
   */
  trustProxy?: boolean
}

const contextHeaders = (c: Context) => {
  // made now: Hono copies the headers of `c.res` onto a Response the handler makes itself (a
  // stream, say), but not those `c.header()` keeps aside until it makes one (`c.json()`)
  void c.res
  return {
    set: (n: string, v: string) => c.header(n, v),
    append: (n: string, v: string) => c.header(n, v, { append: true }),
  }
}

/**
 * The Hono middleware. A failure to load or commit is thrown to Hono's error handler
 * (`app.onError`; by default a plain `500`). A handler that throws commits nothing.
 *
 * @example
 * ```ts
 * app.use(sessionMiddleware(sessions))                   // c.get('session')
 * app.use(sessionMiddleware(carts, { name: 'cart' }))    // c.get('cart'), its own cookie name
 * ```
 */
export function sessionMiddleware<Data extends SessionData, Name extends string = 'session'>(
  sessions: SessionManager<Data>,
  options: HonoSessionOptions<Name> = {},
): MiddlewareHandler<SessionEnv<Data, Name>> {
  checkAdapter('tessera/hono', sessions, options, 'name')
  const name = (options.name ?? 'session') as Name
  const trustProxy = options.trustProxy ?? sessions.trustProxy
  return async (c, next) => {
    const session = await sessions.load(c.req.header('cookie'), {
      secure: isSecure(c.req.raw, trustProxy),
    })
    let left = false
    session[STATE].saver = {
      save: async () => {
        const cookies = await sessions.commit(session)
        // the Response went back to the server when this middleware returned: a header set on
        // it now is lost (or Hono's copy of a body being streamed throws a TypeError)
        if (left && cookies.length > 0) {
          throw new SessionStateError(
            'session.save() was called after the response left the middleware (inside a stream() callback?): call it before returning the response',
          )
        }
        applySetCookies(contextHeaders(c), cookies)
      },
    }
    c.set(name, session as SessionEnv<Data, Name>['Variables'][Name])
    try {
      await next()
      if (c.error === undefined && sessions.needsCommit(session)) await commit(c, session)
    } finally {
      left = true
    }
  }
  async function commit(c: Context, session: Session<Data>): Promise<void> {
    let cookies: string[]
    try {
      cookies = await sessions.commit(session)
    } catch (error) {
      // app.onError answers instead: the handler's body (a `stream()`, say) is never read, so
      // it is cancelled, which tells its producer (a body being read already is its reader's)
      discardBody(c.res)
      throw error
    }
    try {
      // in place: after the handler, each `c.header()` would copy the whole response (on
      // @hono/node-server, leaving its fast path), once for each header it sets
      applySetCookies(c.res.headers, cookies)
    } catch (error) {
      // immutable headers (`Response.redirect()`, a `fetch()` result): nothing was changed yet.
      // Hono's `c.header()` copies a finished response, at each call, into one whose headers
      // can change: one call makes the copy, and the cookies go on it in place
      if (!(error instanceof TypeError)) throw error
      c.header('cache-control', 'no-store')
      applySetCookies(c.res.headers, cookies)
    }
  }
}
