/**
 * `npm run bench`: Tessera against the session libraries users would pick instead, over real
 * HTTP, servers and load generator in separate processes on separate cores. Writes
 * `bench/RESULTS.md` (and `bench/results.json`). See docs/benchmark.md.
 *
 * node --import tsx bench/run.ts [--quick] [--rounds N] [--duration S] [--only REGEX]
 *                                [--no-micro] [--no-scale] [--no-http] [--compare REF]
 *
 * `--compare REF` (a git commit, tag or branch) also runs every chosen Tessera variant from
 * `src/` as it was at REF, in the same rounds, and prints the two builds side by side instead
 * of writing RESULTS.md: the A/B of a hot-path change, in fresh processes of each.
 * @module
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  buildAt,
  buildHere,
  portsFrom,
  redisAnswers,
  redisServerArgs,
  serverArgs,
  strangerCookie,
} from './build.js'
import { EXPRESS_SERVER, SPIN_NS, SPREAD, servers } from './server.js'
import { SCENARIOS, type Scenario } from './targets.js'
import { hasSource } from './tessera.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = join(HERE, '..')
const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(name)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const QUICK = flag('--quick')
// The same variant differs by up to 3 µs per request from one server process to the next,
// while windows within one process agree within 0.5 µs: more processes (rounds) of shorter
// windows resolve more than fewer, longer ones in the same time.
const ROUNDS = Number(option('--rounds') ?? (QUICK ? 1 : 5))
const DURATION = Number(option('--duration') ?? (QUICK ? 2 : 3))
const WARMUP = QUICK ? 1 : 2
// enough that the server always has a request waiting: with fewer, a virtual CPU goes idle
// between requests and every wake-up is charged to the request, inflating CPU per request
const CONNECTIONS = 128
const SCALE_BIG = QUICK ? 100_000 : 1_000_000
const ONLY = option('--only') ? new RegExp(option('--only')!) : undefined
const SERVER_CORE = '0'
const CLIENT_CORE = '1'
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
const work = mkdtempSync(join(tmpdir(), 'tessera-bench-'))
const log = (...args: unknown[]) => console.error('[bench]', ...args)

// ------------------------------------------------------------------ tools

function ensureWrk(): string {
  const found = spawnSync('sh', ['-c', 'command -v wrk']).stdout.toString().trim()
  if (found) return found
  log('wrk not found: installing it (apt-get update && apt-get install -y wrk)')
  execFileSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq wrk'], {
    stdio: 'inherit',
  })
  return 'wrk'
}

/** utime + stime of a process, in microseconds (every thread of it). */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14, stime field 15
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ------------------------------------------------------------------ redis

interface RedisHandle {
  url: string
  pid: number | undefined
  private: boolean
  stop(): Promise<void>
}

/** A private redis-server (pinned beside wrk) when the binary exists, else REDIS_URL. */
async function startRedis(): Promise<RedisHandle | undefined> {
  const hasBinary = spawnSync('sh', ['-c', 'command -v redis-server']).status === 0
  if (hasBinary) {
    // a port nothing listens on: a redis-server left on a fixed port by a run that was killed
    // answered this run's ping, and this run's own, unable to bind, was gone (no CPU to read)
    const port = await portsFrom(6399)()
    const child = spawn('taskset', ['-c', CLIENT_CORE, ...redisServerArgs(port)], {
      stdio: 'ignore',
    })
    // the run ends, or is killed (build.ts turns SIGINT and SIGTERM into an exit): Redis too
    process.once('exit', () => child.kill('SIGTERM'))
    const url = `redis://127.0.0.1:${port}`
    for (let i = 0; i < 50 && child.exitCode === null; i++) {
      if (redisAnswers(port))
        return {
          url,
          pid: child.pid,
          private: true,
          stop: async () => {
            child.kill('SIGTERM')
            await sleep(200)
          },
        }
      await sleep(100)
    }
    child.kill('SIGKILL')
  }
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const { Redis } = await import('ioredis')
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    await client.ping()
  } catch {
    log(`no Redis at ${url}: the Redis variants are skipped`)
    client.disconnect()
    return undefined
  }
  client.disconnect()
  return { url, pid: undefined, private: false, stop: async () => {} }
}

async function redisCall<T>(url: string, fn: (r: import('ioredis').Redis) => Promise<T>) {
  const { Redis } = await import('ioredis')
  const client = new Redis(url)
  try {
    return await fn(client)
  } finally {
    client.disconnect()
  }
}

