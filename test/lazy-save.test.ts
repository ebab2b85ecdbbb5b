import { afterEach, describe, expect, it } from 'vitest'
import { createSessions } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { type AppData, appRoutes } from './helpers/app.js'
import { ADAPTERS, Client, type Running, SECRET, serve } from './helpers/http.js'
import { countingStore } from './helpers/stores.js'

describe.each(ADAPTERS)('lazy save: store calls per request (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  async function setup() {
    const counted = countingStore(memoryStore({ sweepInterval: 0 }))
    server = await serve(
      adapter,
      createSessions<AppData>({ secret: SECRET, store: counted.store }),
      appRoutes,
    )
    return { counted, client: new Client(server.url) }
  }

  it('a cookieless request that touches nothing: 0 store calls and no Set-Cookie', async () => {
    const { counted, client } = await setup()
    const res = await client.get('/nothing')
    expect(counted.calls).toEqual([])
    expect(res.setCookies).toEqual([])
    const read = await client.get('/read')
    expect(counted.calls).toEqual([])
    expect(read.setCookies).toEqual([])
  })

  it('a new session that is changed: 1 write and a cookie with the safe defaults', async () => {
    const { counted, client } = await setup()
    const res = await client.get('/count')
    expect(counted.calls.map((c) => c.op)).toEqual(['set'])
    expect(res.setCookies).toHaveLength(1)
    expect(res.setCookies[0]).toMatch(
      /^sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax$/,
    )
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('vary')).toBeNull()
  })

  it('an unchanged request with a session: 1 read, 0 writes, no Set-Cookie', async () => {
    const { counted, client } = await setup()
    await client.get('/count')
    counted.reset()
    const res = await client.get('/read')
    expect(counted.calls.map((c) => c.op)).toEqual(['get'])
    expect(res.setCookies).toEqual([])
    expect(res.body).toMatchObject({ count: 1 })
  })

  it('a changed request with a session: 1 read and 1 patch, no new cookie', async () => {
    const { counted, client } = await setup()
    await client.get('/count')
    counted.reset()
    const res = await client.get('/count')
    expect(counted.calls.map((c) => c.op)).toEqual(['get', 'patch'])
    expect(res.setCookies).toEqual([])
  })

  it('setting a key to the value it already has writes nothing', async () => {
    const { counted, client } = await setup()
    await client.get('/set?key=theme&value=dark')
    counted.reset()
    await client.get('/set?key=theme&value=dark')
    expect(counted.calls.map((c) => c.op)).toEqual(['get'])
  })
})
