/**
 * The cookie store's sessions in Chromium's own cookie jar: generated writes of any size, some
 * persistent ("remember me"), split over up to two cookies. Each must come back as written on
 * the next request, with exactly the cookies it needs in the jar (a smaller session clears the
 * chunks it no longer uses, a larger one the single cookie), all of one lifetime; a session
 * too large for two cookies is refused (a 500) and leaves the one before it as it was.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createSessions } from '../../src/index.js'
import { cookieStore } from '../../src/stores/cookie.js'
import { useChromium } from '../helpers/chromium.js'
import { type Running, SECRET, serve } from '../helpers/http.js'
import { fc, runs } from '../helpers/property.js'

const chromium = await useChromium()

describe.skipIf(!chromium.available)('cookie-store sessions in Chromium', () => {
  let app: Running
  let origin: string
  let quiet: { mockRestore(): void }
  beforeAll(async () => {
    // the refused writes' errors, which the default error answer logs
    quiet = vi.spyOn(console, 'error').mockImplementation(() => {})
    const sessions = createSessions<{ blob: string }>({
      secret: SECRET,
      store: cookieStore({ maxChunks: 2 }),
    })
    app = await serve('node', sessions, (session, url) => {
      const q = (name: string) => url.searchParams.get(name) ?? ''
      if (url.pathname === '/put') {
        session.set('blob', q('tag') + 'x'.repeat(Number(q('size'))))
        if (q('persist') === 'true')
          session.setLifetime({ idleTimeout: '1d', absoluteTimeout: '2d' })
        return { body: 'ok' }
      }
      return { body: session.get('blob') ?? null }
    })
    origin = `http://localhost:${new URL(app.url).port}`
  })
  afterAll(async () => {
    await app?.close()
    quiet.mockRestore()
  })

  it('each write comes back as written, in the cookies it needs, or leaves what was there', async () => {
    const context = await chromium.context()
    const page = await context.newPage()
    await page.goto(`${origin}/show`)
    const get = (path: string) =>
      page.evaluate(async (p) => {
        const r = await fetch(p)
        return { status: r.status, body: await r.json().catch(() => null) }
      }, path)
    const write = fc.record({
      // past what two cookies hold (about 5,900 characters), and what one does (about 2,900)
      size: fc.oneof(fc.nat({ max: 7_000 }), fc.nat({ max: 300 })),
      tag: fc.string({ unit: fc.constantFrom('a', 'b', 'c'), minLength: 1, maxLength: 3 }),
      persist: fc.boolean(),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(write, { minLength: 1, maxLength: 4 }), async (writes) => {
        await context.clearCookies()
        let blob: string | null = null
        let persistent = false
        for (const { size, tag, persist } of writes) {
          const put = await get(`/put?size=${size}&tag=${tag}&persist=${persist}`)
          const shown = (await get('/show')).body as string | null
          if (put.status === 200) {
            expect(shown).toBe(tag + 'x'.repeat(size))
            persistent ||= persist
          } else {
            expect(put.status).toBe(500)
            expect(size).toBeGreaterThan(5_000)
            expect(shown).toBe(blob)
          }
          blob = shown
          const jar = (await context.cookies()).filter((c) => /^sid(\.\d+)?$/.test(c.name))
          const names = jar.map((c) => c.name).sort()
          if (blob === null) expect(names).toEqual([])
          else if (blob.length < 2_500) expect(names).toEqual(['sid'])
          else if (blob.length > 3_200) expect(names).toEqual(['sid.0', 'sid.1'])
          else expect([['sid'], ['sid.0', 'sid.1']]).toContainEqual(names)
          // every chunk of one lifetime: a browser-session cookie (-1), or persistent
          for (const c of jar) {
            expect(c.httpOnly).toBe(true)
            expect(c.expires > 0).toBe(persistent)
          }
        }
      }),
      { numRuns: runs(25) },
    )
  })
})
