import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Koa from 'koa'
import { describe, expect, it } from 'vitest'
import { type SessionContext, sessionMiddleware } from '../../src/adapters/koa.js'
import { createSessions } from '../../src/index.js'
import { Client, SECRET } from '../helpers/http.js'
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
})
