/**
 * `npm run bench:instructions`: the instructions a server executes per request, by function,
 * counted by valgrind's callgrind while the server answers real HTTP requests on loopback.
 * Unlike time, the count does not depend on what else the machine is doing: the same build
 * serving the same requests gives nearly the same figures on a busy machine and an idle one,
 * so an A/B of a hot-path change resolves a few hundred instructions (a few tens of
 * nanoseconds) where the timed benchmark's rounds differ by microseconds. It does not see
 * cache misses, stalls or the kernel: it says where a request's work is, not what it costs in
 * time. See docs/benchmark.md, "Counting instructions per request".
 *
 * node --import tsx bench/instructions.ts [--route read|write] [--spread] [--requests N]
 *                                         [--warmup N] [--top N] [--compare REF]
 *                                         [--event Ir|D1mr|DLmr|Bcm|...] [--ll BYTES]
 *                                         VARIANT...
 * node --import tsx bench/instructions.ts --scenarios [--requests N] [--warmup N] VARIANT...
 * node --import tsx bench/instructions.ts --targets [--requests N] [--warmup N] [--processes N]
 * node --import tsx bench/instructions.ts --targets --again VARIANT...
 * node --import tsx bench/instructions.ts --report
 *
 * Each variant (a name from `bench/server.ts`, e.g. `node:tessera-memory`) runs in a server
 * under callgrind with instrumentation off; after `--warmup` requests (V8 has optimized the
 * hot code by then) it is switched on for `--requests` more, and the counts are divided by
 * that number. JIT-compiled JavaScript is named from V8's `--perf-basic-prof` map. With
 * `--compare REF`, each Tessera variant also runs from `src/` as it was at REF.
 *
 * `--scenarios` has each variant serve the timed benchmark's four scenarios in one process,
 * one column per scenario. `--targets` judges the performance targets of `bench/targets.ts` by
 * instructions instead of time: every variant they name serves the four scenarios so, in
 * `--processes` processes (the fewest instructions counted win), two servers at a time (the
 * counts do not depend on what else runs); the floors' cryptography is counted in-process
 * (`bench/primitives.ts`), and the verdicts are written to `bench/INSTRUCTIONS.md` and
 * `bench/instructions.json`, from which `--report` writes the first again. With `--again`, only
 * the variants named (those a change touched) and the cryptography are counted again, and their
 * figures replace the last run's in both files; the report says which figures are from when.
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  buildAt,
  buildHere,
  portsFrom,
  redisAnswers,
  redisServerArgs,
  serverArgs,
  strangerCookie,
} from './build.js'
import { SPREAD, servers } from './server.js'
import { bareOf, floorOf, judge, SCENARIOS, type Scenario, TARGETS } from './targets.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const HERE = join(ROOT, 'bench')
const log = (...args: unknown[]) => console.error('[instructions]', ...args)

const { values: opts, positionals: variants } = parseArgs({
  allowPositionals: true,
  options: {
    route: { type: 'string', default: 'read' },
    spread: { type: 'boolean', default: false },
    // four scenarios of a few thousand requests per variant: shorter windows by default
    requests: { type: 'string' },
    warmup: { type: 'string' },
    top: { type: 'string', default: '40' },
    compare: { type: 'string' },
    targets: { type: 'boolean', default: false },
    report: { type: 'boolean', default: false },
    scenarios: { type: 'boolean', default: false },
    processes: { type: 'string', default: '2' },
    again: { type: 'boolean', default: false },
    event: { type: 'string', default: 'Ir' },
    ll: { type: 'string' },
  },
})
const TARGETS_MODE = opts.targets
const REQUESTS = Number(opts.requests ?? (TARGETS_MODE ? 2000 : 5000))
const WARMUP = Number(opts.warmup ?? (TARGETS_MODE ? 4000 : 5000))
const TOP = Number(opts.top)
const PROCESSES = Number(opts.processes)
if (opts.route !== 'read' && opts.route !== 'write') throw new Error('--route is read or write')
if (![REQUESTS, WARMUP, TOP, PROCESSES].every((n) => Number.isInteger(n) && n > 0))
  throw new Error('--requests, --warmup, --top and --processes are whole numbers above 0')
/**
 * What is counted: `Ir` (instructions), or with `--event` one of the events callgrind
 * simulates, per function: data reads (`Dr`), first-level data read misses (`D1mr`),
 * last-level data read misses (`DLmr`) and so on (`--cache-sim=yes`), or conditional and
 * indirect branches mispredicted (`Bcm`, `Bim`: `--branch-sim=yes`). The simulated caches have
 * this CPU's sizes unless `--ll BYTES` sets the last level's (16-way, 64-byte lines: give one
 * core's L2 to count what a request finds outside it). They see only the server: not the
 * kernel, not wrk, whose work also evicts the server's data between requests.
 */
const EVENTS: Record<string, string> = {
  Ir: 'instructions',
  Dr: 'data reads',
  Dw: 'data writes',
  I1mr: 'first-level instruction misses',
  D1mr: 'first-level data read misses',
  D1mw: 'first-level data write misses',
  ILmr: 'last-level instruction misses',
  DLmr: 'last-level data read misses',
  DLmw: 'last-level data write misses',
  Bc: 'conditional branches',
  Bcm: 'conditional branches mispredicted',
  Bi: 'indirect branches',
  Bim: 'indirect branches mispredicted',
}
const EVENT = opts.event
if (EVENTS[EVENT] === undefined || (EVENT !== 'Ir' && (TARGETS_MODE || opts.report)))
  throw new Error(`--event is one of ${Object.keys(EVENTS).join(', ')}, without --targets`)
