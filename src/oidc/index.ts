/**
 * OpenID Connect login over Tessera sessions, on `openid-client`: the authorization code flow
 * with PKCE, state and nonce kept in the session; a callback that regenerates the session and
 * binds it to the user; tokens kept server-side, in the session's store, never in a cookie; an
 * authenticated `fetch()` that refreshes the access token when it is due; and RP-initiated
 * logout. Framework-free: give it the session and, for the callback, the request's URL.
 *
 * It needs a server store (memory, redis, postgres, ...): tokens do not fit a cookie, so a
 * manager over the cookie store is refused at startup.
 *
 * @example
 * ```ts
 * import { oidc, OidcError } from 'tessera/oidc'
 * const auth = await oidc({
 *   sessions,
 *   issuer: 'https://accounts.example.com',
 *   clientId: process.env.OIDC_CLIENT_ID!,
 *   clientSecret: process.env.OIDC_CLIENT_SECRET,
 *   redirectUri: 'https://app.example.com/auth/callback',
 *   postLogoutRedirectUri: 'https://app.example.com/',
 * })
 *
 * // GET /login?returnTo=/account
 * redirect(await auth.login(session, { returnTo: url.searchParams.get('returnTo') ?? '/' }))
 * // GET /auth/callback?code=…&state=…
 * const { returnTo } = await auth.callback(session, req.url!)
 * redirect(returnTo)
 * // anywhere
 * auth.user(session)?.email
 * const orders = await auth.fetch(session, 'https://api.example.com/orders')
 * // POST /logout
 * redirect(auth.logout(session))
 * ```
 * @module
 */
import { createHash } from 'node:crypto'
import * as client from 'openid-client'
import type { Duration } from '../core/duration.js'
import { toMs } from '../core/duration.js'
import { SessionConfigError } from '../core/errors.js'
import type { SessionManager } from '../core/manager.js'
import { checkKinds, checkManager, checkObject } from '../core/options.js'
import type { Session, SessionData } from '../core/session.js'
import type { SessionStore } from '../core/store.js'
import { OidcError, providerErrorOf } from './errors.js'
import {
  addPendingLogin,
  deletePendingLogin,
  type OidcClaims,
  type PendingLogin,
  pendingLogin,
  pendingLogins,
  setPendingLogins,
  setTokens,
  type TokenSet,
  tokensOf,
} from './fields.js'
import { safeReturnTo } from './return-to.js'
import { sharedRefresh, sharedSpend } from './shared-refresh.js'

export { OidcError, type OidcErrorReason } from './errors.js'
export type { OidcClaims } from './fields.js'

/** Authorization request parameters the module sets itself, which options cannot override. */
const OWN_PARAMETERS = new Set([
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
])
/** How long a refresh's result is reused for a request still holding the old refresh token. */
const REFRESH_REUSE_MS = 60_000
/** How long a request waits for another instance's refresh of the same refresh token. */
const REFRESH_WAIT_MS = 15_000
/** How long an exchange's outcome is reused for a callback still holding the spent code. */
const CODE_REUSE_MS = 60_000
/** How long a callback waits for another instance's exchange of the same code. */
const CODE_WAIT_MS = 15_000

