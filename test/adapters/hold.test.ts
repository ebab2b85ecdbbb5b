import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, describe, expect, it } from 'vitest'
import { sessionMiddleware } from '../../src/adapters/express.js'
import { withSession } from '../../src/adapters/node.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'

/**
 * The Node-based adapters hold `writeHead`/`write`/`end` for the commit, but a response whose
 * session has nothing to commit at its first write goes straight out.
 */
type Data = { n: number }
const sessions = createSessions<Data>({ secret: 'x'.repeat(32) })
/** Whether each response's headers were out as soon as `res.end()` returned, by route. */
const sentAtEnd: Record<string, boolean[]> = { '/read': [], '/write': [] }

/** Answers the count; `/write` adds one while `res.end`'s argument is computed. */
function answer(url: string, res: ServerResponse, session: Session<Data>): void {
  // `res.end` is taken before the change that makes a commit due
  res.end(String(url === '/write' ? bump(session) : (session.get('n') ?? 0)))
  sentAtEnd[url]?.push(res.headersSent)
}
const bump = (session: Session<Data>) => {
  const n = (session.get('n') ?? 0) + 1
  session.set('n', n)
  return n
}

const servers = {
  node: createServer(withSession(sessions, (req, res, session) => answer(req.url!, res, session))),
  express: createServer(
    express()
      .use(sessionMiddleware(sessions))
      .get(['/read', '/write'], (req, res) =>
        answer(req.path, res, req.session as unknown as Session<Data>),
      ),
  ),
}
afterAll(() => {
  for (const server of Object.values(servers)) server.close()
})

for (const [name, server] of Object.entries(servers)) {
  describe(`${name} adapter: holding the response for the commit`, () => {
    const get = async (path: string, cookie?: string) => {
      if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as AddressInfo).port
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        headers: cookie ? { cookie } : {},
      })
      return { body: await res.text(), setCookie: res.headers.get('set-cookie') }
    }

    it('holds a response whose session changed, even through an `end` taken earlier', async () => {
      sentAtEnd['/write']!.length = 0
      const first = await get('/write')
      expect(first.body).toBe('1')
      const cookie = first.setCookie!.split(';')[0]!
      expect(await get('/write', cookie)).toEqual({ body: '2', setCookie: null })
      // a new session is stored by set(), waited for: held; a change to a stored one is
      // written by the memory store's patchNow() inside the held `end`, which then goes out
      expect(sentAtEnd['/write']).toEqual([false, true])
      expect((await sessions.load(cookie)).get('n')).toBe(2)
    })

    it('lets a read that changed nothing go straight out, committing nothing', async () => {
      const cookie = (await get('/write')).setCookie!.split(';')[0]!
      sentAtEnd['/read']!.length = 0
      expect(await get('/read', cookie)).toEqual({ body: '1', setCookie: null })
      expect(await get('/read')).toEqual({ body: '0', setCookie: null })
      expect(sentAtEnd['/read']).toEqual([true, true])
    })

    it('holds a read whose stale cookie must be cleared', async () => {
      sentAtEnd['/read']!.length = 0
      const res = await get('/read', `${sessions.cookie.name}=forged`)
      expect(res.setCookie).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/)
      expect(sentAtEnd['/read']).toEqual([false])
    })
  })
}

describe('a wrapper installed over the hold (compression, say) stays in place', () => {
  // what compression and its kind do: wrap `write`/`end` after the session middleware ran
  const shout = (_req: unknown, res: ServerResponse, next: () => void) => {
    const write = res.write
    const end = res.end
    const loud = (chunk: unknown) => (chunk === undefined ? chunk : String(chunk).toUpperCase())
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      return (write as (...a: unknown[]) => boolean).call(this, loud(chunk), ...rest)
    } as ServerResponse['write']
    res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
      return (end as (...a: unknown[]) => ServerResponse).call(this, loud(chunk), ...rest)
    } as ServerResponse['end']
    next()
  }
  const app = express()
    .use(sessionMiddleware(sessions))
    .use(shout)
    .get(['/read', '/write'], (req, res) => {
      if (req.path === '/write') bump(req.session as unknown as Session<Data>)
      res.write('hello ')
      // the second write comes after the hold let go (or after the commit)
      setTimeout(() => res.end('world'), 5)
    })
  const server = createServer(app)
  afterAll(() => server.close())

  it('on a read that commits nothing and on a write that commits, for every later write', async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    for (const path of ['/read', '/write']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      expect(await res.text(), path).toBe('HELLO WORLD')
    }
  })
})

