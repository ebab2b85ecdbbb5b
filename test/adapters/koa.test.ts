import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import Koa from 'koa'
import { describe, expect, it } from 'vitest'
import { type SessionContext, sessionMiddleware } from '../../src/adapters/koa.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { Client, listen, SECRET } from '../helpers/http.js'
import { failingStore } from '../helpers/stores.js'
import { adapterSuite } from './suite.js'

adapterSuite('koa')

describe('koa specifics', () => {
  it('a middleware that throws commits nothing; and Koa answers a plain 500', async () => {
    const sessions = createSessions<{ n: number }>({ secret: SECRET })
    const app = new Koa<Koa.DefaultState, SessionContext<{ n: number }>>()
    app.silent = true
    app.use(sessionMiddleware(sessions))
    app.use((ctx) => {
      ctx.session.set('n', 1)
      throw new Error('boom')
    })
    const server = createServer(app.callback())
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
      const res = await client.get('/')
      expect(res.status).toBe(500)
      expect(res.body).toBe('Internal Server Error')
      expect(res.setCookies).toEqual([])
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('an inner error middleware that answers commits what the failed handler changed', async () => {
    // Koa cannot tell a caught error from none: the documented caveat, pinned
    const sessions = createSessions<{ n: number }>({ secret: SECRET })
    const app = new Koa<Koa.DefaultState, SessionContext<{ n: number }>>()
    app.use(sessionMiddleware(sessions))
    app.use(async (ctx, next) => {
      try {
        await next()
      } catch {
        ctx.status = 500
        ctx.body = 'oops'
      }
    })
    app.use((ctx) => {
      ctx.session.set('n', 1)
      throw new Error('boom')
    })
    const running = await listen(createServer(app.callback()))
    try {
      const res = await new Client(running.url).get('/')
      expect(res.status).toBe(500)
      expect(res.setCookies).toHaveLength(1)
    } finally {
      await running.close()
    }
  })

  // ctx.flushHeaders() sends the head before the commit after `await next()` (server-sent
  // events): a commit that then fails, or that has a cookie it can no longer send, used to
  // leave the response open forever, as Koa neither answers an error nor pipes the body then
  for (const [name, store] of [
    ['a new session, whose cookie cannot go out any more', undefined],
    ['a store failure', failingStore(memoryStore({ sweepInterval: 0 }), (op) => op === 'set')],
  ] as const) {
    it(`after ctx.flushHeaders(), ${name} cuts the response instead of hanging it`, async () => {
      const sessions = createSessions<{ n: number }>({
        secret: SECRET,
        ...(store ? { store } : {}),
      })
      const app = new Koa<Koa.DefaultState, SessionContext<{ n: number }>>()
      const errors: unknown[] = []
      app.on('error', (error) => errors.push(error))
      app.use(sessionMiddleware(sessions))
      app.use((ctx) => {
        ctx.session.set('n', 1)
        const events = new PassThrough()
        ctx.type = 'text/event-stream'
        ctx.body = events
        ctx.flushHeaders()
        events.write('data: first\n\n')
        setTimeout(() => events.end('data: last\n\n'), 20)
      })
      const running = await listen(createServer(app.callback()))
      try {
        const res = await fetch(running.url, { signal: AbortSignal.timeout(3000) })
        expect(res.status).toBe(200)
        expect(res.headers.getSetCookie()).toEqual([])
        const read = await res.text().then(
          () => 'complete',
          (error: Error) => error.name,
        )
        expect(read).toBe('TypeError') // terminated: not a TimeoutError, nor a success
        expect(errors).toHaveLength(1)
      } finally {
        await running.close()
      }
    })
  }
})
