import { createServer } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import { stream } from 'hono/streaming'
import { describe, expect, it } from 'vitest'
import { type SessionEnv, sessionMiddleware } from '../../src/adapters/hono.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { listen, SECRET } from '../helpers/http.js'
import { failingStore } from '../helpers/stores.js'
import { adapterSuite } from './suite.js'

/**
 * The platform's `Response`, taken before the suite's servers start: @hono/node-server puts
 * its own in its place, whose `redirect()` has headers that can change.
 */
const PlatformResponse = globalThis.Response

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
    return PlatformResponse.redirect('http://127.0.0.1/elsewhere', 302) // immutable headers
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

  it('a response with immutable headers still gets its cookie, on one copy of it', async () => {
    expect(() => PlatformResponse.redirect('http://127.0.0.1/', 302).headers.set('a', 'b')).toThrow(
      TypeError,
    )
    // every Response made while the request runs (the handler's Response.redirect() is not)
    const Original = globalThis.Response
    let made = 0
    globalThis.Response = new Proxy(Original, {
      construct(target, args, newTarget) {
        made++
        return Reflect.construct(target, args, newTarget)
      },
    })
    let res: Response
    try {
      res = await app.request('/upstream')
    } finally {
      globalThis.Response = Original
    }
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe('http://127.0.0.1/elsewhere')
    expect(res.headers.getSetCookie()).toHaveLength(1)
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(made).toBe(1)
  })

  it("a stream() whose commit failed is cancelled: its callback's onAbort runs", async () => {
    const failing = createSessions<{ n: number }>({
      secret: SECRET,
      store: failingStore(memoryStore({ sweepInterval: 0 }), (op) => op === 'set'),
    })
    const streaming = new Hono<SessionEnv<{ n: number }>>()
    streaming.use(sessionMiddleware(failing))
    const producer = { aborted: false, rows: 0 }
    streaming.get('/export', (c) => {
      c.get('session').set('n', 1)
      return stream(c, async (s) => {
        s.onAbort(() => {
          producer.aborted = true
        })
        while (!s.aborted && producer.rows < 1000) {
          producer.rows++
          await s.write('row\n')
          await s.sleep(5)
        }
      })
    })
    streaming.onError((_error, c) => c.text('failed', 500))
    const running = await listen(createServer(getRequestListener(streaming.fetch)))
    try {
      const res = await fetch(`${running.url}/export`)
      expect({ status: res.status, body: await res.text() }).toEqual({
        status: 500,
        body: 'failed',
      })
    } finally {
      await running.close()
    }
    expect(producer.aborted).toBe(true)
  })

  it('session.save() inside a stream() callback, after the response left, rejects plainly', async () => {
    const sessions = createSessions<{ n: number }>({ secret: SECRET })
    const streaming = new Hono<SessionEnv<{ n: number }>>()
    streaming.use(sessionMiddleware(sessions))
    let saved: Promise<unknown> | undefined
    streaming.get('/events', (c) =>
      stream(c, async (s) => {
        await s.write('first\n')
        await s.sleep(10)
        c.get('session').set('n', 1) // a new session: its cookie can no longer go out
        saved = c
          .get('session')
          .save()
          .then(
            () => 'saved',
            (error: { code?: string }) => error.code,
          )
        await saved
        await s.write('last\n')
      }),
    )
    const running = await listen(createServer(getRequestListener(streaming.fetch)))
    try {
      const res = await fetch(`${running.url}/events`)
      expect(res.headers.getSetCookie()).toEqual([])
      expect(await res.text()).toBe('first\nlast\n')
    } finally {
      await running.close()
    }
    // neither "saved" (no cookie went out) nor Hono's TypeError about a locked body
    expect(await saved).toBe('ERR_SESSION_STATE')
  })
})
