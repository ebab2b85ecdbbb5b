import Koa from 'koa'
import { describe, expectTypeOf, it } from 'vitest'
import { type SessionContext, sessionMiddleware } from '../../src/adapters/koa.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'

type ShopData = { userId?: string; count: number }
type CartData = { items: string[] }

describe('koa types', () => {
  const shop = createSessions<ShopData>({ secret: 'x'.repeat(32) })
  const carts = createSessions<CartData>({ secret: 'x'.repeat(32), cookie: { name: 'cart' } })

  it('ctx.session is typed through SessionContext', () => {
    const app = new Koa<
      Koa.DefaultState,
      SessionContext<ShopData> & SessionContext<CartData, 'cart'>
    >()
    app.use(sessionMiddleware(shop))
    app.use(sessionMiddleware(carts, { property: 'cart' }))
    app.use((ctx) => {
      expectTypeOf(ctx.session).toEqualTypeOf<Session<ShopData>>()
      expectTypeOf(ctx.cart.get('items')).toEqualTypeOf<string[] | undefined>()
      // @ts-expect-error count is a number
      ctx.session.set('count', 'one')
    })
  })

  it('chained use() adds the session to the context type', () => {
    new Koa().use(sessionMiddleware(shop)).use((ctx) => {
      expectTypeOf(ctx.session.get('count')).toEqualTypeOf<number | undefined>()
    })
  })
})
