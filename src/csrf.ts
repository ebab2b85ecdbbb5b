/**
 * CSRF protection: a synchronizer token bound to the session, checked on unsafe methods, after
 * a check of where the request came from (`Sec-Fetch-Site`, else `Origin` against `Host`, as
 * Go's `http.CrossOriginProtection` does). Framework-free: give it the session and the
 * request's method, headers and (for a form) the token the body carried.
 *
 * @example
 * ```ts
 * import { csrf, CsrfError } from 'tessera/csrf'
 * const protect = csrf()
 *
 * // a page with a form
 * const token = protect.token(session)
 * html`<form method="post"><input type="hidden" name="_csrf" value="${token}">…</form>`
 *
 * // every request, before the route (a fetch() from a page sends the header instead)
 * protect.verify(session, { method: req.method, headers: req.headers, token: body._csrf })
 * ```
 * @module
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { TOKEN } from './core/cookies.js'
import { SessionConfigError, SessionError } from './core/errors.js'
import { canonicalBase64url } from './core/ids.js'
import { checkKinds, checkObject } from './core/options.js'
import { reservedField, type Session, type SessionData, setReservedField } from './core/session.js'

/** The session field the secret is kept in (no data key can start with `$`). */
const FIELD = '$csrf'
/** Bytes of the per-session secret, and of the pad that masks it in each token. */
const SECRET_BYTES = 32
/** A token: the pad and the masked secret, base64url (64 bytes). */
const TOKEN_LENGTH = 86

/** Why a request was refused. */
export type CsrfRejection =
  /** `Sec-Fetch-Site` says another site (or another origin of this site) sent it. */
  | 'cross-site'
  /** Its `Origin` is neither the request's own host nor a trusted origin. */
  | 'origin'
  /** No token in the header or the body. */
  | 'missing-token'
  /** A token that is not this session's (forged, from another session, or malformed). */
  | 'bad-token'

/**
 * A request that did not pass the CSRF check. Answer it with 403; its `reason` says why (for
 * logs, not for the client).
 */
export class CsrfError extends SessionError {
  override name = 'CsrfError'
  readonly reason: CsrfRejection
  constructor(reason: CsrfRejection) {
    super('ERR_SESSION_CSRF', `request refused by the CSRF check: ${reason}`)
    this.reason = reason
  }
}

export interface CsrfOptions {
  /**
   * Origins (`https://app.example.com`, scheme, host and port as a browser sends them in
   * `Origin`) allowed to send unsafe requests besides the request's own: a front end served
   * from another origin, say.
   * @default []
   */
  trustedOrigins?: readonly string[]
  /**
   * The request header a script sends the token in (`fetch(url, { headers: { 'x-csrf-token':
   * token } })`). A form sends it in its body instead: pass that as `token` to `verify`.
   * @default 'x-csrf-token'
   */
  header?: string
  /**
   * Methods that change nothing and so are never checked (RFC 9110's safe methods). Never
   * list a method your app changes state on.
   * @default ['GET', 'HEAD', 'OPTIONS', 'TRACE']
   */
  safeMethods?: readonly string[]
}

/** What `verify` needs of a request. */
export interface CsrfRequest {
  /** The request's method (`req.method`); undefined is checked as an unsafe one. */
  method: string | undefined
  /** Node's `req.headers`, a Fetch `Headers`, or any object of lower-cased names. */
  headers: Headers | Readonly<Record<string, string | readonly string[] | undefined>>
  /** The token a form sent in its body (`_csrf`, say), when the header has none. */
  token?: unknown
  /**
   * The request's own URL (a Fetch `request.url`): its host is what `Origin` must match.
   * Without it, the `Host` header (on HTTP/2, which has none, the `:authority` Node's
   * headers carry in its place).
   */
  url?: string | URL
}

export interface Csrf {
  /**
   * A token for this session, to put in a form's hidden field or a page for scripts. The
   * session's secret is made at the first call, a change to the session like any other: call
   * it before the response's headers go out (render the page, then write the head), or the
   * secret is not saved with the session. Each call gives a different token for the same
   * secret (masked with fresh random bytes, so a compressed response cannot leak it: BREACH);
   * any of them verifies.
   */
  token<D extends SessionData>(session: Session<D>): string
  /**
   * Throws {@link CsrfError} unless the request is safe (its method is in `safeMethods`) or
   * comes from this site and carries this session's token. Checks no store and changes
   * nothing.
   */
  verify<D extends SessionData>(session: Session<D>, request: CsrfRequest): void
  /** {@link verify}, as a value: why the request is refused, or undefined if it passes. */
  check<D extends SessionData>(session: Session<D>, request: CsrfRequest): CsrfRejection | undefined
  /**
   * A new secret for this session: every token given before stops verifying. For after a
   * login, say (`session.regenerate()` keeps the secret, as it keeps the data).
   */
  rotate<D extends SessionData>(session: Session<D>): void
}