/** Options of {@link oidc}. */
export interface OidcOptions<Data extends SessionData = SessionData> {
  /** The session manager (`createSessions()`); its store must be a server store. */
  sessions: SessionManager<Data>
  /** The provider's issuer identifier (`https://accounts.example.com`); discovered at startup. */
  issuer: string | URL
  /** This app's client id at the provider. */
  clientId: string
  /**
   * This app's client secret. Without one the app is a public client (`none` authentication),
   * and PKCE alone protects the code.
   */
  clientSecret?: string | undefined
  /**
   * How the app authenticates at the token endpoint with its secret: `'client_secret_basic'`
   * (HTTP Basic, the default a provider registers a client with) or `'client_secret_post'`
   * (in the form body); or any `ClientAuth` of openid-client (`PrivateKeyJwt(key)`, ...).
   * @default 'client_secret_basic' (with a secret), none (without)
   */
  clientAuthentication?: 'client_secret_basic' | 'client_secret_post' | client.ClientAuth
  /**
   * Where the provider sends the user back: the app's callback route, registered at the
   * provider exactly so. Absolute, no query or fragment.
   */
  redirectUri: string | URL
  /**
   * Scopes to request; must include `openid`. Add `offline_access` (most providers also want
   * `params: { prompt: 'consent' }` then) to get a refresh token.
   * @default 'openid profile email'
   */
  scope?: string
  /** Where the provider sends the user after logout; registered at the provider. */
  postLogoutRedirectUri?: string | URL
  /**
   * More authorization request parameters for every login (`audience`, `resource`,
   * `acr_values`, ...). The ones the module sets (state, nonce, PKCE, scope, redirect_uri)
   * cannot be given.
   * @default {}
   */
  authorizationParams?: Readonly<Record<string, string>>
  /**
   * The access token is refreshed when it expires within this margin, so a request made with
   * it does not reach the API just after it expired. `0` refreshes only once it has expired.
   * @default '30s'
   */
  refreshMargin?: Duration
  /**
   * How long a login may take, from `login()` to its callback; a later callback is refused
   * (`login-expired`).
   * @default '10m'
   */
  loginTimeout?: Duration
  /**
   * The id the session is bound to (`session.setUser`), from the ID token's claims. With
   * several providers, make it unique across them: `(c) => \`${c.iss}|${c.sub}\``.
   * @default (claims) => claims.sub
   */
  userId?: (claims: OidcClaims) => string
  /**
   * At the callback, also fetch the provider's UserInfo endpoint and add its claims to what
   * `user()` gives (its `sub` must be the ID token's). Many providers put only `sub` and a few
   * more in the ID token of a code flow, and `email`, `name` and the like in UserInfo. A claim
   * the ID token has is kept as it is: UserInfo only adds the claims the ID token lacks, and
   * never the ID token's own about the login (`acr`, `amr`, `auth_time`, `aud`, `nonce`...).
   * @default false
   */
  userInfo?: boolean
  /**
   * Allow an `http:` issuer (a provider on loopback in development or tests). Never in
   * production: tokens would cross the network in clear.
   * @default false
   */
  allowInsecureRequests?: boolean
  /** The time in ms since the epoch, for token and login expiry; a fake clock in tests. @default Date.now */
  clock?: () => number
}

/** Options of {@link Oidc.login}. */
export interface OidcLoginOptions {
  /**
   * Where to send the user after the callback: a path of this site (`/account?tab=2`), or an
   * absolute URL of `redirectUri`'s origin. Anything else is refused (`unsafe-return-to`): it
   * usually comes from a query parameter, which anyone can write.
   * @default '/'
   */
  returnTo?: string
  /**
   * Authorization request parameters for this login only (`prompt`, `login_hint`,
   * `ui_locales`, `max_age`, ...), over `authorizationParams`.
   * @default {}
   */
  params?: Readonly<Record<string, string>>
}

/** What a successful {@link Oidc.callback} gives. */
export interface OidcCallbackResult {
  /** The path given to `login()` as `returnTo` (checked then): redirect the user there. */
  returnTo: string
  /** The ID token's claims, as `user()` gives them from now on. */
  user: OidcClaims
}

/** Options of {@link Oidc.logout}. */
export interface OidcLogoutOptions {
  /** Overrides the `postLogoutRedirectUri` option for this logout (registered at the provider). */
  postLogoutRedirectUri?: string | URL
  /** A value the provider gives back to the post-logout redirect URI as `state`. */
  state?: string
}

