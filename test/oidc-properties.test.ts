/**
 * The OIDC callback against generated tampering, with a real provider: a genuine login's
 * callback URL with its parameters edited, removed, repeated or joined by an error. Each
 * visit must be refused with one of the module's reasons (a 400 from the test app, never a
 * 500), log nobody in, and leave the genuine callback able to complete, unless the edit left
 * the parameters the callback reads as they were.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACCOUNT, Browser, type OidcApp, startOidcApp } from './helpers/oidc-provider.js'
import { fc, runs } from './helpers/property.js'

let app: OidcApp
beforeAll(async () => {
  app = await startOidcApp()
})
afterAll(async () => {
  await app?.close()
})

const REASONS = [
  'no-login-in-progress',
  'state-mismatch',
  'login-expired',
  'provider-error',
  'invalid-response',
]

type Edit =
  | { op: 'change'; name: string; text: string }
  | { op: 'remove'; name: string }
  | { op: 'repeat'; name: string; text: string }
  | { op: 'error'; error: string }

const name = fc.constantFrom('code', 'state', 'iss')
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', 'x', 'https://evil.example', 'http://127.0.0.1:1'),
)
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('change' as const), name, text }),
  fc.record({ op: fc.constant('remove' as const), name }),
  fc.record({ op: fc.constant('repeat' as const), name, text }),
  fc.record({
    op: fc.constant('error' as const),
    error: fc.constantFrom('access_denied', 'server_error', 'x'),
  }),
)

function tamper(callback: URL, edits: Edit[]): URL {
  const url = new URL(callback)
  for (const e of edits) {
    if (e.op === 'change') url.searchParams.set(e.name, e.text)
    else if (e.op === 'remove') url.searchParams.delete(e.name)
    else if (e.op === 'repeat') url.searchParams.append(e.name, e.text)
    else url.searchParams.set('error', e.error)
  }
  return url
}

describe('oidc callback: generated tampering', () => {
  it('is refused with a reason, logs nobody in, and leaves the genuine callback working', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
        const browser = new Browser()
        const callback = await browser.followUntil(`${app.url}/login`, app.callbackUrl)
        const forged = tamper(callback, edits)
        const same = ['code', 'state', 'iss', 'error'].every(
          (p) =>
            JSON.stringify(forged.searchParams.getAll(p)) ===
            JSON.stringify(callback.searchParams.getAll(p)),
        )
        const response = await browser.request(forged)
        const body = await response.text()
        const me = async () => (await (await browser.request(`${app.url}/me`)).json()) as object
        if (same) {
          expect(response.status).toBe(302)
          expect(await me()).toMatchObject({ userId: ACCOUNT.sub })
          return
        }
        expect(response.status, body).toBe(400)
        expect(REASONS).toContain((JSON.parse(body) as { reason: string }).reason)
        expect(await me()).toMatchObject({ userId: null })
        // the forged visit spent nothing the genuine one needs, unless it spent the code
        const genuine = await browser.request(callback)
        if (genuine.status === 302) expect(await me()).toMatchObject({ userId: ACCOUNT.sub })
        else expect(genuine.status).toBe(400)
      }),
      { numRuns: runs(30) },
    )
  })
})
