/**
 * tessera/oidc when the browser sends one callback twice at once (a double click, a restored
 * tab, a prefetch): both requests load the session before either commits, so both find the
 * login in progress. The authorization code must reach the provider once: a provider refuses
 * a spent code (`invalid_grant`) and, as RFC 6749 4.1.2 recommends and oidc-provider does,
 * revokes the tokens it issued for it. Both requests get the one exchange's tokens and end
 * logged in, in one process (whatever the store) and across two instances of the app.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionManager } from '../src/core/manager.js'
import type { Session } from '../src/core/session.js'
import type { SessionStore } from '../src/core/store.js'
import { createSessions } from '../src/index.js'
import { type Oidc, oidc } from '../src/oidc/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { everyStore } from './helpers/every-store.js'
import {
  ACCOUNT,
  type AppData,
  Browser,
  CLIENT_ID,
  CLIENT_SECRET,
  OIDC_APP_SECRET,
  type OidcApp,
  startOidcApp,
} from './helpers/oidc-provider.js'

const STORES = await everyStore('oidc_double_callback')

/** A memory store without `add`: only the process can share the exchange. */
function memoryStoreWithoutAdd(): SessionStore {
  const { add: _, ...withoutAdd } = memoryStore({ sweepInterval: 0 })
  return withoutAdd
}

/** Token requests with an authorization code the provider answered, granted or refused. */
const codeGrants = (app: OidcApp) =>
  [...app.idp.grants, ...app.idp.refusedGrants].filter((g) => g === 'authorization_code').length

/** The access token works at the provider's resource: it was not revoked. */
async function tokenWorks(app: OidcApp, token: string) {
  const answer = await fetch(app.idp.resourceUrl, { headers: { authorization: `Bearer ${token}` } })
  expect(answer.status).toBe(200)
  expect(await answer.json()).toMatchObject({ sub: ACCOUNT.sub })
}

describe.each([
  ['a store with add', () => memoryStore({ sweepInterval: 0 })],
  ['a store without add', memoryStoreWithoutAdd],
])('oidc callback sent twice at once, one process (%s)', (_name, store) => {
  let app: OidcApp
  beforeAll(async () => {
    app = await startOidcApp({ store: store() })
  })
  afterAll(async () => {
    await app?.close()
  })

  it('exchanges the code once, and both requests end logged in with live tokens', async () => {
    const browser = new Browser()
    const callback = await browser.followUntil(
      `${app.url}/login?returnTo=/account`,
      app.callbackUrl,
    )
    const before = codeGrants(app)
    // the same URL, the same session cookie, at the same instant
    const [one, two] = await Promise.all([browser.request(callback), browser.request(callback)])
    const bodies = [await one.text(), await two.text()]
    expect([one.status, two.status], bodies.join('\n')).toEqual([302, 302])
    expect(one.headers.get('location')).toBe('/account')
    expect(two.headers.get('location')).toBe('/account')
    expect(codeGrants(app)).toBe(before + 1)

    // whichever session cookie the browser kept is logged in, and its token is not revoked
    const me = await (await browser.request(`${app.url}/me`)).json()
    expect(me).toMatchObject({ userId: ACCOUNT.sub, user: { sub: ACCOUNT.sub } })
    const tokens = await (await browser.request(`${app.url}/tokens`)).json()
    await tokenWorks(app, tokens.accessToken)
    const api = await (await browser.request(`${app.url}/api`)).json()
    expect(api).toMatchObject({ status: 200, body: { sub: ACCOUNT.sub } })
    expect(app.idp.seenTokens.at(-1)).toBe(tokens.accessToken)
  })

  it("gives the second request the first one's error, without sending the code again", async () => {
    const browser = new Browser()
    const callback = await browser.followUntil(`${app.url}/login`, app.callbackUrl)
    // a code the provider does not know: both requests are refused, and it is sent once
    callback.searchParams.set('code', 'not-a-code-the-provider-issued')
    const before = codeGrants(app)
    const [one, two] = await Promise.all([browser.request(callback), browser.request(callback)])
    expect([one.status, two.status]).toEqual([400, 400])
    expect(await one.json()).toMatchObject({ reason: 'provider-error', error: 'invalid_grant' })
    expect(await two.json()).toMatchObject({ reason: 'provider-error', error: 'invalid_grant' })
    expect(app.idp.refusedGrants.at(-1)).toBe('authorization_code')
    expect(codeGrants(app)).toBe(before + 1)
  })
})

describe.each(['memory', 'redis'])('oidc callback sent twice, two instances (%s)', (name) => {
  const { available, create } = STORES[name]!
  let app: OidcApp
  let other: { sessions: SessionManager<AppData>; auth: Oidc }
  beforeAll(async () => {
    if (!available) return
    // for memory, one store object for both instances (as one server would be)
    const store = create()
    app = await startOidcApp({ store })
    // a second instance of the app: its own manager, oidc() and store client, one store
    const sessions = createSessions<AppData>({
      secret: OIDC_APP_SECRET,
      store: name === 'memory' ? store : create(),
    })
    const auth = await oidc({
      sessions,
      issuer: app.idp.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUri: app.callbackUrl,
      allowInsecureRequests: true,
    })
    other = { sessions, auth }
  })
  afterAll(async () => {
    await app?.close()
    await other?.sessions.close()
  })

  /** A login up to its callback, and the session as each instance loads it. */
  async function twoLoads() {
    const browser = new Browser()
    const callback = await browser.followUntil(`${app.url}/login`, app.callbackUrl)
    const cookie = `sid=${browser.jar(app.url).get('sid')}`
    return {
      callback,
      here: await app.sessions.load(cookie),
      there: await other.sessions.load(cookie),
    }
  }

  /** Both sessions are logged in, with one access token, which the provider did not revoke. */
  async function bothLoggedIn(here: Session<AppData>, there: Session<AppData>) {
    expect(here.userId).toBe(ACCOUNT.sub)
    expect(there.userId).toBe(ACCOUNT.sub)
    const token = await app.auth.accessToken(here)
    expect(await other.auth.accessToken(there)).toBe(token)
    await tokenWorks(app, token)
  }

  it.runIf(available)(
    'exchanges the code once between the instances at once, and both end logged in',
    async () => {
      const { callback, here, there } = await twoLoads()
      const before = codeGrants(app)
      const [one, two] = await Promise.all([
        app.auth.callback(here, callback),
        other.auth.callback(there, callback),
      ])
      await Promise.all([app.sessions.commit(here), other.sessions.commit(there)])
      expect(codeGrants(app)).toBe(before + 1)
      expect(one.user).toEqual(two.user)
      await bothLoggedIn(here, there)
    },
  )

  it.runIf(available)(
    "gives a callback that loaded the session before another's was saved that one's tokens",
    async () => {
      const { callback, here, there } = await twoLoads()
      const before = codeGrants(app)
      await app.auth.callback(here, callback)
      await app.sessions.commit(here)
      // `there` still holds the login in progress: its code is spent
      await other.auth.callback(there, callback)
      await other.sessions.commit(there)
      expect(codeGrants(app)).toBe(before + 1)
      await bothLoggedIn(here, there)
    },
  )
})
