/**
 * What the OpenID Connect module keeps in a session, in two fields of Tessera's own (their
 * names start with `$`, so they stay out of the app's data, `keys()`, `toJSON()` and schema
 * checks): the logins in progress, and the tokens of the logged-in user. Both are JSON text,
 * read defensively: a field that does not parse is treated as absent.
 * @module
 */
import {
  deleteReservedField,
  reservedField,
  type Session,
  type SessionData,
  setReservedField,
} from '../core/session.js'

/** The logins in progress: state, nonce and PKCE verifier of each, until its callback. */
const LOGINS = '$oidc:login'
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

/** The session's logins in progress, oldest first (expired ones included). */
export function pendingLogins<D extends SessionData>(session: Session<D>): PendingLogin[] {
  const list = parse(reservedField(session, LOGINS))
  if (!Array.isArray(list)) return []
  return list.filter(
    (p): p is PendingLogin =>
      isObject(p) &&
      isString(p.state) &&
      isString(p.nonce) &&
      isString(p.verifier) &&
      isString(p.returnTo) &&
      typeof p.expiresAt === 'number' &&
      (p.maxAge === undefined || typeof p.maxAge === 'number'),
  )
}

/** Replaces the session's logins in progress (none: the field is emptied). */
export function setPendingLogins<D extends SessionData>(
  session: Session<D>,
  logins: readonly PendingLogin[],
): void {
  if (logins.length === 0) {
    deleteReservedField(session, LOGINS)
    return
  }
  setReservedField(session, LOGINS, JSON.stringify(logins.slice(-MAX_PENDING_LOGINS)))
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
