/**
 * What the OpenID Connect module keeps in a session, in fields of Tessera's own (their names
 * start with `$`, so they stay out of the app's data, `keys()`, `toJSON()` and schema checks):
 * each login in progress in a field of its own, and the tokens of the logged-in user. All are
 * JSON text, read defensively: a field that does not parse is treated as absent.
 *
 * One field per login, not one list: a commit writes only the fields its request changed, so
 * two logins started at once in one session (tabs opened together) both stay, where a list
 * written by each would keep only the later one and fail the other tab's callback.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import {
  deleteReservedField,
  reservedField,
  type Session,
  type SessionData,
  STATE,
  setReservedField,
} from '../core/session.js'

/**
 * The prefix of the fields of the logins in progress (state, nonce and PKCE verifier of each,
 * until its callback); a login's field is named after a hash of its state.
 */
const LOGIN = '$oidc:login:'
/** The tokens and ID token claims of the logged-in user. */
const TOKENS = '$oidc'
/** Logins kept in progress at once (tabs); a new one past this drops the oldest. */
export const MAX_PENDING_LOGINS = 4

/** The claims of an ID token: `sub` and what the provider gave for the requested scopes. */
export interface OidcClaims {
  /** The user's id at the provider: stable, unique for this issuer. */
  sub: string
  /** The issuer. */
  iss: string
  [claim: string]: unknown
}

/** One login in progress. */
export interface PendingLogin {
  state: string
  nonce: string
  /** The PKCE code verifier; its challenge went in the authorization request. */
  verifier: string
  /** The path to send the user to after the callback. */
  returnTo: string
  /** Ms since the epoch after which its callback is refused. */
  expiresAt: number
  /** The `max_age` the authorization request carried, checked against `auth_time`. */
  maxAge?: number
}

/** The tokens of a logged-in session. */
export interface TokenSet {
  claims: OidcClaims
  idToken: string
  accessToken: string
  tokenType: string
  refreshToken?: string
  /** When the access token expires (ms since the epoch); absent when the provider did not say. */
  expiresAt?: number
  scope?: string
}

const isString = (v: unknown): v is string => typeof v === 'string'
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

function parse(text: string | undefined): unknown {
  if (text === undefined || text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The field of the login whose state is `state`. */
function loginField(state: string): `$${string}` {
  return `${LOGIN}${createHash('sha256').update(state).digest('base64url')}`
}

/** A login in progress from its field's JSON text, or undefined. */
function loginFrom(text: string | undefined): PendingLogin | undefined {
  const p = parse(text)
  return isObject(p) &&
    isString(p.state) &&
    isString(p.nonce) &&
    isString(p.verifier) &&
    isString(p.returnTo) &&
    typeof p.expiresAt === 'number' &&
    (p.maxAge === undefined || typeof p.maxAge === 'number')
    ? (p as unknown as PendingLogin)
    : undefined
}

/** The names of the session's login fields. */
function loginFields<D extends SessionData>(session: Session<D>): `$${string}`[] {
  const names: `$${string}`[] = []
  for (const field of session[STATE].fields.keys()) {
    if (field.startsWith(LOGIN)) names.push(field as `$${string}`)
  }
  return names
}

/** The session's logins in progress, oldest first (expired ones included). */
export function pendingLogins<D extends SessionData>(session: Session<D>): PendingLogin[] {
  const logins: PendingLogin[] = []
  for (const field of loginFields(session)) {
    const login = loginFrom(reservedField(session, field))
    if (login !== undefined) logins.push(login)
  }
  return logins.sort((a, b) => a.expiresAt - b.expiresAt)
}

/**
 * The session's login in progress whose state is `state`, or undefined. Found by a hash of
 * `state`, and its state compared again, so a field renamed by hand matches nothing.
 */
export function pendingLogin<D extends SessionData>(
  session: Session<D>,
  state: string,
): PendingLogin | undefined {
  const login = loginFrom(reservedField(session, loginField(state)))
  return login !== undefined && sameText(login.state, state) ? login : undefined
}

/** Constant-time comparison of two strings. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * Adds a login in progress, after dropping the session's expired ones (at `now`) and the
 * oldest past {@link MAX_PENDING_LOGINS}. Only its own field is written: a login another
 * request adds meanwhile stays.
 */
export function addPendingLogin<D extends SessionData>(
  session: Session<D>,
  login: PendingLogin,
  now: number,
): void {
  const kept: { field: `$${string}`; expiresAt: number }[] = []
  for (const field of loginFields(session)) {
    const other = loginFrom(reservedField(session, field))
    if (other === undefined || other.expiresAt <= now) deleteReservedField(session, field)
    else kept.push({ field, expiresAt: other.expiresAt })
  }
  const byAge = kept.sort((a, b) => a.expiresAt - b.expiresAt)
  for (const { field } of byAge.slice(0, Math.max(0, byAge.length - MAX_PENDING_LOGINS + 1))) {
    deleteReservedField(session, field)
  }
  setReservedField(session, loginField(login.state), JSON.stringify(login))
}

/** Ends a login in progress: its state, nonce and verifier are spent. */
export function deletePendingLogin<D extends SessionData>(
  session: Session<D>,
  login: PendingLogin,
): void {
  deleteReservedField(session, loginField(login.state))
}

/** Replaces the session's logins in progress (none: every one is ended). */
export function setPendingLogins<D extends SessionData>(
  session: Session<D>,
  logins: readonly PendingLogin[],
): void {
  for (const field of loginFields(session)) deleteReservedField(session, field)
  for (const login of logins.slice(-MAX_PENDING_LOGINS)) {
    setReservedField(session, loginField(login.state), JSON.stringify(login))
  }
}

/** The session's tokens, or undefined when it is not logged in. */
export function tokensOf<D extends SessionData>(session: Session<D>): TokenSet | undefined {
  return tokenSetFrom(reservedField(session, TOKENS))
}

/** Tokens from their JSON text (as {@link setTokens} keeps them), or undefined. */
export function tokenSetFrom(text: string | undefined): TokenSet | undefined {
  const t = parse(text)
  if (
    !isObject(t) ||
    !isObject(t.claims) ||
    !isString(t.claims.sub) ||
    !isString(t.idToken) ||
    !isString(t.accessToken) ||
    !isString(t.tokenType)
  ) {
    return undefined
  }
  return t as unknown as TokenSet
}

/** Stores the session's tokens. */
export function setTokens<D extends SessionData>(session: Session<D>, tokens: TokenSet): void {
  setReservedField(session, TOKENS, JSON.stringify(tokens))
}
