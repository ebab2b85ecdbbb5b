import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, expect, it } from 'vitest'
import { sessionMiddleware } from '../../src/adapters/express.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'

/**
 * Its own file, so that this app's first request is the first Express response the process
 * holds: the hold's methods are not on Express's `response` prototype yet. A middleware that
 * copies `res.end` onto the response (as one that puts back what it had wrapped does) leaves
 * an own property equal to the prototype's method at that moment, which the dispatcher put on
 * the prototype next would not reach: the hold must see it as the response's own.
 */
type Data = { n: number }
const sessions = createSessions<Data>({ secret: 'y'.repeat(32) })
const app = express()
  .use((_req, res: ServerResponse, next) => {
    // biome-ignore lint/correctness/noSelfAssign: the point of the test
    res.end = res.end
    next()
  })
  .use(sessionMiddleware(sessions))
  .get('/write', (req, res) => {
    const session = req.session as unknown as Session<Data>
    const n = (session.get('n') ?? 0) + 1
    session.set('n', n)
    res.end(`count ${n}`)
  })
const server = createServer(app)
afterAll(() => server.close())

it('holds a first response whose own `end` is its prototype’s', async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/write`
  const first = await fetch(url)
  expect(await first.text()).toBe('count 1')
  const cookie = first.headers.get('set-cookie')?.split(';')[0]
  expect(cookie).toMatch(/^sid=/)
  const second = await fetch(url, { headers: { cookie: cookie! } })
  expect(await second.text()).toBe('count 2')
})
