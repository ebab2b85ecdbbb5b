/**
 * Each framework's own ways of setting cookies and answering, beside a session, over real
 * HTTP: generated sequences of requests, each setting some cookies of the app's by one of the
 * framework's APIs and changing the session or not. Every response must carry the app's
 * cookies as it set them and, when the session was made or moved, the session's, and the
 * session must count every change.
 */

import { createServer } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa from 'koa'
import { afterAll, describe, expect, it } from 'vitest'
import { sessionMiddleware as expressSession } from '../../src/adapters/express.js'
import { sessionPlugin } from '../../src/adapters/fastify.js'
import { sessionMiddleware as honoSession } from '../../src/adapters/hono.js'
import { sessionMiddleware as koaSession } from '../../src/adapters/koa.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { Client, listen, type Running, SECRET } from '../helpers/http.js'
import { fc, runs } from '../helpers/property.js'

type Data = { n: number }
/** What the next request does: which API sets the app's cookies, and whether the session changes. */
interface Plan {
  way: number
  cookies: string[]
  change: boolean
  login: boolean
}
let plan: Plan = { way: 0, cookies: [], change: false, login: false }

/** The session's part of every request: count a change, move on login; the body says the count. */
function use(session: Session<Data>): string {
  if (plan.change) session.set('n', (session.get('n') ?? 0) + 1)
  if (plan.login) session.regenerate()
  return String(session.get('n') ?? 0)
}

const split = (cookie: string) => cookie.split('=') as [string, string]

/** Per framework: its ways of setting the app's cookies, and a server using the first `way`. */
const FRAMEWORKS: Record<string, { ways: number; start: () => Promise<Running> }> = {
  express: {
    ways: 4,
    start: async () => {
      const app = express()
      app.use(expressSession(createSessions<Data>({ secret: SECRET, store: memoryStore() })))
      app.get('/', (req, res) => {
        const body = use(req.session as unknown as Session<Data>)
        const { way, cookies } = plan
        if (way === 0) for (const c of cookies) res.cookie(...split(c), { encode: String })
        if (way === 1 && cookies.length > 0) res.set('Set-Cookie', cookies)
        if (way === 2) for (const c of cookies) res.append('Set-Cookie', c)
        if (way === 3) {
          res.writeHead(200, { 'set-cookie': cookies, 'content-type': 'text/plain' })
          res.end(body)
          return
        }
        res.type('text').send(body)
      })
      return listen(createServer(app))
    },
  },
  fastify: {
    ways: 3,
    start: async () => {
      const app = Fastify()
      await app.register(sessionPlugin, {
        sessions: createSessions<Data>({ secret: SECRET, store: memoryStore() }),
      })
      app.get('/', async (request, reply) => {
        const body = use((request as unknown as { session: Session<Data> }).session)
        const { way, cookies } = plan
        if (way === 0) for (const c of cookies) reply.header('set-cookie', c)
        if (way === 1 && cookies.length > 0) reply.header('set-cookie', cookies)
        if (way === 2 && cookies.length > 0) reply.headers({ 'set-cookie': cookies })
        return reply.type('text/plain').send(body)
      })
      await app.listen({ port: 0, host: '127.0.0.1' })
      const { port } = app.server.address() as { port: number }
      return { url: `http://127.0.0.1:${port}`, close: () => app.close() }
    },
  },
  koa: {
    ways: 3,
    start: async () => {
      const app = new Koa()
      app.use(koaSession(createSessions<Data>({ secret: SECRET, store: memoryStore() })))
      app.use((ctx) => {
        const body = use(ctx.session as Session<Data>)
        const { way, cookies } = plan
        if (way === 0) for (const c of cookies) ctx.cookies.set(...split(c), { httpOnly: false })
        if (way === 1 && cookies.length > 0) ctx.set('Set-Cookie', cookies)
        if (way === 2) for (const c of cookies) ctx.append('Set-Cookie', c)
        ctx.body = body
      })
      return listen(createServer(app.callback()))
    },
  },
  hono: {
    ways: 3,
    start: async () => {
      const app = new Hono<{ Variables: { session: Session<Data> } }>()
      app.use(honoSession(createSessions<Data>({ secret: SECRET, store: memoryStore() })) as never)
      app.get('/', (c) => {
        const body = use(c.get('session'))
        const { way, cookies } = plan
        if (way === 0)
          for (const cookie of cookies) c.header('Set-Cookie', cookie, { append: true })
        if (way === 1) {
          const headers = new Headers({ 'content-type': 'text/plain' })
          for (const cookie of cookies) headers.append('Set-Cookie', cookie)
          return new Response(body, { headers })
        }
        if (way === 2 && cookies.length > 0) c.header('Set-Cookie', cookies.join(', '))
        return c.text(body)
      })
      return listen(createServer(getRequestListener(app.fetch)))
    },
  },
}

describe.each(Object.keys(FRAMEWORKS))("the app's own cookies beside the session (%s)", (name) => {
  const { ways, start } = FRAMEWORKS[name]!
  let server: Running
  afterAll(() => server?.close())

  it('keep every cookie the app set, and the session its count', async () => {
    server = await start()
    const cookie = fc
      .tuple(fc.constantFrom('theme', 'lang', 'a'), fc.constantFrom('dark', 'en', '1'))
      .map(([n, v]) => `${n}=${v}`)
    const planOf = fc.record({
      way: fc.nat({ max: ways - 1 }),
      cookies: fc.uniqueArray(cookie, { maxLength: 2, selector: (c) => c.split('=')[0] }),
      change: fc.boolean(),
      login: fc.boolean(),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(planOf, { minLength: 1, maxLength: 4 }), async (plans) => {
        const browser = new Client(server.url)
        let n = 0
        let stored = false
        for (const p of plans) {
          plan = p
          const res = await browser.get('/')
          if (p.change) n++
          expect(res.status).toBe(200)
          expect(String(res.body)).toBe(String(n))
          const own = res.setCookies
            .filter((c) => !c.startsWith('sid='))
            .map((c) => c.split(';')[0])
          // Hono's third way sends the app's cookies as one header line, as the app wrote it
          const sent =
            name === 'hono' && p.way === 2 && p.cookies.length > 0
              ? [p.cookies.join(', ')]
              : p.cookies
          expect(own).toEqual(sent)
          const sid = res.setCookies.filter((c) => c.startsWith('sid='))
          // a cookie when the session is made (a first change) or moved (a login once stored)
          const made = !stored && p.change
          if (made || (stored && p.login)) expect(sid).toHaveLength(1)
          stored ||= p.change
        }
        plan = { way: 0, cookies: [], change: false, login: false }
        expect(String((await browser.get('/')).body)).toBe(String(n))
      }),
      { numRuns: runs(40) },
    )
  })
})
