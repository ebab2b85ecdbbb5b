/**
 * Koa adapter: a middleware that loads the session into `ctx.session` (or the property you
 * name) and commits it after `await next()`, before Koa writes the response.
 *
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { type SessionContext, sessionMiddleware } from 'tessera/koa'
 * const app = new Koa<Koa.DefaultState, SessionContext<AppData>>()
 * app.use(sessionMiddleware(sessions))
 * app.use((ctx) => {
 *   ctx.session.set('count', (ctx.session.get('count') ?? 0) + 1)
 *   ctx.body = { count: ctx.session.get('count') }
 * })
 * ```
 * @module
 */
import type { Context, DefaultState, Middleware } from 'koa'
import { SessionStateError } from '../core/errors.js'
import { applySetCookies, discardBody } from '../core/http.js'
import type { SessionManager } from '../core/manager.js'
import { type Session, type SessionData, STATE } from '../core/session.js'
import { isSecure } from './node.js'
import { checkAdapter } from './options.js'

/**
 * The context type that holds `Session<Data>` under `Name`: give it to `new Koa<State, Ctx>()`
 * or your router; intersect several for several sessions.
 *
 * @example
 * ```ts
 * type Ctx = SessionContext<AppData> & SessionContext<CartData, 'cart'>
 * const app = new Koa<Koa.DefaultState, Ctx>()
 * ```
 */
export type SessionContext<
  Data extends SessionData = SessionData,
  Name extends string = 'session',
> = {
  [K in Name]: Session<Data>
}

/**
 * Options of {@link sessionMiddleware}.
 * @example
 * ```ts
 * app.use(sessionMiddleware(carts, { property: 'cart', trustProxy: true }))
 * ```
 */
export interface KoaSessionOptions<Name extends string = 'session'> {
  /**
   * The `ctx` property the session is put on; one middleware per manager, each with its own
   * property, for several sessions per request.
   * @default 'session'
   */
  property?: Name
  /**
   * Trust `X-Forwarded-Proto` for the cookie's Secure flag (Koa's `app.proxy` is not
   * consulted).
   * @default sessions.trustProxy
   */
  trustProxy?: boolean
}

const ctxHeaders = (ctx: Context) => ({
  set: (n: string, v: string) => ctx.set(n, v),
  append: (n: string, v: string) => ctx.append(n, v),
})

/**
 * The Koa middleware. A failure to load or commit is thrown, so Koa answers `500` (no stack
 * in the body) unless your error middleware does otherwise (once the headers are out, after
 * `ctx.flushHeaders()`, the connection is cut instead). A middleware or handler that throws
 * commits nothing, unless a middleware between it and this one catches the error and answers.
 *
 * @example
 * ```ts
 * app.use(sessionMiddleware(sessions))                        // ctx.session
 * app.use(sessionMiddleware(carts, { property: 'cart' }))     // ctx.cart, its own cookie name
 * ```
 */
export function sessionMiddleware<Data extends SessionData, Name extends string = 'session'>(
  sessions: SessionManager<Data>,
  options: KoaSessionOptions<Name> = {},
): Middleware<DefaultState, SessionContext<Data, Name>> {
  checkAdapter('tessera/koa', sessions, options, 'property')
  const property = options.property ?? 'session'
  const trustProxy = options.trustProxy ?? sessions.trustProxy
  return async (ctx, next) => {
    const session = await sessions.load(ctx.get('cookie'), {
      secure: isSecure(ctx.req, trustProxy),
    })
    const save = async () => {
      const cookies = await sessions.commit(session)
      if (cookies.length > 0 && ctx.headerSent) {
        throw new SessionStateError('the session was committed after the headers were sent')
      }
      applySetCookies(ctxHeaders(ctx), cookies)
    }
    session[STATE].saver = { save }
    ;(ctx as unknown as Record<string, unknown>)[property] = session
    await next()
    if (!sessions.needsCommit(session)) return
    try {
      await save()
    } catch (error) {
      // Koa answers the error instead and never reads the body: it destroys a Node stream when
      // the response finishes, not a web one (a `ReadableStream`, a `Response`), which is
      // cancelled here so its producer is told; a response the app writes itself is the app's
      if (ctx.respond !== false) discardBody(ctx.body)
      // the headers are out (`ctx.flushHeaders()`): Koa can no longer answer the error, nor
      // send the body once it is thrown, and would leave the response open forever. Cut it, so
      // the client sees a failure rather than a hang; a response the app writes itself
      // (`ctx.respond = false`) is the app's
      if (ctx.headerSent && ctx.respond !== false && !ctx.res.writableEnded) ctx.res.destroy()
      throw error
    }
  }
}
