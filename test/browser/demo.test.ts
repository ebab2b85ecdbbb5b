/**
 * The demo app (`npm start`) in Chromium: its forms clicked as a user would, its cookie as the
 * browser keeps it, and forged requests sent by a hostile page on another origin, carrying
 * whatever the browser attaches by itself. The demo listens on 127.0.0.1 and is visited as
 * `localhost`, so a page on `127.0.0.1` is another site, and one on another port of
 * `localhost` is another origin of the same site (where `SameSite=Lax` still sends the cookie).
 */
import { createServer } from 'node:http'
import type { BrowserContext, Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { useChromium } from '../helpers/chromium.js'
import { startExample } from '../helpers/example.js'
import { listen } from '../helpers/http.js'

const chromium = await useChromium()

/** The demo, and a browser profile on it. */
async function demo() {
  const port = await startExample('examples/demo/server.ts')
  const url = `http://localhost:${port}`
  const open = async (context?: BrowserContext) => {
    const c = context ?? (await chromium.context())
    const page = await c.newPage()
    await page.goto(url)
    return { context: c, page }
  }
  return { url, open }
}

const visits = async (page: Page) => Number(await page.textContent('#visits'))
const signedInAs = async (page: Page) =>
  (await page.locator('#user').count()) === 0 ? undefined : await page.textContent('#user')
const sid = async (context: BrowserContext) =>
  (await context.cookies()).find((c) => c.name === 'sid')

/** Clicks the button named `name` and waits for the page the form leads to. */
async function press(page: Page, name: string) {
  await Promise.all([
    page.waitForEvent('load'),
    page.getByRole('button', { name, exact: true }).click(),
  ])
}

async function signIn(page: Page, user: string) {
  await page.fill('input[name=user]', user)
  await press(page, 'Sign in')
}

describe.skipIf(!chromium.available)('the demo in Chromium', () => {
  it('counts, signs in under a new cookie, lists devices, signs the others out', async () => {
    const { open } = await demo()
    const { context: laptop, page } = await open()
    expect(await visits(page)).toBe(1)
    await page.reload()
    expect(await visits(page)).toBe(2)

    const before = await sid(laptop)
    expect(before).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', expires: -1 })
    // HttpOnly: the page's scripts cannot read it
    expect(await page.evaluate(() => document.cookie)).not.toContain('sid=')

    await signIn(page, 'ada')
    expect(await page.textContent('.notice')).toBe('Welcome, ada!')
    expect(await signedInAs(page)).toBe('ada')
    // a new id at login, and the data carried over
    expect((await sid(laptop))?.value).not.toBe(before?.value)
    expect(await visits(page)).toBe(3)

    const { page: phone } = await open()
    await signIn(phone, 'ada')
    await page.reload()
    expect(await page.locator('li').count()).toBe(2)
    expect(await page.locator('li', { hasText: '(this one)' }).count()).toBe(1)

    await press(phone, 'Log out other sessions')
    expect(await phone.textContent('.notice')).toBe('Signed out 1 other session(s).')
    await page.reload()
    expect(await signedInAs(page)).toBeUndefined()
    expect(await visits(page)).toBe(1)

    await press(phone, 'Log out')
    expect(await phone.textContent('.notice')).toBe('You are signed out.')
    expect(await signedInAs(phone)).toBeUndefined()
  })

  /**
   * A hostile page posts the demo's forms, without the page's token (it cannot read it): by a
   * form submitted on load (a top-level navigation), then by `fetch` with credentials. Returns
   * the demo's answers, as the browser's network log shows them.
   */
  async function attack(context: BrowserContext, from: string, target: string) {
    const page = await context.newPage()
    const forms: Record<string, string> = {
      '/logout': '',
      '/logout-others': '',
      '/login': '<input name="user" value="mallory">',
    }
    const hostile = await listen(
      createServer((req, res) => {
        const path = new URL(req.url ?? '/', 'http://x').pathname
        const submit = req.url?.endsWith('?submit')
          ? '<script>document.forms[0].submit()</script>'
          : ''
        res.writeHead(200, { 'content-type': 'text/html' })
        res.end(
          `<form method="post" action="${target}${path}">${forms[path] ?? ''}</form>${submit}`,
        )
      }),
    )
    const page0 = `${from}:${new URL(hostile.url).port}`
    const statuses: number[] = []
    /** Whether each forged request carried the session cookie. */
    const carried: boolean[] = []
    try {
      for (const path of Object.keys(forms)) {
        const answered = () =>
          page.waitForResponse(async (r) => {
            if (r.url() !== `${target}${path}`) return false
            carried.push(/(^|; )sid=/.test((await r.request().allHeaders()).cookie ?? ''))
            return true
          })
        let answer = answered()
        await page.goto(`${page0}${path}?submit`)
        statuses.push((await answer).status())
        await page.goto(`${page0}${path}`)
        answer = answered()
        await page.evaluate(
          (url) => fetch(url, { method: 'POST', credentials: 'include', mode: 'no-cors' }),
          `${target}${path}`,
        )
        statuses.push((await answer).status())
      }
    } finally {
      await hostile.close()
    }
    return { statuses, carried }
  }

  it.each([
    ['another site (SameSite=Lax keeps the cookie back)', 'http://127.0.0.1', false],
    [
      'another origin of the same site (the cookie goes; the CSRF check stops it)',
      'http://localhost',
      true,
    ],
  ])('refuses forged posts from %s', async (_what, from, withCookie) => {
    const { url, open } = await demo()
    const { context, page } = await open()
    await signIn(page, 'ada')
    const cookie = (await sid(context))?.value

    const { statuses, carried } = await attack(context, from, url)
    expect(statuses).toEqual([403, 403, 403, 403, 403, 403])
    expect(carried).toEqual(Array(6).fill(withCookie))

    await page.goto(url)
    expect(await signedInAs(page)).toBe('ada')
    expect((await sid(context))?.value).toBe(cookie)
    expect(await page.locator('li').count()).toBe(1)
  })
})
