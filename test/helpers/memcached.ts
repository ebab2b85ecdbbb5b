/**
 * A Memcached for a test file: the one at `MEMCACHED_URL` when it answers, else one this
 * helper starts on a free loopback port (when a `memcached` binary is installed) and stops
 * afterwards. Neither: `service()` fails in CI and skips locally.
 *
 * ```ts
 * const memcached = await memcachedService()
 * afterAll(() => memcached.stop())
 * describe.skipIf(!memcached.available)('...', () => { ... memcached.url ... })
 * ```
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { MEMCACHED_URL, portOpen, service } from './services.js'

const run = promisify(execFile)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const noop = async () => {}
/** Whether a `memcached` binary is on the PATH. */
export async function memcachedBinary(): Promise<boolean> {
  try {
    await run('memcached', ['--version'])
    return true
  } catch {
    return false
  }
}

/** A free loopback port, as the kernel hands one out. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface RunningMemcached {
  available: boolean
  /** `host:port`, as memjs takes it. */
  url: string
  /** Stop the server if this helper started it (again is fine). */
  stop(): Promise<void>
}

/** Start a memcached on a free loopback port; the caller stops it. */
export async function startMemcached(): Promise<RunningMemcached> {
  const port = await freePort()
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64']
  if (process.getuid?.() === 0) args.push('-u', 'nobody')
  const child: ChildProcess = spawn('memcached', args, { stdio: 'ignore' })
  child.on('error', () => {})
  const url = `127.0.0.1:${port}`
  const stop = () =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          child.once('exit', () => resolve())
          child.kill('SIGTERM')
        })
  const deadline = Date.now() + 10_000
  while (!(await portOpen(url, 200))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop()
      throw new Error(`memcached did not start on ${url}`)
    }
    await sleep(50)
  }
  return { available: true, url, stop }
}

/** The Memcached a test file uses; see the module comment. */
export async function memcachedService(): Promise<RunningMemcached> {
  if (await portOpen(MEMCACHED_URL)) return { available: true, url: MEMCACHED_URL, stop: noop }
  if (await memcachedBinary()) return startMemcached()
  const { available } = await service('memcached', MEMCACHED_URL)
  return { available, url: MEMCACHED_URL, stop: noop }
}
