import { afterEach, describe, expect, it } from 'vitest'
import { createSessions } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { type AppData, appRoutes } from './helpers/app.js'
import { ADAPTERS, Client, type Running, SECRET, serve } from './helpers/http.js'
import { countingStore, fakeClock } from './helpers/stores.js'

const MIN = 60_000

describe.each(ADAPTERS)('expiry with an injected clock (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  async function setup(
    options: { idleTimeout?: number; absoluteTimeout?: number; touchAfter?: number } = {},
  ) {
    const clock = fakeClock()
    // the store keeps real time out of it too
    const counted = countingStore(memoryStore({ clock: clock.now, sweepInterval: 0 }))
    const sessions = createSessions<AppData>({
      secret: SECRET,
      store: counted.store,
      clock: clock.now,
      idleTimeout: 30 * MIN,
      absoluteTimeout: 120 * MIN,
      touchAfter: MIN,
      ...options,
    })
    const expired: string[] = []
    sessions.on('expired', (e) => expired.push(e.kind))
    server = await serve(adapter, sessions, appRoutes)
    const client = new Client(server.url)
    await client.get('/count')
    return { clock, client, counted, expired }
  }

  it('idle timeout: a session unused for longer expires', async () => {
    const { clock, client, expired } = await setup()
    clock.advance(30 * MIN - 1)
    expect((await client.get('/read')).body).toMatchObject({ count: 1, isNew: false })
    clock.advance(30 * MIN) // the read above touched it, so the idle window restarted then
    expect((await client.get('/read')).body).toMatchObject({ count: null, isNew: true })
    expect(expired).toEqual(['idle'])
  })

  it('idle timeout slides with activity', async () => {
    const { clock, client } = await setup()
    for (let i = 0; i < 5; i++) {
      clock.advance(20 * MIN) // 100 minutes in all: past three idle windows, inside the absolute one
      expect((await client.get('/read')).body).toMatchObject({ count: 1, isNew: false })
    }
  })

  it('absolute timeout: expires however active the session is', async () => {
    const { clock, client, expired } = await setup()
    for (let i = 0; i < 5; i++) {
      clock.advance(20 * MIN)
      await client.get('/count')
    }
    clock.advance(20 * MIN) // 120 minutes since creation
    expect((await client.get('/read')).body).toMatchObject({ count: null, isNew: true })
    expect(expired).toEqual(['absolute'])
  })

  it('an expired session is removed from the store and its cookie cleared', async () => {
    const { clock, client, counted } = await setup()
    clock.advance(31 * MIN)
    counted.reset()
    const res = await client.get('/read')
    expect(counted.calls.map((c) => c.op)).toEqual(['get', 'destroy'])
    expect(res.setCookies[0]).toMatch(/^sid=;/)
    expect(client.cookie()).toBeUndefined()
  })

  it('touchAfter: an unchanged session is touched at most once per interval', async () => {
    const { clock, client, counted } = await setup()
    counted.reset()
    for (let i = 0; i < 5; i++) {
      clock.advance(10_000)
      await client.get('/read')
    }
    expect(counted.count('touch')).toBe(0)
    clock.advance(15_000) // 65 s since the last write
    await client.get('/read')
    expect(counted.count('touch')).toBe(1)
    await client.get('/read')
    expect(counted.count('touch')).toBe(1)
  })
})
