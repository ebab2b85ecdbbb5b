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
 *                                         [--warmup N] [--top N] [--compare REF] VARIANT...
 *
 * Each variant (a name from `bench/server.ts`, e.g. `node:tessera-memory`) runs in a server
 * under callgrind with instrumentation off; after `--warmup` requests (V8 has optimized the
 * hot code by then) it is switched on for `--requests` more, and the counts are divided by
 * that number. JIT-compiled JavaScript is named from V8's `--perf-basic-prof` map. With
 * `--compare REF`, each Tessera variant also runs from `src/` as it was at REF.
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { buildAt, buildHere, portsFrom, serverArgs, strangerCookie } from './build.js'
import { SPREAD, servers } from './server.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const log = (...args: unknown[]) => console.error('[instructions]', ...args)

const { values: opts, positionals: variants } = parseArgs({
  allowPositionals: true,
  options: {
    route: { type: 'string', default: 'read' },
    spread: { type: 'boolean', default: false },
    requests: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '5000' },
    top: { type: 'string', default: '40' },
    compare: { type: 'string' },
  },
})
const REQUESTS = Number(opts.requests)
const WARMUP = Number(opts.warmup)
const TOP = Number(opts.top)
if (opts.route !== 'read' && opts.route !== 'write') throw new Error('--route is read or write')
if (![REQUESTS, WARMUP, TOP].every((n) => Number.isInteger(n) && n > 0))
  throw new Error('--requests, --warmup and --top are whole numbers above 0')
const unknown = variants.filter((v) => servers[v] === undefined)
if (variants.length === 0 || unknown.length > 0) {
  if (unknown.length > 0) console.error(`unknown variant(s): ${unknown.join(', ')}`)
  console.error(`usage: bench/instructions.ts [options] <${Object.keys(servers).join('|')}>...`)
  process.exit(2)
}
if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('valgrind is not installed (Debian: apt-get install valgrind)')
  process.exit(2)
}

// ------------------------------------------------------------------ the server and its load

interface Traced {
  child: ChildProcess
  port: number
  out: string
  exited: Promise<void>
}

const takePort = portsFrom(4300)
const work = mkdtempSync(join(tmpdir(), 'tessera-instructions-'))

async function start(variant: string, tesseraDir: string | undefined): Promise<Traced> {
  const port = await takePort()
  const out = join(work, `callgrind.${port}`)
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      // V8 writes and rewrites its code in memory: valgrind must notice
      '--smc-check=all-non-file',
      '--instr-atstart=no',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--perf-basic-prof',
      `--logfile=${join(work, 'v8.log')}`,
      // no compiler or collector threads, and the same hash and random seeds every run
      '--single-threaded',
      '--hash-seed=1',
      '--random-seed=1',
      ...serverArgs(variant, port),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'production', BENCH_TESSERA_DIR: tesseraDir ?? '' },
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
  })
  return { child, port, out, exited }
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
 * Cookies for the requests: one session, or {@link SPREAD} of them, each made by `/write`. A
 * variant with no sessions gets cookies of a Tessera cookie's shape that no server signed, as in
 * the timed benchmark.
 */
async function sessions(port: number, n: number): Promise<string[]> {
  const cookies: string[] = []
  while (cookies.length < n) {
    const made = await Promise.all(
      Array.from({ length: Math.min(4, n - cookies.length) }, () => get(port, '/write', '')),
    )
    for (const r of made) {
      if (r.status !== 200) throw new Error(`/write answered ${r.status}: ${r.body}`)
      cookies.push(r.cookie ?? strangerCookie())
    }
  }
  return cookies
}

