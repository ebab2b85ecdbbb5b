/**
 * A session inside an iframe on another site, in Chromium, with the cookie options made for
 * it: `sameSite: 'none'` and `partitioned: true` (CHIPS), which make it Secure. The session must
 * work inside the frame, stay apart from the app's own top-level session (another partition),
 * and a logout inside the frame must clear it: a clearing cookie without `Partitioned` would
 * not reach a partitioned one.
 */
import { createServer } from 'node:http'
import type { Frame, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { useChromium } from '../helpers/chromium.js'
import { listen, type Running, SECRET, serve } from '../helpers/http.js'

const chromium = await useChromium()

describe.skipIf(!chromium.available)('a partitioned session cookie in a third-party frame', () => {
  let app: Running
  let host: Running
  let appOrigin: string
  beforeAll(async () => {
    const sessions = createSessions<{ n: number }>({
      secret: SECRET,
      store: memoryStore({ sweepInterval: 0 }),
      // no `secure`: such a cookie is Secure even over plain HTTP (a browser drops it
      // otherwise), which browsers take from localhost, a secure context
      cookie: { sameSite: 'none', partitioned: true },
    })
    app = await serve('node', sessions, (session, url) => {
      if (url.pathname === '/logout') {
        session.destroy()
        return { body: 'bye' }
      }
      // not on /favicon.ico, which Chromium asks for at the top level
      if (url.pathname !== '/count') return { status: 404 }
      const n = (session.get('n') ?? 0) + 1
      session.set('n', n)
      return { body: n }
    })
    appOrigin = `http://localhost:${new URL(app.url).port}`
    // the embedding site: another host, so another site and another cookie partition
    host = await listen(
      createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' })
        res.end(`<iframe src="${appOrigin}${req.url}"></iframe>`)
      }),
    )
  })
  afterAll(async () => {
    await app?.close()
    await host?.close()
  })

  const framed = async (page: Page, path: string): Promise<Frame> => {
    await page.goto(`${host.url}${path}`)
    const frame = page.frames().find((f) => f.url().startsWith(appOrigin))!
    await frame.waitForLoadState()
    return frame
  }
  const text = async (frame: Frame) => JSON.parse((await frame.textContent('body')) ?? 'null')

  it('keeps the framed session, apart from the top-level one, and clears it at logout', async () => {
    const context = await chromium.context()
    const page = await context.newPage()
    expect(await text(await framed(page, '/count'))).toBe(1)
    expect(await text(await framed(page, '/count'))).toBe(2)
    const sid = (await context.cookies(appOrigin)).filter((c) => c.name === 'sid')
    expect(sid).toHaveLength(1)
    expect(sid[0]).toMatchObject({
      sameSite: 'None',
      secure: true,
      partitionKey: 'http://127.0.0.1',
    })

    // the app opened at the top level is another partition: a session of its own
    const top = await context.newPage()
    await top.goto(`${appOrigin}/count`)
    expect(JSON.parse((await top.textContent('body')) ?? 'null')).toBe(1)
    expect(await text(await framed(page, '/count'))).toBe(3)

    // a logout in the frame clears the partitioned cookie; the next visit starts again
    expect(await text(await framed(page, '/logout'))).toBe('bye')
    const left = (await context.cookies(appOrigin)).filter((c) => c.name === 'sid')
    // the top-level session's cookie only (its own partition): the framed one is gone
    expect(left.map((c) => c.partitionKey)).toEqual(['http://localhost'])
    expect(await text(await framed(page, '/count'))).toBe(1)
    await top.reload()
    expect(JSON.parse((await top.textContent('body')) ?? 'null')).toBe(2)
  })
})
