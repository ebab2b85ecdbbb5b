/**
 * passport 0.7 on Tessera's express-session-compatible middleware, unchanged: login
 * regenerates the session (a new id; the old one is refused), `passport.session()` restores
 * the user, logout saves and regenerates again.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import passport from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionMiddleware } from '../src/adapters/express-session.js'
import { createSessions } from '../src/index.js'
import { memoryStore } from '../src/stores/memory.js'
import { Client, SECRET } from './helpers/http.js'
import { slowWritesStore } from './helpers/stores.js'

const USERS = [{ id: 'u1', username: 'ada', password: 'correct horse' }]

let server: Server
let base: string

beforeAll(async () => {
  const authenticator = new passport.Passport()
  authenticator.use(
    new LocalStrategy((username, password, done) => {
      const user = USERS.find((u) => u.username === username && u.password === password)
      done(null, user ?? false)
    }),
  )
  authenticator.serializeUser((user, done) => done(null, (user as { id: string }).id))
  authenticator.deserializeUser((id: string, done) =>
    done(null, USERS.find((u) => u.id === id) ?? false),
  )

  const sessions = createSessions({
    secret: SECRET,
    // writes that take a while: passport's save() before the redirect must still win the race
    store: slowWritesStore(memoryStore({ sweepInterval: 0 }), 5),
  })
  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(sessionMiddleware(sessions))
  app.use(authenticator.session())
  app.get('/visit', (req, res) => {
    ;(req as unknown as { session: Record<string, unknown> }).session.visited = true
    res.json('ok')
  })
  app.post(
    '/login',
    authenticator.authenticate('local', { successRedirect: '/me', failureRedirect: '/denied' }),
  )
  app.get('/me', (req, res) => {
    if (!req.isAuthenticated()) return void res.status(401).json(null)
    res.json({ user: (req.user as { username: string }).username })
  })
  app.post('/logout', (req, res, next) => {
    req.logout((err) => (err ? next(err) : res.redirect('/me')))
  })
  server = createServer(app)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(() => {
  server.closeAllConnections()
  server.close()
})

const form = (body: Record<string, string>): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(body).toString(),
})

describe('passport 0.7 on tessera/express-session', () => {
  it('login changes the session id, refuses the old one, and logout ends the login', async () => {
    const client = new Client(base)
    await client.get('/visit')
    const anonymous = client.cookie()!
    expect(anonymous).toBeDefined()

    const login = await client.request(
      '/login',
      form({ username: 'ada', password: 'correct horse' }),
    )
    expect(login.status).toBe(302)
    expect(login.headers.get('location')).toBe('/me')
    const loggedIn = client.cookie()!
    expect(loggedIn).not.toBe(anonymous)

    // followed at once: the session was saved before the redirect went out
    expect((await client.get('/me')).body).toEqual({ user: 'ada' })
    const fixated = new Client(base)
    expect((await fixated.get('/me', { headers: { cookie: `sid=${anonymous}` } })).status).toBe(401)

    const logout = await client.request('/logout', { method: 'POST' })
    expect(logout.status).toBe(302)
    expect(client.cookie()).not.toBe(loggedIn)
    expect((await client.get('/me')).status).toBe(401)
    const stolen = new Client(base)
    expect((await stolen.get('/me', { headers: { cookie: `sid=${loggedIn}` } })).status).toBe(401)
  })

  it('a wrong password logs nobody in', async () => {
    const client = new Client(base)
    const res = await client.request('/login', form({ username: 'ada', password: 'wrong' }))
    expect(res.headers.get('location')).toBe('/denied')
    expect((await client.get('/me')).status).toBe(401)
  })

  it('login then an immediate authenticated request, 20 times in a row', async () => {
    for (let i = 0; i < 20; i++) {
      const client = new Client(base)
      await client.request('/login', form({ username: 'ada', password: 'correct horse' }))
      expect((await client.get('/me')).body).toEqual({ user: 'ada' })
    }
  })
})
