import { afterEach, describe, expect, it } from 'vitest'
import { createSessions } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { type AppData, appRoutes } from './helpers/app.js'
import { ADAPTERS, Client, OTHER_SECRET, type Running, SECRET, serve } from './helpers/http.js'
import { countingStore } from './helpers/stores.js'

const flipBit = (s: string, i: number) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const c = s[i]!
  const next = alphabet[(alphabet.indexOf(c) ^ 1) % 64]!
  return s.slice(0, i) + next + s.slice(i + 1)
}

describe.each(ADAPTERS)('tampered cookie (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  async function setup() {
    const counted = countingStore(memoryStore({ sweepInterval: 0 }))
    const sessions = createSessions<AppData>({ secret: SECRET, store: counted.store })
    server = await serve(adapter, sessions, appRoutes)
    const client = new Client(server.url)
    await client.get('/count')
    await client.get('/count')
    const good = client.cookie()!
    counted.reset()
    return { counted, good, sessions }
  }

  const forged = (good: string): [string, string][] => {
    const [id, sig] = good.split('.') as [string, string]
    return [
      ['bit flip in the id', `${flipBit(id, 5)}.${sig}`],
      ['bit flip in the signature', `${id}.${flipBit(sig, 10)}`],
      ['bit flip in the last signature character', `${id}.${flipBit(sig, sig.length - 1)}`],
      ['truncated', good.slice(0, -3)],
      ['appended bytes', `${good}AAA`],
      ['appended dot segment', `${good}.x`],
      ['no signature', id],
      ['empty', ''],
      ['non-alphabet bytes', `${id.slice(0, -1)}%.${sig}`],
      ['huge', 'A'.repeat(8000)],
      ['unknown id with a made-up signature', `${'B'.repeat(43)}.${sig}`],
    ]
  }

  it('a forged cookie gives no session and never reaches the store', async () => {
    const { counted, good } = await setup()
    for (const [what, value] of forged(good)) {
      const attacker = new Client(server.url)
      const res = await attacker.get('/read', { headers: { cookie: `sid=${value}` } })
      expect(res.status, what).toBe(200)
      expect(res.body, what).toMatchObject({ count: null, isNew: true })
    }
    expect(counted.calls).toEqual([])
  })

  it('a cookie signed with a key the server does not have is refused before the store', async () => {
    const { counted } = await setup()
    const other = createSessions<AppData>({ secret: OTHER_SECRET })
    const s = await other.load(undefined)
    s.set('count', 99)
    const [cookie] = await other.commit(s)
    const value = cookie!.split(';')[0]!.split('=')[1]!
    const res = await new Client(server.url).get('/read', { headers: { cookie: `sid=${value}` } })
    expect(res.body).toMatchObject({ count: null, isNew: true })
    expect(counted.calls).toEqual([])
  })

  it('the genuine cookie still works, and a refused one is reported through an event', async () => {
    const { good, sessions } = await setup()
    const reasons: string[] = []
    sessions.on('rejected', (e) => reasons.push(e.reason))
    const ok = await new Client(server.url).get('/read', { headers: { cookie: `sid=${good}` } })
    expect(ok.body).toMatchObject({ count: 2, isNew: false })
    await new Client(server.url).get('/read', { headers: { cookie: `sid=${good}x` } })
    expect(reasons).toEqual(['malformed'])
  })

  it('a refused cookie is cleared and no session is stored for it', async () => {
    const { counted, good } = await setup()
    const res = await new Client(server.url).get('/read', { headers: { cookie: `sid=${good}x` } })
    expect(res.setCookies).toHaveLength(1)
    expect(res.setCookies[0]).toMatch(/^sid=;.*Max-Age=0/)
    expect(counted.writes()).toBe(0)
  })
})
