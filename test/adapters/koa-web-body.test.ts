/**
 * Koa 3 sends a web `ReadableStream`, a `Blob` or a fetch `Response` set as `ctx.body`. When the
 * session's commit fails, Koa answers the error instead and never reads that body; a Node
 * stream body is destroyed by Koa when the response finishes, a web one is not: the adapter
 * cancels it, so its producer (a file, a database cursor) is told rather than left open.
 */
import { createServer } from 'node:http'
import Koa from 'koa'
import { describe, expect, it } from 'vitest'
import { type SessionContext, sessionMiddleware } from '../../src/adapters/koa.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { cancellableRows, listen, SECRET } from '../helpers/http.js'
import { failingStore } from '../helpers/stores.js'

describe('koa: a web stream body whose commit failed', () => {
  for (const kind of ['ReadableStream', 'Response'] as const) {
    it(`a ${kind} body is cancelled, and Koa answers a plain 500`, async () => {
      const sessions = createSessions<{ n: number }>({
        secret: SECRET,
        store: failingStore(memoryStore({ sweepInterval: 0 }), (op) => op === 'set'),
      })
      const { producer, body } = cancellableRows()
      const app = new Koa<Koa.DefaultState, SessionContext<{ n: number }>>()
      app.silent = true
      app.use(sessionMiddleware(sessions))
      app.use((ctx) => {
        ctx.session.set('n', 1)
        ctx.type = 'text/plain'
        ctx.body = kind === 'Response' ? new Response(body) : body
      })
      const running = await listen(createServer(app.callback()))
      try {
        const res = await fetch(`${running.url}/export`)
        expect({ status: res.status, body: await res.text() }).toEqual({
          status: 500,
          body: 'Internal Server Error',
        })
      } finally {
        await running.close()
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(producer.cancelled).toBe(true)
    })
  }
})
