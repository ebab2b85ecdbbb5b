/**
 * One-time credentials spent once between the instances of an app, through the sessions'
 * store: refresh tokens and authorization codes. A provider that rotates refresh tokens may
 * revoke the whole grant when a spent one comes back, and two instances serving one user's
 * requests (tabs, parallel API calls, a request that loaded the session before another's
 * refresh was saved) would each spend it. Likewise a provider refuses an authorization code
 * sent twice (a callback the browser sent twice at once) and may revoke the tokens it issued
 * for it (RFC 6749 4.1.2). With a store that has `add`, the first instance to claim the
 * credential spends it and leaves the tokens it got under the claim for a minute; the others
 * wait for them instead of spending it again. A refresh that fails lets another instance try;
 * an exchange of a code that fails leaves its failure for the others, which give it as theirs.
 *
 * The claim is a record under SHA-256 of what is spent, the provider, the client and the
 * credential, a key no cookie leads to, marked as no session (`moved`), with no user. It holds
 * the same tokens the session's own record holds, and expires a minute after it was made.
 * @module
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { SessionStoreError, type StoreOperation } from '../core/errors.js'
import { expiresAt, markerMeta, type SessionStore } from '../core/store.js'
import { OidcError, type OidcErrorReason, providerErrorOf } from './errors.js'
import { type TokenSet, tokenSetFrom } from './fields.js'

/** The claim's field that holds the tokens it was spent for, as JSON. */
const TOKENS = 'tokens'
/** The claim's field that holds a failed exchange's `{ reason, error }`, as JSON. */
const FAILURE = 'failure'
/** Longest pause between two looks at another instance's claim, in ms. */
const MAX_PAUSE_MS = 200
/**
 * Least time a refresh's tokens stay under its claim, in ms, even when they are due at once
 * (an access token that lives less than the refresh margin): long enough for the instances
 * waiting on it to take them instead of spending the old refresh token.
 */
const MIN_KEEP_MS = 2000

/** What is spent once: a refresh token (by a refresh) or an authorization code (by a login). */
export type Spent = 'refresh' | 'code'

/** How each credential is shared. */
const KINDS: Readonly<
  Record<
    Spent,
    {
      /** The first line of what its claim's key is the hash of. */
      prefix: string
      /** The reason of the errors of sharing it (another instance took too long, ...). */
      reason: OidcErrorReason
      /** Its spending, in messages: "another instance of the app has been ..." */
      doing: string
      /** Its spending, in messages: "another instance's ... left tokens" */
      spending: string
      /** What the store was doing, in a `SessionStoreError`. */
      sharing: string
      /**
       * Whether a failure is left under the claim for the others to give as theirs (an
       * authorization code: sending it again would be refused, and may revoke tokens), or the
       * claim is given up so that another instance tries (a refresh token: the provider may
       * only have been out of reach).
       */
      keepsFailure: boolean
    }
  >
> = {
  refresh: {
    prefix: 'oidc-refresh',
    reason: 'refresh-failed',
    doing: 'refreshing these tokens',
    spending: 'refresh',
    sharing: 'sharing a refresh of OpenID Connect tokens between instances',
    keepsFailure: false,
  },
  code: {
    prefix: 'oidc-code',
    reason: 'provider-error',
    doing: 'exchanging this authorization code',
    spending: 'exchange of the authorization code',
    sharing: 'sharing the exchange of an OpenID Connect authorization code between instances',
    keepsFailure: true,
  },
}

/** The reasons of a failure another instance may leave under a claim. */
const FAILURE_REASONS: ReadonlySet<string> = new Set<OidcErrorReason>([
  'provider-error',
  'invalid-response',
  'refresh-failed',
])

/** Spends `credential` through `spend` once between the instances; see the module. */
export type SharedSpend = (credential: string, spend: () => Promise<TokenSet>) => Promise<TokenSet>

/** Spends `refreshToken` through `refresh` once between the instances; see the module. */
export type SharedRefresh = SharedSpend

/**
 * Refreshes shared through `store`, or undefined when the store has no `add` (refreshes are
 * then shared within the process only): {@link sharedSpend} of refresh tokens.
 */
export function sharedRefresh(
  store: SessionStore,
  scope: string,
  options: { keepMs: number; waitMs: number; freshFor: (tokens: TokenSet) => number },
): SharedRefresh | undefined {
  return sharedSpend(store, scope, { ...options, spent: 'refresh' })
}

