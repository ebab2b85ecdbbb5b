/**
 * Fastify adapter: a plugin (made with `fastify-plugin`, so it decorates the parent scope)
 * that loads the session into `request.session` (or the property you name) in `onRequest`
 * and commits it in `onSend`, before the headers go out.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { sessionPlugin } from 'tessera/fastify'
 * declare module 'tessera/fastify' { interface RequestSessions { session: AppData } }
 * const app = Fastify()
 * await app.register(sessionPlugin, { sessions })
 * app.get('/', async (request) => {
 *   request.session.set('count', (request.session.get('count') ?? 0) + 1)
 *   return { count: request.session.get('count') }
 * })
 * ```
 * @module
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { SessionError, SessionStateError } from '../core/errors.js'
import { applySetCookies, discardBody } from '../core/http.js'
import type { SessionManager } from '../core/manager.js'
import { type Saver, type Session, type SessionData, STATE } from '../core/session.js'
import { isSecure, nodeHeaders } from './node.js'
import { checkAdapter } from './options.js'

/**
 * Maps request properties to session data, for `request.<property>` types. Empty by default,
 * so Tessera adds nothing to `FastifyRequest` (and cannot clash with `@fastify/session`) until
 * the app registers its sessions once:
 *
 * @example
 * ```ts
 * declare module 'tessera/fastify' {
 *   interface RequestSessions { session: AppData; cart: CartData }
 * }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: augmented by the app
export interface RequestSessions {}

/**
 * `{ [property]: Session<Data> }` for each property in {@link RequestSessions}; what
 * `FastifyRequest` extends. Empty until the app registers its sessions.
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

declare module 'fastify' {
  interface FastifyRequest extends RegisteredSessions {}
}

/**
 * Options of {@link sessionPlugin}.
 * @example
 * ```ts
 * await app.register(sessionPlugin, { sessions: carts, property: 'cart', trustProxy: true })
 * ```
 */
export interface FastifySessionOptions<Data extends SessionData = SessionData> {
  /** The manager from `createSessions()`. */
  sessions: SessionManager<Data>
  /**
   * The request property the session is put on; register the plugin once per manager, each
   * with its own property, for several sessions per request.
   * @default 'session'
   */
  property?: string
  /**
   * Trust `X-Forwarded-Proto` for the cookie's Secure flag (Fastify's own `trustProxy` is not
   * consulted).
   * @default sessions.trustProxy
   */
  trustProxy?: boolean
}

const FAILED = Symbol('tessera.failed')

/** The message of the errors {@link opaque} makes: Fastify sends a 5xx error's message. */
const NEUTRAL = 'Internal Server Error'

type Opaque = Error & { statusCode: number; code?: string }

/**
 * What Fastify's error handler sees when loading or committing fails: a 500 whose message
 * says nothing of the store (Fastify's default handler sends a 5xx error's message to the
 * client); the real error is its `cause`, for the logs. A Tessera error keeps its class
 * (`instanceof SessionStoreError`) and its fields (`name`, `code`, `store`, `operation`):
 * made by `Error`'s constructor with the class as `new.target`, since the class's own builds
 * its message from the store's. Any other error is wrapped in an `Error`, its `code` kept.
 */
function opaque(error: unknown): Opaque {
  let wrapped: Opaque
  if (error instanceof SessionError) {
    wrapped = Reflect.construct(Error, [NEUTRAL, { cause: error }], error.constructor)
    // its own enumerable fields: name, code and the subclass's (not message, stack or cause)
    Object.assign(wrapped, error)
  } else {
    wrapped = new Error(NEUTRAL, { cause: error }) as Opaque
    const code = (error as { code?: unknown } | null)?.code
    if (typeof code === 'string') wrapped.code = code
  }
  wrapped.statusCode = 500
  return wrapped
}

type Bag = Record<string | symbol, unknown>

const replyHeaders = (reply: FastifyReply) => ({
  set: (n: string, v: string) => void reply.header(n, v),
  append: (n: string, v: string) => void reply.header(n, v), // Fastify appends set-cookie
})

/**
 * `payload`, or, when it is a fetch `Response` with a `Cache-Control` of its own, one whose
 * `Cache-Control` is `no-store`: Fastify copies a Response's headers onto the reply after every
 * `onSend` hook, so its own would replace the `no-store` that goes with the session's cookies.
 * A Response with immutable headers (`Response.redirect()`, a `fetch()` result) is copied.
 */
function noStore(payload: unknown): unknown {
  if (Object.prototype.toString.call(payload) !== '[object Response]') return payload
  const response = payload as Response
  const cacheControl = response.headers.get('cache-control')
  if (cacheControl === null || cacheControl === 'no-store') return payload
  try {
    response.headers.set('cache-control', 'no-store')
    return response
  } catch {
    const copy = new Response(response.body, response)
    copy.headers.set('cache-control', 'no-store')
    return copy
  }
}