/** CSRF protection for sessions; see the module's documentation. */
export function csrf(options: CsrfOptions = {}): Csrf {
  checkObject(options, 'csrf: the options are an object: csrf({ ... })')
  checkKinds(options, { header: 'string' }, (name) => `csrf: ${name}`)
  const safeMethods = listOf(options.safeMethods, 'safeMethods', [
    'GET',
    'HEAD',
    'OPTIONS',
    'TRACE',
  ])
  const trustedOrigins = listOf(options.trustedOrigins, 'trustedOrigins', [])
  const header = (options.header ?? 'x-csrf-token').toLowerCase()
  if (!TOKEN.test(header)) {
    throw new SessionConfigError(
      `csrf: header ${JSON.stringify(options.header)} is not a header name`,
    )
  }
  const safe = new Set(safeMethods.map((m) => m.toUpperCase()))
  const trusted = new Set(
    trustedOrigins.map((origin) => {
      let url: URL
      try {
        url = new URL(origin)
      } catch {
        throw new SessionConfigError(`csrf: trusted origin ${JSON.stringify(origin)} is not a URL`)
      }
      if (url.origin !== origin) {
        throw new SessionConfigError(
          `csrf: trusted origin ${JSON.stringify(origin)} should be written ${JSON.stringify(url.origin)} (scheme, host and port, no path)`,
        )
      }
      return origin
    }),
  )

  const secretOf = <D extends SessionData>(session: Session<D>): Buffer | undefined => {
    const text = reservedField(session, FIELD)
    if (text === undefined) return undefined
    const bytes = Buffer.from(text, 'base64url')
    return bytes.length === SECRET_BYTES ? bytes : undefined
  }
  const newSecret = <D extends SessionData>(session: Session<D>): Buffer => {
    const secret = randomBytes(SECRET_BYTES)
    setReservedField(session, FIELD, secret.toString('base64url'))
    return secret
  }

  const fromOtherSite = (request: CsrfRequest): CsrfRejection | undefined => {
    const origin = headerOf(request.headers, 'origin')
    const site = headerOf(request.headers, 'sec-fetch-site')
    if (site !== undefined) {
      // a browser that sends it tells the truth about it; 'none': typed or bookmarked by the user
      if (site === 'same-origin' || site === 'none') return undefined
      return origin !== undefined && trusted.has(origin) ? undefined : 'cross-site'
    }
    // older browsers: Origin against Host (no Origin at all: not a browser, or a same-origin
    // request from one that sends none; the token decides)
    if (origin === undefined) return undefined
    if (trusted.has(origin)) return undefined
    const host = request.url === undefined ? hostHeader(request.headers) : hostOf(request.url)
    // 'null' (a sandboxed or privacy-sensitive context) and the like have no host
    const originHost = hostOf(origin)
    return host !== undefined && originHost !== undefined && originHost === host.toLowerCase()
      ? undefined
      : 'origin'
  }

  const matches = (secret: Buffer, token: string): boolean => {
    // canonical (a changed last digit, whose spare bits decoding ignores, is another token),
    // and every digit base64url: the decoder skips any other, which leaves fewer bytes
    if (token.length !== TOKEN_LENGTH || !canonicalBase64url(token)) return false
    const bytes = Buffer.from(token, 'base64url')
    if (bytes.length !== 2 * SECRET_BYTES) return false
    const unmasked = xor(bytes.subarray(0, SECRET_BYTES), bytes.subarray(SECRET_BYTES))
    return timingSafeEqual(unmasked, secret)
  }

  const check = <D extends SessionData>(
    session: Session<D>,
    request: CsrfRequest,
  ): CsrfRejection | undefined => {
    // no method given is not a safe one: a mistake in the call must not switch the check off
    if (request.method !== undefined && safe.has(request.method.toUpperCase())) return undefined
    const refused = fromOtherSite(request)
    if (refused !== undefined) return refused
    const given = headerOf(request.headers, header) ?? request.token
    if (typeof given !== 'string' || given.length === 0) return 'missing-token'
    const secret = secretOf(session)
    return secret !== undefined && matches(secret, given) ? undefined : 'bad-token'
  }

  return {
    token(session) {
      const secret = secretOf(session) ?? newSecret(session)
      const pad = randomBytes(SECRET_BYTES)
      return Buffer.concat([pad, xor(pad, secret)]).toString('base64url')
    },
    check,
    verify(session, request) {
      const refused = check(session, request)
      if (refused !== undefined) throw new CsrfError(refused)
    },
    rotate(session) {
      newSecret(session)
    },
  }
}

/** `list` when it is a list of strings (or `fallback` when not given), else a config error. */
function listOf(list: unknown, name: string, fallback: readonly string[]): readonly string[] {
  if (list === undefined) return fallback
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string'))
    throw new SessionConfigError(`csrf: ${name} must be a list of strings`)
  return list
}

/** The bytes of `a` XOR those of `b` (the same length): masks the secret, and unmasks it. */
function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!
  return out
}

/** One header's value, from Node's headers or a Fetch `Headers`; the first of several. */
function headerOf(headers: CsrfRequest['headers'], name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') {
    return (headers as Headers).get(name) ?? undefined
  }
  const value = (headers as Record<string, string | readonly string[] | undefined>)[name]
  return typeof value === 'string' ? value : value?.[0]
}

/**
 * The request's `Host`, or, on HTTP/2 (which has no `Host`), its `:authority`, which Node's
 * headers (and so Fastify's and Koa's) carry under that name: without it, no `Origin` of an
 * HTTP/2 request would match. A Fetch `Headers` cannot hold a pseudo-header (its `get` throws
 * for one), so it is not asked.
 */
function hostHeader(headers: CsrfRequest['headers']): string | undefined {
  const host = headerOf(headers, 'host')
  if (host !== undefined || typeof (headers as Headers).get === 'function') return host
  return headerOf(headers, ':authority')
}

/** The host (and port) of a URL, lower-cased; undefined for what is not a URL. */
function hostOf(url: string | URL): string | undefined {
  try {
    return new URL(url).host
  } catch {
    return undefined
  }
}
