/**
 * Where the real servers are, and what happens when one is missing: in CI (`CI=true`) its
 * tests fail with a message naming it; elsewhere they are skipped with the reason printed.
 *
 * ```ts
 * const redis = await service('redis', () => pingRedis(REDIS_URL))
 * describe.skipIf(!redis.available)('redis store', () => { ... })
 * ```
 */
import { connect } from 'node:net'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'
export const MEMCACHED_URL = process.env.MEMCACHED_URL ?? '127.0.0.1:11211'

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1'

/** Whether a TCP port answers, within `timeoutMs`. */
export function portOpen(hostPort: string, timeoutMs = 1000): Promise<boolean> {
  const url = hostPort.includes('://') ? new URL(hostPort) : new URL(`tcp://${hostPort}`)
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/**
 * Checks a service with `probe` (which throws or resolves false when it is not there).
 * In CI a missing service throws, naming it and where it was looked for; locally it warns and
 * returns `available: false` so the caller skips its tests.
 */
export async function service(
  name: string,
  where: string,
  probe: () => Promise<unknown> = () => portOpen(where),
): Promise<{ available: boolean }> {
  let ok = false
  let reason = 'no answer'
  try {
    ok = (await probe()) !== false
  } catch (err) {
    reason = (err as Error).message
  }
  if (ok) return { available: true }
  const message = `${name} is not reachable at ${where} (${reason})`
  if (IN_CI)
    throw new Error(`[tessera tests] ${message}: CI needs it; .ci/run should have started it`)
  console.warn(`[tessera tests] skipping ${name} tests: ${message}`)
  return { available: false }
}
