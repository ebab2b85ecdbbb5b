import { afterEach, describe, expect, it } from 'vitest'
import { createSessions, hashSessionId } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { type AppData, appRoutes } from './helpers/app.js'
import { ADAPTERS, Client, type Running, SECRET, serve } from './helpers/http.js'
import { countingStore } from './helpers/stores.js'

describe.each(ADAPTERS)('session fixation (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  it('a client-chosen id is never adopted', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    server = await serve(adapter, createSessions<AppData>({ secret: SECRET, store }), appRoutes)
    const chosen = 'A'.repeat(43)
    const client = new Client(server.url)
    client.jar.set('sid', `${chosen}.${'B'.repeat(43)}`)
    await client.get('/count')
    const issued = client.cookie()!
    expect(issued.split('.')[0]).not.toBe(chosen)
    expect(await store.get(hashSessionId(chosen))).toBeUndefined()
  })

  it('a validly signed id the store does not know (e.g. after logout) is not reused', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    server = await serve(adapter, createSessions<AppData>({ secret: SECRET, store }), appRoutes)
    const victim = new Client(server.url)
    await victim.get('/count')
    const old = victim.cookie()!
    await victim.get('/logout')
    expect(victim.cookie()).toBeUndefined()

    const replay = new Client(server.url)
    replay.jar.set('sid', old)
    await replay.get('/count')
    expect(replay.cookie()!.split('.')[0]).not.toBe(old.split('.')[0])
  })

  it('regenerate() at login issues a new id, keeps the data and removes the old record', async () => {
    const counted = countingStore(memoryStore({ sweepInterval: 0 }))
    server = await serve(
      adapter,
      createSessions<AppData>({ secret: SECRET, store: counted.store }),
      appRoutes,
    )
    const client = new Client(server.url)
    await client.get('/count')
    await client.get('/count')
    const before = client.cookie()!
    const login = await client.get('/login?user=alice')
    const after = client.cookie()!
    expect(after).not.toBe(before)
    expect(login.body).toMatchObject({ idHash: hashSessionId(after.split('.')[0]!) })
    expect(await counted.store.get(hashSessionId(before.split('.')[0]!))).toBeUndefined()
    expect((await client.get('/read')).body).toMatchObject({ count: 2, isNew: false })

    // the pre-login cookie (which an attacker may have planted) is now worthless
    const attacker = new Client(server.url)
    attacker.jar.set('sid', before)
    expect((await attacker.get('/read')).body).toMatchObject({ count: null, isNew: true })
  })
})
