/**
 * With a store that answers at once (`getNow`: memory, SQLite), the node, Express and Fastify
 * adapters run the handler in the tick the request arrived in: a framework resumed from a
 * promise pays for it on every request. A store that must wait (no `getNow`) still works, a tick
 * later. Each server marks the request when it arrives and queues a microtask that would clear
 * the mark; the handler answers whether the mark survived.
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

/** The memory store without its synchronous read, as a networked store is. */
function waitingStore(): SessionStore {
  const { getNow: _, ...store } = memoryStore({ sweepInterval: 0 })
  return store
}

const SERVERS = {
  async node(sessions: Sessions<Data>) {
    const listener = withSession(sessions, (req, res, session) => {
      if (req.url === '/write') session.set('count', 1)
      res.end(JSON.stringify({ sameTick: sameTick(req), count: session.get('count') ?? null }))
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
      if (req.params.route === 'write') session.set('count', 1)
      res.json({ sameTick: sameTick(req), count: session.get('count') ?? null })
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
    app.get('/:route', (request) => {
      const session = (request as unknown as { session: Session<Data> }).session
      if ((request.params as { route: string }).route === 'write') session.set('count', 1)
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
    const sessions = createSessions<Data>({ secret: SECRET, ...(store ? { store } : {}) })
    running = await SERVERS[adapter](sessions)
    const first = await fetch(`${running.url}/write`)
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!
    const read = await fetch(`${running.url}/read`, { headers: { cookie } })
    return {
      first: (await first.json()) as { sameTick: boolean },
      read: (await read.json()) as { sameTick: boolean; count: number | null },
    }
  }

  it('runs the handler in the request’s tick when the store answers at once', async () => {
    const { first, read } = await visit(undefined)
    expect(first.sameTick).toBe(true)
    expect(read).toEqual({ sameTick: true, count: 1 })
  })

  it('waits for a store that cannot answer at once, and loads the same session', async () => {
    const { first, read } = await visit(waitingStore())
    expect(first.sameTick).toBe(true) // no cookie: nothing to read
    expect(read).toEqual({ sameTick: false, count: 1 })
  })
})