/** Redis's own CPU in µs: /proc for the private server, INFO cpu otherwise. */
async function redisCpuUs(redis: RedisHandle): Promise<number> {
  if (redis.pid !== undefined) return cpuUs(redis.pid)
  const info = await redisCall(redis.url, (r) => r.info('cpu'))
  const get = (k: string) => Number(/^\s*(\S+):(\S+)/m.exec(info.split(`${k}:`)[1] ?? '0') ?? 0)
  const num = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? get(k))
  return (num('used_cpu_user') + num('used_cpu_sys')) * 1e6
}

const PREFIX = 'tessera-bench:'
async function deletePrefix(url: string) {
  await redisCall(url, async (r) => {
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 10_000)
      cursor = next
      if (keys.length > 0) await r.unlink(...keys)
    } while (cursor !== '0')
  })
}

// ------------------------------------------------------------------ servers

interface Server {
  pid: number
  port: number
  stop(): Promise<void>
}

// Each server gets a port of its own from a range below the ephemeral ports (which wrk's
// connections take); see `portsFrom`
const takePort = portsFrom(4100)

async function startServer(variant: string, env: NodeJS.ProcessEnv): Promise<Server> {
  const port = await takePort()
  const child = spawn(
    'taskset',
    ['-c', SERVER_CORE, process.execPath, ...serverArgs(variant, port)],
    {
      cwd: ROOT,
      env: { ...process.env, ...env, NODE_ENV: 'production' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += d
  })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  let last = 'no answer'
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${variant} exited: ${stderr}`)
    try {
      const res = await fetch(`http://127.0.0.1:${port}/read`)
      last = `${res.status} ${(await res.text()).slice(0, 200)}`
      if (res.ok) {
        return {
          pid: child.pid!,
          port,
          stop: async () => {
            child.kill('SIGTERM')
            await Promise.race([exited, sleep(2000)])
            if (child.exitCode === null) child.kill('SIGKILL')
          },
        }
      }
    } catch (error) {
      last = String((error as Error).cause ?? error)
    }
    await sleep(100)
  }
  child.kill('SIGKILL')
  throw new Error(`${variant} did not start on port ${port} (last: ${last}): ${stderr}`)
}

/** name=value pairs of a response's Set-Cookie headers, merged into a jar. */
function absorb(jar: Map<string, string>, res: Response): boolean {
  const set = res.headers.getSetCookie()
  for (const line of set) {
    const pair = line.split(';')[0]!
    const eq = pair.indexOf('=')
    jar.set(pair.slice(0, eq), pair.slice(eq + 1))
  }
  return set.length > 0
}
const header = (jar: Map<string, string>) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')

async function get(port: number, path: string, cookie?: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: cookie ? { cookie } : {},
  })
  return { res, body: await res.text() }
}

/** A new session with count = 1: its Cookie header. */
async function newSession(port: number): Promise<string> {
  const jar = new Map<string, string>()
  const { res, body } = await get(port, '/write')
  absorb(jar, res)
  if (res.status !== 200 || body !== '1' || jar.size === 0)
    throw new Error(`/write without a cookie answered ${res.status} "${body}", ${jar.size} cookies`)
  return header(jar)
}

/**
 * The routes give the right answers: /write counts, /read reads what was written and
 * changes nothing. Returns the (possibly re-issued) cookie and whether /read sets a cookie.
 */
async function check(port: number, bare: boolean, cookie: string) {
  if (bare) {
    for (const path of ['/write', '/read']) {
      const { res, body } = await get(port, path)
      if (res.status !== 200 || body !== '0') throw new Error(`${path}: ${res.status} "${body}"`)
    }
    return { cookie, readSetsCookie: false }
  }
  const jar = new Map(
    cookie.split('; ').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
  )
  const w1 = await get(port, '/write', header(jar))
  absorb(jar, w1.res)
  const w2 = await get(port, '/write', header(jar))
  absorb(jar, w2.res)
  if (Number(w2.body) !== Number(w1.body) + 1)
    throw new Error(`/write did not count: ${w1.body} then ${w2.body}`)
  const r1 = await get(port, '/read', header(jar))
  const readSetsCookie = absorb(jar, r1.res)
  const r2 = await get(port, '/read', header(jar))
  absorb(jar, r2.res)
  if (r1.body !== w2.body || r2.body !== w2.body)
    throw new Error(`/read answered ${r1.body}, ${r2.body} after /write answered ${w2.body}`)
  return { cookie: header(jar), readSetsCookie }
}

