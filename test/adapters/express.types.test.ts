import express from 'express'
import { describe, expectTypeOf, it } from 'vitest'
import { getSession, sessionMiddleware } from '../../src/adapters/express.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'

type ShopData = { userId?: string; count: number }
type CartData = { items: string[] }

declare module '../../src/adapters/express.js' {
  interface RequestSessions {
    shop: ShopData
    cart: CartData
  }
}

describe('express types', () => {
  it('registered sessions are typed on req', () => {
    const shop = createSessions<ShopData>({ secret: 'x'.repeat(32) })
    const app = express()
    app.use(sessionMiddleware(shop, { property: 'shop' }))
    app.get('/', (req, res) => {
      expectTypeOf(req.shop).toEqualTypeOf<Session<ShopData>>()
      expectTypeOf(req.cart.get('items')).toEqualTypeOf<string[] | undefined>()
      expectTypeOf(getSession(req, shop, 'shop')).toEqualTypeOf<Session<ShopData>>()
      // @ts-expect-error count is a number
      req.shop.set('count', 'one')
      res.end()
    })
  })
})
