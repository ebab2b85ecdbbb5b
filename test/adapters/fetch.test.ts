import { createServer } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { describe, expect, it, vi } from 'vitest'
import { withSession } from '../../src/adapters/fetch.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { Client, cancellableRows, listen, SECRET } from '../helpers/http.js'
import { failingStore } from '../helpers/stores.js'
import { adapterSuite } from './suite.js'

adapterSuite('fetch')

describe('fetch specifics', () => {
  it('a streamed body whose commit failed is cancelled, so its producer is told', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const sessions = createSessions<{ n: number }>({
      secret: SECRET,
      store: failingStore(memoryStore({ sweepInterval: 0 }), (op) => op === 'set'),
    })
    // a file, a database cursor: a row every few milliseconds until it is told to stop
    const { producer, body } = cancellableRows()
    const running = await listen(
      createServer(
        getRequestListener(
          withSession(sessions, (_request, session) => {
            session.set('n', 1)
            return new Response(body, { headers: { 'content-type': 'text/plain' } })
          }),
        ),
      ),
    )
    try {
      const res = await fetch(`${running.url}/export`)
      expect({ status: res.status, body: await res.text() }).toEqual({
        status: 500,
        body: 'Internal Server Error',
      })
    } finally {
      await running.close()
      vi.restoreAllMocks()
    }
    expect(producer.cancelled).toBe(true)
  })

  // several sessions per request are nested wrappers (the documented way): the inner one
  // answers a failure with onError's response, which the outer one must not take for success
  for (const failure of ['the handler throws', "the inner session's commit fails"] as const) {
    it(`nested sessions: when ${failure}, the outer session commits nothing`, async () => {
      vi.spyOn(console, 'error').mockImplementation(() => {})
      const sessions = createSessions<{ n: number; note: string }>({ secret: SECRET })
      const carts = createSessions<{ items: string[] }>({
        secret: SECRET,
        cookie: { name: 'cart' },
        store: failingStore(
          memoryStore({ sweepInterval: 0 }),
          (op) => failure !== 'the handler throws' && op === 'set',
        ),
      })
      const running = await listen(
        createServer(
          getRequestListener(
            withSession(sessions, (request, session) =>
              withSession(carts, (_request, cart) => {
                const url = new URL(request.url)
                if (url.pathname === '/count') {
                  session.set('n', (session.get('n') ?? 0) + 1)
                  return Response.json({ n: session.get('n') })
                }
                session.set('note', 'half done')
                cart.set('items', ['tea'])
                if (failure === 'the handler throws') throw new Error('boom')
                return Response.json({ ok: true })
              })(request),
            ),
          ),
        ),
      )
      try {
        const client = new Client(running.url)
        await client.get('/count')
        const failed = await client.get('/checkout')
        expect({ status: failed.status, setCookies: failed.setCookies }).toEqual({
          status: 500,
          setCookies: [],
        })
        expect((await client.get('/count')).body).toEqual({ n: 2 })
        const session = await sessions.load(`sid=${client.cookie()}`)
        expect(session.get('note')).toBeUndefined()
      } finally {
        await running.close()
        vi.restoreAllMocks()
      }
    })
  }
})
