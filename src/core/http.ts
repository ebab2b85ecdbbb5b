import { varyCookie } from './cookies.js'

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
  get(name: string): string | number | readonly string[] | null | undefined
  set(name: string, value: string): void
  append(name: string, value: string): void
}

/**
 * Puts `Set-Cookie` values on a response, with `Cache-Control: no-store` (no shared cache
 * keeps a response that sets a session cookie) and `Vary: Cookie`.
 */
export function applySetCookies(target: HeaderTarget, cookies: readonly string[]): void {
  if (cookies.length === 0) return
  for (const cookie of cookies) target.append('set-cookie', cookie)
  target.set('cache-control', 'no-store')
  target.set('vary', varyCookie(target.get('vary')))
}
