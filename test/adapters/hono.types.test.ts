import { Hono } from 'hono'
import { describe, expectTypeOf, it } from 'vitest'
import { type SessionEnv, sessionMiddleware } from '../../src/adapters/hono.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'

type ShopData = { userId?: string; count: number }
type CartData = { items: string[] }

describe('hono types', () => {
  const shop = createSessions<ShopData>({ secret: 'x'.repeat(32) })
  const carts = createSessions<CartData>({ secret: 'x'.repeat(32), cookie: { name: 'cart' } })

  it('c.get() is typed through SessionEnv', () => {
    const app = new Hono<SessionEnv<ShopData> & SessionEnv<CartData, 'cart'>>()
    app.use(sessionMiddleware(shop))
    app.use(sessionMiddleware(carts, { name: 'cart' }))
    app.get('/', (c) => {
      expectTypeOf(c.get('session')).toEqualTypeOf<Session<ShopData>>()
      expectTypeOf(c.get('cart').get('items')).toEqualTypeOf<string[] | undefined>()
      // @ts-expect-error count is a number
      c.get('session').set('count', 'one')
      return c.text('ok')
    })
  })

  it('chained use() infers the variable without an explicit Env', () => {
    new Hono().use(sessionMiddleware(carts, { name: 'cart' })).get('/', (c) => {
      expectTypeOf(c.get('cart')).toEqualTypeOf<Session<CartData>>()
      return c.text('ok')
    })
  })
})
