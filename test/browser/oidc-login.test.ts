/**
 * OpenID Connect login in Chromium, against a real provider (`oidc-provider`) on another site:
 * the app is visited as `localhost`, the provider as `127.0.0.1`, so the provider's redirect
 * back is a cross-site navigation that the session cookie must survive (`SameSite=Lax`). Then
 * the threat of a login forced on a victim: an attacker's own callback URL, opened in the
 * victim's browser, must log nobody in.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { useChromium } from '../helpers/chromium.js'
import { ACCOUNT, Browser, type OidcApp, startOidcApp } from '../helpers/oidc-provider.js'

const chromium = await useChromium()

describe.skipIf(!chromium.available)('OIDC login in Chromium', () => {
  let app: OidcApp | undefined
  afterEach(async () => {
    await app?.close()
    app = undefined
  })

  it('logs in through the provider, calls the API with the token, and logs out', async () => {
    app = await startOidcApp({ appHost: 'localhost' })
    expect(new URL(app.url).hostname).not.toBe(new URL(app.idp.issuer).hostname)
    const context = await chromium.context()
    const page = await context.newPage()
    const me = async () => JSON.parse((await page.textContent('body')) ?? 'null')

    await page.goto(`${app.url}/cart?v=book`)
    const before = (await context.cookies()).find((c) => c.name === 'sid')?.value
    // /login, the provider's pages, the callback, then the page asked for
    await page.goto(`${app.url}/login?returnTo=/me`)
    await page.waitForURL(`${app.url}/me`)
    expect(await me()).toMatchObject({
      user: { sub: ACCOUNT.sub },
      userId: ACCOUNT.sub,
      cart: 'book',
    })
    const after = (await context.cookies()).find((c) => c.name === 'sid')?.value
    expect(after).toBeDefined()
    expect(after).not.toBe(before)

    await page.goto(`${app.url}/api`)
    expect(await me()).toMatchObject({ status: 200, body: { sub: ACCOUNT.sub } })

    // RP-initiated logout: the provider asks, the user confirms, and is sent back
    await page.goto(`${app.url}/logout`)
    await Promise.all([
      page.waitForURL(`${app.url}/bye`),
      page.getByRole('button', { name: /yes/i }).click(),
    ])
    await page.goto(`${app.url}/me`)
    expect(await me()).toMatchObject({ user: null, userId: null })
  })

  it("refuses an attacker's callback opened in the victim's browser", async () => {
    app = await startOidcApp({ appHost: 'localhost' })
    // the attacker logs in with a client of their own and keeps the callback URL unvisited
    const stolen = await new Browser().followUntil(`${app.url}/login`, app.callbackUrl)

    // the victim, with a session of their own, follows the attacker's link
    const victim = await (await chromium.context()).newPage()
    await victim.goto(`${app.url}/cart?v=mine`)
    const answer = await victim.goto(stolen.href)
    expect(answer?.status()).toBe(400)
    expect(JSON.parse((await victim.textContent('body')) ?? 'null')).toMatchObject({
      reason: 'no-login-in-progress',
    })
    await victim.goto(`${app.url}/me`)
    expect(JSON.parse((await victim.textContent('body')) ?? 'null')).toMatchObject({
      user: null,
      userId: null,
      cart: 'mine',
    })
  })
})
