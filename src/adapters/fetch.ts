/**
 * Fetch API adapter: `Request` in, `Set-Cookie` out, for Next.js route handlers, Bun, Deno,
 * Cloudflare-style handlers and anything else that speaks `Request`/`Response`.
 *
 * @example
 * ```ts
 * import { withSession } from 'tessera/fetch'
 * export const GET = withSession(sessions, async (request, session) => {
 *   session.set('count', (session.get('count') ?? 0) + 1)
 *   return Response.json({ count: session.get('count') })
 * })
 * ```
 * @module
 */
import { applySetCookies, discardBody, isSecureRequest } from '../core/http.js'
import type { SessionManager } from '../core/manager.js'
import { type Session, type SessionData, STATE } from '../core/session.js'
import { checkAdapter } from './options.js'

export type FetchSessionHandler<Data extends SessionData> = (
  request: Request,
  session: Session<Data>,
) => Response | Promise<Response>

export interface FetchAdapterOptions {
  /** Turns a failure (load, commit or handler) into a response. Default: a plain 500. */
  onError?: (error: unknown, request: Request) => Response | Promise<Response>
}

/** Whether the request came over HTTPS (or a trusted proxy says so). */
export function isSecure(request: Request, trustProxy: boolean): boolean {
  return isSecureRequest(
    request.url.startsWith('https:'),
    request.headers.get('x-forwarded-proto'),
    trustProxy,
  )
}

/** Cookies of sessions committed early by `session.save()`, until `commitSession` sends them. */
const savedCookies = new WeakMap<Session<never>, string[]>()

/** The session of a `Request`. */
export async function getSession<Data extends SessionData>(
  sessions: SessionManager<Data>,
  request: Request,
): Promise<Session<Data>> {
  const session = await sessions.load(request.headers.get('cookie'), {
    secure: isSecure(request, sessions.trustProxy),
  })
  session[STATE].saver = {
    async save() {
      const cookies = await sessions.commit(session)
      const key = session as unknown as Session<never>
      savedCookies.set(key, [...(savedCookies.get(key) ?? []), ...cookies])
    },
  }
  return session
}

/** Put `Set-Cookie` values (and `Cache-Control: no-store`) on `headers`. */
export function applyCookies(headers: Headers, cookies: readonly string[]): void {
  applySetCookies(
    {
      set: (n, v) => headers.set(n, v),
      append: (n, v) => headers.append(n, v),
    },
    cookies,
  )
}

/**
 * Commit the session and put its cookies on `response`. Responses with immutable headers
 * (`Response.redirect()`, a `fetch()` result) are copied; use the returned one.
 */
export async function commitSession<Data extends SessionData>(
  sessions: SessionManager<Data>,
  session: Session<Data>,
  response: Response,
): Promise<Response> {
  const key = session as unknown as Session<never>
  const saved = savedCookies.get(key)
  if (saved === undefined && !sessions.needsCommit(session)) return response
  const cookies = [...(saved ?? []), ...(await sessions.commit(session))]
  savedCookies.delete(key)
  if (cookies.length === 0) return response
  try {
    applyCookies(response.headers, cookies)
    return response
  } catch {
    const copy = new Response(response.body, response)
    applyCookies(copy.headers, cookies)
    return copy
  }
}

const defaultOnError = (error: unknown): Response => {
  if ((error as { code?: string })?.code !== 'ERR_SESSION_STORE') console.error(error)
  return new Response('Internal Server Error', {
    status: 500,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
  })
}

/**
 * The answers `onError` gave: nested wrappers (several sessions per request) see an inner
 * one's failure only as the response it returns, which must not commit the outer session.
 */
const failures = new WeakSet<Response>()

/**
 * Wrap a `(request, session) => Response` handler; the session is committed before the
 * response is returned. A failure commits nothing, in this wrapper or in one around it.
 */
export function withSession<Data extends SessionData>(
  sessions: SessionManager<Data>,
  handler: FetchSessionHandler<Data>,
  options: FetchAdapterOptions = {},
): (request: Request) => Promise<Response> {
  checkAdapter('tessera/fetch', sessions, options)
  const onError = options.onError ?? defaultOnError
  return async (request) => {
    let response: Response | undefined
    try {
      const session = await getSession(sessions, request)
      response = await handler(request, session)
      // a nested wrapper's failure answer: what the handler changed before it failed is not kept
      if (failures.has(response)) return response
      return await commitSession(sessions, session, response)
    } catch (error) {
      // the commit failed: the handler's response (a stream, say) is never sent
      discardBody(response)
      const answer = await onError(error, request)
      if (typeof answer === 'object' && answer !== null) failures.add(answer)
      return answer
    }
  }
}