/**
 * Spends of `spent` credentials shared through `store`, or undefined when the store has no
 * `add` (they are then shared within the process only, by the caller). `scope` names the
 * provider and client. A claim and its tokens are kept for `keepMs`, or less once the tokens
 * are due again: `freshFor` says in how many ms (so a provider that does not rotate refresh
 * tokens is asked again then, instead of handing out an expired access token until the claim
 * goes); without it, for `keepMs`. An instance waits up to `waitMs` for another's spend.
 */
export function sharedSpend(
  store: SessionStore,
  scope: string,
  options: {
    spent: Spent
    keepMs: number
    waitMs: number
    freshFor?: ((tokens: TokenSet) => number) | undefined
  },
): SharedSpend | undefined {
  const { keepMs, waitMs, freshFor } = options
  const kind = KINDS[options.spent]
  const add = store.add
  if (add === undefined) return undefined
  /** The store's answer, or a `SessionStoreError` naming what it was doing. */
  const call = async <T>(operation: StoreOperation, work: () => Promise<T>): Promise<T> => {
    try {
      return await work()
    } catch (err) {
      if (err instanceof SessionStoreError) throw err
      throw new SessionStoreError(store.name, operation, kind.sharing, { cause: err })
    }
  }

  return async (credential, spend) => {
    const key = createHash('sha256').update(`${kind.prefix}\n${scope}\n${credential}`).digest('hex')
    const deadline = Date.now() + waitMs
    let pause = 10
    for (;;) {
      const now = Date.now()
      const meta = markerMeta(now, keepMs)
      if (await call('add', () => add.call(store, key, { fields: {}, meta }))) {
        let tokens: TokenSet
        try {
          tokens = await spend()
        } catch (err) {
          if (kind.keepsFailure && err instanceof OidcError) {
            // the others give it as theirs; when it cannot be left, they may try themselves
            const failure = JSON.stringify({ reason: err.reason, error: err.error })
            await store
              .set(key, { fields: { [FAILURE]: failure }, meta })
              .catch(() => store.destroy(key))
              .catch(() => {})
          } else {
            // another instance may try (a refusal comes again; a provider out of reach may not)
            await store.destroy(key).catch(() => {})
          }
          throw err
        }
        const fresh = freshFor === undefined ? keepMs : freshFor(tokens)
        const kept = markerMeta(now, Math.max(MIN_KEEP_MS, Math.min(keepMs, fresh)))
        await call('set', () =>
          store.set(key, { fields: { [TOKENS]: JSON.stringify(tokens) }, meta: kept }),
        )
        return tokens
      }
      // another instance holds the claim: its tokens, once its spend is done
      for (;;) {
        const claim = await call('get', () => store.get(key))
        // gone or expired: that spend failed (or took a minute); claim it again
        if (claim === undefined || expiresAt(claim.meta) <= Date.now()) break
        const text = claim.fields[TOKENS]
        if (text !== undefined) {
          const tokens = tokenSetFrom(text)
          if (tokens !== undefined) return tokens
          throw new OidcError(
            kind.reason,
            `another instance's ${kind.spending} left tokens that do not read`,
          )
        }
        const failed = claim.fields[FAILURE]
        if (failed !== undefined) throw failureFrom(failed, kind.reason, kind.doing)
        if (Date.now() >= deadline) break
        await sleep(pause)
        pause = Math.min(2 * pause, MAX_PAUSE_MS)
      }
      if (Date.now() >= deadline) {
        throw new OidcError(
          kind.reason,
          `another instance of the app has been ${kind.doing} for ${waitMs} ms and has not finished`,
        )
      }
    }
  }
}

/** The error another instance's failure left under a claim, as this instance's. */
function failureFrom(text: string, fallback: OidcErrorReason, doing: string): OidcError {
  let left: { reason?: unknown; error?: unknown } = {}
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null) left = parsed
  } catch {
    // a failure that does not read is still a failure
  }
  const reason =
    typeof left.reason === 'string' && FAILURE_REASONS.has(left.reason)
      ? (left.reason as OidcErrorReason)
      : fallback
  return new OidcError(reason, `another instance of the app was ${doing}, and that failed`, {
    error: providerErrorOf(left),
  })
}
