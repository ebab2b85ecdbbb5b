import { afterEach, describe, expect, it } from 'vitest'
import { createSessions, type SessionStore } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { type AppData, appRoutes } from './helpers/app.js'
import { ADAPTERS, Client, OTHER_SECRET, type Running, SECRET, serve } from './helpers/http.js'

describe.each(ADAPTERS)('key rotation (%s)', (adapter) => {
  const running: Running[] = []
  afterEach(async () => {
    for (const r of running.splice(0)) await r.close()
  })
  /** The app over `store` with `secrets` (newest first), closed after the test. */
  const server = async (store: SessionStore, secrets: string[]) => {
    const r = await serve(adapter, createSessions<AppData>({ secrets, store }), appRoutes)
    running.push(r)
    return r
  }
  /** A client of `r` that holds `cookie` as its session cookie. */
  const holding = (r: Running, cookie: string) => {
    const client = new Client(r.url)
    client.jar.set('sid', cookie)
    return client
  }

  it('old cookies keep loading after a new key is added; new cookies use the newest key', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const before = await server(store, [SECRET])
    const client = new Client(before.url)
    await client.get('/count')
    const oldCookie = client.cookie()!

    // deploy: the new secret first, the old one kept for verification
    const after = await server(store, [OTHER_SECRET, SECRET])
    const rotated = holding(after, oldCookie)
    expect((await rotated.get('/count')).body).toMatchObject({ count: 2, isNew: false })

    const fresh = new Client(after.url)
    await fresh.get('/count')
    const newCookie = fresh.cookie()!

    // signed with the newest key: a server that only knows the new key accepts it ...
    const onlyNew = await server(store, [OTHER_SECRET])
    const probe = holding(onlyNew, newCookie)
    expect((await probe.get('/read')).body).toMatchObject({ count: 1, isNew: false })
    // ... and one that only knows the retired key refuses it
    const onlyOld = await server(store, [SECRET])
    const probe2 = holding(onlyOld, newCookie)
    expect((await probe2.get('/read')).body).toMatchObject({ count: null, isNew: true })
  })

  it('a cookie signed with an older key is signed again with the newest on its next request', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const before = await server(store, [SECRET])
    const client = new Client(before.url)
    await client.get('/count')
    const oldCookie = client.cookie()!

    const after = await server(store, [OTHER_SECRET, SECRET])
    const rotated = holding(after, oldCookie)
    // a request that changes nothing still carries the cookie signed with the newest key ...
    const res = await rotated.get('/read')
    expect(res.body).toMatchObject({ count: 1, isNew: false })
    expect(res.setCookies).toHaveLength(1)
    const resigned = rotated.cookie()!
    expect(resigned).not.toBe(oldCookie)
    expect(resigned.split('.')[0]).toBe(oldCookie.split('.')[0]) // the same session id
    // ... once: the next request, with that cookie, gets none
    expect((await rotated.get('/read')).setCookies).toEqual([])
    // so the old key can go without logging anybody out who came back meanwhile
    const onlyNew = await server(store, [OTHER_SECRET])
    const probe = holding(onlyNew, resigned)
    expect((await probe.get('/read')).body).toMatchObject({ count: 1, isNew: false })
  })

  it('a removed key no longer verifies', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const before = await server(store, [SECRET])
    const client = new Client(before.url)
    await client.get('/count')
    const retired = await server(store, [OTHER_SECRET])
    const c2 = holding(retired, client.cookie()!)
    expect((await c2.get('/read')).body).toMatchObject({ count: null, isNew: true })
  })
})
