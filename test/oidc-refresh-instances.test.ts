/**
 * tessera/oidc across instances of an app: two processes (here, two session managers with
 * their own oidc() and their own store client) serve one user's session, and a provider that
 * rotates refresh tokens revokes the whole grant when a spent one comes back. A store with
 * `add` lets the instances spend a refresh token once between them, on every server store;
 * each request gets the one refresh's tokens, and the user stays logged in.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { SessionManager } from '../src/core/manager.js'
import type { SessionStore } from '../src/core/store.js'
import { createSessions } from '../src/index.js'
import { type Oidc, oidc } from '../src/oidc/index.js'
import { fileStore } from '../src/stores/file.js'
import { sqliteStore } from '../src/stores/sqlite.js'
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

const SERVER_STORES = await everyStore('oidc_instances')
/**
 * Two stores over one set of sessions, as two instances of the app would open them: over one
 * server, or one directory or database file on one host. A memory store is one process's own.
 */
const STORES: Record<string, { available: boolean; pair: () => [SessionStore, SessionStore] }> = {
  file: {
    available: true,
    pair: () => {
      const directory = mkdtempSync(join(tmpdir(), 'tessera-oidc-instances-'))
      afterAll(() => rmSync(directory, { recursive: true, force: true }))
      const store = () => fileStore({ directory, sweepInterval: 0 })
      return [store(), store()]
    },
  },
  sqlite: {
    available: true,
    pair: () => {
      const directory = mkdtempSync(join(tmpdir(), 'tessera-oidc-instances-'))
      const store = (createTable: boolean) => {
        const db = new Database(join(directory, 'sessions.db'))
        afterAll(() => db.close())
        return sqliteStore({ db, createTable, pruneInterval: 0 })
      }
      afterAll(() => rmSync(directory, { recursive: true, force: true }))
      return [store(true), store(false)]
    },
  },
  ...Object.fromEntries(
    Object.entries(SERVER_STORES)
      .filter(([name]) => !['memory', 'file', 'sqlite'].includes(name))
      .map(([name, { available, create }]) => [
        name,
        { available, pair: (): [SessionStore, SessionStore] => [create(), create()] },
      ]),
  ),
}
/** How far the tests move the modules' clocks: past the access token's 60 s. */
const LATER = 61_000

describe.each(Object.keys(STORES))('oidc refresh across instances (%s)', (name) => {
  const { available, pair } = STORES[name]!
  let app: OidcApp
  let other: { sessions: SessionManager<AppData>; auth: Oidc; advance(ms: number): void }
  beforeAll(async () => {
    if (!available) return
    const [store, otherStore] = pair()
    app = await startOidcApp({ accessTokenTtl: 60, rotateRefreshTokens: true, store })
    // a second instance of the app: its own manager, oidc() and store client, one store
    let skew = 0
    const sessions = createSessions<AppData>({ secret: OIDC_APP_SECRET, store: otherStore })
    const auth = await oidc({
      sessions,
      issuer: app.idp.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUri: app.callbackUrl,
      allowInsecureRequests: true,
      clock: () => Date.now() + skew,
    })
    other = {
      sessions,
      auth,
      advance: (ms) => {
        skew += ms
      },
    }
  })
  afterAll(async () => {
    await app?.close()
    await other?.sessions.close()
  })

  const refreshes = () => app.idp.grants.filter((g) => g === 'refresh_token').length
  /** A logged-in browser, and its session as each instance loads it. */
  async function twoLoads() {
    const browser = new Browser()
    await app.login(browser)
    const cookie = `sid=${browser.jar(app.url).get('sid')}`
    const first = app.auth.idToken(await app.sessions.load(cookie))
    expect(first).toBeDefined()
    return {
      browser,
      here: await app.sessions.load(cookie),
      there: await other.sessions.load(cookie),
    }
  }
  let moved = 0
  /** Both instances' clocks past the access token's expiry, until the test ends. */
  const later = () => {
    app.advance(LATER)
    other.advance(LATER)
    moved += LATER
  }
  afterEach(() => {
    app?.advance(-moved)
    other?.advance(-moved)
    moved = 0
  })
  /** The grant lives: the browser's next request reaches the API, sending `token`. */
  const grantLives = async (browser: Browser, token: string) => {
    const answer = await (await browser.request(`${app.url}/api`)).json()
    expect(answer).toMatchObject({ status: 200, body: { sub: ACCOUNT.sub } })
    expect(app.idp.seenTokens.at(-1)).toBe(token)
  }

  it.runIf(available)(
    "gives an instance that loaded the session before another's refresh was saved that refresh's tokens",
    async () => {
      const { browser, here, there } = await twoLoads()
      const before = refreshes()
      later()
      const one = await app.auth.accessToken(here)
      await app.sessions.commit(here)
      // `there` still holds the spent refresh token: spending it again would revoke the grant
      const two = await other.auth.accessToken(there)
      await other.sessions.commit(there)
      expect(two).toBe(one)
      expect(refreshes()).toBe(before + 1)
      await grantLives(browser, one)
    },
  )

  it.runIf(available)(
    'spends the refresh token once when two instances refresh at once',
    async () => {
      const { browser, here, there } = await twoLoads()
      const before = refreshes()
      later()
      const [one, two] = await Promise.all([
        app.auth.accessToken(here),
        other.auth.accessToken(there),
      ])
      expect(two).toBe(one)
      expect(refreshes()).toBe(before + 1)
      await Promise.all([app.sessions.commit(here), other.sessions.commit(there)])
      await grantLives(browser, one)
    },
  )
})
