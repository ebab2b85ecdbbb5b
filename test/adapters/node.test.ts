import { createServer, type ServerResponse } from 'node:http'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type NodeSessionHandler, withSession } from '../../src/adapters/node.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { listen, type Running, SECRET } from '../helpers/http.js'
import { slowWritesStore } from '../helpers/stores.js'
import { adapterSuite } from './suite.js'
import { uncaughtExceptions, wire } from './wire.js'

adapterSuite('node')

describe('node specifics: a handler that fails once it has written, while the commit waits', () => {
  type Data = { n: number }
  const uncaught = uncaughtExceptions()
  let server: Running | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
    vi.restoreAllMocks()
    expect(uncaught).toEqual([])
  })

  /** A server whose commits wait for the store (as Redis's do), and what onError and `res` saw. */
  async function start(handler: NodeSessionHandler<Data>) {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const sessions = createSessions<Data>({
      secret: SECRET,
      store: slowWritesStore(memoryStore({ sweepInterval: 0 }), 5),
    })
    const seen = { onError: [] as { destroyed: boolean }[], responseErrors: [] as unknown[] }
    const listener = withSession(sessions, handler, {
      onError: (_error, _req, res) => {
        seen.onError.push({ destroyed: res.destroyed })
        if (!res.headersSent && !res.destroyed) res.writeHead(500).end('failed')
      },
    })
    server = await listen(
      createServer((req, res: ServerResponse) => {
        // Node's refusal of a write after `end` is an 'error' event: with no listener (as in
        // an app), it ends the process
        res.on('error', (error) => seen.responseErrors.push(error))
        listener(req, res)
      }),
    )
    return { url: server.url, seen }
  }

  it('fails after res.end(): its answer goes out as it gave it, onError is not called, the error is logged', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const { url, seen } = await start(async (_req, res, session) => {
      session.set('n', 1)
      res.setHeader('content-type', 'text/plain')
      res.end('ok')
      await Promise.resolve()
      throw new Error('the audit log failed after the answer')
    })
    const res = await wire(`${url}/`)
    expect(res).toMatchObject({ status: 200, body: 'ok', complete: true })
    expect(res.headers['content-type']).toBe('text/plain')
    expect(res.headers['set-cookie']).toHaveLength(1)
    expect(seen).toEqual({ onError: [], responseErrors: [] })
    expect(logged).toHaveBeenCalledWith(
      expect.objectContaining({ message: 'the audit log failed after the answer' }),
    )
  })

  it('a write or end after the held end is dropped, where Node would raise an error event', async () => {
    const { url, seen } = await start((_req, res, session) => {
      session.set('n', 1)
      res.end('first')
      res.write('more')
      res.end('second')
    })
    expect(await wire(`${url}/`)).toMatchObject({ status: 200, body: 'first', complete: true })
    expect(seen.responseErrors).toEqual([])
  })

  it('fails midway through a response it began: cut, never a 200 with an error page after it', async () => {
    const { url, seen } = await start(async (req, res, session) => {
      if (req.url === '/alive') return void res.end('alive')
      session.set('n', 1)
      res.writeHead(200, { 'content-type': 'text/csv' })
      res.write('id,name\n1,alice\n')
      await Promise.resolve()
      throw new Error('the database cursor failed midway')
    })
    const res = await wire(`${url}/`)
    expect(res).toMatchObject({ complete: false, timedOut: false })
    expect(res.body).not.toMatch(/failed/)
    // onError is told, with the connection already cut
    expect(seen).toEqual({ onError: [{ destroyed: true }], responseErrors: [] })
    // and the server goes on
    expect((await wire(`${url}/alive`)).body).toBe('alive')
  })

  it('two sessions: a failure after the answer leaves the answer the outer commit holds', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const slow = createSessions<Data>({
      secret: SECRET,
      store: slowWritesStore(memoryStore({ sweepInterval: 0 }), 5),
    })
    // the inner session (a cart) has nothing to commit: its hold lets the calls through to
    // the outer one, which holds them while its commit waits
    const carts = createSessions<Data>({ secret: SECRET, cookie: { name: 'cart' } })
    const onError = vi.fn()
    server = await listen(
      createServer(
        withSession(
          slow,
          (req, res, session) =>
            withSession(
              carts,
              async (_req, res, _cart) => {
                session.set('n', 1)
                res.end('ok')
                await Promise.resolve()
                throw new Error('after the answer')
              },
              { onError },
            )(req, res),
          { onError },
        ),
      ),
    )
    const res = await wire(`${server.url}/`)
    expect(res).toMatchObject({ status: 200, body: 'ok', complete: true })
    expect(res.headers['set-cookie']).toHaveLength(1)
    expect(onError).not.toHaveBeenCalled()
  })
})
