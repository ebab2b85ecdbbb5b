/**
 * A real OpenID provider (`oidc-provider`) on loopback for the OIDC tests, with one confidential
 * client, one account, interactions finished by code (no forms), and a protected resource that
 * checks bearer tokens against the provider's own store. Plus a browser: a cookie jar per
 * origin that follows no redirect by itself.
 */
import { generateKeyPairSync } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { withSession } from '../../src/adapters/node.js'
import type { SessionManager } from '../../src/core/manager.js'
import type { SessionStore } from '../../src/core/store.js'
import { createSessions } from '../../src/index.js'
import { pendingLogins, setPendingLogins, tokensOf } from '../../src/oidc/fields.js'
import { type Oidc, OidcError, type OidcOptions, oidc } from '../../src/oidc/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { applyToJar, headerOf } from './cookie-jar.js'
import { listen, type Running } from './http.js'

export const CLIENT_ID = 'tessera-app'
export const CLIENT_SECRET = 'tessera-app-secret-0123456789abcdef'
export const ACCOUNT = {
  sub: 'user-42',
  email: 'ada@example.test',
  email_verified: true,
  name: 'Ada Lovelace',
} as const

/** What these tests use of oidc-provider's (untyped) API. */
interface Token {
  accountId: string
  scope?: string
  isExpired: boolean
  destroy(): Promise<void>
}
interface TokenModel {
  find(value: string): Promise<Token | undefined>
}
interface GrantLike {
  addOIDCScope(scope: string): void
  save(): Promise<string>
}
interface ProviderLike {
  callback(): (req: IncomingMessage, res: ServerResponse) => void
  interactionDetails(
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<{ params: Record<string, string>; grantId?: string }>
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>
  on(event: string, listener: (...args: never[]) => void): void
  Grant: (new (init: {
    accountId: string
    clientId: string
  }) => GrantLike) & {
    find(id: string): Promise<GrantLike | undefined>
  }
  AccessToken: TokenModel
  RefreshToken: TokenModel
}

/** An edit of a JSON answer's body. */
type JsonEdit = (body: Record<string, unknown>) => Record<string, unknown>

export interface TestProvider {
  issuer: string
  /** A protected resource: 200 `{ sub, scope }` for a valid bearer token, else 401 invalid_token. */
  resourceUrl: string
  provider: ProviderLike
  /** Bearer tokens the resource was sent, in order. */
  seenTokens: string[]
  /** The grant type of every successful token request, in order. */
  grants: string[]
  /** The grant type of every refused token request (a spent code: `invalid_grant`), in order. */
  refusedGrants: string[]
  /** The next interaction ends with `access_denied` (the user refused). */
  denyNext(): void
  /**
   * The next token response's ID token reaches the client with its claims edited by `edit`
   * and its signature left as it was (an answer altered on the way, or a forged provider).
   */
  alterNextIdToken(edit: JsonEdit): void
  /** The next UserInfo answer reaches the client with its claims edited by `edit`. */
  alterNextUserInfo(edit: JsonEdit): void
  close(): Promise<void>
}

export interface ProviderOptions {
  redirectUri: string
  postLogoutRedirectUri: string
  /** Access token lifetime, in seconds. @default 60 */
  accessTokenTtl?: number
  /** Issue refresh tokens. @default true */
  refreshTokens?: boolean
  /**
   * A new refresh token with every refresh, the spent one refused from then on, and its reuse
   * revoking the whole grant (oidc-provider's reuse detection). @default oidc-provider's own
   */
  rotateRefreshTokens?: boolean
}

/** Starts a provider on a free loopback port. */
export async function startProvider(options: ProviderOptions): Promise<TestProvider> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503).end()
  }
  const running: Running = await listen(createServer((req, res) => handler(req, res)))
  const issuer = running.url

  // untyped package: a variable specifier keeps tsc from asking for its declarations
  const name = 'oidc-provider'
  const { default: Provider } = (await import(name)) as {
    default: new (issuer: string, config: Record<string, unknown>) => ProviderLike
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [options.redirectUri],
        post_logout_redirect_uris: [options.postLogoutRedirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig' }] },
    cookies: { keys: ['oidc-test-cookie-key-0123456789abcdef'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
    // a PKCE challenge in every authorization request, whatever the client
    pkce: { required: () => true },
    // a refresh token for the client without asking offline_access (and prompt=consent)
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) =>
      (options.refreshTokens ?? true) && client.grantTypeAllowed('refresh_token'),
    ...(options.rotateRefreshTokens === undefined
      ? {}
      : { rotateRefreshToken: options.rotateRefreshTokens }),
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ ...ACCOUNT, sub }),
    }),
    ttl: {
      AccessToken: options.accessTokenTtl ?? 60,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Grant: 3600,
      Session: 3600,
      RefreshToken: 3600,
    },
    renderError: async (ctx: { type: string; body: unknown }, out: unknown) => {
      ctx.type = 'json'
      ctx.body = out
    },
  })

  const grants: string[] = []
  provider.on('grant.success', ((ctx: { oidc: { params: { grant_type: string } } }) => {
    grants.push(ctx.oidc.params.grant_type)
  }) as never)
  const refusedGrants: string[] = []
  provider.on('grant.error', ((ctx: { oidc?: { params?: { grant_type?: unknown } } }) => {
    refusedGrants.push(String(ctx.oidc?.params?.grant_type))
  }) as never)
  let deny = false
  /** The edit of the next JSON answer of a path of the provider, each used once. */
  const nextEdits = new Map<string, JsonEdit>()
  const seenTokens: string[] = []
  const callback = provider.callback()

  handler = (req, res) => {
    const path = new URL(req.url ?? '/', issuer).pathname
    if (path.startsWith('/interaction/')) {
      finishInteraction(req, res).catch((err: unknown) => {
        res.writeHead(500).end(String(err))
      })
      return
    }
    if (path === '/resource') {
      resource(req, res).catch((err: unknown) => {
        res.writeHead(500).end(String(err))
      })
      return
    }
    const edit = nextEdits.get(path)
    if (edit !== undefined) {
      nextEdits.delete(path)
      rewriteJson(res, edit)
    }
    callback(req, res)
  }

  /** Rewrites the JSON body `res` is about to end with. */
  function rewriteJson(res: ServerResponse, edit: JsonEdit) {
    const end = res.end.bind(res) as (body?: unknown) => ServerResponse
    res.end = ((body?: unknown) => {
      if (body === undefined || body === null || typeof body === 'function') return end(body)
      const text = JSON.stringify(edit(JSON.parse(String(body)) as Record<string, unknown>))
      res.setHeader('content-length', Buffer.byteLength(text))
      return end(text)
    }) as typeof res.end
  }

  /** A token answer's edit: the ID token's payload by `edit`, its signature left as it was. */
  const idTokenEdit =
    (edit: JsonEdit): JsonEdit =>
    (answer) => {
      if (typeof answer.id_token !== 'string') return answer
      const [header, payload, signature] = answer.id_token.split('.')
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<
        string,
        unknown
      >
      const edited = Buffer.from(JSON.stringify(edit(claims))).toString('base64url')
      return { ...answer, id_token: `${header}.${edited}.${signature}` }
    }

  async function finishInteraction(req: IncomingMessage, res: ServerResponse) {
    const details = await provider.interactionDetails(req, res)
    if (deny) {
      deny = false
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user refused' },
        { mergeWithLastSubmission: false },
      )
      return
    }
    const grant =
      (details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId)) ??
      new provider.Grant({ accountId: ACCOUNT.sub, clientId: details.params.client_id! })
    grant.addOIDCScope(details.params.scope ?? 'openid')
    const grantId = await grant.save()
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: ACCOUNT.sub }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    )
  }

  async function resource(req: IncomingMessage, res: ServerResponse) {
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
    if (match === null) {
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end()
      return
    }
    seenTokens.push(match[1]!)
    const token = await provider.AccessToken.find(match[1]!)
    if (token === undefined || token.isExpired) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ sub: token.accountId, scope: token.scope }))
  }

  return {
    issuer,
    resourceUrl: `${issuer}/resource`,
    provider,
    seenTokens,
    grants,
    refusedGrants,
    denyNext: () => {
      deny = true
    },
    alterNextIdToken: (edit) => {
      nextEdits.set('/token', idTokenEdit(edit))
    },
    // oidc-provider's default userinfo route (the config above sets no `routes`)
    alterNextUserInfo: (edit) => {
      nextEdits.set('/me', edit)
    },
    close: () => running.close(),
  }
}

