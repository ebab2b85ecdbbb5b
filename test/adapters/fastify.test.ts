import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { getSession, sessionPlugin } from '../../src/adapters/fastify.js'
import { createSessions } from '../../src/index.js'
import { SECRET } from '../helpers/http.js'
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
