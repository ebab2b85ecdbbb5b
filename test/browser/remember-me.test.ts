/**
 * "Remember me" across a browser restart, in Chromium with a profile on disk: a login with
 * `setLifetime()` stays signed in after the browser is closed and started again, its cookie
 * kept until the session's absolute expiry; one without it is a browser-session cookie, gone
 * with the restart. On the memory store and the cookie store (whose chunks must all be kept).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSessions, type SessionStore } from '../../src/index.js'
import { cookieStore } from '../../src/stores/cookie.js'
import { memoryStore } from '../../src/stores/memory.js'
import { useChromium } from '../helpers/chromium.js'
import { type Running, SECRET, serve } from '../helpers/http.js'

const chromium = await useChromium()
const DAY = 86_400_000

const STORES: [string, () => SessionStore | ReturnType<typeof cookieStore>][] = [
  ['memory', () => memoryStore({ sweepInterval: 0 })],
  ['cookie, two chunks', () => cookieStore({ maxChunks: 2 })],
]

describe.skipIf(!chromium.available)('remember me across a browser restart', () => {
  describe.each(STORES)('%s store', (name, store) => {
    let app: Running
    let origin: string
    beforeAll(async () => {
      const sessions = createSessions<{ user: string; notes: string }>({
        secret: SECRET,
        store: store(),
      })
      app = await serve('node', sessions, (session, url) => {
        if (url.pathname === '/login') {
          session.setUser('ada')
          session.set('user', 'ada')
          // past one cookie's room on the cookie store: the session is split in two
          if (name.startsWith('cookie')) session.set('notes', 'n'.repeat(3_500))
          if (url.searchParams.has('remember')) {
            session.setLifetime({ idleTimeout: '14d', absoluteTimeout: '30d' })
          }
          return { body: 'ok' }
        }
        return { body: session.get('user') ?? null }
      })
      origin = `http://localhost:${new URL(app.url).port}`
    })
    afterAll(() => app?.close())

    it.each([
      ['stays signed in when remembered', true],
      ['is signed out when not', false],
    ])('%s', async (_what, remember) => {
      const browser = await chromium.persistent()
      const page = await browser.context.newPage()
      await page.goto(`${origin}/login${remember ? '?remember' : ''}`)
      await page.goto(`${origin}/me`)
      expect(await page.textContent('body')).toBe('"ada"')
      const cookies = (await browser.context.cookies()).filter((c) => /^sid(\.\d+)?$/.test(c.name))
      expect(cookies.length).toBe(name.startsWith('cookie') ? 2 : 1)
      for (const c of cookies) {
        if (remember) {
          // until the absolute expiry, 30 days
          expect(c.expires * 1000).toBeGreaterThan(Date.now() + 29 * DAY)
          expect(c.expires * 1000).toBeLessThan(Date.now() + 31 * DAY)
        } else expect(c.expires).toBe(-1)
      }

      const restarted = await browser.restart()
      const after = await restarted.newPage()
      await after.goto(`${origin}/me`)
      expect(await after.textContent('body')).toBe(remember ? '"ada"' : 'null')
    })
  })
})
