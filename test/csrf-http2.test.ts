/**
 * HTTP/2 has no `Host` header: the request's own host is its `:authority`. A browser too old
 * to send `Sec-Fetch-Site` is checked by its `Origin` against that host, over HTTP/2 as over
 * HTTP/1.1, so a same-origin form of such a browser must not be refused as `origin`.
 */
import { connect } from 'node:http2'
import Fastify, { type FastifyRequest } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { getSession, sessionPlugin } from '../src/adapters/fastify.js'
import { csrf } from '../src/csrf.js'
import { createSessions } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { SECRET } from './helpers/http.js'

type Reply = { status: number; body: string; cookie: string | undefined }

/** One HTTP/2 request (cleartext, prior knowledge), as a browser on that connection sends it. */
function h2(url: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const client = connect(url)
    client.on('error', reject)
    const stream = client.request(headers)
    let status = 0
    let cookie: string | undefined
    let body = ''
    stream.on('response', (head) => {
      status = Number(head[':status'])
      const set = head['set-cookie']
      cookie = set?.[0]?.split(';')[0]
    })
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      body += chunk
    })
    stream.on('end', () => {
      client.close()
      resolve({ status, body, cookie })
    })
    stream.on('error', reject)
    stream.end()
  })
}

describe('csrf on HTTP/2 headers', () => {
  it('takes :authority for Host from Node-style headers, and asks a Fetch Headers for Host only', async () => {
    const protect = csrf()
    const sessions = createSessions<{ n: number }>({ secret: SECRET })
    const session = await sessions.load(undefined)
    const token = protect.token(session)
    const h2Headers = (origin: string) => ({
      ':authority': 'app.test:8443',
      origin,
      'x-csrf-token': token,
    })
    expect(
      protect.check(session, { method: 'POST', headers: h2Headers('https://app.test:8443') }),
    ).toBe(undefined)
    expect(
      protect.check(session, { method: 'POST', headers: h2Headers('https://evil.test') }),
    ).toBe('origin')
    // Host first where both are (a client may send both; they must agree)
    expect(
      protect.check(session, {
        method: 'POST',
        headers: { ...h2Headers('https://app.test:8443'), host: 'other.test' },
      }),
    ).toBe('origin')
    // a pseudo-header is no name a Fetch Headers takes: no host there is no host, not a TypeError
    const fetchHeaders = new Headers({ origin: 'https://app.test:8443', 'x-csrf-token': token })
    expect(protect.check(session, { method: 'POST', headers: fetchHeaders })).toBe('origin')
  })
})

describe('csrf over HTTP/2 (fastify adapter)', () => {
  let close: (() => Promise<unknown>) | undefined
  afterEach(async () => {
    await close?.()
    close = undefined
  })

  it("checks Origin against the request's :authority, which stands for Host on HTTP/2", async () => {
    const protect = csrf()
    const sessions = createSessions<{ n: number }>({
      secret: SECRET,
      store: memoryStore({ sweepInterval: 0 }),
    })
    const app = Fastify({ http2: true })
    // getSession is typed for an HTTP/1 server's request; the plugin is the same on either
    const sessionOf = (request: object) => getSession(request as FastifyRequest, sessions)
    close = () => app.close()
    await app.register(sessionPlugin, { sessions })
    app.addHook('preHandler', async (request, reply) => {
      const refused = protect.check(sessionOf(request), {
        method: request.method,
        headers: request.headers,
      })
      if (refused !== undefined) return reply.code(403).send(refused)
    })
    app.get('/', async (request) => protect.token(sessionOf(request)))
    app.post('/', async (request) => {
      const session = sessionOf(request)
      session.set('n', (session.get('n') ?? 0) + 1)
      return String(session.get('n'))
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const url = `http://127.0.0.1:${port}`

    const page = await h2(url, { ':method': 'GET', ':path': '/' })
    expect(page.status).toBe(200)
    const token = page.body
    const cookie = page.cookie!
    const post = (origin?: string) =>
      h2(url, {
        ':method': 'POST',
        ':path': '/',
        cookie,
        'x-csrf-token': token,
        ...(origin === undefined ? {} : { origin }),
      }).then((r) => [r.status, r.body])

    // an older browser's same-origin request: Origin, no Sec-Fetch-Site, no Host
    expect(await post(url)).toEqual([200, '1'])
    // and another site's is still refused, token or not
    expect(await post('http://evil.test')).toEqual([403, 'origin'])
    expect(await post(`http://127.0.0.1:${port + 1}`)).toEqual([403, 'origin'])
    expect(await post()).toEqual([200, '2'])
  })
})
