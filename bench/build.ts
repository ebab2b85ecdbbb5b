/**
 * What the benchmark tools (`bench/run.ts`, `bench/instructions.ts`) share: how they compile
 * Tessera (`src/` into a private directory with tsc, so the servers run the JavaScript users
 * get from `dist/`, passed to them as `BENCH_TESSERA_DIR`, see `bench/tessera.ts`; and `src/`
 * as it was at a git ref, for an A/B), how they start a server, and the cookie a variant with
 * no sessions receives.
 * @module
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer as createProbe } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

type Log = (...args: unknown[]) => void

/** A new directory under `node_modules/.cache/`, named `prefix` and six random characters. */
function cacheDir(prefix: string): string {
  const cache = join(ROOT, 'node_modules', '.cache')
  mkdirSync(cache, { recursive: true })
  return mkdtempSync(join(cache, prefix))
}

/**
 * Compile the `src/` under `cwd` into `out` with tsc (which emits even when another file has a
 * type error), as a module package; false when nothing was emitted.
 */
function compile(cwd: string, out: string): boolean {
  spawnSync(
    process.execPath,
    [
      join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      out,
      '--declaration',
      'false',
      '--declarationMap',
      'false',
      '--sourceMap',
      'false',
      '--incremental',
      'false',
    ],
    { cwd, stdio: 'ignore' },
  )
  if (!existsSync(join(out, 'index.js'))) return false
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n')
  return true
}

/**
 * The working tree's `src/`, compiled privately; `undefined` when tsc emitted nothing (the
 * servers then run `src/` through tsx). Each call compiles into a directory of its own, removed
 * when the process exits, so two benchmark tools running at once never share (or delete) each
 * other's build.
 */
export function buildHere(log: Log): string | undefined {
  // under node_modules/ so the compiled code finds its dependencies, as dist/ would
  const tree = cacheDir('tessera-bench-')
  process.once('exit', () => rmSync(tree, { recursive: true, force: true }))
  // Ctrl-C or kill: exit, so the directory goes too
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(1))
  const out = join(tree, 'dist')
  log(`compiling src/ into ${out}`)
  if (compile(ROOT, out)) return out
  log('tsc emitted nothing: running from src/ through tsx')
  return undefined
}

/**
 * `src/` as it was at git `ref`, compiled like {@link buildHere} into its own directory (beside
 * node_modules/, so it finds the same dependencies). Remove `dirname()` of the answer when done.
 */
export function buildAt(ref: string, log: Log): string {
  const tree = cacheDir('tessera-compare-')
  const archive = spawnSync(
    'git',
    ['archive', ref, 'src', 'package.json', 'tsconfig.json', 'tsconfig.build.json'],
    { cwd: ROOT, maxBuffer: 1 << 28 },
  )
  if (archive.status !== 0)
    throw new Error(`git archive ${ref}: ${archive.stderr.toString().trim()}`)
  execFileSync('tar', ['-x', '-C', tree], { input: archive.stdout })
  // the same dependencies, for tsc's types and the servers' imports
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))
  const out = join(tree, 'dist')
  log(`compiling src/ at ${ref} into ${out}`)
  if (!compile(tree, out)) throw new Error(`tsc emitted nothing for ${ref}`)
  return out
}

/** What follows `node` to start a benchmark server: `bench/server.ts` through tsx, from the root. */
export const serverArgs = (variant: string, port: number): string[] => [
  '--import',
  'tsx',
  'bench/server.ts',
  variant,
  String(port),
]

/**
 * A Cookie header of a Tessera cookie's shape and length that no server issued: what the
 * no-session variants receive, so every variant gets the same request stream (the same
 * bytes, and on the spread routes the same rotation in wrk) and the added figure is the
 * session's own work.
 */
export const strangerCookie = () =>
  `sid=${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`

/** Whether nothing listens on `port` of the loopback address now. */
const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const probe = createProbe()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })

/**
 * Ports the Fetch standard blocks ("bad ports"): Node's `fetch` refuses them before connecting,
 * so a server on one never answers the readiness check (4190 failed a full run's 91st server).
 */
const FETCH_BAD_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102,
  103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465,
  512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993,
  995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668,
  6669, 6679, 6697, 10080,
])

/**
 * Ports for benchmark servers, one per call, from `first` up: skipping any port something on
 * the machine listens on (another service, or another benchmark tool's server) and any port
 * fetch refuses. A run starts a few hundred servers, and the range crosses well-known ports of
 * other services.
 */
export function portsFrom(first: number): () => Promise<number> {
  let next = first
  return async () => {
    while (FETCH_BAD_PORTS.has(next) || !(await portFree(next))) next++
    return next++
  }
}

/** A private redis-server on `port`: loopback only, nothing kept on disk. */
export const redisServerArgs = (port: number): string[] => [
  'redis-server',
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
]

/** Whether a Redis on `port` answers `PING`. */
export const redisAnswers = (port: number): boolean =>
  spawnSync('redis-cli', ['-p', String(port), 'ping'])
    .stdout?.toString()
    .trim() === 'PONG'
