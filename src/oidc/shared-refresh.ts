/**
 * Refreshes shared by the instances of an app, through the sessions' store. A provider that
 * rotates refresh tokens may revoke the whole grant when a spent one comes back, and two
 * instances serving one user's requests (tabs, parallel API calls, a request that loaded the
 * session before another's refresh was saved) would each spend it. With a store that has
 * `add`, the first instance to claim a refresh token spends it and leaves the tokens it got
 * under the claim for a minute; the others wait for them instead of spending it again.
 *
 * The claim is a record under SHA-256 of the provider, the client and the refresh token, a
 * key no cookie leads to, marked as no session (`moved`), with no user. It holds the same
 * tokens the session's own record holds, and expires a minute after it was made.
 * @module
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { SessionStoreError, type StoreOperation } from '../core/errors.js'
import { expiresAt, markerMeta, type SessionStore } from '../core/store.js'
import { OidcError } from './errors.js'
import { type TokenSet, tokenSetFrom } from './fields.js'

/** The claim's field that holds the refresh's tokens, as JSON. */
const TOKENS = 'tokens'
/** Longest pause between two looks at another instance's claim, in ms. */
const MAX_PAUSE_MS = 200
/**
 * Least time a refresh's tokens stay under its claim, in ms, even when they are due at once
 * (an access token that lives less than the refresh margin): long enough for the instances
 * waiting on it to take them instead of spending the old refresh token.
 */
const MIN_KEEP_MS = 2000

/** Spends `refreshToken` through `refresh` once between the instances; see the module. */
export type SharedRefresh = (
  refreshToken: string,
  refresh: () => Promise<TokenSet>,
) => Promise<TokenSet>

/**
 * Refreshes shared through `store`, or undefined when the store has no `add` (refreshes are
 * then shared within the process only). `scope` names the provider and client. A claim and
 * its tokens are kept for `keepMs`, or less once the tokens are due again: `freshFor` says in
 * how many ms (so a provider that does not rotate refresh tokens is asked again then, instead
 * of handing out an expired access token until the claim goes). An instance waits up to
 * `waitMs` for another's refresh.
 */
export function sharedRefresh(
  store: SessionStore,
  scope: string,
  options: { keepMs: number; waitMs: number; freshFor: (tokens: TokenSet) => number },
): SharedRefresh | undefined {
  const { keepMs, waitMs, freshFor } = options
  const add = store.add
  if (add === undefined) return undefined
  /** The store's answer, or a `SessionStoreError` naming what it was doing. */
  const call = async <T>(operation: StoreOperation, work: () => Promise<T>): Promise<T> => {
    try {
      return await work()
    } catch (err) {
      if (err instanceof SessionStoreError) throw err
      throw new SessionStoreError(
        store.name,
        operation,
        'sharing a refresh of OpenID Connect tokens between instances',
        { cause: err },
      )
    }
  }

  return async (refreshToken, refresh) => {
    const key = createHash('sha256').update(`oidc-refresh\n${scope}\n${refreshToken}`).digest('hex')
    const deadline = Date.now() + waitMs
    let pause = 10
    for (;;) {
      const now = Date.now()
      const meta = markerMeta(now, keepMs)
      if (await call('add', () => add.call(store, key, { fields: {}, meta }))) {
        let tokens: TokenSet
        try {
          tokens = await refresh()
        } catch (err) {
          // another instance may try (a refusal comes again; a provider out of reach may not)
          await store.destroy(key).catch(() => {})
          throw err
        }
        const kept = markerMeta(now, Math.max(MIN_KEEP_MS, Math.min(keepMs, freshFor(tokens))))
        await call('set', () =>
          store.set(key, { fields: { [TOKENS]: JSON.stringify(tokens) }, meta: kept }),
        )
        return tokens
      }
      // another instance holds the claim: its tokens, once its refresh is done
      for (;;) {
        const claim = await call('get', () => store.get(key))
        // gone or expired: that refresh failed (or took a minute); claim it again
        if (claim === undefined || expiresAt(claim.meta) <= Date.now()) break
        const text = claim.fields[TOKENS]
        if (text !== undefined) {
          const tokens = tokenSetFrom(text)
          if (tokens !== undefined) return tokens
          throw new OidcError(
            'refresh-failed',
            "another instance's refresh left tokens that do not read",
          )
        }
        if (Date.now() >= deadline) break
        await sleep(pause)
        pause = Math.min(2 * pause, MAX_PAUSE_MS)
      }
      if (Date.now() >= deadline) {
        throw new OidcError(
          'refresh-failed',
          `another instance of the app has been refreshing these tokens for ${waitMs} ms and has not finished`,
        )
      }
    }
  }
}
