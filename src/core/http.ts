/**
 * Whether a request came over HTTPS: the connection itself, or, only when `trustProxy` is on,
 * the first `X-Forwarded-Proto` value a reverse proxy set.
 */
export function isSecureRequest(
  encrypted: boolean,
  forwardedProto: string | readonly string[] | null | undefined,
  trustProxy: boolean,
): boolean {
  if (encrypted) return true
  if (!trustProxy || forwardedProto == null) return false
  const value = typeof forwardedProto === 'string' ? forwardedProto : (forwardedProto[0] ?? '')
  return value.split(',')[0]!.trim().toLowerCase() === 'https'
}

/** A minimal header setter, as every framework has one. */
export interface HeaderTarget {
  set(name: string, value: string): void
  append(name: string, value: string): void
}

/**
 * Puts `Set-Cookie` values on a response, with `Cache-Control: no-store`: no cache, shared or
 * the browser's own, keeps a response that sets a session cookie, so none hands one visitor's
 * cookie to another. No `Vary: Cookie`: it only chooses among responses a cache has stored,
 * and `no-store` lets none be stored (RFC 9111, sections 4.1 and 5.2.2.5), so it would cost
 * a header on every such response and change nothing.
 */
export function applySetCookies(target: HeaderTarget, cookies: readonly string[]): void {
  if (cookies.length === 0) return
  for (const cookie of cookies) target.append('set-cookie', cookie)
  target.set('cache-control', 'no-store')
}

const ignore = () => {}

/**
 * Releases a response body that will not be sent (its commit failed: an error answer goes
 * instead), so that whatever produces it (a file, a database cursor, a stream callback) is
 * told rather than left open: a Node stream is destroyed, a web `ReadableStream`, or the one
 * of a `Response` (anything with a `body`), cancelled. A body being read already is its
 * reader's: that cancel's rejection is ignored.
 */
export function discardBody(payload: unknown): void {
  if (payload === null || typeof payload !== 'object') return
  const stream = payload as { pipe?: unknown; destroy?: unknown; body?: unknown }
  if (typeof stream.pipe === 'function' && typeof stream.destroy === 'function') {
    ;(payload as { destroy(): void }).destroy()
    return
  }
  const body = payload instanceof ReadableStream ? payload : stream.body
  if (body instanceof ReadableStream) body.cancel().catch(ignore)
}
