import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { type SessionEnv, sessionMiddleware } from '../../src/adapters/hono.js'
import { createSessions } from '../../src/index.js'
import { SECRET } from '../helpers/http.js'
import { adapterSuite } from './suite.js'

adapterSuite('hono')

describe('hono specifics', () => {
  const sessions = createSessions<{ n: number }>({ secret: SECRET })
  const app = new Hono<SessionEnv<{ n: number }>>()
  app.use(sessionMiddleware(sessions))
  app.get('/', (c) => {
    const session = c.get('session')
    session.set('n', (session.get('n') ?? 0) + 1)
    return c.json({ n: session.get('n') })
  })
  app.get('/boom', (c) => {
    c.get('session').set('n', 99)
    throw new Error('boom')
  })
  app.get('/upstream', (c) => {
    c.get('session').set('n', 7)
    return Response.redirect('http://127.0.0.1/elsewhere', 302) // immutable headers
  })
  app.onError((_err, c) => c.text('failed', 500))

  it('works with app.request() (no server)', async () => {
    const first = await app.request('/')
    expect(await first.json()).toEqual({ n: 1 })
    const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!
    const second = await app.request('/', { headers: { cookie } })
    expect(await second.json()).toEqual({ n: 2 })
  })

  it('a handler that throws commits nothing', async () => {
    const res = await app.request('/boom')
    expect(res.status).toBe(500)
    expect(res.headers.getSetCookie()).toEqual([])
  })

  it('a response with immutable headers still gets its cookie', async () => {
    const res = await app.request('/upstream')
    expect(res.status).toBe(302)
    expect(res.headers.getSetCookie()).toHaveLength(1)
  })
})
