/**
 * A Fastify route that answers with a fetch `Response` (Fastify 5 sends its status, headers
 * and body): Fastify copies the Response's headers onto the reply after every `onSend` hook,
 * so the session's `Cache-Control: no-store` must survive a Response that sets its own.
 */
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { getSession, sessionPlugin } from '../../src/adapters/fastify.js'
import { createSessions } from '../../src/index.js'
import { SECRET } from '../helpers/http.js'

describe('fastify: a Response payload beside a session cookie', () => {
  it('keeps Cache-Control: no-store on a response that sets the session cookie', async () => {
    const sessions = createSessions<{ n: number }>({ secret: SECRET })
    const app = Fastify()
    await app.register(sessionPlugin, { sessions })
    app.get('/', async (request, reply) => {
      getSession(request, sessions).set('n', 1)
      return reply.send(
        new Response('hello', {
          headers: { 'cache-control': 'public, max-age=600', 'set-cookie': 'theme=dark' },
        }),
      )
    })
    app.get('/asset', async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=600').send('asset'),
    )
    app.get('/upstream', async (request, reply) => {
      getSession(request, sessions).set('n', 2)
      // a proxied answer: a fetch() result, whose headers are immutable
      const { port } = app.server.address() as { port: number }
      return reply.send(await fetch(`http://127.0.0.1:${port}/asset`))
    })
    app.get('/saved', async (request, reply) => {
      const session = getSession(request, sessions)
      session.set('n', 3)
      await session.save() // the cookie is on the reply already; onSend commits nothing more
      return reply.send(new Response('saved', { headers: { 'cache-control': 'max-age=60' } }))
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const { port } = app.server.address() as { port: number }
      const res = await fetch(`http://127.0.0.1:${port}/`)
      expect(await res.text()).toBe('hello')
      expect(res.headers.getSetCookie().map((c) => c.slice(0, c.indexOf('=')))).toEqual([
        'sid',
        'theme',
      ])
      expect(res.headers.get('cache-control')).toBe('no-store')
      const proxied = await fetch(`http://127.0.0.1:${port}/upstream`)
      expect(await proxied.text()).toBe('asset')
      expect(proxied.headers.getSetCookie()).toHaveLength(1)
      expect(proxied.headers.get('cache-control')).toBe('no-store')
      const saved = await fetch(`http://127.0.0.1:${port}/saved`)
      expect(await saved.text()).toBe('saved')
      expect(saved.headers.getSetCookie()).toHaveLength(1)
      expect(saved.headers.get('cache-control')).toBe('no-store')
    } finally {
      await app.close()
    }
  })
})
