/**
 * Threat: a session that outgrows the cookie is silently dropped by the browser (it refuses a
 * cookie over 4096 bytes), logging the user out or losing their data without a word. The
 * cookie store measures every Set-Cookie line, splits a large session over `sid.0`, `sid.1`,
 * ... up to `maxChunks`, clears chunks a smaller session no longer needs, and past the limit
 * fails the commit with an error that says what to do.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createSessions, SessionCookieTooLargeError } from '../../src/index.js'
import { COOKIE_SIZE_LIMIT, type CookieStoreOptions, cookieStore } from '../../src/stores/cookie.js'
import type { AppData } from '../helpers/app.js'
import { applyToJar, cookieRoutes, headerOf } from '../helpers/cookie-jar.js'
import { ADAPTERS, Client, type Running, SECRET, serve } from '../helpers/http.js'

const bytes = (line: string) => Buffer.byteLength(line)

describe.each(ADAPTERS)('cookie store: cookie size (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  async function setup() {
    const sessions = createSessions<AppData>({
      secret: SECRET,
      store: cookieStore({ maxChunks: 3 }),
    })
    server = await serve(adapter, sessions, cookieRoutes)
    return new Client(server.url)
  }

  it('by default keeps a session in one cookie and refuses a larger one', async () => {
    // more chunks make a Cookie header over nginx's 8 KB line and toward Node's 16 KB
    expect(cookieStore().maxChunks).toBe(1)
    const sessions = createSessions({ secret: SECRET, store: cookieStore() })
    const s = await sessions.load(undefined)
    s.set('blob', 'x'.repeat(2_800))
    const [line, ...more] = await sessions.commit(s)
    expect(more).toEqual([])
    expect(line).toMatch(/^sid=/)
    s.set('blob', 'x'.repeat(3_100))
    await expect(sessions.commit(s)).rejects.toThrow(SessionCookieTooLargeError)
  })

  it('splits a large session over numbered cookies, each within 4096 bytes, and reads it back', async () => {
    const client = await setup()
    const res = await client.get('/blob?n=7000')
    expect(res.setCookies.map((l) => l.split('=')[0])).toEqual(['sid.0', 'sid.1', 'sid.2'])
    for (const line of res.setCookies) expect(bytes(line)).toBeLessThanOrEqual(COOKIE_SIZE_LIMIT)
    expect((await client.get('/blob-size')).body).toEqual({ size: 7000, isNew: false })
  })

  it('clears chunks the session no longer needs, growing and shrinking', async () => {
    const client = await setup()
    await client.get('/count')
    expect([...client.jar.keys()]).toEqual(['sid'])
    const grown = await client.get('/blob?n=4500')
    // the single cookie goes when the session moves to chunks
    expect(grown.setCookies).toContainEqual(expect.stringMatching(/^sid=;.*Max-Age=0/))
    expect([...client.jar.keys()].sort()).toEqual(['sid.0', 'sid.1'])
    await client.get('/blob?n=7000')
    expect([...client.jar.keys()].sort()).toEqual(['sid.0', 'sid.1', 'sid.2'])
    const shrunk = await client.get('/blob?n=4000')
    expect(shrunk.setCookies.filter((l) => /Max-Age=0/.test(l))).toEqual([
      expect.stringMatching(/^sid\.2=;/),
    ])
    expect([...client.jar.keys()].sort()).toEqual(['sid.0', 'sid.1'])
    await client.get('/blob?n=10')
    expect([...client.jar.keys()]).toEqual(['sid'])
    expect((await client.get('/blob-size')).body).toEqual({ size: 10, isNew: false })
    // logout clears whatever is there
    await client.get('/blob?n=4500')
    const out = await client.get('/logout')
    expect(out.setCookies.map((l) => l.split('=')[0]).sort()).toEqual(['sid.0', 'sid.1'])
    expect(client.jar.size).toBe(0)
  })

  it('past the limit the request fails (no cookie sent) and the previous session is intact', async () => {
    const client = await setup()
    await client.get('/blob?n=100')
    const before = new Map(client.jar)
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    try {
      const res = await client.get('/blob?n=20000')
      expect(res.status).toBe(500)
      expect(res.setCookies).toEqual([])
      expect(logged.mock.calls[0]?.[0]).toBeInstanceOf(SessionCookieTooLargeError)
    } finally {
      logged.mockRestore()
    }
    expect(client.jar).toEqual(before)
    expect((await client.get('/blob-size')).body).toEqual({ size: 100, isNew: false })
  })
})

describe('cookie store: size limits', () => {
  /** The largest string a session can hold under `options`, and the lines at that size. */
  async function largest(options: CookieStoreOptions, cookie = {}, persistent = false) {
    // a clock that stands still: the payload holds times as differences from the sealing time,
    // whose digits would otherwise vary between attempts
    const sessions = createSessions({
      secret: SECRET,
      store: cookieStore(options),
      cookie,
      clock: () => 1_796_067_685_080,
    })
    const attempt = async (n: number) => {
      const s = await sessions.load(undefined, { secure: true })
      s.set('blob', 'x'.repeat(n))
      if (persistent) s.setLifetime({ absoluteTimeout: '30d' })
      return sessions.commit(s)
    }
    let [low, high] = [0, 200_000]
    while (high - low > 1) {
      const mid = (low + high) >> 1
      try {
        await attempt(mid)
        low = mid
      } catch (err) {
        expect(err).toBeInstanceOf(SessionCookieTooLargeError)
        high = mid
      }
    }
    return { n: low, lines: await attempt(low), sessions }
  }

  it('fills every cookie up to 4096 bytes with its name and attributes, up to maxChunks', async () => {
    for (const [maxChunks, cookie, persistent] of [
      [1, {}, false],
      [3, {}, false],
      [3, { name: '__Host-session', partitioned: true, priority: 'high' }, true],
      [5, { domain: 'example.com', path: '/app', sameSite: 'none' }, true],
    ] as const) {
      const { n, lines } = await largest({ maxChunks }, cookie, persistent)
      expect(lines).toHaveLength(maxChunks)
      for (const line of lines) {
        // base64 comes in 4-character steps, so a full cookie is within 3 bytes of the limit
        expect(bytes(line)).toBeLessThanOrEqual(COOKIE_SIZE_LIMIT)
        expect(bytes(line)).toBeGreaterThan(COOKIE_SIZE_LIMIT - 4)
      }
      // base64 gives 3 bytes in 4 characters; little more goes to the envelope and attributes
      expect(n / (maxChunks * COOKIE_SIZE_LIMIT)).toBeGreaterThan(0.65)
    }
  })

  it('the error says how big the session was, the limit, and to use a server store', async () => {
    const sessions = createSessions({ secret: SECRET, store: cookieStore({ maxChunks: 2 }) })
    const s = await sessions.load(undefined)
    s.set('blob', 'x'.repeat(10_000))
    const err = await sessions.commit(s).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SessionCookieTooLargeError)
    const e = err as SessionCookieTooLargeError
    expect(e.code).toBe('ERR_SESSION_COOKIE_TOO_LARGE')
    expect(e.size).toBeGreaterThan(10_000)
    expect(e.limit).toBeLessThan(2 * COOKIE_SIZE_LIMIT)
    expect(e.message).toContain(`session is ${e.size} bytes, over the limit of ${e.limit}`)
    expect(e.message).toMatch(/maxChunks.*server store/)
    // the change is kept for a retry once it fits
    s.set('blob', 'small')
    expect(await sessions.commit(s)).toHaveLength(1)
  })

  it('a missing or inconsistent chunk set is no session', async () => {
    const sessions = createSessions({ secret: SECRET, store: cookieStore({ maxChunks: 3 }) })
    const reasons: string[] = []
    sessions.on('rejected', (e) => reasons.push(e.reason))
    const s = await sessions.load(undefined)
    s.set('blob', 'x'.repeat(7000))
    const jar = new Map<string, string>()
    applyToJar(jar, await sessions.commit(s))
    expect(jar.get('sid.0')).toMatch(/^3\./)
    const variants: [string, (j: Map<string, string>) => void][] = [
      ['missing last chunk', (j) => j.delete('sid.2')],
      ['missing middle chunk', (j) => j.delete('sid.1')],
      ['missing first chunk', (j) => j.delete('sid.0')],
      ['count says fewer', (j) => j.set('sid.0', j.get('sid.0')!.replace(/^3\./, '2.'))],
      ['count says more', (j) => j.set('sid.0', j.get('sid.0')!.replace(/^3\./, '4.'))],
      ['count past maxChunks', (j) => j.set('sid.0', j.get('sid.0')!.replace(/^3\./, '9.'))],
      ['no count', (j) => j.set('sid.0', j.get('sid.0')!.replace(/^3\./, ''))],
      ['one chunk over 4096', (j) => j.set('sid.1', `${j.get('sid.1')}${'A'.repeat(4096)}`)],
    ]
    for (const [what, change] of variants) {
      const copy = new Map(jar)
      change(copy)
      const loaded = await sessions.load(headerOf(copy))
      expect(loaded.isNew, what).toBe(true)
      // and the next commit clears what the browser holds
      const cleared = await sessions.commit(loaded)
      applyToJar(copy, cleared)
      expect(copy.size, what).toBe(0)
    }
    expect(reasons.every((r) => r === 'malformed' || r === 'bad-signature')).toBe(true)
    expect(reasons).toHaveLength(variants.length)
    // the intact set still opens, with a stale fourth chunk ignored
    expect((await sessions.load(`${headerOf(jar)}; sid.3=AAAA`)).get('blob')).toHaveLength(7000)
  })
})
