/**
 * Threats against tessera/oidc's callback and login, each against a real provider: a forged or
 * tampered state, a replayed callback, an injected authorization code (PKCE), a tampered
 * nonce, a login that took too long, a refused consent, and open redirects through returnTo.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { safeReturnTo } from '../src/oidc/return-to.js'
import { ACCOUNT, Browser, type OidcApp, startOidcApp } from './helpers/oidc-provider.js'

let app: OidcApp
beforeAll(async () => {
  app = await startOidcApp()
})
afterAll(async () => {
  await app?.close()
})

const me = async (browser: Browser) => (await browser.request(`${app.url}/me`)).json()
/** Visits `url` (a callback) and gives the status and body. */
const visit = async (browser: Browser, url: string | URL) => {
  const response = await browser.request(url)
  const text = await response.text()
  return { status: response.status, location: response.headers.get('location'), text }
}
const refused = (reason: string, error?: string) => ({
  status: 400,
  text: expect.stringContaining(
    `"reason":"${reason}","error":${error === undefined ? 'null' : `"${error}"`}`,
  ),
})
/** Starts a login in `browser` and gives the provider's callback URL, unvisited. */
const callbackOf = (browser: Browser, returnTo?: string) =>
  browser.followUntil(
    `${app.url}/login${returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`}`,
    app.callbackUrl,
  )

describe('oidc callback: state', () => {
  it('refuses a tampered state, and the genuine callback still completes after it', async () => {
    const browser = new Browser()
    const callback = await callbackOf(browser)
    const forged = new URL(callback)
    forged.searchParams.set('state', `${callback.searchParams.get('state')}x`)
    expect(await visit(browser, forged)).toMatchObject(refused('state-mismatch'))
    expect(await me(browser)).toMatchObject({ userId: null, user: null })

    const missing = new URL(callback)
    missing.searchParams.delete('state')
    expect(await visit(browser, missing)).toMatchObject(refused('state-mismatch'))

    expect(await visit(browser, callback)).toMatchObject({ status: 302, location: '/' })
    expect(await me(browser)).toMatchObject({ userId: ACCOUNT.sub })
  })

  it('refuses a callback in a session that started no login (login CSRF)', async () => {
    const victim = new Browser()
    const attacker = new Browser()
    // the attacker's own genuine callback, sent to a victim who never started a login
    const callback = await callbackOf(attacker)
    expect(await visit(victim, callback)).toMatchObject(refused('no-login-in-progress'))
    await victim.request(`${app.url}/cart?v=x`)
    expect(await visit(victim, callback)).toMatchObject(refused('no-login-in-progress'))
    expect(await me(victim)).toMatchObject({ userId: null, user: null })
  })

  it('keeps several logins in progress (tabs): each completes with its own state', async () => {
    const browser = new Browser()
    const first = await callbackOf(browser, '/one')
    const second = await callbackOf(browser, '/two')
    expect(first.searchParams.get('state')).not.toBe(second.searchParams.get('state'))
    expect(await visit(browser, first)).toMatchObject({ status: 302, location: '/one' })
    expect(await me(browser)).toMatchObject({ userId: ACCOUNT.sub })
    // logged in: the other tab's login is over
    expect(await visit(browser, second)).toMatchObject(refused('no-login-in-progress'))
  })
})

describe('oidc callback: logins started at once', () => {
  it('keeps both logins of two tabs that started them at the same time: each callback finds its own', async () => {
    const browser = new Browser()
    await browser.request(`${app.url}/cart?v=book`)
    const cookie = `sid=${browser.jar(app.url).get('sid')}`
    // two requests of one session, both loaded before either was saved (tabs restored at once)
    const one = await app.sessions.load(cookie)
    const two = await app.sessions.load(cookie)
    const first = await app.auth.login(one, { returnTo: '/one' })
    const second = await app.auth.login(two, { returnTo: '/two' })
    await app.sessions.commit(one)
    await app.sessions.commit(two)
    const firstCallback = await browser.followUntil(first, app.callbackUrl)
    const secondCallback = await browser.followUntil(second, app.callbackUrl)
    expect(await visit(browser, firstCallback)).toMatchObject({ status: 302, location: '/one' })
    expect(await me(browser)).toMatchObject({ userId: ACCOUNT.sub, cart: 'book' })
    // logged in: the other tab's login is over, as with logins started one after the other
    expect(await visit(browser, secondCallback)).toMatchObject(refused('no-login-in-progress'))

    // and the other way round: the later tab completes first
    const again = new Browser()
    await again.request(`${app.url}/cart?v=pen`)
    const cookie2 = `sid=${again.jar(app.url).get('sid')}`
    const three = await app.sessions.load(cookie2)
    const four = await app.sessions.load(cookie2)
    const third = await app.auth.login(three, { returnTo: '/three' })
    const fourth = await app.auth.login(four, { returnTo: '/four' })
    await app.sessions.commit(three)
    await app.sessions.commit(four)
    const thirdCallback = await again.followUntil(third, app.callbackUrl)
    expect(await visit(again, await again.followUntil(fourth, app.callbackUrl))).toMatchObject({
      status: 302,
      location: '/four',
    })
    expect(await visit(again, thirdCallback)).toMatchObject(refused('no-login-in-progress'))
  })
})

describe('oidc callback: logins in progress', () => {
  it('keeps four logins in progress: a fifth drops the oldest', async () => {
    const browser = new Browser()
    const callbacks: URL[] = []
    for (let i = 1; i <= 5; i++) callbacks.push(await callbackOf(browser, `/tab${i}`))
    expect(await visit(browser, callbacks[0]!)).toMatchObject(refused('state-mismatch'))
    expect(await visit(browser, callbacks[1]!)).toMatchObject({ status: 302, location: '/tab2' })
  })
})

describe('oidc callback: replay', () => {
  it('refuses a callback replayed after the login, with the new cookie or the old one', async () => {
    const browser = new Browser()
    const callback = await callbackOf(browser)
    const before = browser.jar(app.url).get('sid')!
    expect(await visit(browser, callback)).toMatchObject({ status: 302 })
    const after = browser.jar(app.url).get('sid')!

    expect(await visit(browser, callback)).toMatchObject(refused('no-login-in-progress'))
    // the session is still logged in, and its cookie did not change
    expect(browser.jar(app.url).get('sid')).toBe(after)
    expect(await me(browser)).toMatchObject({ userId: ACCOUNT.sub })

    const old = new Browser()
    old.jar(app.url).set('sid', before)
    expect(await visit(old, callback)).toMatchObject(refused('no-login-in-progress'))
    expect(await me(old)).toMatchObject({ userId: null })
  })

  it("refuses another session's code (code injection): PKCE binds it to its login", async () => {
    const victim = new Browser()
    const stolen = await callbackOf(victim)
    const attacker = new Browser()
    const own = await callbackOf(attacker)
    const injected = new URL(own)
    injected.searchParams.set('code', stolen.searchParams.get('code')!)
    expect(await visit(attacker, injected)).toMatchObject(
      refused('provider-error', 'invalid_grant'),
    )
    expect(await me(attacker)).toMatchObject({ userId: null })
  })
})

describe('oidc callback: what openid-client checks is wired', () => {
  it('refuses an ID token whose nonce is not the login’s', async () => {
    const browser = new Browser()
    const callback = await callbackOf(browser)
    await browser.request(`${app.url}/tamper?field=nonce&value=not-the-nonce`)
    expect(await visit(browser, callback)).toMatchObject(refused('invalid-response'))
    expect(await me(browser)).toMatchObject({ userId: null })
  })

  it('refuses an ID token whose signature does not verify (a token response altered on the way)', async () => {
    const browser = new Browser()
    const callback = await callbackOf(browser)
    // the token endpoint's answer reaches the app with another subject in the ID token
    app.idp.alterNextIdToken((claims) => ({ ...claims, sub: 'someone-else' }))
    expect(await visit(browser, callback)).toMatchObject(refused('invalid-response'))
    expect(await me(browser)).toMatchObject({ userId: null, user: null })
    expect(await app.sessions.listByUser('someone-else')).toEqual([])
  })

  it('sends the PKCE verifier: a wrong one is refused by the provider', async () => {
    const browser = new Browser()
    const callback = await callbackOf(browser)
    await browser.request(`${app.url}/tamper?field=verifier&value=${'v'.repeat(43)}`)
    expect(await visit(browser, callback)).toMatchObject(refused('provider-error', 'invalid_grant'))
  })

  it('refuses a login older than loginTimeout', async () => {
    const browser = new Browser()
    const callback = await callbackOf(browser)
    app.advance(11 * 60_000)
    expect(await visit(browser, callback)).toMatchObject(refused('login-expired'))
    // spent: a second try finds none in progress
    expect(await visit(browser, callback)).toMatchObject(refused('no-login-in-progress'))
  })

  it('reports the user refusing consent as provider-error access_denied', async () => {
    const browser = new Browser()
    app.idp.denyNext()
    const callback = await callbackOf(browser)
    expect(callback.searchParams.get('error')).toBe('access_denied')
    const answer = await visit(browser, callback)
    expect(answer).toMatchObject(refused('provider-error', 'access_denied'))
    expect(answer.text).not.toContain(callback.searchParams.get('state')!)
  })
})

describe('oidc login: returnTo (open redirect)', () => {
  it('refuses a returnTo off the site', async () => {
    for (const returnTo of [
      'https://evil.test/',
      '//evil.test/path',
      '/\\evil.test',
      '/.//evil.test',
      'javascript:alert(1)',
      'account',
      `${app.url}//evil.test`,
    ]) {
      const response = await new Browser().request(
        `${app.url}/login?returnTo=${encodeURIComponent(returnTo)}`,
      )
      expect(response.status, returnTo).toBe(400)
      expect(await response.json()).toMatchObject({ reason: 'unsafe-return-to' })
    }
  })

  it('sends the user back to a path of the site, or to an absolute URL of its own origin', async () => {
    const browser = new Browser()
    expect(
      await visit(browser, await callbackOf(browser, `${app.url}/orders?id=7#top`)),
    ).toMatchObject({
      status: 302,
      location: '/orders?id=7#top',
    })
  })

  it('safeReturnTo keeps paths and refuses everything else', () => {
    const origin = 'https://app.example'
    expect(safeReturnTo('/', origin)).toBe('/')
    expect(safeReturnTo('/a/b?c=1#d', origin)).toBe('/a/b?c=1#d')
    expect(safeReturnTo('/a/../b', origin)).toBe('/b')
    expect(safeReturnTo('https://app.example/x', origin)).toBe('/x')
    // encoded, it stays encoded: no header injection through Location
    expect(safeReturnTo('/%0d%0aSet-Cookie:x', origin)).toBe('/%0d%0aSet-Cookie:x')
    for (const bad of [
      '',
      'https://app.example.evil/x',
      'http://app.example/x',
      '//app.example/x',
      '/\t/evil.example',
      '/\r\nSet-Cookie:x',
      'data:text/html,x',
      `/${'a'.repeat(3000)}`,
    ]) {
      expect(safeReturnTo(bad, origin), bad).toBeUndefined()
    }
  })
})
