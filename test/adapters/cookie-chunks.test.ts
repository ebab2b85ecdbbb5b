/**
 * Every adapter, over real HTTP, with two cookie-store sessions in one response (`sid` split
 * over up to two cookies, and `cart`): generated sequences of writes of any size, each of
 * which must come back as written on the next request, or, refused as too large (a 500), leave
 * each session as it was or as written (the other session's commit may have gone first). Each write can send several `Set-Cookie` headers (chunks, and clearing
 * cookies for chunks a smaller session no longer uses), which every framework must pass on.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createSessions } from '../../src/index.js'
import { cookieStore } from '../../src/stores/cookie.js'
import { Client, SECRET } from '../helpers/http.js'
import { fc, runs } from '../helpers/property.js'
import { ADAPTERS, type AppData, type CartData, type Running, serve } from './servers.js'

describe.each(ADAPTERS)('cookie-store sessions of any size (%s)', (adapter) => {
  let server: Running
  let quiet: { mockRestore(): void }
  beforeAll(async () => {
    // the refused writes' errors, which the default error answer logs
    quiet = vi.spyOn(console, 'error').mockImplementation(() => {})
    const session = createSessions<AppData>({
      secret: SECRET,
      store: cookieStore({ maxChunks: 2 }),
    })
    const cart = createSessions<CartData>({
      secret: SECRET,
      store: cookieStore({ maxChunks: 1 }),
      cookie: { name: 'cart' },
    })
    server = await serve(adapter, { session, cart }, ({ session, cart, url }) => {
      const q = (name: string) => url.searchParams.get(name) ?? ''
      if (url.pathname === '/put') {
        session.set('blob', q('tag') + 'x'.repeat(Number(q('size'))))
        cart.set('items', [q('tag') + 'y'.repeat(Number(q('cart')))])
        return { body: 'ok' }
      }
      return { body: { blob: session.get('blob') ?? null, items: cart.get('items') ?? null } }
    })
  })
  afterAll(async () => {
    await server.close()
    quiet.mockRestore()
  })

  it('each write comes back as written, or, refused, leaves what was there', async () => {
    const write = fc.record({
      // up to past what two cookies hold (about 5,900 characters), and one (about 2,900); three
      // of 4 KB and the cart's would pass the 16 KB of headers Node's server and client take
      size: fc.oneof(fc.nat({ max: 7_000 }), fc.nat({ max: 300 })),
      cart: fc.oneof(fc.nat({ max: 3_200 }), fc.nat({ max: 100 })),
      tag: fc.string({ unit: fc.constantFrom('a', 'b', 'c'), minLength: 1, maxLength: 3 }),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 5 }), async (writes) => {
        const client = new Client(server.url)
        let blob: string | null = null
        let items: string[] | null = null
        for (const { size, cart, tag } of writes) {
          const put = await client.get(`/put?size=${size}&cart=${cart}&tag=${tag}`)
          const wrote = { blob: tag + 'x'.repeat(size), items: [tag + 'y'.repeat(cart)] }
          for (const line of put.setCookies)
            expect(Buffer.byteLength(line)).toBeLessThanOrEqual(4096)
          const shown = (await client.get('/show')).body as {
            blob: string | null
            items: string[] | null
          }
          if (put.status === 200) {
            expect(shown).toEqual(wrote)
          } else {
            // one of the two too large for its cookies: the request fails; each session holds
            // what it held or, if its own commit went through first, what was written to it
            expect(put.status).toBe(500)
            expect(size > 5_000 || cart > 2_500).toBe(true)
            expect([blob, wrote.blob]).toContainEqual(shown.blob)
            expect([items, wrote.items]).toContainEqual(shown.items)
          }
          blob = shown.blob
          items = shown.items
        }
      }),
      { numRuns: runs(25) },
    )
  })
})
