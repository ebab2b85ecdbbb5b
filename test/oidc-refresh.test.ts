/**
 * tessera/oidc's token refresh: an access token that expired (or is about to) is refreshed
 * with the refresh token before fetch() sends it, the new tokens are saved with the session,
 * concurrent requests spend the refresh token once, and a refusal is an error that carries no
 * token. The module's clock is moved; the provider's tokens really expire at its own TTL.
 */
import { inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OidcError } from '../src/oidc/index.js'
import { ACCOUNT, Browser, type OidcApp, startOidcApp } from './helpers/oidc-provider.js'

interface Tokens {
  accessToken: string
  refreshToken?: string
  idToken: string
  expiresAt?: number
}

let app: OidcApp
beforeAll(async () => {
  // access tokens live 60 s at the provider; refreshMargin is the default 30 s
  app = await startOidcApp({ accessTokenTtl: 60 })
})
afterAll(async () => {
  await app?.close()
})

const tokens = async (browser: Browser): Promise<Tokens> =>
  (await browser.request(`${app.url}/tokens`)).json()
/** The app's `/api`: `{ status, body }` of the resource when fetch() worked, else the OidcError. */
const api = async (browser: Browser) => {
  const response = await browser.request(`${app.url}/api`)
  const body = await response.json()
  return response.status === 200 ? body : { status: response.status, error: body }
}
const refreshes = () => app.idp.grants.filter((g) => g === 'refresh_token').length

async function loggedIn(): Promise<{ browser: Browser; first: Tokens }> {
  const browser = new Browser()
  await app.login(browser)
  const first = await tokens(browser)
  expect(first.refreshToken).toBeDefined()
  expect(first.expiresAt).toBeGreaterThan(Date.now())
  return { browser, first }
}

describe('oidc refresh', () => {
  it('keeps using an access token that is far from expiring', async () => {
    const { browser, first } = await loggedIn()
    const before = refreshes()
    app.advance(10_000)
    expect(await api(browser)).toMatchObject({ status: 200, body: { sub: ACCOUNT.sub } })
    expect(app.idp.seenTokens.at(-1)).toBe(first.accessToken)
    expect(refreshes()).toBe(before)
  })

  it('refreshes an expired access token before sending it, and saves the new tokens', async () => {
    const { browser, first } = await loggedIn()
    const before = refreshes()
    app.advance(61_000)
    expect(await api(browser)).toMatchObject({ status: 200, body: { sub: ACCOUNT.sub } })
    expect(refreshes()).toBe(before + 1)
    const sent = app.idp.seenTokens.at(-1)!
    expect(sent).not.toBe(first.accessToken)

    // saved with the session: the next request (a new load) has the new token, and refreshes nothing
    const second = await tokens(browser)
    expect(second.accessToken).toBe(sent)
    expect(second.expiresAt).toBeGreaterThan(first.expiresAt!)
    expect(await api(browser)).toMatchObject({ status: 200 })
    expect(app.idp.seenTokens.at(-1)).toBe(sent)
    expect(refreshes()).toBe(before + 1)
  })

  it('refreshes a token that expires within refreshMargin', async () => {
    const { browser, first } = await loggedIn()
    const before = refreshes()
    app.advance(45_000) // 15 s left, under the 30 s margin
    expect(await api(browser)).toMatchObject({ status: 200 })
    expect(refreshes()).toBe(before + 1)
    expect(app.idp.seenTokens.at(-1)).not.toBe(first.accessToken)
  })

  it('spends the refresh token once for concurrent requests of one session', async () => {
    const { browser } = await loggedIn()
    const before = refreshes()
    app.advance(61_000)
    const answers = await Promise.all([api(browser), api(browser), api(browser)])
    for (const answer of answers) expect(answer).toMatchObject({ status: 200 })
    expect(refreshes()).toBe(before + 1)
    expect(new Set(app.idp.seenTokens.slice(-3)).size).toBe(1)
  })

  it("gives a request that loaded the session before another's refresh was saved that refresh's tokens", async () => {
    const { browser, first } = await loggedIn()
    const cookie = `sid=${browser.jar(app.url).get('sid')}`
    const early = await app.sessions.load(cookie)
    const late = await app.sessions.load(cookie)
    const before = refreshes()
    app.advance(61_000)
    const one = await app.auth.accessToken(early)
    await app.sessions.commit(early)
    // `late` still holds the old tokens: it must not spend the old refresh token again
    expect(app.auth.idToken(late)).toBe(first.idToken)
    const two = await app.auth.accessToken(late)
    expect(one).not.toBe(first.accessToken)
    expect(two).toBe(one)
    expect(refreshes()).toBe(before + 1)
  })

  it('refreshes and retries once when the API answers 401 invalid_token (revoked early)', async () => {
    const { browser, first } = await loggedIn()
    const before = refreshes()
    const stored = await app.idp.provider.AccessToken.find(first.accessToken)
    await stored!.destroy()
    expect(await api(browser)).toMatchObject({ status: 200, body: { sub: ACCOUNT.sub } })
    expect(refreshes()).toBe(before + 1)
    expect(app.idp.seenTokens.slice(-2)[0]).toBe(first.accessToken)
    expect(app.idp.seenTokens.at(-1)).not.toBe(first.accessToken)
  })

  it('fails with refresh-failed when the provider refuses the refresh token, naming no token', async () => {
    const { browser, first } = await loggedIn()
    const stored = await app.idp.provider.RefreshToken.find(first.refreshToken!)
    await stored!.destroy()
    app.advance(61_000)
    const { status, error: body } = await api(browser)
    expect(status).toBe(400)
    expect(body).toMatchObject({ reason: 'refresh-failed', error: 'invalid_grant' })
    expect(body.message).toMatch(/^\[tessera\] oidc: refresh-failed/)
    for (const secret of [first.accessToken, first.refreshToken!, first.idToken]) {
      expect(body.message).not.toContain(secret)
    }
  })

  it('keeps the error and its whole cause chain free of tokens', async () => {
    const { browser, first } = await loggedIn()
    await (await app.idp.provider.RefreshToken.find(first.refreshToken!))!.destroy()
    app.advance(61_000)
    // in-process, to see the whole error object as a logger would print it
    const session = await app.sessions.load(`sid=${browser.jar(app.url).get('sid')}`)
    const error = await app.auth.accessToken(session).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(OidcError)
    expect(error).toMatchObject({ code: 'ERR_SESSION_OIDC', reason: 'refresh-failed' })
    const printed = `${inspect(error, { depth: 20, showHidden: true })} ${JSON.stringify(error)}`
    expect(printed).toContain('invalid_grant')
    for (const secret of [first.accessToken, first.refreshToken!, first.idToken]) {
      expect(printed).not.toContain(secret)
    }
    // the refusal changed nothing in the session
    expect((await tokens(browser)).refreshToken).toBe(first.refreshToken)
  })
})

describe('oidc refresh without a refresh token', () => {
  it('fails with refresh-failed once the access token expires', async () => {
    const bare = await startOidcApp({ refreshTokens: false })
    try {
      const browser = new Browser()
      await bare.login(browser)
      const kept = await (await browser.request(`${bare.url}/tokens`)).json()
      expect(kept.refreshToken).toBeUndefined()
      expect((await browser.request(`${bare.url}/api`)).status).toBe(200)
      bare.advance(61_000)
      const response = await browser.request(`${bare.url}/api`)
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ reason: 'refresh-failed', error: null })
    } finally {
      await bare.close()
    }
  })
})
