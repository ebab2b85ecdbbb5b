/**
 * With a store that answers at once (`getNow`, `patchNow`, `touchNow`: memory, SQLite), the
 * node, Express and Fastify adapters run the handler in the tick the request arrived in, and
 * send a changed session's response in the tick the handler answered: a framework resumed from a
 * promise pays for it on every request. A store that must wait still works, a tick later. Each
 * server marks the request when it arrives and queues a microtask that would clear the mark;
 * the handler answers whether the mark survived. After a write, each server notes whether the
 * response went out at once (node, Express: `res.writableEnded` right after `res.end()`;
 * Fastify: the mark, in an `onSend` hook that runs after the session's).
 */
import { createServer, type IncomingMessage } from 'node:http'
import express from 'express'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { sessionMiddleware } from '../../src/adapters/express.js'
import { sessionPlugin } from '../../src/adapters/fastify.js'
import { withSession } from '../../src/adapters/node.js'
import type { Session } from '../../src/core/session.js'
import type { SessionStore } from '../../src/core/store.js'
import { createSessions, type Sessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { listen, type Running, SECRET } from '../helpers/http.js'

type Data = { count: number }
const MARK = Symbol('same tick')

/** Marks `req` as in its first tick until a microtask runs. */
function mark(req: IncomingMessage): void {
  const bag = req as unknown as Record<symbol, boolean>
  bag[MARK] = true
  queueMicrotask(() => {
    bag[MARK] = false
  })
}
const sameTick = (req: IncomingMessage) => (req as unknown as Record<symbol, boolean>)[MARK]
/** Per `/write` request: whether its response went out without waiting for the commit. */
let sentAtOnce: boolean[] = []

/** The memory store without its synchronous methods, as a networked store is. */
function waitingStore(): SessionStore {
  const { getNow: _g, patchNow: _p, touchNow: _t, ...store } = memoryStore({ sweepInterval: 0 })
  return store
}

const SERVERS = {
  async node(sessions: Sessions<Data>) {
    const listener = withSession(sessions, (req, res, session) => {
      if (req.url === '/write') session.set('count', (session.get('count') ?? 0) + 1)
      res.end(JSON.stringify({ sameTick: sameTick(req), count: session.get('count') ?? null }))
      if (req.url === '/write') sentAtOnce.push(res.writableEnded)
    })
    return listen(
      createServer((req, res) => {
        mark(req)
        void listener(req, res)
      }),
    )
  },
  async express(sessions: Sessions<Data>) {
    const app = express()
    app.use((req, _res, next) => {
      mark(req)
      next()
    })
    app.use(sessionMiddleware(sessions))
    app.get('/:route', (req, res) => {
      const session = (req as unknown as { session: Session<Data> }).session
      if (req.params.route === 'write') session.set('count', (session.get('count') ?? 0) + 1)
      res.json({ sameTick: sameTick(req), count: session.get('count') ?? null })
      if (req.params.route === 'write') sentAtOnce.push(res.writableEnded)
    })
    return listen(createServer(app))
  },
  async fastify(sessions: Sessions<Data>) {
    const app = Fastify()
    app.addHook('onRequest', (request, _reply, done) => {
      mark(request.raw)
      done()
    })
    await app.register(sessionPlugin, { sessions })
    app.addHook('onSend', (request, _reply, payload, done) => {
      if ((request.params as { route: string }).route === 'write')
        sentAtOnce.push(sameTick(request.raw) === true)
      done(null, payload)
    })
    app.get('/:route', (request) => {
      const session = (request as unknown as { session: Session<Data> }).session
      if ((request.params as { route: string }).route === 'write')
        session.set('count', (session.get('count') ?? 0) + 1)
      return { sameTick: sameTick(request.raw), count: session.get('count') ?? null }
    })
    await app.ready()
    return listen(app.server)
  },
}

describe.each(Object.keys(SERVERS) as (keyof typeof SERVERS)[])('same tick (%s)', (adapter) => {
  let running: Running | undefined
  afterEach(async () => {
    await running?.close()
    running = undefined
  })

  const visit = async (store: SessionStore | undefined) => {
    sentAtOnce = []
    const sessions = createSessions<Data>({ secret: SECRET, ...(store ? { store } : {}) })
    running = await SERVERS[adapter](sessions)
    const first = await fetch(`${running.url}/write`)
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!
    const again = await fetch(`${running.url}/write`, { headers: { cookie } })
    const read = await fetch(`${running.url}/read`, { headers: { cookie } })
    return {
      first: (await first.json()) as { sameTick: boolean },
      again: (await again.json()) as { sameTick: boolean; count: number | null },
      read: (await read.json()) as { sameTick: boolean; count: number | null },
    }
  }

  it('runs the handler in the request’s tick, and answers a write at once, when the store can', async () => {
    const { first, again, read } = await visit(undefined)
    expect(first.sameTick).toBe(true)
    expect(again).toEqual({ sameTick: true, count: 2 })
    expect(read).toEqual({ sameTick: true, count: 2 })
    // a new session is stored through set(), which has no synchronous form; a change to a
    // stored one goes through patchNow()
    expect(sentAtOnce).toEqual([false, true])
  })

  it('waits for a store that cannot answer at once, and loads and stores the same session', async () => {
    const { first, again, read } = await visit(waitingStore())
    expect(first.sameTick).toBe(true) // no cookie: nothing to read
    expect(again).toEqual({ sameTick: false, count: 2 })
    expect(read).toEqual({ sameTick: false, count: 2 })
    expect(sentAtOnce).toEqual([false, false])
  })
})
