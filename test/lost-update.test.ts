import { afterEach, describe, expect, it } from 'vitest'
import { createSessions } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { type AppData, appRoutes } from './helpers/app.js'
import { ADAPTERS, Client, type Running, SECRET, serve } from './helpers/http.js'

describe.each(ADAPTERS)('lost update (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  it('two interleaved requests changing different keys both keep their change', async () => {
    server = await serve(
      adapter,
      createSessions<AppData>({ secret: SECRET, store: memoryStore() }),
      appRoutes,
    )
    const client = new Client(server.url)
    await client.get('/count')
    // A loads, then waits; B loads after A and commits first; A commits last.
    const a = client.get('/set?key=a&value=from-a&wait=150')
    await new Promise((r) => setTimeout(r, 30))
    const b = client.get('/set?key=b&value=from-b')
    await Promise.all([a, b])
    expect((await client.get('/get?key=a')).body).toBe('from-a')
    expect((await client.get('/get?key=b')).body).toBe('from-b')
    expect((await client.get('/read')).body).toMatchObject({ count: 1 })
  })

  it('20 overlapping requests, each changing its own key: all persist', async () => {
    server = await serve(
      adapter,
      createSessions<AppData>({ secret: SECRET, store: memoryStore() }),
      appRoutes,
    )
    const client = new Client(server.url)
    await client.get('/count')
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.get(`/set?key=k${i}&value=v${i}&wait=${(i * 7) % 40}`),
      ),
    )
    for (let i = 0; i < 20; i++) expect((await client.get(`/get?key=k${i}`)).body).toBe(`v${i}`)
  })
})
