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
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

type Log = (...args: unknown[]) => void

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
 * servers then run `src/` through tsx).
 */
export function buildHere(log: Log): string | undefined {
  // under node_modules/ so the compiled code finds its dependencies, as dist/ would
  const out = join(ROOT, 'node_modules', '.cache', 'tessera-bench', 'dist')
  rmSync(out, { recursive: true, force: true })
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
  const tree = mkdtempSync(join(ROOT, 'node_modules', '.cache', 'tessera-compare-'))
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