/** A browser: one cookie jar per origin (cookies ignore ports, but these servers share no name). */
export class Browser {
  readonly jars = new Map<string, Map<string, string>>()

  jar(origin: string): Map<string, string> {
    let jar = this.jars.get(origin)
    if (jar === undefined) {
      jar = new Map()
      this.jars.set(origin, jar)
    }
    return jar
  }

  /** One request, cookies sent and kept; redirects are not followed. */
  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url)
    const jar = this.jar(target.origin)
    const headers = new Headers(init.headers)
    if (jar.size > 0) headers.set('cookie', headerOf(jar))
    const response = await fetch(target, { ...init, headers, redirect: 'manual' })
    applyToJar(jar, response.headers.getSetCookie())
    return response
  }

  /**
   * Follows redirects from `url` until one leads to `stopAt` (an origin and path, such as the
   * app's callback): that URL is returned unvisited, so a test can visit, tamper or replay it.
   */
  async followUntil(url: string | URL, stopAt: string): Promise<URL> {
    let next = new URL(url)
    for (let hops = 0; hops < 10; hops++) {
      if (`${next.origin}${next.pathname}` === stopAt) return next
      const response = await this.request(next)
      await response.arrayBuffer()
      const location = response.headers.get('location')
      if (location === null) {
        throw new Error(`${next.href} answered ${response.status} without a redirect`)
      }
      next = new URL(location, next)
    }
    throw new Error(`no redirect to ${stopAt} within 10 hops`)
  }
}

/** Session data of the test app. */
export type AppData = { cart?: string }

/** The secret of the test app's sessions (another instance of the app needs it too). */
export const OIDC_APP_SECRET = 'oidc-test-secret-0123456789abcdef-0123456789'