/** `total` requests to `path`, four at a time, rotating through `cookies`. */
async function load(port: number, path: string, cookies: string[], total: number) {
  let sent = 0
  const one = async () => {
    while (sent < total) {
      const cookie = cookies[sent++ % cookies.length]!
      const r = await get(port, path, cookie)
      if (r.status !== 200) throw new Error(`${path} answered ${r.status}: ${r.body}`)
    }
  }
  await Promise.all([one(), one(), one(), one()])
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
 * Instructions by function, from callgrind's output: C++ and V8's builtins by their symbols,
 * JavaScript by V8's map (`JS name file:line`), with the file paths shortened.
 */
function counts(out: string, pid: number): Map<string, number> {
  const text = spawnSync('callgrind_annotate', ['--threshold=100', out], {
    maxBuffer: 1 << 28,
  }).stdout.toString()
  const map = codeMap(pid)
  const byName = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$/.exec(line)
    if (!m) continue
    let name = m[2]!.replace(/\s*\[[^\]]*\]$/, '').replace(/^\?\?\?:/, '')
    if (name.includes('PROGRAM TOTALS')) name = 'total'
    else if (name.startsWith('0x')) {
      const js = nameAt(map, Number.parseInt(name.slice(2, 18), 16))
      name = js === undefined ? 'JIT code without a name' : `JS ${short(js)}`
    } else name = group(symbol(name))
    byName.set(name, (byName.get(name) ?? 0) + Number(m[1]!.replaceAll(',', '')))
  }
  return byName
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

async function measure(variant: string, dir: string | undefined): Promise<Map<string, number>> {
  const server = await start(variant, dir)
  try {
    const cookies = await sessions(server.port, opts.spread ? SPREAD : 1)
    const path = `/${opts.route}`
    await load(server.port, path, cookies, WARMUP)
    const on = spawnSync('callgrind_control', ['-i', 'on', String(server.child.pid)])
    if (on.status !== 0) throw new Error(`callgrind_control: ${on.stderr.toString()}`)
    await load(server.port, path, cookies, REQUESTS)
  } finally {
    server.child.kill('SIGTERM')
    await server.exited
  }
  const byName = counts(server.out, server.child.pid!)
  for (const [name, n] of byName) byName.set(name, n / REQUESTS)
  return byName
}

// ------------------------------------------------------------------ run

const dirs: [string, string | undefined][] = [['', buildHere(log)]]
if (opts.compare !== undefined) dirs.push([`@${opts.compare}`, buildAt(opts.compare, log)])
const columns: [string, Map<string, number>][] = []
try {
  for (const variant of variants) {
    for (const [suffix, dir] of dirs) {
      if (suffix !== '' && !variant.includes(':tessera')) continue
      const label = `${variant}${suffix}`
      log(
        `${label}: ${opts.spread ? SPREAD : 1} session(s), ${WARMUP} + ${REQUESTS} /${opts.route}`,
      )
      columns.push([label, await measure(variant, dir)])
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
const at = (c: Map<string, number>, name: string) => c.get(name) ?? 0
const spread = (name: string) => {
  const values = columns.map(([, c]) => at(c, name))
  return columns.length === 1 ? values[0]! : Math.max(...values) - Math.min(...values)
}
const rows = names.sort((a, b) => spread(b) - spread(a)).slice(0, TOP)
const cell = (n: number) => Math.round(n).toLocaleString('en-US')
console.log(
  `instructions per /${opts.route} request (${opts.spread ? `${SPREAD} sessions` : 'one session'}), ${REQUESTS} requests after ${WARMUP}\n`,
)
console.log(`| function | ${columns.map(([label]) => label).join(' | ')} |`)
console.log(`| --- | ${columns.map(() => '---:').join(' | ')} |`)
console.log(`| **total** | ${columns.map(([, c]) => `**${cell(at(c, 'total'))}**`).join(' | ')} |`)
const less = (c: Map<string, number>) =>
  at(c, 'total') - at(c, 'V8 garbage collector') - at(c, 'V8 compiler')
console.log(
  `| **total, less GC and compiler** | ${columns.map(([, c]) => `**${cell(less(c))}**`).join(' | ')} |`,
)
for (const name of rows) {
  console.log(
    `| ${name.replaceAll('|', '\\|')} | ${columns.map(([, c]) => cell(at(c, name))).join(' | ')} |`,
  )
}
