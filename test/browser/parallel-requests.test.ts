/**
 * Overlapping requests of one browser, as Chromium makes them: a page's parallel `fetch`es and
 * two tabs at once, each request held in the server long enough to overlap the others. Every
 * change to a different key must survive (no lost update). And requests that the browser sent
 * with the old cookie just before a login's answer came, and that the server loads after the
 * login moved the session, must leave the browser signed in: no answer of theirs may replace
 * or clear the login's cookie (see test/signed-out-after-login.test.ts). On every server store.
 */
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withSession } from '../../src/adapters/node.js'
import { createSessions } from '../../src/index.js'
import { useChromium } from '../helpers/chromium.js'
import { everyStore } from '../helpers/every-store.js'
import { listen, type Running, SECRET } from '../helpers/http.js'

const chromium = await useChromium()
const STORES = await everyStore('browser_parallel')

type Data = Record<string, string>

/** A promise and what settles it (`Promise.withResolvers`, which Node 20 lacks). */
function signal() {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

describe.skipIf(!chromium.available)('overlapping requests in Chromium', () => {
  describe.each(Object.keys(STORES))('on the %s store', (name) => {
    const { available, create } = STORES[name]!
    let app: Running | undefined
    let origin: string
    /** Requests held in the server now, and the most at once. */
    let held = 0
    let most = 0
    const hold = async (ms: number) => {
      most = Math.max(most, ++held)
      await sleep(ms)
      held--
    }
    /**
     * The order the login test needs, made by the server instead of by timing: the login is
     * held until the late requests have arrived (so the browser sent them with the old
     * cookie), and they are held until the login has moved the session (so they load after).
     */
    let late = signal()
    let moved = signal()
    const lateCookies: (string | undefined)[] = []
    beforeAll(async () => {
      if (!available) return
      const sessions = createSessions<Data>({ secret: SECRET, store: create() })
      sessions.on('regenerated', () => moved.resolve())
      const listener = withSession(sessions, async (req, res, session) => {
        const url = new URL(req.url ?? '/', 'http://localhost')
        const q = (key: string) => url.searchParams.get(key) ?? ''
        let body: unknown = 'ok'
        switch (url.pathname) {
          case '/':
            session.set('seen', 'yes')
            break
          case '/set':
            // loaded already: hold the request so the others load the same version
            await hold(Number(q('hold')))
            session.set(q('k'), q('v'))
            break
          case '/login':
            await late.promise
            session.setUser(q('user'))
            session.set('user', q('user'))
            break
          default:
            body = Object.fromEntries(session.entries())
        }
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      })
      app = await listen(
        createServer(async (req, res) => {
          // `late`: held before the session is loaded, until a login has moved it
          if (new URL(req.url ?? '/', 'http://localhost').searchParams.has('late')) {
            lateCookies.push(req.headers.cookie)
            if (lateCookies.length === 2) late.resolve()
            await moved.promise
          }
          listener(req, res)
        }),
      )
      origin = `http://localhost:${new URL(app.url).port}`
    })
    afterAll(() => app?.close())

    const fetchAll = (page: Page, paths: string[]) =>
      page.evaluate((paths) => Promise.all(paths.map((p) => fetch(p).then((r) => r.status))), paths)
    const show = (page: Page) =>
      page.evaluate(() => fetch('/show').then((r) => r.json() as Promise<Record<string, string>>))

    it.runIf(available)(
      "keeps every request's change, from parallel fetches in two tabs",
      async () => {
        const context = await chromium.context()
        const [one, two] = [await context.newPage(), await context.newPage()]
        await one.goto(origin)
        await two.goto(origin)
        const sets = (from: number) =>
          Array.from({ length: 10 }, (_, i) => `/set?k=k${from + i}&v=${from + i}&hold=${40 + i}`)
        most = 0
        const statuses = await Promise.all([fetchAll(one, sets(0)), fetchAll(two, sets(10))])
        expect(statuses.flat()).toEqual(Array(20).fill(200))
        // they did overlap: Chromium opens six connections to an origin
        expect(most).toBeGreaterThanOrEqual(6)
        const data = await show(one)
        for (let i = 0; i < 20; i++) expect(data[`k${i}`]).toBe(String(i))
        expect(data.seen).toBe('yes')
      },
    )

    it.runIf(available)(
      'stays signed in when requests sent before the login’s answer arrive after it',
      async () => {
        const context = await chromium.context()
        const [one, two] = [await context.newPage(), await context.newPage()]
        await one.goto(origin)
        await two.goto(origin)
        await fetchAll(one, ['/set?k=before&v=1&hold=0'])
        const old = (await context.cookies()).find((c) => c.name === 'sid')!.value
        late = signal()
        moved = signal()
        lateCookies.length = 0
        // the login waits in the server for the other tab's write and read, which the browser
        // sends with the old cookie and the server loads once the login has moved the session
        const login = fetchAll(one, ['/login?user=ada'])
        const others = fetchAll(two, ['/set?k=late&v=1&late', '/show?late'])
        expect(await login).toEqual([200])
        expect(await others).toEqual([200, 200])
        expect(lateCookies).toEqual([`sid=${old}`, `sid=${old}`])
        const data = await show(two)
        expect(data.user).toBe('ada')
        expect(data.before).toBe('1')
        // the late write went to a session that had moved: not kept
        expect(data.late).toBeUndefined()
        expect((await context.cookies()).filter((c) => c.name === 'sid')).toHaveLength(1)
      },
    )
  })
})
