/**
 * tessera/oidc against a real OpenID provider (oidc-provider) over HTTP: the whole login, the
 * session bound to the user, tokens kept server-side, fetch() with the bearer token and its
 * refresh, and RP-initiated logout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashSessionId } from '../src/core/ids.js'
import { ACCOUNT, Browser, type OidcApp, startOidcApp } from './helpers/oidc-provider.js'

let app: OidcApp
beforeAll(async () => {
  app = await startOidcApp()
})
afterAll(async () => {
  await app?.close()
})

const me = async (browser: Browser) => (await browser.request(`${app.url}/me`)).json()
const sid = (browser: Browser) => browser.jar(app.url).get('sid')

describe('oidc login', () => {
  it('redirects to the provider with PKCE (S256), state and nonce, and keeps them in the session', async () => {
    const browser = new Browser()
    const response = await browser.request(`${app.url}/login`)
    expect(response.status).toBe(302)
    const to = new URL(response.headers.get('location')!)
    expect(to.origin).toBe(app.idp.issuer)
    expect(to.searchParams.get('client_id')).toBe('tessera-app')
    expect(to.searchParams.get('redirect_uri')).toBe(app.callbackUrl)
    expect(to.searchParams.get('response_type')).toBe('code')
    expect(to.searchParams.get('scope')).toBe('openid profile email')
    expect(to.searchParams.get('code_challenge_method')).toBe('S256')
    expect(to.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/)
    expect(to.searchParams.get('state')).toMatch(/^[\w-]{20,}$/)
    expect(to.searchParams.get('nonce')).toMatch(/^[\w-]{20,}$/)
    // the session was saved (it holds the login in progress), and nothing of it is app data
    expect(sid(browser)).toBeDefined()
    expect(await me(browser)).toMatchObject({ user: null, userId: null, keys: [] })
  })

  it('logs in: the callback binds the session to the user, with a new id, and gives returnTo', async () => {
    const browser = new Browser()
    await browser.request(`${app.url}/cart?v=book`)
    const before = sid(browser)
    expect(before).toBeDefined()

    const callback = await app.login(browser, '/account?tab=2')
    expect(callback.status).toBe(302)
    expect(callback.headers.get('location')).toBe('/account?tab=2')

    const after = sid(browser)
    expect(after).toBeDefined()
    expect(after).not.toBe(before)
    const body = await me(browser)
    expect(body.userId).toBe(ACCOUNT.sub)
    expect(body.user).toMatchObject({ sub: ACCOUNT.sub, iss: app.idp.issuer, aud: 'tessera-app' })
    expect(body.idToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
    // the anonymous session's data goes on with the user; the tokens stay out of it
    expect(body.cart).toBe('book')
    expect(body.keys).toEqual(['cart'])

    const listed = await app.sessions.listByUser(ACCOUNT.sub)
    const idHash = hashSessionId(decodeURIComponent(after!).split('.')[0]!)
    expect(listed.map((s) => s.idHash)).toContain(idHash)
  })

  it('session fixation: the cookie from before the login no longer opens the session', async () => {
    const browser = new Browser()
    await browser.request(`${app.url}/login`)
    const fixed = sid(browser)!
    await app.login(browser)
    expect(sid(browser)).not.toBe(fixed)

    const attacker = new Browser()
    attacker.jar(app.url).set('sid', fixed)
    expect(await me(attacker)).toMatchObject({ user: null, userId: null })
  })

  it('keeps the tokens in the store only: the cookie is a signed id, not a token', async () => {
    const browser = new Browser()
    await app.login(browser)
    const cookie = decodeURIComponent(sid(browser)!)
    expect(cookie.length).toBeLessThan(120)
    const { idToken } = await me(browser)
    expect(cookie).not.toContain(idToken.split('.')[1])
  })

  it("clears the session's data when it was bound to another user, and keeps it for the same one", async () => {
    let next = 'alice'
    const switching = await startOidcApp({ oidc: { userId: (c) => `${next}:${c.sub}` } })
    try {
      const browser = new Browser()
      const get = async () => (await browser.request(`${switching.url}/me`)).json()
      await switching.login(browser)
      await browser.request(`${switching.url}/cart?v=alice-cart`)
      // the same user again: the data stays
      await switching.login(browser)
      expect(await get()).toMatchObject({ userId: `alice:${ACCOUNT.sub}`, cart: 'alice-cart' })
      // another user in the same browser: nothing of alice's is left
      next = 'bob'
      await switching.login(browser)
      expect(await get()).toMatchObject({ userId: `bob:${ACCOUNT.sub}`, cart: null, keys: [] })
      expect((await get()).user).toMatchObject({ sub: ACCOUNT.sub })
    } finally {
      await switching.close()
    }
  })

  it('adds the UserInfo claims to user() with userInfo: true', async () => {
    const withInfo = await startOidcApp({ oidc: { userInfo: true } })
    try {
      const browser = new Browser()
      await withInfo.login(browser)
      const body = await (await browser.request(`${withInfo.url}/me`)).json()
      expect(body.user).toMatchObject({
        sub: ACCOUNT.sub,
        iss: withInfo.idp.issuer,
        email: ACCOUNT.email,
        name: ACCOUNT.name,
      })
      // without it, the code flow's ID token carries no profile claims (this provider's default)
      const plain = new Browser()
      await app.login(plain)
      expect((await me(plain)).user.email).toBeUndefined()
    } finally {
      await withInfo.close()
    }
  })

  it('takes from UserInfo only the claims the ID token lacks, never those about the login', async () => {
    const withInfo = await startOidcApp({ oidc: { userInfo: true } })
    try {
      const browser = new Browser()
      // a UserInfo answer that contradicts the signed ID token (its sub stays: that one is checked)
      withInfo.idp.alterNextUserInfo((claims) => ({
        ...claims,
        aud: 'someone-else',
        nonce: 'forged',
        exp: 1,
        iat: 1,
        acr: 'forged',
        amr: ['hwk'],
        auth_time: 1,
        locale: 'en-GB',
      }))
      await withInfo.login(browser)
      const body = await (await browser.request(`${withInfo.url}/me`)).json()
      const signed = JSON.parse(
        Buffer.from(body.idToken.split('.')[1], 'base64url').toString(),
      ) as Record<string, unknown>
      expect(signed).toMatchObject({ aud: 'tessera-app', nonce: expect.any(String) })
      expect(body.user).toMatchObject(signed)
      expect(body.user).toMatchObject({ email: ACCOUNT.email, locale: 'en-GB' })
      // claims about the login come from the ID token or not at all: this one has no acr
      expect(signed.acr).toBeUndefined()
      expect(body.user).not.toHaveProperty('acr')
      expect(body.user).not.toHaveProperty('amr')
      expect(body.user).not.toHaveProperty('auth_time')
    } finally {
      await withInfo.close()
    }
  })
})

describe('oidc fetch()', () => {
  it('sends the access token as a bearer token to a protected resource', async () => {
    const browser = new Browser()
    await app.login(browser)
    const seen = app.idp.seenTokens.length
    const answer = await (await browser.request(`${app.url}/api`)).json()
    expect(answer).toEqual({
      status: 200,
      body: { sub: ACCOUNT.sub, scope: 'openid profile email' },
    })
    expect(app.idp.seenTokens.length).toBe(seen + 1)
    // without a session, no token: not-logged-in
    const stranger = await new Browser().request(`${app.url}/api`)
    expect(stranger.status).toBe(400)
    expect(await stranger.json()).toMatchObject({ reason: 'not-logged-in' })
  })
})

describe('oidc logout', () => {
  it("destroys the session and gives the provider's end-session URL, which logs out there too", async () => {
    const browser = new Browser()
    await app.login(browser)
    const { idToken } = await me(browser)
    const loggedIn = sid(browser)!

    const response = await browser.request(`${app.url}/logout`)
    expect(response.status).toBe(302)
    const to = new URL(response.headers.get('location')!)
    expect(to.origin).toBe(app.idp.issuer)
    expect(to.searchParams.get('id_token_hint')).toBe(idToken)
    expect(to.searchParams.get('post_logout_redirect_uri')).toBe(`${app.url}/bye`)
    expect(to.searchParams.get('client_id')).toBe('tessera-app')

    // the cookie was cleared, and the old one opens nothing
    expect(sid(browser)).toBeUndefined()
    const replay = new Browser()
    replay.jar(app.url).set('sid', loggedIn)
    expect(await me(replay)).toMatchObject({ user: null, userId: null })
    expect(await app.sessions.listByUser(ACCOUNT.sub)).not.toContainEqual(
      expect.objectContaining({
        idHash: hashSessionId(decodeURIComponent(loggedIn).split('.')[0]!),
      }),
    )

    // at the provider: confirm the logout (its form), and it sends the user back to the app
    const page = await browser.request(to)
    expect(page.status).toBe(200)
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())?.[1]
    expect(xsrf).toBeDefined()
    const confirmed = await browser.request(`${app.idp.issuer}/session/end/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }),
    })
    expect([302, 303]).toContain(confirmed.status)
    expect(confirmed.headers.get('location')).toBe(`${app.url}/bye`)
  })
})