export interface OidcApp {
  /** The app's origin. */
  url: string
  callbackUrl: string
  idp: TestProvider
  auth: Oidc
  sessions: SessionManager<AppData>
  /** Moves the module's clock (not the provider's) by `ms`. */
  advance(ms: number): void
  /** Logs `browser` in: login, the provider, then the callback; the callback's answer. */
  login(browser: Browser, returnTo?: string): Promise<Response>
  close(): Promise<void>
}

/**
 * The test app over the node adapter and a memory store, with a provider beside it:
 * `/login?returnTo=`, `/callback`, `/me`, `/api` (fetch() of the provider's resource),
 * `/logout`, `/cart?v=` (app data), `/tokens` (what the session keeps, for assertions), and `/tamper?field=&value=` (rewrites the session's login
 * in progress, as an attacker with the store could not, to prove each check is made).
 * An `OidcError` is answered 400 `{ reason, error, message }`.
 */
export async function startOidcApp(
  options: {
    accessTokenTtl?: number
    refreshTokens?: boolean
    rotateRefreshTokens?: boolean
    /** The sessions' store. @default a memory store */
    store?: SessionStore
    oidc?: Partial<OidcOptions<AppData>>
    /**
     * The host name the app is visited by (it listens on 127.0.0.1 either way): `localhost`
     * makes the app another site than the provider, as in production. @default '127.0.0.1'
     */
    appHost?: string
  } = {},
): Promise<OidcApp> {
  let skew = 0
  const sessions = createSessions<AppData>({
    secret: OIDC_APP_SECRET,
    store: options.store ?? memoryStore({ sweepInterval: 0 }),
  })
  let auth: Oidc | undefined
  let idp: TestProvider | undefined
  const json = (res: ServerResponse, body: unknown, status = 200) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  }
  const app = await listen(
    createServer(
      withSession(sessions, async (req, res, session) => {
        const url = new URL(req.url ?? '/', 'http://app.invalid')
        const a = auth!
        try {
          switch (url.pathname) {
            case '/login': {
              const returnTo = url.searchParams.get('returnTo')
              const to = await a.login(session, returnTo === null ? {} : { returnTo })
              res.writeHead(302, { location: to.href }).end()
              return
            }
            case '/callback': {
              const { returnTo } = await a.callback(session, req.url!)
              res.writeHead(302, { location: returnTo }).end()
              return
            }
            case '/me':
              json(res, {
                user: a.user(session) ?? null,
                userId: session.userId ?? null,
                idToken: a.idToken(session) ?? null,
                keys: session.keys(),
                cart: session.get('cart') ?? null,
              })
              return
            case '/api': {
              const answer = await a.fetch(session, idp!.resourceUrl)
              json(res, { status: answer.status, body: answer.ok ? await answer.json() : null })
              return
            }
            case '/logout':
              res.writeHead(302, { location: a.logout(session).href }).end()
              return
            case '/tokens':
              json(res, tokensOf(session) ?? null)
              return
            case '/cart':
              session.set('cart', url.searchParams.get('v') ?? '')
              json(res, 'ok')
              return
            case '/tamper': {
              const field = url.searchParams.get('field') as 'nonce' | 'verifier' | 'expiresAt'
              const value = url.searchParams.get('value') ?? ''
              setPendingLogins(
                session,
                pendingLogins(session).map((p) => ({
                  ...p,
                  [field]: field === 'expiresAt' ? Number(value) : value,
                })),
              )
              json(res, 'ok')
              return
            }
          }
          json(res, null, 404)
        } catch (err) {
          if (!(err instanceof OidcError)) throw err
          json(res, { reason: err.reason, error: err.error ?? null, message: err.message }, 400)
        }
      }),
    ),
  )
  const appUrl = `http://${options.appHost ?? '127.0.0.1'}:${new URL(app.url).port}`
  const callbackUrl = `${appUrl}/callback`
  idp = await startProvider({
    redirectUri: callbackUrl,
    postLogoutRedirectUri: `${appUrl}/bye`,
    ...(options.accessTokenTtl === undefined ? {} : { accessTokenTtl: options.accessTokenTtl }),
    ...(options.refreshTokens === undefined ? {} : { refreshTokens: options.refreshTokens }),
    ...(options.rotateRefreshTokens === undefined
      ? {}
      : { rotateRefreshTokens: options.rotateRefreshTokens }),
  })
  auth = await oidc({
    sessions,
    issuer: idp.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUri: callbackUrl,
    postLogoutRedirectUri: `${appUrl}/bye`,
    allowInsecureRequests: true,
    clock: () => Date.now() + skew,
    ...options.oidc,
  })
  const provider = idp
  return {
    url: appUrl,
    callbackUrl,
    idp: provider,
    auth,
    sessions,
    advance: (ms) => {
      skew += ms
    },
    async login(browser, returnTo) {
      const start = `${appUrl}/login${returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`}`
      const callback = await browser.followUntil(start, callbackUrl)
      return browser.request(callback)
    },
    async close() {
      await app.close()
      await provider.close()
      await sessions.close()
    },
  }
}
