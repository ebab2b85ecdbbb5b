/**
 * Where a login sends the user back to: a path on the app's own site, never another host (an
 * open redirect lets a link on the app's domain, `/login?returnTo=https://evil.example`, end
 * on a phishing page after a genuine login).
 * @module
 */

/** A base no path can leave unnoticed: any other origin after resolving means another host. */
const PROBE = 'http://return-to.invalid'

/**
 * `returnTo` as a path (with its query and fragment) on `origin`, or undefined when it leads
 * anywhere else. Accepted: a path starting with one `/` (`/account?tab=2`), or an absolute URL
 * of `origin` itself (given back as its path). Refused: other hosts, protocol-relative
 * (`//evil.example`) and backslash (`/\evil.example`, which browsers read as `//`) forms, other
 * schemes (`javascript:`), relative paths (`account`), and control characters.
 */
export function safeReturnTo(returnTo: string, origin: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (returnTo.length === 0 || returnTo.length > 2048 || /[\u0000-\u001f\u007f\\]/.test(returnTo)) {
    return undefined
  }
  let url: URL
  if (returnTo.startsWith('/')) {
    if (returnTo.startsWith('//')) return undefined
    try {
      url = new URL(returnTo, PROBE)
    } catch {
      return undefined
    }
    if (url.origin !== PROBE) return undefined
  } else {
    try {
      url = new URL(returnTo)
    } catch {
      return undefined
    }
    if (url.origin !== origin) return undefined
  }
  const path = `${url.pathname}${url.search}${url.hash}`
  // resolving can make a protocol-relative path of a harmless one: `/.//evil.example`
  return path.startsWith('/') && !path.startsWith('//') ? path : undefined
}