/** What {@link oidc} gives: the login flow and the tokens of logged-in sessions. */
export interface Oidc {
  /**
   * Starts a login: keeps a new state, nonce and PKCE verifier in the session (a change to it,
   * saved with the response) and gives the provider's authorization URL to redirect to. Up to
   * four logins may be in progress in one session (tabs); a fifth drops the oldest.
   * Throws {@link OidcError} `unsafe-return-to` for a `returnTo` off this site.
   */
  login<D extends SessionData>(session: Session<D>, options?: OidcLoginOptions): Promise<URL>
  /**
   * Completes a login at the redirect URI: checks the callback's state against the session's
   * logins in progress, exchanges the code (with the PKCE verifier) and checks the ID token
   * (signature, issuer, audience, nonce). Then regenerates the session (a new id: session
   * fixation), binds it to the user (`session.setUser`) and keeps the tokens in it. The
   * session's data is kept, unless it was bound to another user: then it is cleared first.
   * A callback sent twice at once (a double click) exchanges the code once, as refreshes are
   * shared (see {@link accessToken}): both requests get its tokens, or its error.
   *
   * `callbackUrl` is the request's URL: Node's `req.url` (a path) will do, as will a full URL;
   * its query is what counts. Throws {@link OidcError}: `no-login-in-progress` (replayed, or no
   * session cookie came back), `state-mismatch`, `login-expired`, `provider-error` (the user
   * refused: `error === 'access_denied'`), `invalid-response`.
   */
  callback<D extends SessionData>(
    session: Session<D>,
    callbackUrl: string | URL,
  ): Promise<OidcCallbackResult>
  /** The logged-in user's ID token claims, or undefined. */
  user<D extends SessionData>(session: Session<D>): OidcClaims | undefined
  /** The logged-in user's ID token (compact JWT), or undefined. */
  idToken<D extends SessionData>(session: Session<D>): string | undefined
  /**
   * The session's access token, refreshed first when it expires within `refreshMargin` (the
   * new tokens are a change to the session, saved with the response: call it before the
   * response's headers go out). A refresh token is spent once: refreshes of it are shared in
   * this process, and with the app's other instances through a store that has `add` (every
   * server store Tessera ships). Throws {@link OidcError} `not-logged-in` or `refresh-failed`
   * (answer it with a new login), or `SessionStoreError` when the store fails meanwhile.
   */
  accessToken<D extends SessionData>(session: Session<D>): Promise<string>
  /**
   * `fetch` with the session's access token as `Authorization: Bearer` ({@link accessToken}:
   * refreshed when due). An answer of 401 with `error="invalid_token"` is retried once after a
   * refresh. Only call it for APIs that should see the user's token.
   */
  fetch<D extends SessionData>(
    session: Session<D>,
    input: string | URL | Request,
    init?: RequestInit,
  ): Promise<Response>
  /** Refreshes the session's tokens now, due or not. Throws as {@link accessToken}. */
  refresh<D extends SessionData>(session: Session<D>): Promise<void>
  /**
   * Ends the session (`session.destroy()`: its record is removed and its cookie cleared at
   * commit) and gives the provider's end-session URL to redirect to, with the ID token as
   * `id_token_hint` and `postLogoutRedirectUri`, so the user is logged out there too. A
   * provider without an end-session endpoint: the post-logout URI, else the app's root.
   */
  logout<D extends SessionData>(session: Session<D>, options?: OidcLogoutOptions): URL
  /** openid-client's configuration, for anything else (UserInfo, introspection, revocation). */
  readonly configuration: client.Configuration
}

/**
 * OpenID Connect login for sessions; see the module's documentation. Checks the options, then
 * discovers the provider (one request to its `/.well-known/openid-configuration`).
 * @throws SessionConfigError for options that cannot work (a cookie store, a `SameSite=Strict`
 *   session cookie, an `http:` issuer without `allowInsecureRequests`, ...).
 * @throws OidcError `discovery-failed` when the provider cannot be discovered.
 */
