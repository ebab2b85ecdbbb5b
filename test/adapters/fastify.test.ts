import { Readable } from 'node:stream'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { getSession, sessionPlugin } from '../../src/adapters/fastify.js'
import { SessionStoreError } from '../../src/core/errors.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { SECRET } from '../helpers/http.js'
import { failingStore } from '../helpers/stores.js'
import { adapterSuite } from './suite.js'

adapterSuite('fastify')

describe('fastify specifics', () => {
  it('works with fastify.inject() (no listener), and with a trustProxy override', async () => {
    const sessions = createSessions<{ n: number }>({ secret: SECRET })
    const app = Fastify()
    await app.register(sessionPlugin, { sessions, trustProxy: true })
    app.get('/', async (request) => {
      const session = getSession(request, sessions)
      session.set('n', (session.get('n') ?? 0) + 1)
      return { n: session.get('n') }
    })
    const first = await app.inject({ url: '/', headers: { 'x-forwarded-proto': 'https' } })
    expect(first.json()).toEqual({ n: 1 })
    const cookie = String(first.headers['set-cookie'])
    expect(cookie).toMatch(/; Secure/i)
    const second = await app.inject({ url: '/', headers: { cookie: cookie.split(';')[0]! } })
    expect(second.json()).toEqual({ n: 2 })
    await app.close()
  })

  it('session.save() before reply.hijack() puts the cookie on the raw response, once either way', async () => {
    const sessions = createSessions<{ n: number }>({ secret: SECRET })
    const app = Fastify()
    await app.register(sessionPlugin, { sessions })
    app.get('/events', async (request, reply) => {
      const session = getSession(request, sessions)
      session.set('n', 1)
      await session.save()
      // server-sent events through the raw response: the reply's headers are never sent
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
      reply.raw.end('data: 1\n\n')
    })
    app.get('/sent', async (request, reply) => {
      const session = getSession(request, sessions)
      session.set('n', 1)
      await session.save()
      reply.header('set-cookie', 'theme=dark')
      return 'ok'
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const names = async (path: string) =>
      (await fetch(`http://127.0.0.1:${port}${path}`)).headers
        .getSetCookie()
        .map((c) => c.slice(0, c.indexOf('=')))
    expect(await names('/events')).toEqual(['sid'])
    expect(await names('/sent')).toEqual(['sid', 'theme'])
    await app.close()
  })

  for (const phase of ['load', 'commit'] as const) {
    it(`a store failure on ${phase}: setErrorHandler sees a SessionStoreError, its message neutral`, async () => {
      let broken = false
      const sessions = createSessions<{ n: number }>({
        secret: SECRET,
        store: failingStore(
          memoryStore({ sweepInterval: 0 }),
          (op) => broken && op === (phase === 'load' ? 'get' : 'patch'),
        ),
      })
      const app = Fastify()
      await app.register(sessionPlugin, { sessions })
      const seen: unknown[] = []
      app.setErrorHandler((error, _request, reply) => {
        seen.push(error)
        reply.code(503).send({ retry: true })
      })
      app.get('/', async (request) => {
        const session = getSession(request, sessions)
        session.set('n', (session.get('n') ?? 0) + 1)
        return { n: session.get('n') }
      })
      await app.listen({ port: 0, host: '127.0.0.1' })
      try {
        const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/`
        const cookie = (await fetch(url)).headers.getSetCookie()[0]!.split(';')[0]!
        broken = true
        const res = await fetch(url, { headers: { cookie } })
        expect({ status: res.status, body: await res.json() }).toEqual({
          status: 503,
          body: { retry: true },
        })
      } finally {
        await app.close()
      }
      expect(seen).toHaveLength(1)
      const error = seen[0] as SessionStoreError & { statusCode?: number }
      expect(error).toBeInstanceOf(SessionStoreError)
      expect({
        name: error.name,
        code: error.code,
        statusCode: error.statusCode,
        store: error.store,
        operation: error.operation,
        message: error.message,
      }).toEqual({
        name: 'SessionStoreError',
        code: 'ERR_SESSION_STORE',
        statusCode: 500,
        store: 'flaky',
        operation: phase === 'load' ? 'get' : 'patch',
        message: 'Internal Server Error',
      })
      // the store's own error, for the logs
      const cause = error.cause as SessionStoreError
      expect(cause).toBeInstanceOf(SessionStoreError)
      expect(cause.message).toMatch(/\[store:flaky\].*ECONNREFUSED/)
      expect(error.stack).not.toMatch(/ECONNREFUSED|\[store:/)
    })
  }

  it('a stream payload whose commit failed is destroyed, so its producer is told', async () => {
    const sessions = createSessions<{ n: number }>({
      secret: SECRET,
      store: failingStore(memoryStore({ sweepInterval: 0 }), (op) => op === 'set'),
    })
    let rows = 0
    const body = new Readable({
      read() {
        setTimeout(() => this.push(rows++ < 1000 ? 'row\n' : null), 5)
      },
    })
    const app = Fastify()
    await app.register(sessionPlugin, { sessions })
    app.get('/export', async (request, reply) => {
      getSession(request, sessions).set('n', 1)
      return reply.type('text/plain').send(body)
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const { port } = app.server.address() as { port: number }
      const res = await fetch(`http://127.0.0.1:${port}/export`)
      expect(res.status).toBe(500)
      expect(await res.text()).not.toMatch(/row|ECONNREFUSED/)
    } finally {
      await app.close()
    }
    expect(body.destroyed).toBe(true)
  })

  it('a handler that throws commits nothing', async () => {
    const sessions = createSessions<{ n: number }>({ secret: SECRET })
    const app = Fastify()
    await app.register(sessionPlugin, { sessions })
    app.get('/', async (request) => {
      getSession(request, sessions).set('n', 1)
      throw new Error('boom')
    })
    const res = await app.inject({ url: '/' })
    expect(res.statusCode).toBe(500)
    expect(res.headers['set-cookie']).toBeUndefined()
    await app.close()
  })
})
