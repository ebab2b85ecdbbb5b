/**
 * Threat: a stolen or kept cookie is replayed after the session should have ended. The cookie
 * store has no server record to delete, so the idle and absolute expiry are sealed inside the
 * cookie and checked on every load against the server's clock, whatever the browser keeps.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { type CookieStoreOptions, cookieStore } from '../../src/stores/cookie.js'
import { type AppData, appRoutes } from '../helpers/app.js'
import { ADAPTERS, Client, type Running, SECRET, serve } from '../helpers/http.js'
import { fakeClock } from '../helpers/stores.js'

const MIN = 60_000
/**
 * The user the sessions log in as: long enough that a chance match in the sealed bytes, which the
 * test says it is not readable in, is out of the question (a two-character name matched once).
 */
const USER = 'user-7f3a9c2e41'

describe.each(ADAPTERS)('cookie store: replay after expiry (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  async function setup(options: CookieStoreOptions = {}) {
    const clock = fakeClock()
    const sessions = createSessions<AppData>({
      secret: SECRET,
      store: cookieStore(options),
      clock: clock.now,
      idleTimeout: 30 * MIN,
      absoluteTimeout: 120 * MIN,
      touchAfter: MIN,
    })
    const events: string[] = []
    sessions.on('expired', (e) => events.push(`expired:${e.kind}`))
    sessions.on('rejected', (e) => events.push(`rejected:${e.reason}`))
    server = await serve(adapter, sessions, appRoutes)
    const client = new Client(server.url)
    await client.get(`/login?user=${USER}`)
    return { clock, client, events }
  }
  const replay = (cookie: string) =>
    new Client(server.url).get('/read', { headers: { cookie: `sid=${cookie}` } })

  it('a cookie replayed after its idle expiry is refused, even while the session lives on', async () => {
    const { clock, client, events } = await setup()
    const stolen = client.cookie()!
    clock.advance(20 * MIN)
    await client.get('/read') // touch: the owner's new cookie slides to 50 minutes
    const fresh = client.cookie()!
    expect(fresh).not.toBe(stolen)
    clock.advance(10 * MIN) // 30 minutes after the stolen cookie was sealed
    const res = await replay(stolen)
    expect(res.body).toMatchObject({ count: null, isNew: true })
    expect(res.setCookies).toEqual([expect.stringMatching(/^sid=;.*Max-Age=0/)])
    expect(events).toEqual(['expired:idle'])
    // the owner's own, newer cookie is still good
    expect((await replay(fresh)).body).toMatchObject({ isNew: false })
  })

  it('a cookie replayed after the absolute expiry is refused, however active the session was', async () => {
    const { clock, client, events } = await setup()
    for (let i = 0; i < 5; i++) {
      clock.advance(20 * MIN)
      await client.get('/count')
    }
    const latest = client.cookie()!
    clock.advance(20 * MIN) // 120 minutes after creation; the latest cookie's idle window is open
    expect((await replay(latest)).body).toMatchObject({ count: null, isNew: true })
    expect(events).toEqual(['expired:absolute'])
  })

  it('one millisecond before expiry it still opens; at expiry it does not', async () => {
    const { clock, client } = await setup()
    const cookie = client.cookie()!
    clock.advance(30 * MIN - 1)
    expect((await replay(cookie)).body).toMatchObject({ isNew: false })
    clock.advance(1)
    expect((await replay(cookie)).body).toMatchObject({ isNew: true })
  })

  it('the expiry is inside the seal: neither readable nor editable in the cookie', async () => {
    const { clock, client } = await setup()
    const cookie = client.cookie()!
    const sealed = Buffer.from(cookie, 'base64url').toString('latin1')
    const idleExpiry = String(clock.now() + 30 * MIN)
    expect(sealed).not.toContain(idleExpiry.slice(0, 8))
    expect(sealed).not.toContain(USER)
    clock.advance(31 * MIN)
    // every byte is authenticated: flipping any one (here, in the ciphertext) fails
    const bytes = Buffer.from(cookie, 'base64url')
    bytes[40]! ^= 1
    expect((await replay(bytes.toString('base64url'))).body).toMatchObject({ isNew: true })
  })

  it('after "log out everywhere", an old cookie replayed before its expiry is refused (isRevoked)', async () => {
    const loggedOutAt = new Map<string, number>()
    const { clock, client, events } = await setup({
      isRevoked: ({ userId, issuedAt }) =>
        userId !== undefined && issuedAt < (loggedOutAt.get(userId) ?? 0),
    })
    const stolen = client.cookie()!
    clock.advance(MIN)
    loggedOutAt.set(USER, clock.now())
    expect((await replay(stolen)).body).toMatchObject({ isNew: true })
    expect(events).toEqual(['rejected:revoked'])
    // a new login after that time is fine
    await client.get(`/login?user=${USER}`)
    expect((await client.get('/read')).body).toMatchObject({ isNew: false })
  })
})