const LL = opts.ll === undefined ? undefined : Number(opts.ll)
if (
  LL !== undefined &&
  !(Number.isInteger(LL) && LL > 0 && (LL & (LL - 1)) === 0 && /^[DI]L/.test(EVENT))
)
  throw new Error('--ll is a power of two in bytes, with a last-level --event (DLmr, DLmw, ILmr)')
/** valgrind's options for {@link EVENT}. */
const SIMULATE =
  EVENT === 'Ir'
    ? []
    : EVENT.startsWith('B')
      ? ['--branch-sim=yes']
      : ['--cache-sim=yes', ...(LL === undefined ? [] : [`--LL=${LL},16,64`])]
const unknown = variants.filter((v) => servers[v] === undefined)
const notJudged = opts.again ? variants.filter((v) => !targetVariants().includes(v)) : []
if (
  (TARGETS_MODE && (variants.length > 0 !== opts.again || opts.compare !== undefined)) ||
  (!TARGETS_MODE && (opts.again || (!opts.report && variants.length === 0))) ||
  unknown.length > 0 ||
  notJudged.length > 0
) {
  if (notJudged.length > 0)
    console.error(`not a variant the targets judge: ${notJudged.join(', ')}`)
  if (unknown.length > 0) console.error(`unknown variant(s): ${unknown.join(', ')}`)
  console.error(`usage: bench/instructions.ts [options] <${Object.keys(servers).join('|')}>...`)
  console.error(
    '       bench/instructions.ts --targets [--requests N] [--warmup N] [--processes N]',
  )
  console.error('       bench/instructions.ts --targets --again VARIANT...')
  console.error('       bench/instructions.ts --report')
  process.exit(2)
}
if (!opts.report && spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('valgrind is not installed (Debian: apt-get install valgrind)')
  process.exit(2)
}

// ------------------------------------------------------------------ the server and its load

interface Traced {
  child: ChildProcess
  port: number
  out: string
  exited: Promise<void>
  /** The variant's own Redis server, under callgrind too, when it talks to Redis. */
  redis?: Omit<Traced, 'redis'>
}

const takePort = portsFrom(4300)
const takeRedisPort = portsFrom(6420)
/** The row of a scenario's counts that holds its Redis server's instructions per request. */
const REDIS_ROW = 'Redis server (its own process)'
/** Whether a variant's server talks to Redis: it then gets a Redis of its own. */
const usesRedis = (variant: string) => variant.includes('redis')

/**
 * A redis-server of the variant's own under callgrind, counting nothing until told: its
 * instructions are counted over the same windows as the server's, so the Redis target that
 * counts Redis's own work can be judged by instructions too. One per server process, as two
 * run at a time.
 */
async function startRedis(): Promise<Omit<Traced, 'redis'>> {
  const port = await takeRedisPort()
  const out = join(work, `callgrind.redis.${port}`)
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      ...SIMULATE,
      `--callgrind-out-file=${out}`,
      ...redisServerArgs(port),
    ],
    { stdio: 'ignore' },
  )
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    if (redisAnswers(port)) return { child, port, out, exited }
    await new Promise((r) => setTimeout(r, 100))
  }
  child.kill('SIGKILL')
  throw new Error(`redis-server under callgrind did not answer on port ${port}`)
}
/** Node's flags for counts that repeat: no compiler or collector threads, fixed seeds. */
const REPEATABLE = ['--single-threaded', '--hash-seed=1', '--random-seed=1']
const work = mkdtempSync(join(tmpdir(), 'tessera-instructions-'))

async function start(variant: string, tesseraDir: string | undefined): Promise<Traced> {
  const redis = usesRedis(variant) ? await startRedis() : undefined
  const port = await takePort()
  const out = join(work, `callgrind.${port}`)
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      // V8 writes and rewrites its code in memory: valgrind must notice
      '--smc-check=all-non-file',
      '--instr-atstart=no',
      ...SIMULATE,
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--perf-basic-prof',
      `--logfile=${join(work, 'v8.log')}`,
      ...REPEATABLE,
      ...serverArgs(variant, port),
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        BENCH_TESSERA_DIR: tesseraDir ?? '',
        // time as the timed run sees it: no minute passes (see `clock` in bench/server.ts)
        BENCH_FROZEN_CLOCK: '1',
        ...(redis ? { BENCH_REDIS_URL: `redis://127.0.0.1:${redis.port}` } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  await new Promise<void>((resolve, reject) => {
    const seen = (d: Buffer) => {
      output += d
      if (output.includes('ready')) resolve()
    }
    child.stdout!.on('data', seen)
    child.stderr!.on('data', (d) => {
      output += d
    })
    void exited.then(() => reject(new Error(`${variant} exited: ${output.slice(-2000)}`)))
  }).catch(async (error: unknown) => {
    redis?.child.kill('SIGTERM')
    await redis?.exited
    throw error
  })
  return { child, port, out, exited, ...(redis ? { redis } : {}) }
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 })