export async function oidc<Data extends SessionData>(options: OidcOptions<Data>): Promise<Oidc> {
  checkOptions(options)
  const { sessions, clientId } = options
  refuseBrowserStore(sessions)
  if (/;\s*samesite=strict/i.test(sessions.cookie.serialize('probe', true))) {
    throw new SessionConfigError(
      "oidc: the session cookie is SameSite=Strict, so the browser does not send it on the provider's redirect back to redirectUri and no callback could find its login; use sameSite: 'lax' (the default)",
    )
  }
  if (typeof clientId !== 'string' || clientId.length === 0) {
    throw new SessionConfigError('oidc: clientId is required (the id the provider gave this app)')
  }
  const insecure = options.allowInsecureRequests ?? false
  const issuer = urlOption(options.issuer, 'issuer', insecure)
  const redirectUri = urlOption(options.redirectUri, 'redirectUri', true)
  if (redirectUri.search !== '' || redirectUri.hash !== '') {
    throw new SessionConfigError(
      `oidc: redirectUri ${JSON.stringify(redirectUri.href)} must have no query or fragment; give the callback route's plain URL`,
    )
  }
  const postLogout =
    options.postLogoutRedirectUri === undefined
      ? undefined
      : urlOption(options.postLogoutRedirectUri, 'postLogoutRedirectUri', true)
  const scope = options.scope ?? 'openid profile email'
  if (!scope.split(' ').includes('openid')) {
    throw new SessionConfigError(
      `oidc: scope ${JSON.stringify(scope)} must include "openid" (without it there is no ID token, so no login)`,
    )
  }
  const extra = checkParams(options.authorizationParams ?? {}, 'authorizationParams')
  const refreshMargin =
    options.refreshMargin === 0 ? 0 : toMs(options.refreshMargin ?? '30s', 'oidc refreshMargin')
  const loginTimeout = toMs(options.loginTimeout ?? '10m', 'oidc loginTimeout')
  const clock = options.clock ?? Date.now
  const userIdOf = options.userId ?? ((claims: OidcClaims) => claims.sub)
  const authentication = authenticationOf(options.clientSecret, options.clientAuthentication)

  let configuration: client.Configuration
  try {
    configuration = await client.discovery(issuer, clientId, options.clientSecret, authentication, {
      // the ID token's signature is checked against the provider's keys (jwks_uri), not
      // taken on trust from the connection: the only check an http: provider would get, and
      // what lets a token response altered on the way (another `sub`) be refused
      execute: insecure
        ? [client.allowInsecureRequests, client.enableNonRepudiationChecks]
        : [client.enableNonRepudiationChecks],
    })
  } catch (err) {
    throw new OidcError('discovery-failed', `could not discover the provider at ${issuer.href}`, {
      cause: err,
    })
  }

  /** Whether an access token is due for a refresh: expired, or expiring within the margin. */
  const due = (tokens: TokenSet): boolean =>
    tokens.expiresAt !== undefined && tokens.expiresAt - refreshMargin <= clock()

  /**
   * Refreshes by refresh token, shared: concurrent requests of one session (tabs, parallel API
   * calls) spend it once, and a request that loaded the session before another's refresh was
   * saved gets that refresh's tokens (for a minute) instead of spending the old refresh token
   * again: a provider that rotates refresh tokens may revoke the whole grant on a reuse.
   */
  const refreshes = new Map<string, Promise<TokenSet>>()
  const refreshed = async (tokens: TokenSet): Promise<TokenSet> => {
    const refreshToken = tokens.refreshToken
    if (refreshToken === undefined) {
      throw new OidcError(
        'refresh-failed',
        'the access token is due and the provider gave no refresh token; log the user in again (or ask for offline_access)',
      )
    }
    const shared = refreshes.get(refreshToken)
    if (shared !== undefined) {
      const result = await shared
      // a result that is no newer than what the caller has, or due itself: refresh again
      if (result.accessToken !== tokens.accessToken && !due(result)) return result
      if (refreshes.get(refreshToken) === shared) refreshes.delete(refreshToken)
    }
    let flight = refreshes.get(refreshToken)
    if (flight === undefined) {
      const forget = () => {
        if (refreshes.get(refreshToken) === flight) refreshes.delete(refreshToken)
      }
      flight = spend(tokens, refreshToken).then(
        (next) => {
          setTimeout(forget, REFRESH_REUSE_MS).unref()
          return next
        },
        (err: unknown) => {
          forget()
          throw err
        },
      )
      refreshes.set(refreshToken, flight)
    }
    return flight
  }

  /** The provider and client, in the keys of what is shared with the app's other instances. */
  const sharedScope = `${configuration.serverMetadata().issuer}\n${clientId}`
  /** Refreshes shared with the app's other instances through the store, when it can. */
  const acrossInstances = sharedRefresh(sessions.store, sharedScope, {
    keepMs: REFRESH_REUSE_MS,
    waitMs: REFRESH_WAIT_MS,
    freshFor: (t) =>
      t.expiresAt === undefined ? REFRESH_REUSE_MS : t.expiresAt - refreshMargin - clock(),
  })
  /** Spends the refresh token: once between the instances, when the store can share it. */
  const spend = async (tokens: TokenSet, refreshToken: string): Promise<TokenSet> => {
    if (acrossInstances === undefined) return grant(tokens, refreshToken)
    const next = await acrossInstances(refreshToken, () => grant(tokens, refreshToken))
    if (next.claims.sub !== tokens.claims.sub) {
      throw new OidcError('refresh-failed', 'the refreshed ID token is of another subject')
    }
    return next
  }

  /** One refresh token grant: the tokens to keep, or an `OidcError` `refresh-failed`. */
  const grant = async (tokens: TokenSet, refreshToken: string): Promise<TokenSet> => {
    let response: Awaited<ReturnType<typeof client.refreshTokenGrant>>
    try {
      response = await client.refreshTokenGrant(configuration, refreshToken)
    } catch (err) {
      throw new OidcError('refresh-failed', 'the provider did not refresh the access token', {
        error: providerErrorOf(err),
        cause: err,
      })
    }
    const next = tokenSetOf(response, tokens, clock())
    if (next.claims.sub !== tokens.claims.sub) {
      throw new OidcError('refresh-failed', 'the refreshed ID token is of another subject')
    }
    return next
  }

  /**
   * Exchanges of authorization codes, shared: a callback the browser sends twice at once (a
   * double click, a restored tab, a prefetch) finds its login in progress in both requests,
   * each having loaded the session before the other committed; a provider refuses a code sent
   * twice and may revoke the tokens it issued for it (RFC 6749 4.1.2). Callbacks with the same
   * parameters (the code among them) for the same login in progress (state, nonce and PKCE
   * verifier: so a code injected into another session is still checked by the provider against
   * that session's verifier) share one exchange and its outcome, tokens or error, for a
   * minute: in this process in memory, and with the app's other instances through the store.
   */
  const exchanges = new Map<string, Promise<TokenSet>>()
  const codesAcrossInstances = sharedSpend(sessions.store, sharedScope, {
    spent: 'code',
    keepMs: CODE_REUSE_MS,
    waitMs: CODE_WAIT_MS,
  })
  const exchanged = (
    callbackUrl: URL,
    login: PendingLogin,
    exchange: () => Promise<TokenSet>,
  ): Promise<TokenSet> => {
    const params = new URLSearchParams(callbackUrl.searchParams)
    params.sort()
    const key = createHash('sha256')
      .update(JSON.stringify([params.toString(), login.state, login.nonce, login.verifier]))
      .digest('base64url')
    let flight = exchanges.get(key)
    if (flight === undefined) {
      const started =
        codesAcrossInstances === undefined ? exchange() : codesAcrossInstances(key, exchange)
      const forget = () => {
        if (exchanges.get(key) === started) exchanges.delete(key)
      }
      const later = () => {
        setTimeout(forget, CODE_REUSE_MS).unref()
      }
      started.then(later, later)
      exchanges.set(key, started)
      flight = started
    }
    return flight
  }

  const refreshSession = async <D extends SessionData>(
    session: Session<D>,
    tokens: TokenSet,
  ): Promise<TokenSet> => {
    const next = await refreshed(tokens)
    // another call of this request may have stored newer ones meanwhile
    if (tokensOf(session)?.accessToken === tokens.accessToken) setTokens(session, next)
    return next
  }

  const loggedIn = <D extends SessionData>(session: Session<D>, what: string): TokenSet => {
    const tokens = tokensOf(session)
    if (tokens === undefined)
      throw new OidcError('not-logged-in', `${what} needs a logged-in session`)
    return tokens
  }

  const accessToken = async <D extends SessionData>(session: Session<D>): Promise<string> => {
    const tokens = loggedIn(session, 'accessToken()')
    if (!due(tokens)) return tokens.accessToken
    return (await refreshSession(session, tokens)).accessToken
  }

  return {
    configuration,

    async login(session, loginOptions = {}) {
      const returnTo =
        loginOptions.returnTo === undefined
          ? '/'
          : safeReturnTo(loginOptions.returnTo, redirectUri.origin)
      if (returnTo === undefined) {
        throw new OidcError(
          'unsafe-return-to',
          'returnTo must be a path of this site, such as "/account"; another host would make the login an open redirect',
        )
      }
      const params = { ...extra, ...checkParams(loginOptions.params ?? {}, 'login params') }
      const verifier = client.randomPKCECodeVerifier()
      const pending: PendingLogin = {
        state: client.randomState(),
        nonce: client.randomNonce(),
        verifier,
        returnTo,
        expiresAt: clock() + loginTimeout,
      }
      const maxAge = params.max_age === undefined ? undefined : Number(params.max_age)
      if (maxAge !== undefined) {
        if (!Number.isInteger(maxAge) || maxAge < 0) {
          throw new SessionConfigError('oidc: max_age must be a whole number of seconds')
        }
        pending.maxAge = maxAge
      }
      // in a field of its own: a login another tab starts at the same time keeps its own
      addPendingLogin(session, pending, clock())
      return client.buildAuthorizationUrl(configuration, {
        ...params,
        redirect_uri: redirectUri.href,
        scope,
        state: pending.state,
        nonce: pending.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      })
    },

    async callback(session, callbackUrl) {
      let given: URL
      try {
        given = new URL(String(callbackUrl), redirectUri)
      } catch {
        throw new OidcError('state-mismatch', 'the callback URL cannot be read')
      }
      if (pendingLogins(session).length === 0) {
        throw new OidcError(
          'no-login-in-progress',
          'this session has no login in progress: a replayed callback, or the session cookie did not come back',
        )
      }
      const state = given.searchParams.get('state')
      const login = state === null ? undefined : pendingLogin(session, state)
      if (login === undefined) {
        throw new OidcError(
          'state-mismatch',
          "the callback's state is not of a login this session started",
        )
      }
      // one use, whatever happens next
      deletePendingLogin(session, login)
      const now = clock()
      if (login.expiresAt <= now) {
        throw new OidcError('login-expired', 'the login took longer than loginTimeout')
      }
      // the provider's answer, at the registered redirect URI (openid-client derives the
      // redirect_uri it sends from it): an app behind a proxy may see another host
      const current = new URL(redirectUri.href)
      current.search = given.search
      const exchange = async (): Promise<TokenSet> => {
        let response: Awaited<ReturnType<typeof client.authorizationCodeGrant>>
        try {
          response = await client.authorizationCodeGrant(configuration, current, {
            pkceCodeVerifier: login.verifier,
            expectedState: login.state,
            expectedNonce: login.nonce,
            idTokenExpected: true,
            ...(login.maxAge === undefined ? {} : { maxAge: login.maxAge }),
          })
        } catch (err) {
          throw failure(err, 'the provider did not complete the login')
        }
        const tokens = tokenSetOf(response, undefined, now)
        if (options.userInfo) {
          let info: client.UserInfoResponse
          try {
            info = await client.fetchUserInfo(configuration, tokens.accessToken, tokens.claims.sub)
          } catch (err) {
            throw failure(err, 'the provider did not give the UserInfo claims')
          }
          tokens.claims = { ...profileClaims(info), ...tokens.claims }
        }
        return tokens
      }
      // a callback with no code (the provider's error) has nothing to share
      const tokens = given.searchParams.has('code')
        ? await exchanged(current, login, exchange)
        : await exchange()
      const userId = userIdOf(tokens.claims)
      if (session.userId !== undefined && session.userId !== userId) session.clear()
      session.regenerate()
      setPendingLogins(session, [])
      setTokens(session, tokens)
      session.setUser(userId)
      return { returnTo: login.returnTo, user: tokens.claims }
    },

    user: (session) => tokensOf(session)?.claims,

    idToken: (session) => tokensOf(session)?.idToken,

    accessToken,

    async fetch(session, input, init) {
      const request = new Request(input, init)
      const send = (token: string): Promise<Response> => {
        const attempt = request.clone()
        attempt.headers.set('authorization', `Bearer ${token}`)
        return globalThis.fetch(attempt)
      }
      const token = await accessToken(session)
      const response = await send(token)
      if (
        response.status !== 401 ||
        !/\berror\s*=\s*"?invalid_token\b/i.test(response.headers.get('www-authenticate') ?? '')
      ) {
        return response
      }
      const tokens = tokensOf(session)
      if (tokens?.refreshToken === undefined || tokens.accessToken !== token) return response
      await response.body?.cancel()
      return send((await refreshSession(session, tokens)).accessToken)
    },

    async refresh(session) {
      await refreshSession(session, loggedIn(session, 'refresh()'))
    },

    logout(session, logoutOptions = {}) {
      const after =
        logoutOptions.postLogoutRedirectUri === undefined
          ? postLogout
          : urlOption(logoutOptions.postLogoutRedirectUri, 'postLogoutRedirectUri', true)
      const tokens = tokensOf(session)
      session.destroy()
      if (configuration.serverMetadata().end_session_endpoint === undefined) {
        return after ?? new URL('/', redirectUri)
      }
      const params: Record<string, string> = {}
      if (tokens !== undefined) params.id_token_hint = tokens.idToken
      if (after !== undefined) params.post_logout_redirect_uri = after.href
      if (logoutOptions.state !== undefined) params.state = logoutOptions.state
      return client.buildEndSessionUrl(configuration, params)
    },
  }
}