async function manySessions(port: number, n: number): Promise<string[]> {
  const out: string[] = []
  let made = 0
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (made < n) {
        made++
        out.push(await newSession(port))
      }
    }),
  )
  return out
}

// ------------------------------------------------------------------ wrk

interface WrkResult {
  requests: number
  duration_us: number
  p50_us: number
  p99_us: number
  errors: number
  rps: number
  serverCpuUsPerReq: number
  wrkCpuPct: number
  redisCpuUsPerReq?: number
}

async function wrk(
  port: number,
  path: string,
  cookies: string[],
  seconds: number,
  serverPid: number,
  redis?: RedisHandle,
): Promise<WrkResult> {
  const cookieFile = join(work, `cookies-${port}-${cookies.length}.txt`)
  writeFileSync(cookieFile, `${cookies.join('\n')}\n`)
  const resultFile = join(work, `result-${port}.json`)
  writeFileSync(resultFile, '')
  const cpu0 = cpuUs(serverPid)
  const redis0 = redis ? await redisCpuUs(redis) : 0
  const script = `TIMEFORMAT='%U %S %R'; time taskset -c ${CLIENT_CORE} wrk -t1 -c${CONNECTIONS} -d${seconds}s -s bench/wrk.lua http://127.0.0.1:${port}${path} > /dev/null`
  const child = spawn('bash', ['-c', script], {
    cwd: ROOT,
    env: {
      ...process.env,
      BENCH_COOKIES: cookieFile,
      BENCH_RESULT: resultFile,
      BENCH_ROTATE: cookies.length > 1 ? '1' : '0',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += d
  })
  await new Promise((r) => child.once('exit', r))
  const cpu1 = cpuUs(serverPid)
  const redis1 = redis ? await redisCpuUs(redis) : 0
  const text = readFileSync(resultFile, 'utf8')
  if (!text) throw new Error(`wrk failed: ${stderr}`)
  const r = JSON.parse(text)
  const [user, sys, real] = stderr.trim().split('\n').at(-1)!.split(' ').map(Number) as [
    number,
    number,
    number,
  ]
  const errors = r.connect + r.read + r.write + r.status + r.timeout
  return {
    requests: r.requests,
    duration_us: r.duration_us,
    p50_us: r.p50_us,
    p99_us: r.p99_us,
    errors,
    rps: (r.requests * 1e6) / r.duration_us,
    serverCpuUsPerReq: (cpu1 - cpu0) / r.requests,
    wrkCpuPct: ((user + sys) / real) * 100,
    ...(redis ? { redisCpuUsPerReq: (redis1 - redis0) / r.requests } : {}),
  }
}

// ------------------------------------------------------------------ variants

interface Variant {
  name: string
  framework: string
  label: string
  config: string
  redis?: boolean
  /** `--compare`: the git ref whose build this variant runs, and that build's directory. */
  ref?: { name: string; dir: string }
}

/** How a variant is named in logs and results: `--compare`'s twins carry their ref. */
const runName = (v: Variant) => (v.ref ? `${v.name}@${v.ref.name}` : v.name)

const variants: Variant[] = [
  ['node:none', 'no session', '-'],
  ['node:spin', `no session, ${SPIN_NS / 1000} µs busy work`, 'calibration'],
  ['node:floor', 'no session, a cookie HMAC + id SHA-256 + record read', 'calibration'],
  ['node:tessera-memory', 'Tessera, memory store', 'defaults (touchAfter 1m)'],
  ['node:tessera-cookie', 'Tessera, cookie store', 'defaults'],
  ['node:tessera-cookie-sodium', 'Tessera, cookie store', 'libsodium: cookieStore({ sodium })'],
  ['node:iron-session', 'iron-session', 'getIronSession, save() on write'],
  [
    'node:tessera-memory-core',
    'Tessera, memory store, no adapter',
    'sessions.load() / commit() called in the handler',
  ],
  ['express:none', 'no session', '-'],
  ['express:middleware', 'no session, one empty middleware', 'calibration'],
  ['express:hooks', 'no session, a req property and a writeHead hook', 'calibration'],
  [
    'express:redis-command',
    'no session, one Redis GET (node-redis, no per-command timer)',
    'calibration',
  ],
  ['express:tessera-memory', 'Tessera, memory store', 'defaults'],
  [
    'express:tessera-redis',
    'Tessera, Redis store',
    'defaults, node-redis defaults (as connect-redis)',
  ],
  ['express:tessera-ioredis', 'Tessera, Redis store', 'defaults, ioredis'],
  [
    'express:express-session',
    'express-session, MemoryStore',
    'resave: false, saveUninitialized: false',
  ],
  [
    'express:express-session-defaults',
    'express-session, MemoryStore',
    'defaults: resave, saveUninitialized true',
  ],
  [
    'express:express-session-redis',
    'express-session + connect-redis',
    'resave: false, saveUninitialized: false, node-redis',
  ],
  [
    'express:tessera-redis-untimed',
    'Tessera, Redis store',
    "node-redis, commandOptions.timeout 0 (the store's own, as above)",
  ],
  [
    'express:express-session-redis-untimed',
    'express-session + connect-redis',
    'as above, node-redis, commandOptions.timeout 0',
  ],
  ['fastify:none', 'no session', '-'],
  ['fastify:spin', `no session, ${SPIN_NS / 1000} µs busy work`, 'calibration'],
  ['fastify:hooks', 'no session, two empty hooks', 'calibration'],
  ['fastify:set-cookie', 'no session, two hooks, a Set-Cookie on /write', 'calibration'],
  ['fastify:floor', 'no session, a cookie HMAC + id SHA-256 + record read', 'calibration'],
  ['fastify:tessera-memory', 'Tessera, memory store', 'defaults'],
  ['fastify:tessera-cookie', 'Tessera, cookie store', 'defaults'],
  ['fastify:tessera-cookie-sodium', 'Tessera, cookie store', 'libsodium: cookieStore({ sodium })'],
  ['fastify:fastify-session', '@fastify/session, MemoryStore', 'saveUninitialized: false'],
  [
    'fastify:fastify-session-defaults',
    '@fastify/session, MemoryStore',
    'defaults: saveUninitialized, rolling true',
  ],
  ['fastify:secure-session', '@fastify/secure-session', 'pregenerated key'],
  ['hono:none', 'no session', '-'],
  ['hono:tessera-memory', 'Tessera, memory store', 'defaults'],
  ['hono:tessera-cookie', 'Tessera, cookie store', 'defaults'],
  ['hono:hono-sessions', 'hono-sessions, MemoryStore', 'encryptionKey (recommended)'],
  ['hono:hono-sessions-cookie', 'hono-sessions, CookieStore', 'encryptionKey'],
].map(([name, label, config]) => ({
  name: name!,
  framework: name!.split(':')[0]!,
  label: label!,
  config: config!,
  ...(name!.includes('redis') ? { redis: true } : {}),
}))

/** In --quick mode, one competitor per framework and target. */
const QUICK_SKIP = new Set([
  'express:express-session-defaults',
  'express:tessera-ioredis',
  'express:tessera-redis-untimed',
  'express:express-session-redis-untimed',
  'fastify:fastify-session-defaults',
  'hono:hono-sessions-cookie',
])

function available(v: Variant, redis: RedisHandle | undefined): string | undefined {
  if (!(v.name in servers)) return 'no server'
  if (v.name.includes('tessera-cookie') && !hasSource('stores/cookie.ts'))
    return 'src/stores/cookie.ts does not exist yet'
  if (v.name.includes('tessera-') && v.redis && !hasSource('stores/redis.ts'))
    return 'src/stores/redis.ts does not exist yet'
  if (v.redis && !redis) return 'no Redis reachable'
  return undefined
}

interface Run {
  variant: string
  round: number
  readSetsCookie: boolean
  results: Partial<Record<Scenario, WrkResult>>
  loadavg: number
}

async function measureVariant(v: Variant, round: number, redis?: RedisHandle): Promise<Run> {
  const env: NodeJS.ProcessEnv = redis
    ? { BENCH_REDIS_URL: redis.url, BENCH_REDIS_PREFIX: PREFIX }
    : {}
  if (v.ref) env.BENCH_TESSERA_DIR = v.ref.dir
  const server = await startServer(v.name, env)
  try {
    // the calibration variants keep no session either
    const bare = v.name.endsWith(':none') || v.config === 'calibration'
    let hot = bare ? strangerCookie() : await newSession(server.port)
    const checked = await check(server.port, bare, hot)
    hot = checked.cookie
    const spread = bare
      ? Array.from({ length: SPREAD }, strangerCookie)
      : await manySessions(server.port, SPREAD)
    const r = v.redis ? redis : undefined
    // warm-up: let the JIT settle on both routes
    await wrk(server.port, '/write', [hot], WARMUP, server.pid, r)
    await wrk(server.port, '/read', [hot], WARMUP, server.pid, r)
    const results: Run['results'] = {}
    for (const s of SCENARIOS) {
      const path = s.startsWith('read') ? '/read' : '/write'
      const cookies = s.endsWith('hot') ? [hot] : spread
      results[s] = await wrk(server.port, path, cookies, DURATION, server.pid, r)
    }
    return {
      variant: runName(v),
      round,
      readSetsCookie: checked.readSetsCookie,
      results,
      loadavg: loadavg()[0]!,
    }
  } finally {
    await server.stop()
  }
}

/** Redis /read p99 with few and many sessions stored. */
async function redisScale(v: Variant, redis: RedisHandle) {
  const out: { stored: number; p50_us: number; p99_us: number; rps: number }[] = []
  const server = await startServer(v.name, {
    BENCH_REDIS_URL: redis.url,
    BENCH_REDIS_PREFIX: PREFIX,
  })
  try {
    await deletePrefix(redis.url)
    const cookies = await manySessions(server.port, 1000)
    const sample = await redisCall(redis.url, async (r) => {
      const [, keys] = await r.scan('0', 'MATCH', `${PREFIX}*`, 'COUNT', 1000)
      // a session record, not an index
      for (const key of keys) if ((await r.type(key)) !== 'set') return key
      return keys[0]
    })
    for (const stored of [1000, SCALE_BIG]) {
      if (stored > 1000) {
        log(`  filling Redis to ${stored} sessions`)
        await redisCall(redis.url, async (r) => {
          const fill =
            "local d = redis.call('DUMP', KEYS[1]) for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do redis.call('RESTORE', ARGV[3] .. i, 0, d, 'REPLACE') end return 1"
          for (let i = 1000; i < stored; i += 50_000) {
            await r.eval(fill, 1, sample!, i, Math.min(stored, i + 50_000) - 1, `${PREFIX}fill:`)
          }
        })
      }
      await wrk(server.port, '/read', cookies, WARMUP, server.pid)
      const res = await wrk(server.port, '/read', cookies, DURATION, server.pid)
      out.push({ stored, p50_us: res.p50_us, p99_us: res.p99_us, rps: res.rps })
    }
  } finally {
    await server.stop()
    await deletePrefix(redis.url)
  }
  return out
}

// ------------------------------------------------------------------ child runs

function runChild(args: string[]): unknown {
  const out = execFileSync('taskset', ['-c', SERVER_CORE, process.execPath, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  })
  return JSON.parse(out.trim().split('\n').at(-1)!)
}

// ------------------------------------------------------------------ main

if (flag('--report')) {
  // rewrite RESULTS.md from the figures of the last run, without measuring again
  const { report } = await import('./report.js')
  writeFileSync(
    join(HERE, 'RESULTS.md'),
    report(JSON.parse(readFileSync(join(HERE, 'results.json'), 'utf8'))),
  )
  log('rewrote bench/RESULTS.md from bench/results.json')
  process.exit(0)
}

const started = new Date()
const load0 = loadavg()
log(`work dir ${work}; load average ${load0.map((x) => x.toFixed(2)).join(' ')}`)
ensureWrk()
const compiled = flag('--from-src') ? undefined : buildHere(log)
if (compiled) process.env.BENCH_TESSERA_DIR = compiled
const redis = await startRedis()
const chosen = variants.filter(
  (v) => (!ONLY || ONLY.test(v.name)) && !(QUICK && QUICK_SKIP.has(v.name)),
)
const skipped = chosen
  .map((v) => [v, available(v, redis)] as const)
  .filter(([, why]) => why !== undefined)
const available_ = chosen.filter((v) => available(v, redis) === undefined)
for (const [v, why] of skipped) log(`skip ${v.name}: ${why}`)
const COMPARE = option('--compare')
const compareDir = COMPARE === undefined ? undefined : buildAt(COMPARE, log)
const runnable = compareDir
  ? available_.flatMap((v) =>
      v.name.includes(':tessera') ? [v, { ...v, ref: { name: COMPARE!, dir: compareDir } }] : [v],
    )
  : available_

const runs: Run[] = []
const failures: { variant: string; error: string }[] = []
try {
  if (!flag('--no-http')) {
    for (let round = 1; round <= ROUNDS; round++) {
      // interleaved: every variant once per round, the order reversed each round
      const order = round % 2 === 1 ? runnable : [...runnable].reverse()
      for (const v of order) {
        log(`round ${round}: ${runName(v)}`)
        try {
          const run = await measureVariant(v, round, redis)
          runs.push(run)
          const r = run.results
          log(
            `  read-hot ${r['read-hot']!.rps.toFixed(0)} req/s ${r['read-hot']!.serverCpuUsPerReq.toFixed(1)} µs/req; write-hot ${r['write-hot']!.rps.toFixed(0)} req/s ${r['write-hot']!.serverCpuUsPerReq.toFixed(1)} µs/req`,
          )
        } catch (error) {
          log(`  FAILED: ${(error as Error).message}`)
          failures.push({ variant: runName(v), error: (error as Error).message })
        }
        if (redis) await deletePrefix(redis.url)
      }
    }
  }
  if (compareDir) {
    // the side by side is the whole answer: RESULTS.md stays the last full run's
    const { compareTable } = await import('./report.js')
    console.log(compareTable(runs, COMPARE!))
    for (const f of failures) log(`failed: ${f.variant}: ${f.error}`)
    await redis?.stop()
    rmSync(dirname(compareDir), { recursive: true, force: true })
    process.exit(failures.length > 0 ? 1 : 0)
  }
  let micro: unknown
  if (!flag('--no-micro')) {
    log('micro-benchmarks')
    micro = runChild(['--import', 'tsx', 'bench/micro.ts', ...(QUICK ? ['--quick'] : [])])
  }
  const heap: unknown[] = []
  const scale: Record<string, unknown> = {}
  if (!flag('--no-scale')) {
    log('heap per 100,000 sessions')
    for (const which of ['tessera', 'express-session'])
      heap.push(runChild(['--expose-gc', '--import', 'tsx', 'bench/heap.ts', which]))
    if (redis) {
      for (const name of ['express:tessera-redis', 'express:express-session-redis']) {
        const v = variants.find((x) => x.name === name)!
        if (available(v, redis) !== undefined) continue
        log(`Redis scale: ${name}`)
        try {
          scale[name] = await redisScale(v, redis)
        } catch (error) {
          failures.push({ variant: `${name} (scale)`, error: (error as Error).message })
        }
      }
    }
  }
  const { report } = await import('./report.js')
  const data = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    quick: QUICK,
    spinNs: SPIN_NS,
    rounds: ROUNDS,
    duration: DURATION,
    connections: CONNECTIONS,
    spread: SPREAD,
    scaleBig: SCALE_BIG,
    loadavgStart: load0,
    loadavgEnd: loadavg(),
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memGb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      kernel: execFileSync('uname', ['-r']).toString().trim(),
      wrk: spawnSync('wrk', ['-v']).stdout.toString().split('\n')[0]?.trim() ?? '?',
      redis: redis
        ? `${spawnSync('redis-server', ['--version']).stdout?.toString().trim() ?? '?'} (${redis.private ? 'private instance, pinned to the load generator core' : redis.url})`
        : 'none',
    },
    tessera: compiled
      ? 'compiled from src/ by tsc (tsconfig.build.json) into a private directory'
      : 'src/ through tsx',
    adapters: {
      express: hasSource('adapters/express.ts')
        ? 'src/adapters/express.ts'
        : 'core glue in bench/server.ts',
      fastify: hasSource('adapters/fastify.ts')
        ? 'src/adapters/fastify.ts'
        : 'core glue in bench/server.ts',
      hono: hasSource('adapters/hono.ts') ? 'src/adapters/hono.ts' : 'core glue in bench/server.ts',
      node: 'src/adapters/node.ts',
    },
    expressServer: EXPRESS_SERVER,
    variants: runnable,
    skipped: skipped.map(([v, why]) => ({ variant: v.name, why: why ?? '' })),
    runs,
    failures,
    micro,
    heap,
    scale,
  }
  writeFileSync(join(HERE, 'results.json'), `${JSON.stringify(data, null, 2)}\n`)
  writeFileSync(join(HERE, 'RESULTS.md'), report(data))
  log('wrote bench/RESULTS.md and bench/results.json')
} finally {
  await redis?.stop()
}