function get(port: number, path: string, cookie: string) {
  return new Promise<{ status: number; body: string; cookie: string | undefined }>(
    (resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent, headers: { cookie } }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => {
          const set = res.headers['set-cookie']?.map((c) => c.split(';')[0]).join('; ')
          resolve({ status: res.statusCode ?? 0, body, cookie: set })
        })
      })
      req.on('error', reject)
      req.end()
    },
  )
}

/**
 * Cookies for the requests: {@link SPREAD} sessions, or one, each made by `/write`. A variant
 * with no sessions gets cookies of a Tessera cookie's shape that no server signed, as in the
 * timed benchmark.
 */
async function sessions(port: number, n: number): Promise<string[]> {
  const cookies: string[] = []
  while (cookies.length < n) {
    const made = await Promise.all(
      Array.from({ length: Math.min(4, n - cookies.length) }, () => get(port, '/write', '')),
    )
    for (const r of made) {
      if (r.status !== 200) throw new Error(`/write answered ${r.status}: ${r.body}`)
      if (r.cookie === undefined) {
        // no session here: the rest need no request either
        while (cookies.length < n) cookies.push(strangerCookie())
        return cookies
      }
      cookies.push(r.cookie)
    }
  }
  return cookies
}

/** Where the rotation through each list of cookies has got to. */
const next = new WeakMap<string[], number>()

/**
 * Spread requests made before a spread window is counted, at least: two rotations. Making the
 * sessions leaves the newest of them in Tessera's caches of verified cookies and id hashes
 * (two generations of 4,096), which a strict rotation through {@link SPREAD} never hits once
 * it has gone round; until then some requests find them there. Fastify + memory's spread
 * `/write`, 5,000 requests counted after 5,000 spread requests, was 81,021 instructions (less the
 * collector and compiler); after 12,000, 83,894; after 20,000, 89,161; after 30,000, 89,123.
 */
const STEADY = 2 * SPREAD

/**
 * `total` requests to `path`, four at a time, rotating through `cookies` from where the last
 * call with the same list stopped, as wrk does over a run: with {@link SPREAD} sessions, each
 * comes back after all the others, as in the timed run. Answers how many responses set a
 * cookie.
 */
async function load(port: number, path: string, cookies: string[], total: number): Promise<number> {
  const first = next.get(cookies) ?? 0
  next.set(cookies, first + total)
  let sent = 0
  let setCookie = 0
  const one = async () => {
    while (sent < total) {
      const cookie = cookies[(first + sent++) % cookies.length]!
      const r = await get(port, path, cookie)
      if (r.status !== 200) throw new Error(`${path} answered ${r.status}: ${r.body}`)
      if (r.cookie !== undefined) setCookie++
    }
  }
  await Promise.all([one(), one(), one(), one()])
  return setCookie
}

// ------------------------------------------------------------------ callgrind's counts

/** V8's map of its generated code: start, size and name of each piece, sorted by start. */
function codeMap(pid: number): { starts: number[]; ends: number[]; names: string[] } {
  const file = `/tmp/perf-${pid}.map`
  const byStart = new Map<number, [number, string]>()
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [start, size, ...name] = line.split(' ')
      if (name.length === 0) continue
      const at = Number.parseInt(start!, 16)
      // code moved or replaced later wins
      byStart.set(at, [at + Number.parseInt(size!, 16), name.join(' ')])
    }
    rmSync(file, { force: true })
  }
  const starts = [...byStart.keys()].sort((a, b) => a - b)
  return {
    starts,
    ends: starts.map((s) => byStart.get(s)![0]),
    names: starts.map((s) => byStart.get(s)![1]),
  }
}

function nameAt(map: ReturnType<typeof codeMap>, address: number): string | undefined {
  let lo = 0
  let hi = map.starts.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (map.starts[mid]! <= address) lo = mid + 1
    else hi = mid - 1
  }
  return hi >= 0 && address < map.ends[hi]! ? map.names[hi] : undefined
}

/**
 * Instructions by function, from one of callgrind's output files: C++ and V8's builtins by
 * their symbols, JavaScript by V8's map (`JS name file:line`), with the file paths shortened.
 */
function counts(out: string, map: ReturnType<typeof codeMap>): Map<string, number> {
  const text = spawnSync(
    'callgrind_annotate',
    ['--threshold=100', `--show=${EVENT}`, `--sort=${EVENT}`, out],
    {
      maxBuffer: 1 << 28,
    },
  ).stdout.toString()
  const byName = new Map<string, number>()
  let total = 0
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$/.exec(line)
    // PROGRAM TOTALS comes from the dump's `summary`, which is wrong once instrumentation has
    // been switched off and on again (that zeroes the counts, and the summary is this dump's
    // count less the last one's): the functions' own counts are right, and add up to the total
    if (!m || m[2]!.includes('PROGRAM TOTALS')) continue
    let name = m[2]!.replace(/\s*\[[^\]]*\]$/, '').replace(/^\?\?\?:/, '')
    const n = Number(m[1]!.replaceAll(',', ''))
    total += n
    if (name.startsWith('0x')) {
      const js = nameAt(map, Number.parseInt(name.slice(2, 18), 16))
      name = js === undefined ? 'JIT code without a name' : `JS ${short(js)}`
    } else name = group(symbol(name))
    byName.set(name, (byName.get(name) ?? 0) + n)
  }
  byName.set('total', total)
  return byName
}

