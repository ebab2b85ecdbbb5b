import Fastify from 'fastify'
import { describe, expectTypeOf, it } from 'vitest'
import { getSession, sessionPlugin } from '../../src/adapters/fastify.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'

type ShopData = { userId?: string; count: number }
type CartData = { items: string[] }

declare module '../../src/adapters/fastify.js' {
  interface RequestSessions {
    shop: ShopData
    cart: CartData
  }
}

describe('fastify types', () => {
  it('registered sessions are typed on request', async () => {
    const shop = createSessions<ShopData>({ secret: 'x'.repeat(32) })
    const carts = createSessions<CartData>({ secret: 'x'.repeat(32), cookie: { name: 'cart' } })
    const app = Fastify()
    await app.register(sessionPlugin, { sessions: shop, property: 'shop' })
    await app.register(sessionPlugin, { sessions: carts, property: 'cart' })
    // @ts-expect-error sessions is required
    void app.register(sessionPlugin, {})
    app.get('/', async (request) => {
      expectTypeOf(request.shop).toEqualTypeOf<Session<ShopData>>()
      expectTypeOf(request.cart.get('items')).toEqualTypeOf<string[] | undefined>()
      expectTypeOf(getSession(request, shop, 'shop')).toEqualTypeOf<Session<ShopData>>()
      // @ts-expect-error count is a number
      request.shop.set('count', 'one')
      return 'ok'
    })
    await app.close()
  })
})
