/**
 * The adapter behaviour suite: every adapter runs the same scenarios over real HTTP on
 * loopback. An adapter's test file is `adapterSuite('koa')` plus what is special to it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SessionStore } from '../../src/core/store.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { Client, SECRET } from '../helpers/http.js'
import { countingStore, failingStore, fakeClock, slowWritesStore } from '../helpers/stores.js'
import {
  type AdapterName,
  type AppData,
  type CartData,
  type Routes,
  type Running,
  serve,
} from './servers.js'

const MIN = 60_000

/** A promise the test resolves by hand, to hold a streamed body open. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { open, opened }
}

const routes =
  (held: { opened: Promise<void> }): Routes =>
  async ({ session, cart, url }) => {
    const q = (name: string) => url.searchParams.get(name) ?? ''
    switch (url.pathname) {
      case '/count': {
        const count = (session.get('count') ?? 0) + 1
        session.set('count', count)
        return { body: { count, isNew: session.isNew } }
      }
      case '/read':
        return {
          body: {
            count: session.get('count') ?? null,
            userId: session.get('userId') ?? null,
            isNew: session.isNew,
          },
        }
      case '/nothing':
        return { body: 'ok' }
      case '/set':
        session.set(q('key'), q('value'))
        return { body: 'ok' }
      case '/get':
        return { body: session.get(q('key')) ?? null }
      case '/login':
        session.regenerate()
        session.setUser(q('user'))
        session.set('userId', q('user'))
        return { body: 'welcome' }
      case '/logout':
        session.destroy()
        return { body: 'bye' }
      case '/flash':
        session.flash.set('notice', q('msg'))
        return { redirect: '/show' }
      case '/show':
        return { body: { notice: session.flash.get('notice') ?? null } }
      case '/cart/add':
        cart.set('items', [...(cart.get('items') ?? []), q('item')])
        return { body: cart.get('items') }
      case '/both':
        return {
          body: { count: session.get('count') ?? null, items: cart.get('items') ?? null },
        }
      case '/stream': {
        session.set('streamed', q('v'))
        await session.save()
        return {
          stream: (async function* () {
            yield 'first\n'
            await held.opened
            yield 'last\n'
          })(),
        }
      }
      default:
        return { status: 404, body: 'not found' }
    }
  }

export function adapterSuite(adapter: AdapterName): void {
  describe(`adapter behaviour (${adapter})`, () => {
    let server: Running | undefined
    afterEach(async () => {
      await server?.close()
      server = undefined
      vi.restoreAllMocks()
    })

    async function setup(
      options: { store?: (inner: SessionStore) => SessionStore; trustProxy?: boolean } = {},
    ) {
      const clock = fakeClock()
      const counted = countingStore(memoryStore({ clock: clock.now, sweepInterval: 0 }))
      const store = options.store ? options.store(counted.store) : counted.store
      const sessions = createSessions<AppData>({
        secret: SECRET,
        store,
        clock: clock.now,
        idleTimeout: 30 * MIN,
        touchAfter: MIN,
        trustProxy: options.trustProxy ?? false,
      })
      const carts = createSessions<CartData>({
        secret: SECRET,
        cookie: { name: 'cart' },
        store: memoryStore({ clock: clock.now, sweepInterval: 0 }),
        clock: clock.now,
      })
      const held = gate()
      server = await serve(adapter, { session: sessions, cart: carts }, routes(held))
      return { clock, counted, sessions, held, client: new Client(server.url) }
    }

    it('create: a change stores the session and sends one hardened cookie', async () => {
      const { client, counted } = await setup()
      const untouched = await client.get('/nothing')
      expect(untouched.setCookies).toEqual([])
      expect(counted.writes()).toBe(0)
      const res = await client.get('/count')
      expect(res.status).toBe(200)
      expect(res.body).toEqual({ count: 1, isNew: true })
      expect(res.setCookies).toHaveLength(1)
      expect(res.setCookies[0]).toMatch(/^sid=[\w-]{43}\.[\w-]+; /)
      expect(res.setCookies[0]).toMatch(/HttpOnly/i)
      expect(res.setCookies[0]).toMatch(/SameSite=Lax/i)
      expect(res.setCookies[0]).not.toMatch(/Secure/i)
      expect(res.headers.get('cache-control')).toBe('no-store')
      // no Vary: Cookie beside no-store, which lets no cache keep the response at all
      expect(res.headers.get('vary')).toBeNull()
      expect(counted.count('set')).toBe(1)
    })

    it('trust proxy: X-Forwarded-Proto counts only when the manager trusts the proxy', async () => {
      const https = { headers: { 'x-forwarded-proto': 'https' } }
      const plain = await setup()
      expect((await plain.client.get('/count', https)).setCookies[0]).not.toMatch(/Secure/i)
      await server!.close()
      const trusted = await setup({ trustProxy: true })
      expect((await trusted.client.get('/count', https)).setCookies[0]).toMatch(/; Secure/i)
    })

    it('read and update: the next requests see and change the same session', async () => {
      const { client, counted } = await setup()
      await client.get('/count')
      const cookie = client.cookie()
      counted.reset()
      expect((await client.get('/read')).body).toMatchObject({ count: 1, isNew: false })
      expect(counted.writes()).toBe(0) // unchanged, touch not due
      expect((await client.get('/count')).body).toEqual({ count: 2, isNew: false })
      await client.get('/set?key=colour&value=teal')
      expect((await client.get('/get?key=colour')).body).toBe('teal')
      expect(client.cookie()).toBe(cookie)
    })

    it('flash: read once, gone on the next read', async () => {
      const { client } = await setup()
      const res = await client.get('/flash?msg=saved')
      expect(res.status).toBe(302)
      expect(res.headers.get('location')).toBe('/show')
      expect((await client.get('/show')).body).toEqual({ notice: 'saved' })
      expect((await client.get('/show')).body).toEqual({ notice: null })
    })

    it('regenerate: a new id keeps the data, and the old cookie is refused', async () => {
      const { client } = await setup()
      await client.get('/count')
      const before = client.cookie()!
      const res = await client.get('/login?user=u1')
      expect(res.setCookies).toHaveLength(1)
      const after = client.cookie()!
      expect(after).not.toBe(before)
      expect((await client.get('/read')).body).toEqual({ count: 1, userId: 'u1', isNew: false })
      const old = await new Client(server!.url).get('/read', {
        headers: { cookie: `sid=${before}` },
      })
      expect(old.body).toMatchObject({ count: null, isNew: true })
    })

    it('destroy: the record is removed and the cookie cleared', async () => {
      const { client } = await setup()
      await client.get('/count')
      const before = client.cookie()!
      const res = await client.get('/logout')
      expect(res.setCookies).toHaveLength(1)
      expect(res.setCookies[0]).toMatch(/^sid=;|Max-Age=0|Expires=Thu, 01 Jan 1970/i)
      expect(client.cookie()).toBeUndefined()
      const old = await new Client(server!.url).get('/read', {
        headers: { cookie: `sid=${before}` },
      })
      expect(old.body).toMatchObject({ count: null, isNew: true })
    })

    it('expiry: an idle session expires on the injected clock', async () => {
      const { client, clock } = await setup()
      await client.get('/count')
      clock.advance(30 * MIN - 1)
      expect((await client.get('/read')).body).toMatchObject({ count: 1, isNew: false })
      clock.advance(30 * MIN) // a touch at the last read moved the idle expiry
      expect((await client.get('/read')).body).toMatchObject({ count: null, isNew: true })
    })

    it('tampered cookie: no session, and the store is never asked', async () => {
      const { client, counted } = await setup()
      await client.get('/count')
      const [id, sig] = client.cookie()!.split('.') as [string, string]
      const forged = `${id}.${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BB' : 'AA'}`
      counted.reset()
      const res = await new Client(server!.url).get('/read', {
        headers: { cookie: `sid=${forged}` },
      })
      expect(res.body).toMatchObject({ count: null, isNew: true })
      expect(counted.calls).toEqual([])
    })

    it('two named sessions side by side, each with its own cookie', async () => {
      const { client } = await setup()
      await client.get('/count')
      const added = await client.get('/cart/add?item=tea')
      expect(added.body).toEqual(['tea'])
      expect(added.setCookies).toHaveLength(1)
      expect(added.setCookies[0]).toMatch(/^cart=/)
      await client.get('/cart/add?item=milk')
      expect((await client.get('/both')).body).toEqual({ count: 1, items: ['tea', 'milk'] })
      await client.get('/logout')
      expect(client.cookie('sid')).toBeUndefined()
      expect((await client.get('/both')).body).toEqual({ count: null, items: ['tea', 'milk'] })
    })

    it('a store failure is a 5xx with no stack and no cookie', async () => {
      vi.spyOn(console, 'error').mockImplementation(() => {})
      let broken = false
      const { client } = await setup({
        store: (inner) => failingStore(inner, (op) => broken && op !== 'destroy'),
      })
      await client.get('/count')
      broken = true
      for (const path of ['/read', '/count']) {
        const res = await client.get(path)
        expect(res.status, path).toBeGreaterThanOrEqual(500)
        const body = typeof res.body === 'string' ? res.body : JSON.stringify(res.body)
        expect(body, path).not.toMatch(/\n\s+at |\.ts:\d+/)
        // nor the store's internals: the driver's message, the server's address
        expect(body, path).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|\[store:/)
        expect(res.setCookies, path).toEqual([])
      }
    })

    it('a failed commit is a 5xx, not a success', async () => {
      vi.spyOn(console, 'error').mockImplementation(() => {})
      let broken = false
      const { client } = await setup({
        store: (inner) => failingStore(inner, (op) => broken && op === 'patch'),
      })
      await client.get('/count')
      broken = true
      const res = await client.get('/count')
      expect(res.status).toBeGreaterThanOrEqual(500)
      const body = typeof res.body === 'string' ? res.body : JSON.stringify(res.body)
      expect(body).not.toMatch(/\n\s+at |\.ts:\d+|"count"/)
      broken = false
      expect((await client.get('/read')).body).toMatchObject({ count: 1 })
    })

    it('save-before-response: a flash set before a redirect is there 200 times in a row', async () => {
      const { client } = await setup({ store: (inner) => slowWritesStore(inner, 3) })
      let missing = 0
      for (let i = 0; i < 200; i++) {
        const res = await client.get(`/flash?msg=m${i}`)
        const next = await client.get(res.headers.get('location')!)
        if ((next.body as { notice: string | null }).notice !== `m${i}`) missing++
      }
      expect(missing).toBe(0)
    })

    it('session.save() commits before a streamed body starts', async () => {
      const { client, held } = await setup({ store: (inner) => slowWritesStore(inner, 3) })
      const response = await fetch(`${server!.url}/stream?v=early`)
      // the headers are here, the body is held open: the store must have the session already
      const cookies = response.headers.getSetCookie()
      expect(cookies).toHaveLength(1)
      const sid = cookies[0]!.split(';')[0]!
      const meanwhile = await client.get('/get?key=streamed', { headers: { cookie: sid } })
      expect(meanwhile.body).toBe('early')
      held.open()
      expect(await response.text()).toBe('first\nlast\n')
    })
  })
}
