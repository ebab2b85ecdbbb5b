/**
 * The benchmark's scenarios and the performance targets of issue #6, shared by the timed
 * report (`bench/report.ts`, server CPU per request) and the instruction counts
 * (`bench/instructions.ts --targets`), so both judge the same targets the same way.
 * @module
 */

export type Scenario = 'read-hot' | 'read-spread' | 'write-hot' | 'write-spread'
export const SCENARIOS: readonly Scenario[] = [
  'read-hot',
  'read-spread',
  'write-hot',
  'write-spread',
]

/**
 * One target: Tessera's added cost on a framework at most `limit` times another library's,
 * each measured against the same framework with no session.
 */
export interface SessionTarget {
  what: string
  ours: string
  theirs: string
  limit: number
  /**
   * The cryptography no cache spares: `server`, a cookie value's HMAC and its id's SHA-256 on
   * the spread routes; `cookie`, the AES-256-GCM open of a token not seen lately (spread
   * routes) and the seal (`/write`); `sodium`, the same through libsodium's ChaCha20-Poly1305
   * (the cookie store's `sodium` option).
   */
  crypto: 'server' | 'cookie' | 'sodium'
  /**
   * A calibration variant whose added cost every library of the kind pays before doing
   * anything (two empty Fastify hooks; a `req` property and a `writeHead` wrapper on Express;
   * a Redis command, twice on `/write`), or, for a cookie store, on top of its cryptography
   * (the hooks, and a `Set-Cookie` header on `/write`): part of the floor.
   */
  calibration?: string
  /** Times the calibration counts per scenario (a Redis write needs two commands). */
  times?: (s: Scenario) => number
  /** Over HTTP, a variant doing the spread routes' cryptography and record read instead. */
  spreadFloor?: string
  /** Add the Redis server's own CPU (by instructions: its own count) to both sides. */
  redisCpu?: boolean
}

const commands = (s: Scenario) => (s.startsWith('write') ? 2 : 1)

/** Tessera's Redis store against express-session + connect-redis, on node-redis. */
const redis = {
  ours: 'express:tessera-redis',
  theirs: 'express:express-session-redis',
  limit: 0.5,
  crypto: 'server',
  calibration: 'express:redis-command',
  times: commands,
} as const

export const TARGETS: readonly SessionTarget[] = [
  {
    what: 'memory vs @fastify/session (Fastify)',
    ours: 'fastify:tessera-memory',
    theirs: 'fastify:fastify-session',
    limit: 0.1,
    crypto: 'server',
    calibration: 'fastify:hooks',
    spreadFloor: 'fastify:floor',
  },
  {
    what: 'memory vs express-session MemoryStore (Express)',
    ours: 'express:tessera-memory',
    theirs: 'express:express-session',
    limit: 0.05,
    crypto: 'server',
    calibration: 'express:hooks',
  },
  {
    what: 'cookie vs @fastify/secure-session (Fastify)',
    ours: 'fastify:tessera-cookie',
    theirs: 'fastify:secure-session',
    limit: 0.7,
    crypto: 'cookie',
    calibration: 'fastify:set-cookie',
  },
  {
    what: 'cookie, libsodium, vs @fastify/secure-session (Fastify)',
    ours: 'fastify:tessera-cookie-sodium',
    theirs: 'fastify:secure-session',
    limit: 0.7,
    crypto: 'sodium',
    calibration: 'fastify:set-cookie',
  },
  {
    what: 'cookie vs iron-session (node:http)',
    ours: 'node:tessera-cookie',
    theirs: 'node:iron-session',
    limit: 0.05,
    crypto: 'cookie',
  },
  { what: 'Redis vs express-session + connect-redis (Express)', ...redis },
  { what: 'Redis vs connect-redis, Redis CPU included', ...redis, redisCpu: true },
]

/** The same framework's variant with no session: `fastify:none` for `fastify:tessera-memory`. */
export const bareOf = (variant: string) => `${variant.slice(0, variant.indexOf(':'))}:none`

/**
 * The least any library of a target's kind adds in a scenario: the cryptography no cache
 * spares (`crypto`, by kind and scenario, in the caller's unit), or, on the spread routes and
 * when measured, `spreadFloor`'s own added cost; plus the calibration's added cost times
 * `times`. `added(variant, s)` is a variant's added cost, undefined when not measured or not
 * resolved.
 */
export function floorOf(
  target: SessionTarget,
  s: Scenario,
  crypto: Record<SessionTarget['crypto'], Partial<Record<Scenario, number>>>,
  added: (variant: string, s: Scenario) => number | undefined,
): number | undefined {
  let floor = crypto[target.crypto][s]
  if (target.spreadFloor !== undefined && s.endsWith('spread'))
    floor = added(target.spreadFloor, s) ?? floor
  const calibration = target.calibration === undefined ? undefined : added(target.calibration, s)
  if (calibration !== undefined) floor = (floor ?? 0) + calibration * (target.times?.(s) ?? 1)
  return floor
}

/** A target's verdict in one scenario, from Tessera's and the other library's added cost. */
export interface Verdict {
  ratio: number
  met: boolean
  /** What Tessera may add: the limit times the other library's figure. */
  budget: number
  /** `met`, or why not: missed, or missed with the floor alone above the budget. */
  result: string
}

/** Judges `ours` against `limit` times `theirs`, with `floor` the least any such library adds. */
export function judge(
  ours: number,
  theirs: number,
  limit: number,
  floor: number | undefined,
): Verdict {
  const ratio = Math.max(0, ours) / theirs
  const met = ratio <= limit
  const budget = limit * theirs
  const result = met
    ? 'met'
    : floor !== undefined && floor > budget
      ? '**missed**: the floor alone exceeds the budget'
      : '**missed**'
  return { ratio, met, budget, result }
}