/**
 * Refuses a manager whose sessions live in the browser: a session holding an ID token, an
 * access token and a refresh token is several kilobytes, past a cookie's limit, and tokens
 * must stay on the server.
 */
function refuseBrowserStore<D extends SessionData>(sessions: SessionManager<D>): void {
  const store: SessionStore = sessions.store
  if (sessions.clientSide) {
    throw new SessionConfigError(
      `oidc: the ${store.name} store keeps sessions in the browser, and OpenID Connect tokens do not fit a cookie (nor belong in one); create the sessions with a server store, such as memoryStore() in one process or redisStore() / postgresStore() for several`,
    )
  }
}

/** The kinds of the options read before discovery that are not URLs, durations or the manager. */
const OPTION_KINDS = {
  clientSecret: 'string',
  scope: 'string',
  authorizationParams: 'object',
  userId: 'function',
  userInfo: 'boolean',
  allowInsecureRequests: 'boolean',
  clock: 'function',
} as const

/**
 * Refuses options of the wrong kind, as JavaScript callers or a hand-built config can pass
 * them, before anything reads them: each would otherwise be a `TypeError` somewhere inside.
 */
function checkOptions(options: unknown): void {
  checkObject(options, 'oidc: the options are an object: oidc({ sessions, issuer, ... })')
  const o = options as Record<string, unknown>
  checkManager(o.sessions, 'oidc: sessions must be the manager createSessions() made')
  checkKinds(o, OPTION_KINDS, (name) => `oidc: ${name}`)
  const method = o.clientAuthentication
  if (
    method !== undefined &&
    typeof method !== 'function' &&
    method !== 'client_secret_basic' &&
    method !== 'client_secret_post'
  ) {
    throw new SessionConfigError(
      "oidc: clientAuthentication must be 'client_secret_basic', 'client_secret_post' or a ClientAuth function",
    )
  }
}

