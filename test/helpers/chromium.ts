/**
 * A real browser for the tests under test/browser: Debian's Chromium (`CHROMIUM_PATH`, default
 * /usr/bin/chromium), headless, driven by playwright-core. Nothing is downloaded. In CI a
 * missing Chromium fails the run, naming it; elsewhere its tests are skipped with the reason.
 *
 * ```ts
 * const chromium = await useChromium()
 * describe.skipIf(!chromium.available)('in a browser', () => {
 *   it('...', async () => { const page = await (await chromium.context()).newPage() })
 * })
 * ```
 */
import { access, constants, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, type BrowserContext, chromium } from 'playwright-core'
import { afterAll, afterEach } from 'vitest'
import { service } from './services.js'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** The flags this machine needs: no sandbox as root, and no calls to Google's hosts. */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']

export interface Chromium {
  available: boolean
  /** A new browser profile (its own cookies), closed after the test. */
  context(): Promise<BrowserContext>
  /**
   * A browser of its own with a profile on disk: `restart()` closes it and starts it again on
   * the same profile, which keeps persistent cookies and drops browser-session ones.
   */
  persistent(): Promise<{ context: BrowserContext; restart(): Promise<BrowserContext> }>
}

/**
 * Chromium for one test file: launched on first use, closed after the file; each
 * {@link Chromium.context} is a fresh profile, closed after its test.
 */
export async function useChromium(): Promise<Chromium> {
  const { available } = await service('chromium', CHROMIUM_PATH, () =>
    access(CHROMIUM_PATH, constants.X_OK),
  )
  let browser: Promise<Browser> | undefined
  const open: BrowserContext[] = []
  const profiles: string[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()))
    await Promise.all(profiles.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
  })
  afterAll(async () => {
    await (await browser)?.close()
  })
  return {
    available,
    async context() {
      browser ??= chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS })
      const context = await (await browser).newContext()
      open.push(context)
      return context
    },
    async persistent() {
      const dir = await mkdtemp(join(tmpdir(), 'tessera-chromium-'))
      profiles.push(dir)
      const launch = async () => {
        const context = await chromium.launchPersistentContext(dir, {
          executablePath: CHROMIUM_PATH,
          args: ARGS,
        })
        open.push(context)
        return context
      }
      let context = await launch()
      return {
        context,
        async restart() {
          await context.close()
          context = await launch()
          return context
        },
      }
    },
  }
}
