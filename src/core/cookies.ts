import { parseCookie, stringifySetCookie } from 'cookie'
import { SessionConfigError } from './errors.js'
import { checkKinds, checkObject, checkOneOf } from './options.js'

/** How the session cookie is written. */
export interface CookieOptions {
  /**
   * Cookie name. A name starting with `__Host-` gets that prefix's rules checked (Secure,
   * `Path=/`, no Domain); one starting with `__Secure-` is always Secure. Prefixes are matched
   * in any case, as browsers match them (`__host-sid` too).
   * @default 'sid'
   */
  name?: string
  /** @default '/' */
  path?: string
  /** Share the cookie with subdomains. Not allowed with the `__Host-` prefix. */
  domain?: string
  /** @default 'lax' */
  sameSite?: 'lax' | 'strict' | 'none'
  /**
   * `'auto'` marks the cookie Secure when the request came over HTTPS (or, with `trustProxy`,
   * when the proxy says so). A cookie with `sameSite: 'none'` or `partitioned`, or a name
   * starting with `__Host-` or `__Secure-`, is always Secure: browsers drop it otherwise.
   * @default 'auto'
   */
  secure?: boolean | 'auto'
  /** @default true */
  httpOnly?: boolean
  /** CHIPS: partition the cookie by top-level site (always Secure, see `secure`). @default false */
  partitioned?: boolean
  /** @default undefined */
  priority?: 'low' | 'medium' | 'high'
}

/** Cookie options with defaults applied and the cookie rules checked. */
export interface ResolvedCookie {
  readonly name: string
  /** The session cookie value in a `Cookie` header, or undefined. */
  read(header: string | null | undefined): string | undefined
  /** A `Set-Cookie` value. `maxAge` in milliseconds; none makes a browser-session cookie. */
  serialize(value: string, secureRequest: boolean, maxAge?: number): string
  /** A `Set-Cookie` value that deletes the cookie. */
  clear(secureRequest: boolean): string
}

/** An RFC 7230 token: what a header name, and a cookie name (RFC 6265 section 4.1.1), is. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** Space and tab: what parseCookie trims from both ends of a value. */
const SP = 0x20
const HTAB = 0x09
/** RFC 6265bis: user agents cap Max-Age at 400 days. */
const MAX_AGE_CAP_S = 400 * 24 * 3600

/** The kinds of the cookie's text and flag options (`secure` and `priority` take a few values). */
const COOKIE_KINDS = {
  name: 'string',
  path: 'string',
  domain: 'string',
  httpOnly: 'boolean',
  partitioned: 'boolean',
} as const

export function resolveCookie(options: CookieOptions = {}): ResolvedCookie {
  checkObject(options, 'cookie is an object of cookie options ({ name, path, ... })')
  checkKinds(options, COOKIE_KINDS, (name) => `cookie.${name}`)
  checkOneOf(options.sameSite, ['lax', 'strict', 'none'], 'cookie.sameSite')
  checkOneOf(options.secure, [true, false, 'auto'], 'cookie.secure')
  checkOneOf(options.priority, ['low', 'medium', 'high'], 'cookie.priority')
  const name = options.name ?? 'sid'
  if (!TOKEN.test(name)) {
    throw new SessionConfigError(
      `cookie.name ${JSON.stringify(name)} is not a valid cookie name (RFC 6265 4.1.1: letters, digits and !#$%&'*+-.^_\`|~ only)`,
    )
  }
  const path = options.path ?? '/'
  if (!/^\/[\x21-\x3a\x3c-\x7e]*$/.test(path)) {
    throw new SessionConfigError(
      `cookie.path ${JSON.stringify(path)} must start with "/" and hold no ";", space or control character`,
    )
  }
  const domain = options.domain
  if (
    domain !== undefined &&
    // labels of 1 to 63 characters (RFC 1035), as the cookie serializer requires at each write
    !/^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(domain)
  ) {
    throw new SessionConfigError(`cookie.domain ${JSON.stringify(domain)} is not a domain name`)
  }
  const sameSite = options.sameSite ?? 'lax'
  let secure = options.secure ?? 'auto'
  const partitioned = options.partitioned ?? false

  // browsers match the prefixes in any case (RFC 6265bis 5.7): `__host-sid` is held to them too
  if (/^__host-/i.test(name)) {
    if (secure === false)
      throw new SessionConfigError(
        'a "__Host-" cookie must be Secure (RFC 6265bis 4.1.3.2); remove cookie.secure: false or rename the cookie',
      )
    if (domain !== undefined)
      throw new SessionConfigError(
        'a "__Host-" cookie must not have a Domain (RFC 6265bis 4.1.3.2); remove cookie.domain or rename the cookie',
      )
    if (path !== '/')
      throw new SessionConfigError(
        'a "__Host-" cookie must have Path=/ (RFC 6265bis 4.1.3.2); remove cookie.path or rename the cookie',
      )
    secure = true
  } else if (/^__secure-/i.test(name)) {
    if (secure === false)
      throw new SessionConfigError(
        'a "__Secure-" cookie must be Secure (RFC 6265bis 4.1.3.1); remove cookie.secure: false or rename the cookie',
      )
    secure = true
  }
  if (sameSite === 'none' && secure === false) {
    throw new SessionConfigError(
      "cookie.sameSite 'none' requires a Secure cookie; browsers drop SameSite=None cookies without Secure",
    )
  }
  if (partitioned && secure === false) {
    throw new SessionConfigError('cookie.partitioned requires a Secure cookie (CHIPS)')
  }
  // with 'auto', a request that reached the app over plain HTTP (local development, or a TLS
  // proxy without trustProxy) would get a cookie without Secure, which browsers drop in
  // silence when it is SameSite=None or Partitioned: no session would ever stick
  if (sameSite === 'none' || partitioned) secure = true

  const base = {
    path,
    httpOnly: options.httpOnly ?? true,
    sameSite,
    ...(domain === undefined ? {} : { domain }),
    ...(partitioned ? { partitioned } : {}),
    ...(options.priority === undefined ? {} : { priority: options.priority }),
  } as const
  const isSecure = (secureRequest: boolean) => (secure === 'auto' ? secureRequest : secure)
  const identity = (s: string) => s
  const prefix = `${name}=`

  return {
    name,
    read(header) {
      if (!header || !header.includes(name)) return undefined
      // the common case, a header holding only this cookie, without building a record: the
      // value parseCookie would give (it decodes nothing here, and trims only spaces and tabs
      // at the ends), with no scan of the value
      if (header.startsWith(prefix) && !header.includes(';', prefix.length)) {
        const first = header.charCodeAt(prefix.length)
        const last = header.charCodeAt(header.length - 1)
        if (first !== SP && first !== HTAB && last !== SP && last !== HTAB) {
          return header.slice(prefix.length)
        }
      }
      return parseCookie(header, { decode: identity })[name]
    },
    serialize(value, secureRequest, maxAge) {
      return stringifySetCookie(name, value, {
        ...base,
        secure: isSecure(secureRequest),
        ...(maxAge === undefined
          ? {}
          : { maxAge: Math.min(MAX_AGE_CAP_S, Math.max(0, Math.floor(maxAge / 1000))) }),
      })
    },
    clear(secureRequest) {
      return stringifySetCookie(name, '', {
        ...base,
        secure: isSecure(secureRequest),
        maxAge: 0,
        expires: new Date(0),
      })
    },
  }
}