/** A whole dump's count of {@link EVENT}: the sum of its functions' (see {@link counts}). */
function totalOf(out: string): number {
  return counts(out, { starts: [], ends: [], names: [] }).get('total') ?? 0
}

/** A C++ symbol without its parameters and template arguments. */
function symbol(name: string): string {
  let s = name.replaceAll('(anonymous namespace)::', '')
  for (let before = ''; before !== s; ) {
    before = s
    s = s.replace(/<[^<>]*>/g, '')
  }
  return s.replace(/\(.*$/, '()')
}

/**
 * V8's garbage collector and compiler as one row each. Collection is a real cost of what a
 * request allocates, but whether a window holds a major collection (or a late compilation) is
 * chance, so `total, less GC and compiler` is the figure that repeats between runs; compare
 * the collector's row over long windows.
 */
const COLLECTOR =
  /^(heap::base::|v8::internal::(\w*(Marking|MarkCompact|Sweeper|Scaveng|Evacuat|RememberedSet|SlotSet|GCTracer|MinorMC|LiveObject|BodyDescriptor|PointersUpdating|StringTableCleaner|Ephemeron)\w*::|Heap::(?!Allocate)|IterateObjectCache))/
const COMPILER = /^v8::internal::(compiler|maglev|baseline|interpreter|turboshaft)::/
function group(name: string): string {
  // without a return type: `void v8::internal::MarkingVisitorBase::Visit()`
  const bare = name.slice(name.lastIndexOf(' ', name.indexOf('(')) + 1)
  return COMPILER.test(bare) ? 'V8 compiler' : COLLECTOR.test(bare) ? 'V8 garbage collector' : name
}

const short = (js: string) =>
  js
    .replace(/^(LazyCompile|Function|JS):/, '')
    .replaceAll(`file://${ROOT}/`, '')
    .replaceAll(`${ROOT}/`, '')
    .replace(/node_modules\/\.cache\/[^/]+\/(dist\/)?/, '')

/** A route and its cookies: one session (hot), or {@link SPREAD} in rotation. */
const scenarioOf = (route: 'read' | 'write', spread: boolean): Scenario =>
  `${route}-${spread ? 'spread' : 'hot'}`

const callgrind = (pid: number, ...command: string[]) => {
  const r = spawnSync('callgrind_control', [...command, String(pid)])
  if (r.status !== 0) throw new Error(`callgrind_control ${command}: ${r.stderr.toString()}`)
}

/**
 * Instructions per request by function, for each of `scenarios` in turn in one server process,
 * as the timed benchmark runs them: per scenario, `--warmup` requests, then `--requests`
 * counted ones, written out by a callgrind dump (which zeroes the counts). With several
 * scenarios, each is also warmed once before the first window.
 */
async function measure(
  variant: string,
  dir: string | undefined,
  scenarios: readonly Scenario[],
): Promise<Map<Scenario, Map<string, number>>> {
  const server = await start(variant, dir)
  const pid = server.child.pid!
  try {
    const made = await sessions(
      server.port,
      scenarios.some((s) => s.endsWith('spread')) ? SPREAD : 1,
    )
    const run = (s: Scenario, n: number) =>
      load(
        server.port,
        `/${s.slice(0, s.indexOf('-'))}`,
        s.endsWith('spread') ? made : made.slice(0, 1),
        n,
      )
    // with several scenarios, each is warmed before the first window too: otherwise the first
    // counts code that later ones find optimized (bare Fastify: 6,700 instructions more)
    if (scenarios.length > 1) for (const s of scenarios) await run(s, WARMUP)
    const traced = server.redis ? [pid, server.redis.child.pid!] : [pid]
    for (const s of scenarios) {
      // a spread window opens only once the rotation has gone round twice: the caches then hold
      // what the timed run's (a dozen rotations a window) do, not what making the sessions left
      await run(s, s.endsWith('spread') ? Math.max(WARMUP, STEADY - (next.get(made) ?? 0)) : WARMUP)
      for (const p of traced) callgrind(p, '-i', 'on')
      const setCookie = await run(s, REQUESTS)
      // a /read that sets a cookie writes the session: worth knowing when reading its count
      if (s.startsWith('read') && setCookie > 0)
        log(`${variant} ${s}: ${setCookie} of ${REQUESTS} counted /read responses set a cookie`)
      for (const p of traced) {
        callgrind(p, '-d')
        callgrind(p, '-i', 'off')
      }
    }
  } finally {
    server.child.kill('SIGTERM')
    await server.exited
    server.redis?.child.kill('SIGTERM')
    await server.redis?.exited
  }
  const map = codeMap(pid)
  const out = new Map<Scenario, Map<string, number>>()
  scenarios.forEach((s, i) => {
    const byName = counts(`${server.out}.${i + 1}`, map)
    for (const [name, n] of byName) byName.set(name, n / REQUESTS)
    // the server's own total stays its own: Redis's is a row beside it
    if (server.redis) byName.set(REDIS_ROW, totalOf(`${server.redis.out}.${i + 1}`) / REQUESTS)
    out.set(s, byName)
  })
  return out
}

/** Runs `jobs` at most `width` at a time. */
async function pool(jobs: (() => Promise<void>)[], width: number): Promise<void> {
  let taken = 0
  const worker = async () => {
    while (taken < jobs.length) await jobs[taken++]!()
  }
  await Promise.all(Array.from({ length: Math.min(width, jobs.length) }, worker))
}

const at = (c: Map<string, number> | undefined, name: string) => c?.get(name) ?? 0
/** A window's total, and its collector's and compiler's shares. */
const figuresOf = (c: Map<string, number> | undefined): Figures => ({
  total: at(c, 'total'),
  gc: at(c, 'V8 garbage collector'),
  compiler: at(c, 'V8 compiler'),
  ...(c?.has(REDIS_ROW) ? { redis: at(c, REDIS_ROW) } : {}),
})
/**
 * More compiling than this a request inside a counted window, long after its warm-up, is V8
 * optimizing code again that it had thrown away: the report names such windows.
 */
const RECOMPILED = 1000
/** The figure that repeats between runs: the total without the collector and the compiler. */
const leastOf = (f: Figures) => f.total - f.gc - f.compiler
const less = (c: Map<string, number> | undefined) => leastOf(figuresOf(c))
/** A count as the tables show it: whole instructions; cache events, fewer, to a tenth. */
const cell = (n: number) =>
  n.toLocaleString('en-US', { maximumFractionDigits: EVENT === 'Ir' || n >= 100 ? 0 : 1 })

// ------------------------------------------------------------------ run

if (opts.report) {
  // INSTRUCTIONS.md again from the last --targets run's figures, without measuring
  const data = JSON.parse(readFileSync(join(HERE, 'instructions.json'), 'utf8')) as Judged
  writeFileSync(join(HERE, 'INSTRUCTIONS.md'), targetsReport(data))
  rmSync(work, { recursive: true, force: true })
  log('rewrote bench/INSTRUCTIONS.md from bench/instructions.json')
} else if (TARGETS_MODE) await judgeTargets()
else await compareVariants()

async function compareVariants() {
  // with --scenarios, the four in one process each, as --targets measures them
  const scenarios = opts.scenarios
    ? SCENARIOS
    : [scenarioOf(opts.route as 'read' | 'write', opts.spread)]
  const dirs: [string, string | undefined][] = [['', buildHere(log)]]
  if (opts.compare !== undefined) dirs.push([`@${opts.compare}`, buildAt(opts.compare, log)])
  const columns: [string, Map<string, number>][] = []
  try {
    for (const variant of variants) {
      for (const [suffix, dir] of dirs) {
        if (suffix !== '' && !variant.includes(':tessera')) continue
        const label = `${variant}${suffix}`
        log(
          opts.scenarios
            ? `${label}: ${SPREAD} sessions, ${WARMUP} + ${REQUESTS} requests per scenario`
            : `${label}: ${opts.spread ? SPREAD : 1} session(s), ${WARMUP} + ${REQUESTS} /${opts.route}`,
        )
        const measured = await measure(variant, dir, scenarios)
        for (const s of scenarios)
          columns.push([opts.scenarios ? `${label} ${s}` : label, measured.get(s)!])
      }
    }
  } finally {
    agent.destroy()
    rmSync(work, { recursive: true, force: true })
    for (const [suffix, dir] of dirs)
      if (suffix !== '' && dir) rmSync(dirname(dir), { recursive: true, force: true })
  }

  // the functions whose counts differ most between the columns (or, with one, the largest)
  const names = [...new Set(columns.flatMap(([, c]) => [...c.keys()]))].filter((n) => n !== 'total')
  const spread = (name: string) => {
    const values = columns.map(([, c]) => at(c, name))
    return columns.length === 1 ? values[0]! : Math.max(...values) - Math.min(...values)
  }
  const rows = names.sort((a, b) => spread(b) - spread(a)).slice(0, TOP)
  console.log(
    `${EVENTS[EVENT]} per ${opts.scenarios ? 'request' : `/${opts.route} request (${opts.spread ? `${SPREAD} sessions` : 'one session'})`}, ${REQUESTS} requests after ${WARMUP}\n`,
  )
  console.log(`| function | ${columns.map(([label]) => label).join(' | ')} |`)
  console.log(`| --- | ${columns.map(() => '---:').join(' | ')} |`)
  console.log(
    `| **total** | ${columns.map(([, c]) => `**${cell(at(c, 'total'))}**`).join(' | ')} |`,
  )
  console.log(
    `| **total, less GC and compiler** | ${columns.map(([, c]) => `**${cell(less(c))}**`).join(' | ')} |`,
  )
  for (const name of rows) {
    console.log(
      `| ${name.replaceAll('|', '\\|')} | ${columns.map(([, c]) => cell(at(c, name))).join(' | ')} |`,
    )
  }
}

// ------------------------------------------------------------------ the targets

/**
 * Instructions of one operation of `bench/primitives.ts`, in-process: the whole program's count
 * with `2n` operations less its count with `n`, divided by `n`.
 */
async function primitive(op: string, dir: string | undefined): Promise<number> {
  const n = 10_000
  const total = (count: number) =>
    new Promise<number>((resolve, reject) => {
      const child = spawn(
        'valgrind',
        [
          '--tool=callgrind',
          '--smc-check=all-non-file',
          '--callgrind-out-file=/dev/null',
          process.execPath,
          ...REPEATABLE,
          '--import',
          'tsx',
          'bench/primitives.ts',
          op,
          String(count),
        ],
        { cwd: ROOT, env: { ...process.env, BENCH_TESSERA_DIR: dir ?? '' } },
      )
      let err = ''
      child.stderr.on('data', (d: Buffer) => {
        err += d
      })
      child.once('exit', (code) => {
        const m = /Collected : (\d+)/.exec(err)
        if (code === 0 && m) resolve(Number(m[1]))
        else reject(new Error(`primitives.ts ${op} ${count}: exit ${code}: ${err.slice(-2000)}`))
      })
    })
  const [one, two] = await Promise.all([total(n), total(2 * n)])
  return (two - one) / n
}

interface Figures {
  total: number
  gc: number
  compiler: number
  /** Each process's total less GC and compiler, when there were several. */
  processes?: number[]
  /** The variant's Redis server's own count, where it has one. */
  redis?: number
}

/**
 * Per scenario, the figures of the process that counted the fewest instructions (less GC and
 * compiler): now and then one process's V8 settles into code that does the same work with far
 * more instructions (Fastify + Tessera: 126,600 a hot `/read` in one process, 64,600 to 65,200
 * in the others), and the least a variant needs is what it costs.
 */
function fewest(runs: Record<Scenario, Figures>[]): Record<Scenario, Figures> {
  const out = {} as Record<Scenario, Figures>
  for (const s of SCENARIOS) {
    const all = runs.map((r) => r[s])
    const best = all.reduce((a, b) => (leastOf(b) < leastOf(a) ? b : a))
    out[s] = { ...best, ...(all.length > 1 ? { processes: all.map(leastOf) } : {}) }
  }
  return out
}

/** What `--targets` measured: `bench/instructions.json`, from which the report is written. */
interface Judged {
  started: string
  finished: string
  /** `git describe` of the tree measured. */
  tessera: string
  machine?: { cpu: string; node: string; valgrind: string }
  warmup: number
  requests: number
  /** Spread requests made before a spread window, at least ({@link STEADY}); absent in runs before it. */
  steady?: number
  /** Server processes per variant; each scenario's figure is the fewest of theirs. */
  processes?: number
  variants: Record<string, Record<Scenario, Figures>>
  primitives: Record<'floor' | 'open' | 'seal', number> &
    Partial<Record<'sodium-open' | 'sodium-seal', number>>
  /** Later `--again` runs, oldest first: their variants' figures and the primitives are theirs. */
  again?: { started: string; finished: string; tessera: string; variants: string[] }[]
}

async function judgeTargets() {
  const started = new Date()
  // with --again, the last run's figures, of which the named variants' are replaced
  const last = opts.again
    ? (JSON.parse(readFileSync(join(HERE, 'instructions.json'), 'utf8')) as Judged)
    : undefined
  if (last !== undefined && last.steady !== STEADY)
    throw new Error(
      'the last --targets run opened its spread windows after another warm-up: run --targets in full, without --again',
    )
  const dir = buildHere(log)
  // the source as it was compiled, not as it is when the run ends an hour later
  const tessera = describeSource()
  const wanted = last === undefined ? targetVariants() : variants
  const width = Math.max(1, Math.min(2, cpus().length))
  log(
    `${wanted.length} variants in ${PROCESSES} process(es) each, ${SCENARIOS.join(', ')}: ${WARMUP} + ${REQUESTS} requests each, ${width} at a time`,
  )
  const runs = new Map<string, Record<Scenario, Figures>[]>(wanted.map((v) => [v, []]))
  const primitives = {} as Judged['primitives']
  try {
    await pool(
      [
        ...wanted.flatMap((variant) =>
          Array.from({ length: PROCESSES }, () => async () => {
            const measured = await measure(variant, dir, SCENARIOS)
            const figures = {} as Record<Scenario, Figures>
            for (const s of SCENARIOS) figures[s] = figuresOf(measured.get(s))
            runs.get(variant)!.push(figures)
            log(`${variant}: ${SCENARIOS.map((s) => cell(less(measured.get(s)))).join(', ')}`)
          }),
        ),
        ...(['floor', 'open', 'seal', 'sodium-open', 'sodium-seal'] as const).map(
          (op) => async () => {
            primitives[op] = await primitive(op, dir)
            log(`${op}: ${cell(primitives[op])} instructions`)
          },
        ),
      ],
      width,
    )
  } finally {
    agent.destroy()
    rmSync(work, { recursive: true, force: true })
  }
  const measured = Object.fromEntries(wanted.map((v) => [v, fewest(runs.get(v)!)]))
  const data: Judged =
    last !== undefined
      ? {
          ...last,
          variants: { ...last.variants, ...measured },
          primitives,
          again: [
            ...(last.again ?? []),
            {
              started: started.toISOString(),
              finished: new Date().toISOString(),
              tessera,
              variants: wanted,
            },
          ],
        }
      : {
          started: started.toISOString(),
          finished: new Date().toISOString(),
          tessera,
          machine: {
            cpu: cpus()[0]?.model ?? 'unknown CPU',
            node: process.version,
            valgrind: spawnSync('valgrind', ['--version']).stdout.toString().trim(),
          },
          warmup: WARMUP,
          requests: REQUESTS,
          steady: STEADY,
          processes: PROCESSES,
          variants: measured,
          primitives,
        }
  writeFileSync(join(HERE, 'instructions.json'), `${JSON.stringify(data, null, 2)}\n`)
  const text = targetsReport(data)
  writeFileSync(join(HERE, 'INSTRUCTIONS.md'), text)
  console.log(text)
  log('wrote bench/INSTRUCTIONS.md and bench/instructions.json')
}

/** The commit of `src/`, with `-dirty` when `src/` differs from it (the bench's own files do not count). */
function describeSource(): string {
  const head = spawnSync('git', ['describe', '--always'], { cwd: ROOT }).stdout.toString().trim()
  const dirty = spawnSync('git', ['diff', '--quiet', 'HEAD', '--', 'src'], { cwd: ROOT }).status
  return dirty === 0 ? head : `${head}-dirty`
}

/** Every variant the targets judged by instructions name: each side, its bare variant, the calibrations. */
function targetVariants(): string[] {
  return [
    ...new Set(
      TARGETS.flatMap((t) =>
        [bareOf(t.ours), t.ours, t.theirs, t.calibration, t.spreadFloor].filter(
          (v): v is string => v !== undefined,
        ),
      ),
    ),
  ]
}

/** `bench/INSTRUCTIONS.md` from what `--targets` measured. */
function targetsReport(data: Judged): string {
  const own = (v: string, s: Scenario) => {
    const f = data.variants[v]?.[s]
    return f === undefined ? undefined : leastOf(f)
  }
  const added = (v: string, s: Scenario) => {
    const a = own(v, s)
    const b = own(bareOf(v), s)
    return a === undefined || b === undefined ? undefined : a - b
  }
  /** Added, with the Redis server's own count added where the variant has one. */
  const addedWithRedis = (v: string, s: Scenario) => {
    const a = added(v, s)
    const redis = data.variants[v]?.[s]?.redis
    return a === undefined || redis === undefined ? undefined : a + redis
  }
  const positive = (v: string, s: Scenario) => {
    const a = added(v, s)
    return a !== undefined && a > 0 ? a : undefined
  }
  const positiveWithRedis = (v: string, s: Scenario) => {
    const a = addedWithRedis(v, s)
    return a !== undefined && a > 0 ? a : undefined
  }
  const { floor, open, seal } = data.primitives
  const sodiumOpen = data.primitives['sodium-open']
  const sodiumSeal = data.primitives['sodium-seal']
  const crypto = {
    server: { 'read-spread': floor, 'write-spread': floor },
    cookie: { 'read-spread': open, 'write-hot': seal, 'write-spread': open + seal },
    sodium:
      sodiumOpen === undefined || sodiumSeal === undefined
        ? {}
        : {
            'read-spread': sodiumOpen,
            'write-hot': sodiumSeal,
            'write-spread': sodiumOpen + sodiumSeal,
          },
  }
  const lines: string[] = []
  const push = (...l: string[]) => lines.push(...l)
  push(
    '# Performance targets by instructions',
    '',
    `Written by \`npm run bench:instructions -- --targets\` on ${data.started}, finished ${data.finished}, from Tessera at \`${data.tessera}\` compiled by tsc.`,
    '',
    ...(data.again ?? []).flatMap((a) => [
      `Counted again by \`--targets --again\` on ${a.started}, from Tessera at \`${a.tessera}\`: ${a.variants.map((v) => `\`${v}\``).join(', ')} and the cryptography in-process; every other figure is from the run above (instructions repeat between runs of the same code, so a variant whose requests a change does not reach counts as before).`,
      '',
    ]),
    ...(data.machine
      ? [`- ${data.machine.cpu}; Node ${data.machine.node}; ${data.machine.valgrind}`]
      : []),
    `- Per variant: ${data.processes === undefined || data.processes === 1 ? 'one server process' : `${data.processes} server processes`} (\`bench/server.ts\`) under callgrind, ${cell(SPREAD)} sessions made through \`/write\`, each scenario warmed once, then the four scenarios in turn, each ${cell(data.warmup)} requests of warm-up and ${cell(data.requests)} counted (four connections; the hot scenarios use the first session, the spread ones go on round all ${cell(SPREAD)}, so each comes back after all the others, as in the timed run; ${data.steady ? `a spread window opens only once the rotation has gone round twice, ${cell(data.steady)} spread requests, as the caches are then in the state the timed run's dozen rotations a window leave them in` : 'the spread windows opened before the rotation had gone round twice, so some of their requests found sessions that making them had left in the caches: this run flatters the spread scenarios'}).${data.processes !== undefined && data.processes > 1 ? " Each scenario's figure is the fewest instructions any of the processes counted: now and then V8 settles, in one process, into code that does the same work with many more instructions." : ''}`,
    '',
    '## Method',
    '',
    "The timed benchmark (`bench/RESULTS.md`) judges the targets by server CPU time, which on a shared machine moves by more than the differences it judges. Here the same targets are judged by the instructions the server executes per request, counted by valgrind's callgrind, which do not depend on what else the machine is doing. **Added** is a variant's count less its framework's no-session count; both leave out V8's garbage collector and compiler, whose share of a window is chance (the collector's work is shown beside each count below). Instructions are not time: they leave out the kernel (the same for every variant of a framework, since all answer with the same bytes), cache misses and stalls, so the spread routes' memory cost (docs/benchmark.md) is not here. Tessera's clock stands still in these servers (`BENCH_FROZEN_CLOCK`): under callgrind a minute passes within one rotation through the spread sessions, and `touchAfter` would rewrite sessions that the timed run never does. The throughput targets are judged in the timed run only. For the Redis target that counts Redis's own work, each Redis variant's server process gets a Redis server of its own, under callgrind too, counted over the same windows (`+ Redis` below), and that count is added to both sides' and to the calibration's.",
    '',
    "**Floor**, as in the timed run: the cryptography no cache spares, counted in-process by `bench/primitives.ts` (the difference between 10,000 and 20,000 operations): on the spread routes of the server stores a cookie's HMAC, its id's SHA-256 and a record read, and on the Fastify memory-store target the `fastify:floor` variant's added count instead; for the cookie store the AES-256-GCM open of a token not seen lately (spread routes) and the seal (`/write`), of a 200-byte session (with libsodium, its ChaCha20-Poly1305 open and seal); plus the calibration variant's added count (`fastify:hooks`, or for the Fastify cookie-store targets `fastify:set-cookie`, the same hooks with the least `Set-Cookie` header a cookie session sends on `/write`; `express:hooks`; and `express:redis-command`, one `GET` on a node-redis client without its per-command timer, once per read and twice per write).",
    '',
    '## Targets',
    '',
    '| target | scenario | Tessera added | other added | ratio | limit | budget | floor | result |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  )
  let met = 0
  let judged = 0
  for (const target of TARGETS) {
    const addedOf = target.redisCpu ? addedWithRedis : added
    for (const s of SCENARIOS) {
      const a = addedOf(target.ours, s)
      const b = addedOf(target.theirs, s)
      if (a === undefined || b === undefined || b <= 0) {
        push(`| ${target.what} | ${s} | | | | ≤ ${target.limit} | | | not measured |`)
        continue
      }
      const least = floorOf(target, s, crypto, target.redisCpu ? positiveWithRedis : positive)
      const verdict = judge(a, b, target.limit, least)
      judged++
      if (verdict.met) met++
      push(
        `| ${target.what} | ${s} | ${cell(a)} | ${cell(b)} | ${verdict.ratio.toFixed(3)} | ≤ ${target.limit} | ${cell(verdict.budget)} | ${least === undefined ? '' : cell(least)} | ${verdict.result} |`,
      )
    }
  }
  push(
    '',
    `${met} of ${judged} targets met by instructions.`,
    '',
    '## Instructions per request',
    '',
    "Less the collector and the compiler; the collector's own count in brackets; after `+ Redis`, the instructions of the variant's Redis server, per request; after a dot, what the other processes counted where it was more than 2% above.",
    '',
    `| variant | ${SCENARIOS.join(' | ')} |`,
    `| --- | ${SCENARIOS.map(() => '---:').join(' | ')} |`,
  )
  for (const [v, f] of Object.entries(data.variants)) {
    push(
      `| ${v} | ${SCENARIOS.map((s) => {
        const least = leastOf(f[s])
        const above = (f[s].processes ?? []).filter((x) => x > least * 1.02)
        const redis = f[s].redis === undefined ? '' : ` + Redis ${cell(f[s].redis)}`
        return `${cell(least)} (${cell(f[s].gc)})${redis}${above.length > 0 ? ` · ${above.map(cell).join(', ')}` : ''}`
      }).join(' | ')} |`,
    )
  }
  // compiling after the warm-up means V8 threw away code the window runs: a deoptimization
  const compiled = Object.entries(data.variants).flatMap(([v, f]) =>
    SCENARIOS.filter((s) => f[s].compiler > RECOMPILED).map(
      (s) => `\`${v}\` ${s} (${cell(f[s].compiler)})`,
    ),
  )
  push(
    '',
    compiled.length === 0
      ? `V8 compiled under ${cell(RECOMPILED)} instructions a request inside every counted window.`
      : `V8 compiled more than ${cell(RECOMPILED)} instructions a request inside these counted windows, after their warm-up: ${compiled.join(', ')}. That is a sign it threw away optimized code the window runs (a deoptimization: an object of a hidden class the code had not met, say), and the code the window ran meanwhile counts too; \`node --trace-deopt\` on the server says where (docs/benchmark.md: "Every session meta built in one order").`,
  )
  push(
    '',
    "## The floors' cryptography, in-process",
    '',
    '| operation | instructions |',
    '| --- | ---: |',
    `| a cookie's HMAC, its id's SHA-256 and a record read (\`floorWork\` in bench/server.ts) | ${cell(floor)} |`,
    `| AES-256-GCM open of a 200-byte session (node:crypto, Tessera's \`Sealer\`) | ${cell(open)} |`,
    `| AES-256-GCM seal of a 200-byte session | ${cell(seal)} |`,
    ...(sodiumOpen === undefined || sodiumSeal === undefined
      ? []
      : [
          `| ChaCha20-Poly1305 open of a 200-byte session (libsodium through \`sodium-native\`, Tessera's \`Sealer\` with \`sodium\`) | ${cell(sodiumOpen)} |`,
          `| ChaCha20-Poly1305 seal of a 200-byte session | ${cell(sodiumSeal)} |`,
        ]),
    '',
  )
  return lines.join('\n')
}