/** `session.save()` on Fastify: one object per request. */
class ReplySaver implements Saver {
  /** Whether this request's session put cookies on the reply (see {@link noStore}). */
  sentCookies = false

  constructor(
    readonly sessions: SessionManager,
    readonly session: Session,
    readonly reply: FastifyReply,
  ) {}

  async save(): Promise<void> {
    let cookies: string[]
    try {
      cookies = await this.sessions.commit(this.session)
    } catch (error) {
      throw opaque(error)
    }
    if (cookies.length > 0 && this.reply.raw.headersSent) {
      throw new SessionStateError('session.save() was called after the response headers were sent')
    }
    if (cookies.length === 0) return
    this.put(cookies)
    // and on the raw response: one answered through reply.raw after reply.hijack() (server-sent
    // events, say) never sends the reply's headers. A reply sent the usual way gives its
    // headers to writeHead, which replaces these, so the cookies go once either way
    applySetCookies(nodeHeaders(this.reply.raw), cookies)
  }

  /** Puts the cookies of a commit on the reply. */
  put(cookies: readonly string[]): void {
    this.sentCookies = true
    applySetCookies(replyHeaders(this.reply), cookies)
  }
}

const plugin: FastifyPluginAsync<FastifySessionOptions> = async (fastify, options) => {
  checkAdapter('tessera/fastify', options.sessions, options, 'property')
  const { sessions } = options
  const property = options.property ?? 'session'
  const trustProxy = options.trustProxy ?? sessions.trustProxy
  fastify.decorateRequest(property, null)
  // callback-style hooks: an async function per hook and request costs more than the work
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => {
    const start = (session: Session) => {
      session[STATE].saver = new ReplySaver(sessions, session, reply)
      ;(request as unknown as Bag)[property] = session
      done()
    }
    const loaded = sessions.loadNow(request.headers.cookie, {
      secure: isSecure(request.raw, trustProxy),
    })
    // a session had at once goes on in this tick (see SessionManager.loadNow)
    if (loaded instanceof Promise) loaded.then(start, (error: unknown) => done(opaque(error)))
    else start(loaded)
  })
  // a failed request (handler, hook or commit) commits nothing more
  fastify.addHook('onError', async (request: FastifyRequest) => {
    ;(request as unknown as Bag)[FAILED] = true
  })
  /** Sends `payload` on, `no-store` kept when the session sent cookies (see {@link noStore}). */
  const pass = (session: Session, payload: unknown, done: (e: null, p: unknown) => void) =>
    done(
      null,
      typeof payload === 'object' && (session[STATE].saver as ReplySaver).sentCookies
        ? noStore(payload)
        : payload,
    )
  fastify.addHook('onSend', (request: FastifyRequest, _reply: FastifyReply, payload, done) => {
    const session = (request as unknown as Bag)[property] as Session | null
    if (!session || (request as unknown as Bag)[FAILED] || !sessions.needsCommit(session)) {
      if (session && typeof payload === 'object') pass(session, payload, done)
      else done(null, payload)
      return
    }
    // before the headers go out, so the cookies always fit; at once where the store allows
    const committed = sessions.commitNow(session)
    if (committed instanceof Promise) {
      committed.then(
        (cookies) => {
          if (cookies.length > 0) (session[STATE].saver as ReplySaver).put(cookies)
          pass(session, payload, done)
        },
        (error: unknown) => {
          discardBody(payload)
          done(opaque(error))
        },
      )
    } else {
      // most writes of a stored session send no cookie: no header helper for them
      if (committed.length > 0) (session[STATE].saver as ReplySaver).put(committed)
      pass(session, payload, done)
    }
  })
}

/**
 * The Fastify plugin. Register it once per manager; it works with `fastify.inject()` and a
 * real listener alike.
 *
 * @example
 * ```ts
 * await app.register(sessionPlugin, { sessions })                     // request.session
 * await app.register(sessionPlugin, { sessions: carts, property: 'cart' }) // request.cart
 * ```
 */
export const sessionPlugin = fp(plugin, { fastify: '5.x', name: 'tessera' }) as SessionPlugin

/**
 * The plugin's type: generic in the manager's data, so any `Sessions<Data>` fits `register`.
 * @example
 * ```ts
 * const plugin: SessionPlugin = sessionPlugin
 * ```
 */
export type SessionPlugin = <Data extends SessionData>(
  instance: FastifyInstance,
  options: FastifySessionOptions<Data>,
) => Promise<void>

export default sessionPlugin

/**
 * The session the plugin loaded for `request`, typed by the manager (or by `Data`).
 * @example
 * ```ts
 * const cart = getSession(request, carts, 'cart') // Session<CartData>
 * ```
 */
export function getSession<Data extends SessionData>(
  request: FastifyRequest,
  _sessions?: SessionManager<Data>,
  property = 'session',
): Session<Data> {
  const session = (request as unknown as Bag)[property]
  if (session == null) {
    throw new SessionStateError(
      `no session on this request under "${property}": register sessionPlugin first`,
    )
  }
  return session as Session<Data>
}
