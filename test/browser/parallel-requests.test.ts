/**
 * Overlapping requests of one browser, as Chromium makes them: a page's parallel `fetch`es and
 * two tabs at once, each request held in the server long enough to overlap the others. Every
 * change to a different key must survive (no lost update), and a login in one tab while the
 * other keeps sending must leave the browser signed in (no stale answer may replace or clear
 * the login's cookie), on every server store.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { useChromium } from '../helpers/chromium.js'
import { everyStore } from '../helpers/every-store.js'
import { type Running, SECRET, serve } from '../helpers/http.js'

const chromium = await useChromium()
const STORES = await everyStore('browser_parallel')

type Data = Record<string, string>

describe.skipIf(!chromium.available)('overlapping requests in Chromium', () => {
  describe.each(Object.keys(STORES))('on the %s store', (name) => {
    const { available, create } = STORES[name]!
    let app: Running | undefined
    let origin: string
    /** Requests held in the server now, and the most at once; writes made during a login. */
    let held = 0
    let most = 0
    let duringLogin = 0
    let inLogin = false
    const hold = async (ms: number) => {
      most = Math.max(most, ++held)
      await sleep(ms)
      held--
    }
    beforeAll(async () => {
      if (!available) return
      const sessions = createSessions<Data>({ secret: SECRET, store: create() })
      app = await serve('node', sessions, async (session, url) => {
        const q = (key: string) => url.searchParams.get(key) ?? ''
        switch (url.pathname) {
          case '/':
            session.set('seen', 'yes')
            return { body: 'home' }
          case '/set':
            // loaded already: hold the request so the others load the same version
            await hold(Number(q('hold')))
            if (inLogin) duringLogin++
            session.set(q('k'), q('v'))
            return { body: 'ok' }
          case '/login':
            inLogin = true
            await hold(Number(q('hold')))
            inLogin = false
            session.setUser(q('user'))
            session.set('user', q('user'))
            return { body: 'ok' }
          default:
            return { body: Object.fromEntries(session.entries()) }
        }
      })
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
      'stays signed in after a login that overlaps another tab’s requests',
      async () => {
        const context = await chromium.context()
        const [one, two] = [await context.newPage(), await context.newPage()]
        await one.goto(origin)
        await two.goto(origin)
        await fetchAll(one, ['/set?k=before&v=1&hold=0'])
        duringLogin = 0
        // tab two keeps sending while tab one's login is held in the server
        const login = fetchAll(one, ['/login?user=ada&hold=150'])
        const traffic = (async () => {
          const statuses: number[] = []
          for (let i = 0; i < 6; i++) {
            statuses.push(...(await fetchAll(two, [`/set?k=during${i}&v=${i}&hold=20`])))
          }
          return statuses
        })()
        expect(await login).toEqual([200])
        expect(await traffic).toEqual(Array(6).fill(200))
        expect(duringLogin).toBeGreaterThanOrEqual(3)
        const data = await show(two)
        expect(data.user).toBe('ada')
        // a change committed before the login's commit moved the session is carried over
        expect(data.before).toBe('1')
        expect((await context.cookies()).filter((c) => c.name === 'sid')).toHaveLength(1)
      },
    )
  })
})
