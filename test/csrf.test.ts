import { createServer } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { withSession as withFetchSession } from '../src/adapters/fetch.js'
import { withSession } from '../src/adapters/node.js'
import { CsrfError, csrf } from '../src/csrf.js'
import { createSessions, SessionConfigError } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { fetchBridge, listen, type Running } from './helpers/http.js'

const SECRET = 'csrf-test-secret-0123456789abcdef-0123456789'
type Data = { n: number }
const sessions = () =>
  createSessions<Data>({ secret: SECRET, store: memoryStore({ sweepInterval: 0 }) })

/** A session that has been saved and loaded again, as on a later request. */
async function saved(make: (s: Awaited<ReturnType<ReturnType<typeof sessions>['load']>>) => void) {
  const manager = sessions()
  const first = await manager.load(undefined)
  make(first)
  const cookie = (await manager.commit(first))[0]!.split(';')[0]!
  return { manager, cookie, session: await manager.load(cookie) }
}

const post = (headers: Record<string, string>, token?: unknown) => ({
  method: 'POST',
  headers: { host: 'app.test', ...headers },
  token,
})

describe('csrf', () => {
  it('passes a request carrying the token in the header or the body, and refuses one without', async () => {
    const protect = csrf()
    let token = ''
    const { session } = await saved((s) => {
      token = protect.token(s)
    })
    expect(protect.check(session, post({ 'x-csrf-token': token }))).toBeUndefined()
    expect(protect.check(session, post({}, token))).toBeUndefined()
    expect(protect.check(session, post({}))).toBe('missing-token')
    expect(protect.check(session, post({}, ''))).toBe('missing-token')
    expect(() => protect.verify(session, post({}))).toThrow(CsrfError)
    try {
      protect.verify(session, post({}, 'x'))
    } catch (err) {
      expect(err).toBeInstanceOf(CsrfError)
      expect((err as CsrfError).code).toBe('ERR_SESSION_CSRF')
      expect((err as CsrfError).reason).toBe('bad-token')
    }
  })

  it('never checks safe methods', async () => {
    const protect = csrf()
    const session = await sessions().load(undefined)
    for (const method of ['GET', 'head', 'OPTIONS', 'TRACE'])
      expect(protect.check(session, { method, headers: { 'sec-fetch-site': 'cross-site' } })).toBe(
        undefined,
      )
    expect(protect.check(session, { method: 'DELETE', headers: {} })).toBe('missing-token')
    // a request whose method was not passed is checked, not waved through
    expect(protect.check(session, { method: undefined, headers: {} })).toBe('missing-token')
  })

  it('gives a different token each time, every one of them verifying, until rotate()', async () => {
    const protect = csrf()
    const tokens: string[] = []
    const { session } = await saved((s) => {
      for (let i = 0; i < 5; i++) tokens.push(protect.token(s))
    })
    expect(new Set(tokens).size).toBe(5)
    for (const token of tokens) expect(protect.check(session, post({}, token))).toBeUndefined()
    // and from the loaded session too
    const again = protect.token(session)
    expect(protect.check(session, post({}, again))).toBeUndefined()
    protect.rotate(session)
    for (const token of [...tokens, again])
      expect(protect.check(session, post({}, token))).toBe('bad-token')
    expect(protect.check(session, post({}, protect.token(session)))).toBeUndefined()
  })

  it("refuses another session's token, a session without a secret, and malformed tokens", async () => {
    const protect = csrf()
    let mine = ''
    let theirs = ''
    const { session } = await saved((s) => {
      mine = protect.token(s)
    })
    await saved((s) => {
      theirs = protect.token(s)
    })
    expect(protect.check(session, post({}, theirs))).toBe('bad-token')
    const fresh = await sessions().load(undefined)
    expect(protect.check(fresh, post({}, mine))).toBe('bad-token')
    // every other last digit, including those that decode to the same bytes (spare bits)
    const lastDigits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const flipped = [...lastDigits]
      .filter((c) => !mine.endsWith(c))
      .map((c) => mine.slice(0, -1) + c)
    // a digit as a character beyond Latin-1 with that digit as its low byte (Node's decoder
    // reads only that byte, so it decoded as the genuine token)
    const wide = String.fromCharCode(mine.charCodeAt(5) + 0x100)
    const widened = mine.slice(0, 5) + wide + mine.slice(6)
    for (const bad of [
      ...flipped,
      mine.slice(1),
      `${mine}A`,
      mine.replace(/./, '+'),
      widened,
      42,
      {},
    ])
      expect(protect.check(session, post({}, bad))).toBe(
        typeof bad === 'string' ? 'bad-token' : 'missing-token',
      )
  })

  it('keeps its secret out of the data, and clear() drops it', async () => {
    const protect = csrf()
    const { session } = await saved((s) => {
      s.set('n', 1)
      protect.token(s)
    })
    expect(session.keys()).toEqual(['n'])
    expect(session.toJSON()).toEqual({ n: 1 })
    const token = protect.token(session)
    session.clear()
    expect(protect.check(session, post({}, token))).toBe('bad-token')
  })

  it('refuses what Sec-Fetch-Site says came from elsewhere, valid token or not', async () => {
    const protect = csrf({ trustedOrigins: ['https://front.test'] })
    let token = ''
    const { session } = await saved((s) => {
      token = protect.token(s)
    })
    const withToken = (headers: Record<string, string>) =>
      protect.check(session, post(headers, token))
    expect(withToken({ 'sec-fetch-site': 'same-origin' })).toBeUndefined()
    expect(withToken({ 'sec-fetch-site': 'none' })).toBeUndefined()
    expect(withToken({ 'sec-fetch-site': 'cross-site', origin: 'https://evil.test' })).toBe(
      'cross-site',
    )
    expect(withToken({ 'sec-fetch-site': 'same-site', origin: 'https://other.app.test' })).toBe(
      'cross-site',
    )
    expect(withToken({ 'sec-fetch-site': 'cross-site', origin: 'https://front.test' })).toBe(
      undefined,
    )
  })

  it('without Sec-Fetch-Site, compares Origin with the host', async () => {
    const protect = csrf({ trustedOrigins: ['https://front.test'] })
    let token = ''
    const { session } = await saved((s) => {
      token = protect.token(s)
    })
    const withToken = (headers: Record<string, string>, url?: string) =>
      protect.check(session, { ...post(headers, token), ...(url ? { url } : {}) })
    expect(withToken({ origin: 'http://app.test' })).toBeUndefined()
    expect(withToken({ origin: 'https://APP.test' })).toBeUndefined()
    expect(withToken({ origin: 'https://evil.test' })).toBe('origin')
    expect(withToken({ origin: 'http://app.test:8080' })).toBe('origin')
    expect(withToken({ origin: 'null' })).toBe('origin')
    expect(withToken({ origin: 'https://front.test' })).toBeUndefined()
    expect(withToken({})).toBeUndefined() // no Origin: not a browser, the token decides
    // a Fetch request's own URL instead of Host
    expect(withToken({ origin: 'https://api.test' }, 'https://api.test/x')).toBeUndefined()
    expect(withToken({ origin: 'https://app.test' }, 'https://api.test/x')).toBe('origin')
  })

  it('reads a Fetch Headers object and a custom header name', async () => {
    const protect = csrf({ header: 'X-XSRF-Token' })
    let token = ''
    const { session } = await saved((s) => {
      token = protect.token(s)
    })
    const headers = new Headers({ 'x-xsrf-token': token, 'sec-fetch-site': 'same-origin' })
    expect(protect.check(session, { method: 'PUT', headers })).toBeUndefined()
    expect(protect.check(session, { method: 'PUT', headers: new Headers() })).toBe('missing-token')
  })

  it('says what is wrong with its options', () => {
    expect(() => csrf({ trustedOrigins: ['front.test'] })).toThrow(SessionConfigError)
    expect(() => csrf({ trustedOrigins: ['https://front.test/'] })).toThrow(
      /should be written "https:\/\/front.test"/,
    )
    expect(() => csrf({ header: 'x csrf' })).toThrow(SessionConfigError)
  })
})

