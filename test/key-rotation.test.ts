import { afterEach, describe, expect, it } from 'vitest'
import { createSessions } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { type AppData, appRoutes } from './helpers/app.js'
import { ADAPTERS, Client, OTHER_SECRET, type Running, SECRET, serve } from './helpers/http.js'

describe.each(ADAPTERS)('key rotation (%s)', (adapter) => {
  const running: Running[] = []
  afterEach(async () => {
    for (const r of running.splice(0)) await r.close()
  })

  it('old cookies keep loading after a new key is added; new cookies use the newest key', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const before = await serve(
      adapter,
      createSessions<AppData>({ secret: SECRET, store }),
      appRoutes,
    )
    running.push(before)
    const client = new Client(before.url)
    await client.get('/count')
    const oldCookie = client.cookie()!

    // deploy: the new secret first, the old one kept for verification
    const after = await serve(
      adapter,
      createSessions<AppData>({ secrets: [OTHER_SECRET, SECRET], store }),
      appRoutes,
    )
    running.push(after)
    const rotated = new Client(after.url)
    rotated.jar.set('sid', oldCookie)
    expect((await rotated.get('/count')).body).toMatchObject({ count: 2, isNew: false })

    const fresh = new Client(after.url)
    await fresh.get('/count')
    const newCookie = fresh.cookie()!

    // signed with the newest key: a server that only knows the new key accepts it ...
    const onlyNew = await serve(
      adapter,
      createSessions<AppData>({ secret: OTHER_SECRET, store }),
      appRoutes,
    )
    running.push(onlyNew)
    const probe = new Client(onlyNew.url)
    probe.jar.set('sid', newCookie)
    expect((await probe.get('/read')).body).toMatchObject({ count: 1, isNew: false })
    // ... and one that only knows the retired key refuses it
    const onlyOld = await serve(
      adapter,
      createSessions<AppData>({ secret: SECRET, store }),
      appRoutes,
    )
    running.push(onlyOld)
    const probe2 = new Client(onlyOld.url)
    probe2.jar.set('sid', newCookie)
    expect((await probe2.get('/read')).body).toMatchObject({ count: null, isNew: true })
  })

  it('a cookie signed with an older key is signed again with the newest on its next request', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const before = await serve(
      adapter,
      createSessions<AppData>({ secret: SECRET, store }),
      appRoutes,
    )
    running.push(before)
    const client = new Client(before.url)
    await client.get('/count')
    const oldCookie = client.cookie()!

    const after = await serve(
      adapter,
      createSessions<AppData>({ secrets: [OTHER_SECRET, SECRET], store }),
      appRoutes,
    )
    running.push(after)
    const rotated = new Client(after.url)
    rotated.jar.set('sid', oldCookie)
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
    const onlyNew = await serve(
      adapter,
      createSessions<AppData>({ secret: OTHER_SECRET, store }),
      appRoutes,
    )
    running.push(onlyNew)
    const probe = new Client(onlyNew.url)
    probe.jar.set('sid', resigned)
    expect((await probe.get('/read')).body).toMatchObject({ count: 1, isNew: false })
  })

  it('a removed key no longer verifies', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const before = await serve(
      adapter,
      createSessions<AppData>({ secret: SECRET, store }),
      appRoutes,
    )
    running.push(before)
    const client = new Client(before.url)
    await client.get('/count')
    const retired = await serve(
      adapter,
      createSessions<AppData>({ secrets: [OTHER_SECRET], store }),
      appRoutes,
    )
    running.push(retired)
    const c2 = new Client(retired.url)
    c2.jar.set('sid', client.cookie()!)
    expect((await c2.get('/read')).body).toMatchObject({ count: null, isNew: true })
  })
})
