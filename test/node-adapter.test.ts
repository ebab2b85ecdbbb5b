import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { withSession } from '../src/adapters/node.js'
import { createSessions } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { Client, SECRET } from './helpers/http.js'
import { fc, runs } from './helpers/property.js'
import { slowWritesStore } from './helpers/stores.js'

const servers: ReturnType<typeof createServer>[] = []
afterEach(() => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    s.close()
  }
})

async function start(handler: Parameters<typeof withSession<{ n: number; note: string }>>[1]) {
  const sessions = createSessions<{ n: number; note: string }>({
    secret: SECRET,
    store: slowWritesStore(memoryStore({ sweepInterval: 0 }), 5),
  })
  const server = createServer(withSession(sessions, handler))
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
}

describe('node adapter', () => {
  it('res.end(await render()) works though res.end was looked up before the commit finished', async () => {
    const client = await start(async (_req, res, session) => {
      session.set('n', (session.get('n') ?? 0) + 1)
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end(await new Promise<string>((r) => setTimeout(() => r(`n=${session.get('n')}`), 20)))
    })
    expect((await client.get('/')).body).toBe('n=1')
    expect((await client.get('/')).body).toBe('n=2')
  })

  it('commits before the headers go out: write() and end() are held, then replayed in order', async () => {
    const client = await start((_req, res, session) => {
      session.set('n', 1)
      res.write('a')
      res.write('b')
      res.end('c')
    })
    const res = await client.get('/')
    expect(res.body).toBe('abc')
    expect(res.setCookies).toHaveLength(1)
  })

  it("keeps the handler's own Set-Cookie values beside the session's, and leaves its array as it was", async () => {
    const own: Record<string, string | string[] | undefined> = {
      '/none': undefined,
      '/one': 'theme=dark',
      '/two': ['theme=dark', 'lang=en'],
    }
    const client = await start((req, res, session) => {
      const mine = own[req.url!]
      if (mine !== undefined) res.setHeader('Set-Cookie', mine)
      session.set('n', 1)
      res.end('ok')
    })
    for (const [path, mine] of Object.entries(own)) {
      // a new visitor each time: the session's cookie goes out when it is made
      const res = await new Client(client.base).get(path)
      const names = res.setCookies.map((c) => c.slice(0, c.indexOf('=')))
      expect(names, path).toEqual([...[mine ?? []].flat().map((c) => c.split('=')[0]), 'sid'])
      expect(res.headers.get('cache-control'), path).toBe('no-store')
    }
    // the handler's own array is not grown by the session's cookie (appendHeader pushes onto it)
    expect(own['/two']).toEqual(['theme=dark', 'lang=en'])
  })

  it('a throwing handler gives a plain 500 with no stack and nothing stored', async () => {
    const client = await start((_req, _res, session) => {
      session.set('n', 1)
      throw new Error('boom at /secret/path.ts:1')
    })
    const original = console.error
    console.error = () => {}
    try {
      const res = await client.get('/')
      expect(res.status).toBe(500)
      expect(res.body).toBe('Internal Server Error')
      expect(res.setCookies).toEqual([])
    } finally {
      console.error = original
    }
  })

  it('the listener gives a promise only when it has to wait: none for a synchronous handler', async () => {
    const sessions = createSessions({ secret: SECRET, store: memoryStore({ sweepInterval: 0 }) })
    const returned: unknown[] = []
    const sync = withSession(sessions, (_req, res, session) => {
      session.set('n', 1)
      res.end('sync')
    })
    const async_ = withSession(sessions, async (_req, res) => {
      await new Promise((r) => setTimeout(r, 1))
      res.end('async')
    })
    const server = createServer((req, res) => {
      const result = (req.url === '/async' ? async_ : sync)(req, res)
      returned.push(result)
    })
    servers.push(server)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    expect((await client.get('/')).body).toBe('sync')
    expect((await client.get('/')).body).toBe('sync')
    expect((await client.get('/async')).body).toBe('async')
    expect(returned[0]).toBeUndefined()
    expect(returned[1]).toBeUndefined()
    expect(returned[2]).toBeInstanceOf(Promise)
    await expect(returned[2]).resolves.toBeUndefined()
  })

  it("keeps the handler's cookies and body, however it sets its headers and writes", async () => {
    type Way =
      | 'setHeader'
      | 'setHeaderArray'
      | 'appendHeader'
      | 'writeHeadObject'
      | 'writeHeadArray'
      | 'none'
    type Plan = { way: Way; cookies: string[]; change: boolean; body: string[]; flush: boolean }
    let plan: Plan = { way: 'none', cookies: [], change: false, body: [], flush: false }
    const client = await start((_req, res, session) => {
      const { way, cookies, change, body, flush } = plan
      if (change) session.set('n', (session.get('n') ?? 0) + 1)
      if (way === 'setHeader' && cookies.length > 0) res.setHeader('Set-Cookie', cookies[0]!)
      if (way === 'setHeaderArray') res.setHeader('Set-Cookie', [...cookies])
      if (way === 'appendHeader') for (const c of cookies) res.appendHeader('Set-Cookie', c)
      if (way === 'writeHeadObject')
        res.writeHead(200, { 'set-cookie': [...cookies], 'x-way': way })
      if (way === 'writeHeadArray')
        res.writeHead(200, ['X-Way', way, ...cookies.flatMap((c) => ['Set-Cookie', c])])
      if (flush) res.flushHeaders()
      // the count first, then the body's chunks
      res.write(`${session.get('n') ?? 0}:`)
      for (const chunk of body.slice(0, -1)) res.write(chunk)
      res.end(body.at(-1) ?? '')
    })
    const cookie = fc
      .tuple(
        fc.constantFrom('theme', 'lang', 'a', 'b'),
        fc.string({ unit: fc.constantFrom('x', 'y', '1'), maxLength: 4 }),
      )
      .map(([name, value]) => `${name}=${value}`)
    const planOf = fc.record({
      way: fc.constantFrom<Way>(
        'setHeader',
        'setHeaderArray',
        'appendHeader',
        'writeHeadObject',
        'writeHeadArray',
        'none',
      ),
      cookies: fc.array(cookie, { maxLength: 3 }),
      change: fc.boolean(),
      body: fc.array(fc.string({ unit: fc.constantFrom('a', 'b', '\n'), maxLength: 5 }), {
        maxLength: 3,
      }),
      flush: fc.boolean(),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(planOf, { minLength: 1, maxLength: 4 }), async (plans) => {
        const browser = new Client(client.base)
        let n = 0
        for (const p of plans) {
          plan = p
          const res = await browser.get('/')
          expect(res.status).toBe(200)
          if (p.change) n++
          expect(res.body).toBe(`${n}:${p.body.join('')}`)
          const sent =
            p.way === 'none' ? [] : p.way === 'setHeader' ? p.cookies.slice(0, 1) : p.cookies
          const own = res.setCookies.filter((c) => !c.startsWith('sid='))
          expect(own).toEqual(sent)
          // the session's cookie is sent when a session is made; its count goes on after
          if (p.change && n === 1)
            expect(res.setCookies.filter((c) => c.startsWith('sid='))).toHaveLength(1)
        }
        plan = { way: 'none', cookies: [], change: false, body: [], flush: false }
        expect((await browser.get('/')).body).toBe(`${n}:`)
      }),
      { numRuns: runs(60) },
    )
  })
})