describe('csrf over HTTP (node adapter)', () => {
  let running: Running | undefined
  afterEach(async () => {
    await running?.close()
    running = undefined
  })

  it('a form round trip: the token saved with the session, a post with it passes, others get 403', async () => {
    const protect = csrf()
    const manager = sessions()
    running = await listen(
      createServer(
        withSession(manager, async (req, res, session) => {
          if (req.method === 'GET') {
            res.end(protect.token(session))
            return
          }
          let body = ''
          for await (const chunk of req) body += chunk
          const refused = protect.check(session, {
            method: req.method,
            headers: req.headers,
            token: new URLSearchParams(body).get('_csrf') ?? undefined,
          })
          if (refused !== undefined) {
            res.writeHead(403).end(refused)
            return
          }
          session.set('n', (session.get('n') ?? 0) + 1)
          res.end(String(session.get('n')))
        }),
      ),
    )
    const form = await fetch(`${running.url}/form`)
    const cookie = form.headers.getSetCookie()[0]!.split(';')[0]!
    const token = await form.text()
    const send = (headers: Record<string, string>, body?: string) =>
      fetch(`${running!.url}/submit`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        ...(body === undefined ? {} : { body }),
      }).then(async (r) => [r.status, await r.text()])

    expect(await send({}, `_csrf=${token}`)).toEqual([200, '1'])
    expect(await send({ 'x-csrf-token': token })).toEqual([200, '2'])
    expect(await send({})).toEqual([403, 'missing-token'])
    expect(await send({}, '_csrf=forged')).toEqual([403, 'bad-token'])
    expect(await send({ origin: 'https://evil.test' }, `_csrf=${token}`)).toEqual([403, 'origin'])
    expect(await send({ 'sec-fetch-site': 'cross-site' }, `_csrf=${token}`)).toEqual([
      403,
      'cross-site',
    ])
    // without the session's cookie, the token is worth nothing
    const stranger = await fetch(`${running.url}/submit`, {
      method: 'POST',
      headers: { 'x-csrf-token': token },
    })
    expect(stranger.status).toBe(403)
  })

  it('a script over the fetch adapter: the token in a header, Origin checked against request.url', async () => {
    const protect = csrf()
    const manager = sessions()
    running = await listen(
      createServer(
        fetchBridge(
          withFetchSession(manager, async (request, session) => {
            if (request.method === 'GET') return new Response(protect.token(session))
            try {
              protect.verify(session, {
                method: request.method,
                headers: request.headers,
                url: request.url,
              })
            } catch (err) {
              if (err instanceof CsrfError) return new Response(err.reason, { status: 403 })
              throw err
            }
            session.set('n', (session.get('n') ?? 0) + 1)
            return new Response(String(session.get('n')))
          }),
        ),
      ),
    )
    const page = await fetch(`${running.url}/`)
    const cookie = page.headers.getSetCookie()[0]!.split(';')[0]!
    const token = await page.text()
    const own = new URL(running.url).origin
    const send = (headers: Record<string, string>) =>
      fetch(`${running!.url}/api`, { method: 'POST', headers: { cookie, ...headers } }).then(
        async (r) => [r.status, await r.text()],
      )
    expect(await send({ 'x-csrf-token': token, origin: own })).toEqual([200, '1'])
    expect(await send({ 'x-csrf-token': token, 'sec-fetch-site': 'same-origin' })).toEqual([
      200,
      '2',
    ])
    expect(await send({ 'x-csrf-token': token, origin: 'http://evil.test' })).toEqual([
      403,
      'origin',
    ])
    expect(await send({ origin: own })).toEqual([403, 'missing-token'])
  })
})