/** What each URL option is, for the message when it is missing. */
const REQUIRED_URLS: Readonly<Record<string, string>> = {
  issuer: "the provider's issuer URL, such as https://accounts.example.com",
  redirectUri:
    "the callback route's absolute URL, registered at the provider, such as https://app.example.com/auth/callback",
}

/** An option that must be an absolute http(s) URL; `http:` only when `insecureOk`. */
function urlOption(value: string | URL, name: string, insecureOk: boolean): URL {
  if (value === undefined || value === null || value === '') {
    throw new SessionConfigError(
      `oidc: ${name} is required: ${REQUIRED_URLS[name] ?? 'an absolute https: URL'}`,
    )
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new SessionConfigError(
      `oidc: ${name} ${JSON.stringify(String(value))} is not an absolute URL`,
    )
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && insecureOk)) {
    throw new SessionConfigError(
      url.protocol === 'http:'
        ? `oidc: ${name} ${JSON.stringify(url.href)} is http:, so tokens would cross the network in clear; use https:, or allowInsecureRequests: true for a provider on loopback in development and tests`
        : `oidc: ${name} ${JSON.stringify(url.href)} must be an https: URL`,
    )
  }
  return url
}

/** `params` as given, refusing the ones the module sets itself. */
function checkParams(
  params: Readonly<Record<string, string>>,
  what: string,
): Record<string, string> {
  for (const [name, value] of Object.entries(params)) {
    if (OWN_PARAMETERS.has(name)) {
      throw new SessionConfigError(
        `oidc: ${what} cannot set ${name}: the module sets it (scope has its own option)`,
      )
    }
    if (typeof value !== 'string') {
      throw new SessionConfigError(`oidc: ${what}.${name} must be a string`)
    }
  }
  return { ...params }
}

