import { createServer, IncomingMessage, ServerResponse } from 'node:http'
import express from 'express'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { getSession, sessionMiddleware } from '../../src/adapters/express.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { expressServer } from '../helpers/express-server.js'
import { listen, type Running, SECRET } from '../helpers/http.js'
import { slowWritesStore } from '../helpers/stores.js'
import { adapterSuite } from './suite.js'
import { uncaughtExceptions, wire } from './wire.js'

adapterSuite('express')
// Express served with its own prototypes (docs/adapters/express.md, "Serving Express")
adapterSuite('express-constructed')

describe('express specifics', () => {
  it('getSession() without the middleware says what to add', () => {
    expect(() => getSession({}, undefined, 'cart')).toThrow(
      /sessionMiddleware\(sessions, \{ property: 'cart' \}\)/,
    )
  })

  it("the documented server makes requests and responses with the app's prototypes", async () => {
    const app = express()
    const server = expressServer(app)
    const seen: boolean[] = []
    server.removeAllListeners('request')
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // before Express runs: nothing left for its Object.setPrototypeOf to change
      seen.push(
        Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response,
        req instanceof IncomingMessage && res instanceof ServerResponse,
      )
      app(req, res)
    })
    app.get('/', (req, res) => {
      res.json({ ip: typeof req.ip, host: req.get('host') !== undefined })
    })
    const running = await listen(server)
    try {
      const answer = await fetch(`${running.url}/`)
      expect(await answer.json()).toEqual({ ip: 'string', host: true })
      expect(seen).toEqual([true, true])
    } finally {
      await running.close()
    }
  })
})

describe('express specifics: a route that fails once it has written, while the commit waits', () => {
  const uncaught = uncaughtExceptions()
  let server: Running | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
    vi.restoreAllMocks()
  })

  /** What compression and its kind do: wrap `end` before the session middleware runs. */
  const wrapFirst = (_req: unknown, res: ServerResponse, next: () => void) => {
    const end = res.end
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args)
    } as ServerResponse['end']
    next()
  }

  /**
   * An app whose commits wait for the store (as Redis's do), with the session middleware
   * holding through the response prototype, or with its own methods behind a wrapper.
   */
  async function start(wrapped: boolean) {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const sessions = createSessions<{ n: number }>({
      secret: SECRET,
      store: slowWritesStore(memoryStore({ sweepInterval: 0 }), 5),
    })
    const responseErrors: unknown[] = []
    const app = express()
    // Node's refusal of a write after `end` is an 'error' event, which ends an app's process
    app.use((_req, res, next) => {
      res.on('error', (error) => responseErrors.push(error))
      next()
    })
    if (wrapped) app.use(wrapFirst)
    app.use(sessionMiddleware(sessions))
    const answerThenFail = async (req: express.Request, res: express.Response) => {
      getSession(req, sessions).set('n', 1)
      res.json({ ok: true })
      await Promise.resolve()
      throw new Error('the audit log failed after the answer')
    }
    app.get('/json', answerThenFail)
    app.post('/json', answerThenFail)
    app.get('/custom', answerThenFail)
    app.get('/json-then-next', (req, res, next) => {
      getSession(req, sessions).set('n', 1)
      res.json({ ok: true })
      next() // on to the final handler's 404
    })
    app.get('/stream', async (req, res) => {
      getSession(req, sessions).set('n', 1)
      res.writeHead(200, { 'content-type': 'text/csv' })
      res.write('id,name\n1,alice\n')
      await Promise.resolve()
      throw new Error('the database cursor failed midway')
    })
    app.get('/alive', (_req, res) => void res.send('alive'))
    // an error handler as Express's documentation advises: answer unless the headers are out
    app.use(
      (error: unknown, req: express.Request, res: express.Response, next: express.NextFunction) => {
        if (req.path !== '/custom' || res.headersSent) return next(error)
        res.status(500).json({ error: 'custom' })
      },
    )
    server = await listen(createServer(app))
    return { url: server.url, responseErrors }
  }

  for (const wrapped of [false, true]) {
    const how = wrapped ? ' (a wrapper installed first)' : ''

    it(`res.json() then a failure: its answer goes out as it gave it, not the error page${how}`, async () => {
      const { url, responseErrors } = await start(wrapped)
      for (const path of ['/json', '/custom', '/json-then-next']) {
        const res = await wire(url + path)
        expect({ path, status: res.status, body: res.body, complete: res.complete }).toEqual({
          path,
          status: 200,
          body: '{"ok":true}',
          complete: true,
        })
        expect(res.headers['content-type'], path).toBe('application/json; charset=utf-8')
        expect(res.headers['content-length'], path).toBe(String(res.body.length))
        expect(res.headers['set-cookie'], path).toHaveLength(1)
      }
      expect({ responseErrors, uncaught }).toEqual({ responseErrors: [], uncaught: [] })
    })

    it(`the same with a request body still arriving: no ERR_HTTP_HEADERS_SENT${how}`, async () => {
      // the final handler answers once the request is read: the held answer waits for that
      const { url, responseErrors } = await start(wrapped)
      const res = await wire(`${url}/json`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'content-length': '12' },
        body: ['aaaa', 'bbbb', 'cccc'],
        gap: 10,
      })
      expect(res).toMatchObject({ status: 200, body: '{"ok":true}', complete: true })
      expect((await wire(`${url}/alive`)).body).toBe('alive')
      expect({ responseErrors, uncaught }).toEqual({ responseErrors: [], uncaught: [] })
    })

    it(`a failure midway through a response it began: the final handler cuts it${how}`, async () => {
      const { url, responseErrors } = await start(wrapped)
      const res = await wire(`${url}/stream`)
      expect(res).toMatchObject({ complete: false, timedOut: false })
      // nothing of the error page: not its body, nor its headers on the handler's head
      expect(res.body).not.toMatch(/Error/)
      expect(res.headers['content-security-policy']).toBeUndefined()
      expect((await wire(`${url}/alive`)).body).toBe('alive')
      expect({ responseErrors, uncaught }).toEqual({ responseErrors: [], uncaught: [] })
    })
  }
})
