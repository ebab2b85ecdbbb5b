/**
 * Threat: a client edits its encrypted session cookie (to change its data, its expiry, or to
 * guess its way in). Every change, however small, gives no session, is reported through the
 * `rejected` event and is cleared; the genuine cookie keeps working.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { cookieStore } from '../../src/stores/cookie.js'
import { type AppData, appRoutes } from '../helpers/app.js'
import { ADAPTERS, Client, OTHER_SECRET, type Running, SECRET, serve } from '../helpers/http.js'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** Flips the lowest bit of the 6 a base64url character carries. */
const flipBit = (s: string, i: number) =>
  s.slice(0, i) + ALPHABET[ALPHABET.indexOf(s[i]!) ^ 1] + s.slice(i + 1)

describe.each(ADAPTERS)('cookie store: tampered cookie (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  async function setup() {
    const sessions = createSessions<AppData>({ secret: SECRET, store: cookieStore() })
    const reasons: string[] = []
    sessions.on('rejected', (e) => reasons.push(e.reason))
    server = await serve(adapter, sessions, appRoutes)
    const client = new Client(server.url)
    await client.get('/count')
    await client.get('/count')
    return { good: client.cookie()!, reasons }
  }

  const read = (cookie: string) => new Client(server.url).get('/read', { headers: { cookie } })

  it('a bit flip anywhere, a cut, an addition or garbage gives no session', async () => {
    const { good, reasons } = await setup()
    const forged: [string, string][] = [
      ['version byte', flipBit(good, 0)],
      ['key id', flipBit(good, 3)],
      ['IV', flipBit(good, 12)],
      ['ciphertext', flipBit(good, 30)],
      ['tag', flipBit(good, good.length - 5)],
      ['spare bits of the last character', flipBit(good, good.length - 1)],
      ['truncated', good.slice(0, -4)],
      ['appended', `${good}AAAA`],
      ['empty', ''],
      ['non-alphabet byte', `${good.slice(0, 20)}%${good.slice(21)}`],
      ['standard base64 instead of base64url', good.replaceAll('-', '+').replaceAll('_', '/')],
      ['huge (over maxChunks × 4096; Node refuses 16 KB of headers itself)', 'A'.repeat(14_000)],
    ]
    let tried = 0
    for (const [what, value] of forged) {
      if (value === good) continue // the replacement found nothing to replace
      tried++
      const res = await read(`sid=${value}`)
      expect(res.status, what).toBe(200)
      expect(res.body, what).toMatchObject({ count: null, isNew: true })
    }
    expect(reasons).toHaveLength(tried)
    expect(new Set(reasons)).toEqual(new Set(['malformed', 'bad-signature']))
    // and the genuine one still opens
    expect((await read(`sid=${good}`)).body).toMatchObject({ count: 2, isNew: false })
  })

  it('a cookie sealed with a secret the server does not have is refused', async () => {
    await setup()
    const other = createSessions<AppData>({ secret: OTHER_SECRET, store: cookieStore() })
    const s = await other.load(undefined)
    s.set('count', 99)
    const [cookie] = await other.commit(s)
    expect((await read(cookie!.split(';')[0]!)).body).toMatchObject({ count: null, isNew: true })
  })

  it('a cookie sealed for another cookie name is refused (the name is associated data)', async () => {
    await setup()
    const other = createSessions<AppData>({
      secret: SECRET,
      store: cookieStore(),
      cookie: { name: 'admin' },
    })
    const s = await other.load(undefined)
    s.set('count', 99)
    const [cookie] = await other.commit(s)
    const value = cookie!.split(';')[0]!.slice('admin='.length)
    expect((await read(`sid=${value}`)).body).toMatchObject({ count: null, isNew: true })
  })

  it('an id-signing cookie of the same secret does not open as a sealed one', async () => {
    await setup()
    const signed = createSessions<AppData>({ secret: SECRET })
    const s = await signed.load(undefined)
    s.set('count', 99)
    const [cookie] = await signed.commit(s)
    expect((await read(cookie!.split(';')[0]!)).body).toMatchObject({ count: null, isNew: true })
  })

  it('a refused cookie is cleared', async () => {
    const { good } = await setup()
    const res = await read(`sid=${flipBit(good, 30)}`)
    expect(res.setCookies).toEqual([expect.stringMatching(/^sid=;.*Max-Age=0/)])
  })
})
