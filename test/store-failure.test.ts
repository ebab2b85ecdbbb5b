import { afterEach, describe, expect, it } from 'vitest'
import { createSessions, type SessionStoreError } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { type AppData, appRoutes } from './helpers/app.js'
import { ADAPTERS, Client, type Running, SECRET, serve } from './helpers/http.js'
import { failingStore } from './helpers/stores.js'

describe.each(ADAPTERS)('store failure (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  async function setup(options: { touchAfter?: number } = {}) {
    let down: 'all' | 'writes' | false = false
    const inner = memoryStore({ sweepInterval: 0 })
    const store = failingStore(inner, (op) => down === 'all' || (down === 'writes' && op !== 'get'))
    const sessions = createSessions<AppData>({ secret: SECRET, store, ...options })
    const errors: SessionStoreError[] = []
    sessions.on('storeError', (e) => errors.push(e.error))
    server = await serve(adapter, sessions, appRoutes)
    const client = new Client(server.url)
    await client.get('/count')
    await client.get('/count')
    return { client, errors, setDown: (v: typeof down) => (down = v) }
  }

  it('a store down on load gives a 500, not a fresh session, and the session survives it', async () => {
    const { client, errors, setDown } = await setup()
    const cookie = client.cookie()
    setDown('all')
    const res = await client.get('/read')
    expect(res.status).toBe(500)
    expect(res.body).toBe('Internal Server Error')
    expect(JSON.stringify(res.body)).not.toMatch(/at |ECONNREFUSED|\.ts/)
    expect(res.setCookies).toEqual([])
    expect(client.cookie()).toBe(cookie)
    expect(errors[0]).toMatchObject({ code: 'ERR_SESSION_STORE', store: 'flaky', operation: 'get' })
    expect(errors[0]!.cause).toBeInstanceOf(Error)

    setDown(false)
    expect((await client.get('/read')).body).toMatchObject({ count: 2, isNew: false })
  })

  it('a store down on commit gives a 500 instead of a response that claims success', async () => {
    const { client, errors, setDown } = await setup()
    setDown('writes') // the read works, the write fails
    const res = await client.get('/count')
    expect(res.status).toBe(500)
    expect(res.body).toBe('Internal Server Error')
    expect(errors.map((e) => e.operation)).toEqual(['patch'])
    setDown(false)
    expect((await client.get('/read')).body).toMatchObject({ count: 2 })
  })

  it('a store down on a touch gives a 500 that names the touch', async () => {
    const { client, errors, setDown } = await setup({ touchAfter: 0 })
    setDown('writes')
    const res = await client.get('/read') // changes nothing, but a touch is due on every request
    expect(res.status).toBe(500)
    expect(errors.map((e) => e.operation)).toEqual(['touch'])
    expect(errors[0]!.cause).toBeInstanceOf(Error)
    setDown(false)
    expect((await client.get('/read')).body).toMatchObject({ count: 2 })
  })

  it('the server keeps serving other requests after store failures', async () => {
    const { client, setDown } = await setup()
    setDown('all')
    for (let i = 0; i < 5; i++) expect((await client.get('/count')).status).toBe(500)
    setDown(false)
    expect((await client.get('/count')).body).toMatchObject({ count: 3 })
  })
})