describe('node adapter: a response that already has its own methods', () => {
  it('holds over a wrapper installed before it, and gives the wrapper back when done', async () => {
    const kept: boolean[] = []
    const listener = withSession(sessions, (req, res, session) => {
      res.end(`count ${req.url === '/write' ? bump(session) : (session.get('n') ?? 0)}`)
    })
    const server = createServer((req, res) => {
      const end = res.end
      const upper = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
        const loud = chunk === undefined ? chunk : String(chunk).toUpperCase()
        return (end as (...a: unknown[]) => ServerResponse).call(this, loud, ...rest)
      } as ServerResponse['end']
      res.end = upper
      res.on('finish', () => kept.push(res.end === upper))
      listener(req, res)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const first = await fetch(`${url}/write`)
      expect(await first.text()).toBe('COUNT 1')
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!
      const second = await fetch(`${url}/read`, { headers: { cookie } })
      expect(await second.text()).toBe('COUNT 1')
      // the hold came off both times (a commit, and nothing to commit), leaving the wrapper
      expect(kept).toEqual([true, true])
    } finally {
      server.close()
    }
  })
})

describe('Express: the hold goes through the response prototype', () => {
  // Express gives every response its own prototype chain; the hold's methods go on it once
  // (HoldOptions.prototype), and each response carries only its hold
  const listen = async (app: express.Express) => {
    const server = createServer(app)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    servers.push(server)
    const port = (server.address() as AddressInfo).port
    return async (path: string, cookie?: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        headers: cookie ? { cookie } : {},
      })
      return { body: await res.text(), setCookie: res.headers.get('set-cookie') }
    }
  }
  const servers: ReturnType<typeof createServer>[] = []
  afterAll(() => {
    for (const server of servers) server.close()
  })
  const HELD = ['writeHead', 'write', 'end', 'flushHeaders']

  it('commits with no method of its own on the response', async () => {
    const own: string[][] = []
    const get = await listen(
      express()
        .use(sessionMiddleware(sessions))
        .get('/write', (req, res) => {
          bump(req.session as unknown as Session<Data>)
          own.push(HELD.filter((name) => Object.hasOwn(res, name)))
          res.end('ok')
        }),
    )
    const first = await get('/write')
    const second = await get('/write', first.setCookie!.split(';')[0])
    expect(first.setCookie).toMatch(/^sid=/)
    expect(second.setCookie).toBeNull() // the same session, stored, no new cookie
    expect(own).toEqual([[], []])
  })

  it('holds a response that the parent app sends after a sub-app with the session passed it on', async () => {
    const sub = express()
      .use(sessionMiddleware(sessions))
      .use((req, _res, next) => {
        bump(req.session as unknown as Session<Data>)
        next() // no route here: back to the parent app, which restores its own prototypes
      })
    const get = await listen(
      express()
        .use('/sub', sub)
        .get('/sub/count', (req, res) => {
          res.end(String((req.session as unknown as Session<Data>).get('n')))
        }),
    )
    const first = await get('/sub/count')
    expect(first.body).toBe('1')
    expect(first.setCookie).toMatch(/^sid=/)
    const second = await get('/sub/count', first.setCookie!.split(';')[0])
    expect(second.body).toBe('2')
  })

  it('holds with its own methods when a wrapper came first (compression before the session)', async () => {
    const upper = (_req: unknown, res: ServerResponse, next: () => void) => {
      const end = res.end
      res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
        const loud = chunk === undefined ? chunk : String(chunk).toUpperCase()
        return (end as (...a: unknown[]) => ServerResponse).call(this, loud, ...rest)
      } as ServerResponse['end']
      next()
    }
    const get = await listen(
      express()
        .use(upper)
        .use(sessionMiddleware(sessions))
        .get('/write', (req, res) => {
          res.end(`count ${bump(req.session as unknown as Session<Data>)}`)
        }),
    )
    const first = await get('/write')
    expect(first.body).toBe('COUNT 1')
    const second = await get('/write', first.setCookie!.split(';')[0])
    expect(second.body).toBe('COUNT 2')
  })

  it('leaves the responses of an app without sessions as they were', async () => {
    const get = await listen(
      express().get('/stream', (_req, res) => {
        res.writeHead(201, { 'content-type': 'text/plain' })
        res.write('a')
        setTimeout(() => res.end('b'), 5)
      }),
    )
    expect(await get('/stream')).toEqual({ body: 'ab', setCookie: null })
  })
})
