/**
 * The error of the OpenID Connect module: one class with a stable code and a `reason`, whose
 * message and `cause` never carry a token, a code or a secret.
 * @module
 */
import { SessionError } from '../core/errors.js'

/** Why a login, a callback or a token request failed. */
export type OidcErrorReason =
  /** The provider's discovery document could not be fetched or is not valid (at startup). */
  | 'discovery-failed'
  /** `login()` was given a `returnTo` that is not a path on this site (an open redirect). */
  | 'unsafe-return-to'
  /** A callback, but the session has no login in progress: replayed, or the session was lost. */
  | 'no-login-in-progress'
  /** The callback's `state` is none of the session's logins in progress (forged or tampered). */
  | 'state-mismatch'
  /** The callback's login was started longer ago than `loginTimeout`. */
  | 'login-expired'
  /**
   * The provider refused (an OAuth error, `access_denied` or `invalid_grant`, ...: see `error`)
   * or could not be reached.
   */
  | 'provider-error'
  /** The provider's answer failed a check (ID token signature, issuer, audience, nonce, ...). */
  | 'invalid-response'
  /** Tokens were asked of a session that is not logged in. */
  | 'not-logged-in'
  /** The access token is due and could not be refreshed: no refresh token, or the provider refused it. */
  | 'refresh-failed'

/**
 * A login or token operation that failed. Its `reason` says what happened (for logs and for
 * choosing the answer: usually a new login); `error` is the provider's OAuth error code when it
 * sent one. Neither the message nor the `cause` holds a token, code or secret.
 *
 * @example
 * ```ts
 * try {
 *   const { returnTo } = await auth.callback(session, req.url!)
 * } catch (err) {
 *   if (err instanceof OidcError && err.error === 'access_denied') return showCancelled()
 *   throw err
 * }
 * ```
 */
export class OidcError extends SessionError {
  override name = 'OidcError'
  readonly reason: OidcErrorReason
  /** The provider's OAuth error code (`access_denied`, `invalid_grant`, ...), when it sent one. */
  readonly error: string | undefined

  constructor(
    reason: OidcErrorReason,
    detail: string,
    options: { error?: string | undefined; cause?: unknown } = {},
  ) {
    const error = options.error
    super(
      'ERR_SESSION_OIDC',
      `oidc: ${reason}: ${detail}${error === undefined ? '' : ` (${error})`}`,
      options.cause === undefined ? undefined : { cause: safeCause(options.cause) },
    )
    this.reason = reason
    this.error = error
  }
}

/**
 * `err` without what it may carry of the exchange: openid-client's errors keep the callback's
 * parameters (the authorization code), the token response or the request as `cause` or
 * `response`. Only the name, code, message and the provider's error code are kept.
 */
function safeCause(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err))
  const copy = new Error(err.message)
  copy.name = err.name
  copy.stack = err.stack ?? ''
  const from = err as { code?: unknown; error?: unknown; status?: unknown }
  const into = copy as { code?: unknown; error?: unknown; status?: unknown }
  if (typeof from.code === 'string') into.code = from.code
  if (typeof from.error === 'string') into.error = from.error
  if (typeof from.status === 'number') into.status = from.status
  return copy
}

/** The provider's OAuth error code carried by an openid-client error, if any. */
export function providerErrorOf(err: unknown): string | undefined {
  const error = (err as { error?: unknown } | null)?.error
  return typeof error === 'string' && /^[\x20-\x7e]{1,100}$/.test(error) ? error : undefined
}
