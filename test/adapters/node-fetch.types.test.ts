import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expectTypeOf, it } from 'vitest'
import { getSession, withSession as withFetchSession } from '../../src/adapters/fetch.js'
import { withSession } from '../../src/adapters/node.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'

type ShopData = { userId?: string; count: number }

describe('node and fetch types', () => {
  const shop = createSessions<ShopData>({ secret: 'x'.repeat(32) })

  it('the handler gets Session<Data>', () => {
    const listener = withSession(shop, (req, res, session) => {
      expectTypeOf(req).toEqualTypeOf<IncomingMessage>()
      expectTypeOf(res).toEqualTypeOf<ServerResponse>()
      expectTypeOf(session).toEqualTypeOf<Session<ShopData>>()
      // @ts-expect-error count is a number
      session.set('count', 'one')
    })
    expectTypeOf(listener).parameters.toEqualTypeOf<[IncomingMessage, ServerResponse]>()
    const handler = withFetchSession(shop, (_request, session) => {
      expectTypeOf(session.get('count')).toEqualTypeOf<number | undefined>()
      return new Response('ok')
    })
    expectTypeOf(handler).returns.resolves.toEqualTypeOf<Response>()
    expectTypeOf(getSession(shop, new Request('http://x/'))).resolves.toEqualTypeOf<
      Session<ShopData>
    >()
  })
})