/** The `ClientAuth` for the options. */
function authenticationOf(
  secret: string | undefined,
  method: OidcOptions['clientAuthentication'],
): client.ClientAuth {
  if (typeof method === 'function') return method
  if (secret === undefined || secret === '') {
    if (method !== undefined) {
      throw new SessionConfigError(`oidc: clientAuthentication ${method} needs a clientSecret`)
    }
    return client.None()
  }
  return method === 'client_secret_post'
    ? client.ClientSecretPost(secret)
    : client.ClientSecretBasic(secret)
}

/** The tokens to keep from a token endpoint response; `previous` fills what a refresh omits. */
function tokenSetOf(
  response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
  previous: TokenSet | undefined,
  now: number,
): TokenSet {
  const claims = response.claims() as OidcClaims | undefined
  const idToken = response.id_token ?? previous?.idToken
  const kept = claims ?? previous?.claims
  if (kept === undefined || idToken === undefined) {
    throw new OidcError('invalid-response', 'the provider gave no ID token')
  }
  const tokens: TokenSet = {
    // a refresh's ID token brings its claims; the ones it lacks (from UserInfo) are kept
    claims: previous === undefined ? kept : { ...previous.claims, ...kept },
    idToken,
    accessToken: response.access_token,
    tokenType: response.token_type,
  }
  const refreshToken = response.refresh_token ?? previous?.refreshToken
  if (refreshToken !== undefined) tokens.refreshToken = refreshToken
  if (typeof response.expires_in === 'number') tokens.expiresAt = now + response.expires_in * 1000
  const scope = response.scope ?? previous?.scope
  if (scope !== undefined) tokens.scope = scope
  return tokens
}

