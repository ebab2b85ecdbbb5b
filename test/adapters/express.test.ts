import { IncomingMessage, ServerResponse } from 'node:http'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { getSession } from '../../src/adapters/express.js'
import { expressServer } from '../helpers/express-server.js'
import { listen } from '../helpers/http.js'
import { adapterSuite } from './suite.js'

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
