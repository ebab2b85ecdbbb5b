import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import {
  type CompatSession,
  getSession,
  sessionMiddleware,
} from '../../src/adapters/express-session.js'
import type { Session } from '../../src/core/session.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { Client, listen, SECRET } from '../helpers/http.js'
import { countingStore } from '../helpers/stores.js'
import { adapterSuite } from './suite.js'

adapterSuite('express-session')

/** `req.session` as an express-session app sees it (no @types/express-session here). */
const compat = (req: express.Request) => (req as unknown as { session: CompatSession }).session

describe('express-session shape', () => {
  let close: (() => void) | undefined
  afterEach(() => close?.())

  async function start(routes: (app: express.Express) => void, clock?: () => number) {
    const store = memoryStore({ sweepInterval: 0, ...(clock && { clock }) })
    const counted = countingStore(store)
    const sessions = createSessions({
      secret: SECRET,
      store: counted.store,
      ...(clock && { clock }),
    })
    const app = express()
    app.use(sessionMiddleware(sessions))
    routes(app)
    const server = createServer(app)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    close = () => {
      server.closeAllConnections()
      server.close()
    }
    const client = new Client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    return { client, counted, sessions }
  }

  it('property access: assign, read, delete, enumerate', async () => {
    const { client } = await start((app) => {
      app.get('/set', (req, res) => {
        compat(req).userId = 'u1'
        compat(req).views = 3
        res.json('ok')
      })
      app.get('/show', (req, res) =>
        res.json({
          userId: compat(req).userId,
          keys: Object.keys(compat(req)),
          has: 'views' in compat(req),
          json: JSON.parse(JSON.stringify(compat(req))),
        }),
      )
      app.get('/delete', (req, res) => {
        delete compat(req).views
        compat(req).userId = undefined // express-session apps do this too
        res.json('ok')
      })
    })
    await client.get('/set')
    const shown = (await client.get('/show')).body as Record<string, unknown>
    expect(shown).toMatchObject({ userId: 'u1', keys: ['cookie', 'userId', 'views'], has: true })
    expect(shown.json).toMatchObject({ userId: 'u1', views: 3 })
    await client.get('/delete')
    expect((await client.get('/show')).body).toMatchObject({ keys: ['cookie'], has: false })
  })

  it('nested objects mutated in place are saved; reading them writes nothing', async () => {
    const { client, counted } = await start((app) => {
      app.get('/init', (req, res) => {
        compat(req).cart = { items: [] }
        res.json('ok')
      })
      app.get('/add', (req, res) => {
        ;(compat(req).cart as { items: string[] }).items.push(String(req.query.item))
        res.json('ok')
      })
      app.get('/cart', (req, res) => res.json(compat(req).cart))
    })
    await client.get('/init')
    await client.get('/add?item=tea')
    await client.get('/add?item=milk')
    counted.reset()
    expect((await client.get('/cart')).body).toEqual({ items: ['tea', 'milk'] })
    expect(counted.writes()).toBe(0)
  })

  it('regenerate(cb): a new, empty session with a new id; sessionID follows', async () => {
    const { client } = await start((app) => {
      app.get('/set', (req, res) => {
        compat(req).secret = 'before'
        res.json(req.sessionID)
      })
      app.get('/regenerate', (req, res, next) => {
        const before = req.sessionID
        compat(req).regenerate((err) => {
          if (err) return next(err)
          compat(req).fresh = true
          res.json({ before, after: req.sessionID, id: compat(req).id, old: compat(req).secret })
        })
      })
      app.get('/show', (req, res) =>
        res.json({ secret: compat(req).secret, fresh: compat(req).fresh }),
      )
    })
    const first = (await client.get('/set')).body as string
    const oldCookie = client.cookie()!
    const res = (await client.get('/regenerate')).body as Record<string, unknown>
    expect(res.before).toBe(first)
    expect(res.after).not.toBe(first)
    expect(res.id).toBe(res.after)
    expect(res.old).toBeUndefined()
    expect(client.cookie()).not.toBe(oldCookie)
    expect((await client.get('/show')).body).toEqual({ fresh: true })
    const attacker = new Client(client.base)
    expect((await attacker.get('/show', { headers: { cookie: `sid=${oldCookie}` } })).body).toEqual(
      {},
    )
  })

  it('after regenerate(cb), the old object still has the keys it had, falsy values included', async () => {
    const { client } = await start((app) => {
      app.get('/set', (req, res) => {
        Object.assign(compat(req), { zero: 0, no: false, empty: '', yes: 1 })
        res.end()
      })
      app.get('/regenerate', (req, res, next) => {
        const old = compat(req)
        old.regenerate((err) => {
          if (err) return next(err)
          res.json(['zero', 'no', 'empty', 'yes', 'missing'].map((k) => k in old))
        })
      })
    })
    await client.get('/set')
    expect((await client.get('/regenerate')).body).toEqual([true, true, true, true, false])
  })

  it('save(cb) has written the session when its callback runs', async () => {
    const { client, counted } = await start((app) => {
      app.get('/save', (req, res, next) => {
        compat(req).step = 1
        compat(req).save((err) => {
          if (err) return next(err)
          res.json(counted.count('set'))
        })
      })
    })
    expect((await client.get('/save')).body).toBe(1)
    expect(counted.count('set')).toBe(1) // the final commit had nothing left to write
  })

  it('destroy(cb) removes the session, clears the cookie and req.session', async () => {
    const { client } = await start((app) => {
      app.get('/set', (req, res) => {
        compat(req).userId = 'u1'
        res.json('ok')
      })
      app.get('/destroy', (req, res, next) => {
        compat(req).destroy((err) => {
          if (err) return next(err)
          res.json({ session: (req as unknown as { session?: unknown }).session ?? null })
        })
      })
      app.get('/show', (req, res) => res.json(compat(req).userId ?? null))
    })
    await client.get('/set')
    const res = await client.get('/destroy')
    expect(res.body).toEqual({ session: null })
    expect(res.setCookies[0]).toMatch(/^sid=;/)
    expect(client.cookie()).toBeUndefined()
  })

  it('reload(cb) drops unsaved changes; cookie.maxAge makes the cookie persistent', async () => {
    const { client } = await start((app) => {
      app.get('/set', (req, res) => {
        compat(req).n = 1
        res.json('ok')
      })
      app.get('/reload', (req, res, next) => {
        compat(req).n = 2
        compat(req).reload((err) => {
          if (err) return next(err)
          res.json(compat(req).n)
        })
      })
      app.get('/remember', (req, res) => {
        compat(req).cookie.maxAge = 14 * 24 * 3600_000
        res.json(Math.round(compat(req).cookie.maxAge / 1000))
      })
    })
    await client.get('/set')
    expect((await client.get('/reload')).body).toBe(1)
    const remember = await client.get('/remember')
    expect(remember.body).toBe(14 * 24 * 3600)
    expect(remember.setCookies[0]).toMatch(/Max-Age=\d{7}/)
  })

  it("cookie.maxAge and cookie.expires read and set by the manager's clock", async () => {
    let now = Date.UTC(2020, 0, 1) // years from Date.now(): a reading of the wrong clock shows
    const day = 86_400_000
    const { client, sessions } = await start(
      (app) => {
        const cookieOf = (req: express.Request) => {
          const { maxAge, expires } = compat(req).cookie
          return { maxAge, expires: expires && expires.toISOString() }
        }
        app.get('/fresh', (req, res) => {
          compat(req).x = 1
          res.json(cookieOf(req))
        })
        app.get('/remember', (req, res) => {
          compat(req).cookie.maxAge = 14 * day
          res.json(cookieOf(req))
        })
        app.get('/until', (req, res) => {
          compat(req).cookie.expires = new Date(now + 5 * day)
          res.json(cookieOf(req))
        })
        app.get('/show', (req, res) => res.json(cookieOf(req)))
      },
      () => now,
    )
    const start0 = now
    expect((await client.get('/fresh')).body).toEqual({
      maxAge: sessions.idleTimeout,
      expires: new Date(start0 + sessions.idleTimeout).toISOString(),
    })
    now += 10 * 60_000
    expect((await client.get('/show')).body).toEqual({
      maxAge: sessions.idleTimeout - 10 * 60_000,
      expires: new Date(start0 + sessions.idleTimeout).toISOString(),
    })
    const remember = await client.get('/remember')
    expect(remember.body).toEqual({
      maxAge: 14 * day,
      expires: new Date(now + 14 * day).toISOString(),
    })
    expect(remember.setCookies[0]).toContain(`Max-Age=${14 * 86_400}`)
    expect((await client.get('/until')).body).toEqual({
      maxAge: 5 * day,
      expires: new Date(now + 5 * day).toISOString(),
    })
    // the absolute timeout grew to the time asked for, counted by the manager's clock, not by
    // Date.now(), which would have added the years between the two
    now += 5 * day - 1
    expect((await client.get('/show')).body).toMatchObject({ maxAge: 1 })
  })

  // what express-session apps write, and what these lint rules warn of, is what this tests
  // biome-ignore-start lint/suspicious/noPrototypeBuiltins: see above
  // biome-ignore-start lint/suspicious/noProto: see above
  it("hasOwnProperty and Object.prototype's methods work as on express-session's Session", async () => {
    const { client } = await start((app) => {
      app.get('/set', (req, res) => {
        compat(req).x = 0
        getSession(req).set('hasOwnProperty', 'stored') // a key with that name, in the store
        res.json('ok')
      })
      app.get('/show', (req, res) => {
        const s = compat(req)
        res.json({
          x: s.hasOwnProperty('x'),
          y: s.hasOwnProperty('y'),
          // own, as on express-session's session, and not enumerable
          id: [s.hasOwnProperty('id'), s.propertyIsEnumerable('id')],
          cookie: s.hasOwnProperty('cookie'),
          toString: s.hasOwnProperty('toString'),
          stored: s.hasOwnProperty('hasOwnProperty'),
          enumerable: s.propertyIsEnumerable('x'),
          call: Object.prototype.hasOwnProperty.call(s, 'x'),
          text: String(s),
          in: 'hasOwnProperty' in s,
          proto: Object.getPrototypeOf(s) === Object.prototype && s.__proto__ === Object.prototype,
          constructor: s.constructor === Object,
          keys: Object.keys(s),
          data: getSession(req).get('hasOwnProperty'),
        })
      })
      app.get('/pollute', (req, res) => {
        const s = compat(req)
        // typed as data, not as Object's own members
        const raw = s as unknown as { constructor: unknown; hasOwnProperty: unknown }
        const refused = (f: () => void) => {
          try {
            f()
            return null
          } catch (error) {
            return (error as { code?: string }).code ?? String(error)
          }
        }
        res.json({
          proto: refused(() => {
            s.__proto__ = { polluted: true }
          }),
          constructor: refused(() => {
            raw.constructor = { polluted: true }
          }),
          // assigned through the proxy, `hasOwnProperty` is data: it shadows no method
          own: (() => {
            raw.hasOwnProperty = 'assigned'
            return s.hasOwnProperty('x')
          })(),
          setPrototypeOf: Reflect.setPrototypeOf(s, { polluted: true }),
          polluted: [s.polluted ?? null, ({} as Record<string, unknown>).polluted ?? null],
        })
      })
      app.get('/regenerate', (req, res, next) => {
        const old = compat(req)
        old.regenerate((err) => {
          if (err) return next(err)
          old.__proto__ = { polluted: true } // the snapshot passport's keepSessionInfo reads
          res.json({
            x: old.hasOwnProperty('x'),
            toString: old.hasOwnProperty('toString'),
            in: 'hasOwnProperty' in old,
            polluted: old.polluted ?? null,
            proto: Object.getPrototypeOf(old) === Object.prototype,
          })
        })
      })
    })
    await client.get('/set')
    expect((await client.get('/show')).body).toEqual({
      x: true,
      y: false,
      id: [true, false],
      cookie: true,
      toString: false,
      stored: true,
      enumerable: true,
      call: true,
      text: '[object Object]',
      in: true,
      proto: true,
      constructor: true,
      keys: ['cookie', 'x', 'hasOwnProperty'],
      data: 'stored',
    })
    expect((await client.get('/pollute')).body).toEqual({
      proto: 'ERR_SESSION_SERIALIZE', // refused by the core, as before
      constructor: 'ERR_SESSION_SERIALIZE',
      own: true,
      setPrototypeOf: false,
      polluted: [null, null],
    })
    expect((await client.get('/show')).body).toMatchObject({ data: 'assigned', x: true })
    expect((await client.get('/regenerate')).body).toEqual({
      x: true,
      toString: false,
      in: true,
      polluted: null,
      proto: true,
    })
  })
  // biome-ignore-end lint/suspicious/noProto: see above
  // biome-ignore-end lint/suspicious/noPrototypeBuiltins: see above

  it('req.session.id is the id hash, never the cookie value', async () => {
    const { client } = await start((app) => {
      app.get('/', (req, res) => {
        compat(req).x = 1
        res.json(compat(req).id)
      })
    })
    const id = (await client.get('/')).body as string
    expect(id).toMatch(/^[0-9a-f]{64}$/)
    expect(client.cookie()).not.toContain(id)
  })

  it('mounted twice on one request (app and router): one session, as express-session', async () => {
    const sessions = createSessions({ secret: SECRET, store: memoryStore({ sweepInterval: 0 }) })
    const session = sessionMiddleware(sessions)
    const app = express()
    app.use(session)
    app.use((req, _res, next) => {
      compat(req).seen = true
      next()
    })
    const api = express.Router()
    api.use(session) // a router that brings its own, as express-session apps often do
    api.get('/visit', (req, res) => {
      compat(req).visits = 1
      res.json({ seen: compat(req).seen ?? null, visits: compat(req).visits })
    })
    app.use('/api', api)
    app.get('/show', (req, res) => res.json({ seen: compat(req).seen, visits: compat(req).visits }))
    const running = await listen(createServer(app))
    close = () => void running.close()
    const client = new Client(running.url)
    const res = await client.get('/api/visit')
    expect(res.body).toEqual({ seen: true, visits: 1 })
    expect(res.setCookies).toHaveLength(1)
    expect((await client.get('/show')).body).toEqual({ seen: true, visits: 1 })
  })

  it('types: the compat session and the Tessera session behind it', () => {
    expectTypeOf<CompatSession['regenerate']>().parameter(0).toBeFunction()
    expectTypeOf<CompatSession['cookie']['maxAge']>().toEqualTypeOf<number>()
    expectTypeOf(getSession<{ n: number }>).returns.toEqualTypeOf<Session<{ n: number }>>()
  })
})