/**
 * The claims only an ID token speaks for: who issued it, to whom, when, and how the user
 * authenticated (OpenID Connect Core 2). UserInfo is not signed by default and says who the
 * user is, not how they logged in, so these are never taken from it, even where the ID token
 * lacks them: an app reading `user().acr` for step-up must see the ID token's or nothing.
 */
const ID_TOKEN_CLAIMS = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'iat',
  'nbf',
  'jti',
  'auth_time',
  'nonce',
  'acr',
  'amr',
  'azp',
  'at_hash',
  'c_hash',
  's_hash',
  'sid',
])

/** UserInfo's claims without those only an ID token speaks for. */
function profileClaims(info: client.UserInfoResponse): Record<string, unknown> {
  const kept: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(info)) {
    if (!ID_TOKEN_CLAIMS.has(name)) kept[name] = value
  }
  return kept
}

/**
 * An openid-client failure as an `OidcError`: the provider refused (an OAuth error) or could not
 * be reached, or its answer failed a check.
 */
function failure(err: unknown, detail: string): OidcError {
  const error = providerErrorOf(err)
  return error === undefined && !unreachable(err)
    ? new OidcError('invalid-response', "the provider's answer failed a check", { cause: err })
    : new OidcError('provider-error', detail, { error, cause: err })
}

/** Whether `err` is `fetch` failing to reach the provider (refused, reset, DNS). */
function unreachable(err: unknown): boolean {
  return err instanceof TypeError && err.message === 'fetch failed'
}
