/**
 * tessera/oidc in an Express app, as docs/oidc.md shows it: login, callback, a protected
 * route, fetch() of an API, and logout, with the session in `req.session`.
 */
import { createServer } from 'node:http'
import express, { type NextFunction, type Request, type Response } from 'express'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { getSession, sessionMiddleware } from '../src/adapters/express.js'
import { createSessions } from '../src/index.js'
import { type Oidc, OidcError, oidc } from '../src/oidc/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { listen, type Running } from './helpers/http.js'
import {
  ACCOUNT,
  Browser,
  CLIENT_ID,
  CLIENT_SECRET,
  startProvider,
  type TestProvider,
} from './helpers/oidc-provider.js'

let server: Running
let idp: TestProvider
let sessions: ReturnType<typeof createSessions>

beforeAll(async () => {
  sessions = createSessions({
    secret: 'oidc-express-secret-0123456789abcdef-0123456789',
    store: memoryStore({ sweepInterval: 0 }),
  })
  let auth: Oidc | undefined
  const app = express()
  app.use(sessionMiddleware(sessions))
  app.get('/login', async (req, res) => {
    const returnTo = typeof req.query.returnTo === 'string' ? req.query.returnTo : '/'
    res.redirect((await auth!.login(getSession(req), { returnTo })).href)
  })
  app.get('/auth/callback', async (req, res) => {
    const { returnTo } = await auth!.callback(getSession(req), req.originalUrl)
    res.redirect(returnTo)
  })
  app.get('/account', async (req, res) => {
    const user = auth!.user(getSession(req))
    if (user === undefined) {
      res.redirect(`/login?returnTo=${encodeURIComponent(req.originalUrl)}`)
      return
    }
    const api = await auth!.fetch(getSession(req), idp.resourceUrl)
    res.json({ email: user.email ?? null, sub: user.sub, api: await api.json() })
  })
  app.post('/logout', (req, res) => {
    res.redirect(auth!.logout(getSession(req)).href)
  })
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (!(err instanceof OidcError)) return next(err)
    res.status(400).json({ reason: err.reason })
  })
  server = await listen(createServer(app))
  idp = await startProvider({
    redirectUri: `${server.url}/auth/callback`,
    postLogoutRedirectUri: `${server.url}/`,
  })
  auth = await oidc({
    sessions,
    issuer: idp.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUri: `${server.url}/auth/callback`,
    postLogoutRedirectUri: `${server.url}/`,
    userInfo: true,
    allowInsecureRequests: true,
  })
})
afterAll(async () => {
  await server?.close()
  await idp?.close()
  await sessions?.close()
})

it('logs in from a protected page and back to it, calls the API, and logs out', async () => {
  const browser = new Browser()
  const first = await browser.request(`${server.url}/account?tab=2`)
  expect(first.status).toBe(302)
  const login = new URL(first.headers.get('location')!, server.url)
  const callback = await browser.followUntil(login, `${server.url}/auth/callback`)
  const back = await browser.request(callback)
  expect(back.status).toBe(302)
  expect(back.headers.get('location')).toBe('/account?tab=2')

  const page = await browser.request(`${server.url}/account?tab=2`)
  expect(page.status).toBe(200)
  expect(await page.json()).toEqual({
    email: ACCOUNT.email,
    sub: ACCOUNT.sub,
    api: { sub: ACCOUNT.sub, scope: 'openid profile email' },
  })
  expect((await browser.request(callback)).status).toBe(400)

  const out = await browser.request(`${server.url}/logout`, { method: 'POST' })
  expect(new URL(out.headers.get('location')!).pathname).toBe('/session/end')
  expect((await browser.request(`${server.url}/account`)).status).toBe(302)
})
