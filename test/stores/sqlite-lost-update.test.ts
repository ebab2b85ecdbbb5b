import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { sqliteStore } from '../../src/stores/sqlite.js'
import { meta, newKey } from '../conformance/store-suite.js'
import { SECRET } from '../helpers/http.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-sqlite-lost-'))
const file = join(dir, 'sessions.db')
const handles: Database.Database[] = []
const open = () => {
  const db = new Database(file, { timeout: 10_000 })
  handles.push(db)
  return db
}
open().pragma('journal_mode = WAL')

afterAll(() => {
  for (const db of handles) db.close()
  rmSync(dir, { recursive: true, force: true })
})

const repo = fileURLToPath(new URL('../../', import.meta.url))
const storeModule = new URL('../../src/stores/sqlite.ts', import.meta.url).href

/**
 * A process with its own database handle on `table` that runs `work` (code over `store`,
 * `meta` and `sleep`, resolving to what it prints) once told to go.
 */
function worker(table: string, work: string) {
  const code = `
    const Database = (await import('better-sqlite3')).default
    const { sqliteStore } = await import(${JSON.stringify(storeModule)})
    const db = new Database(${JSON.stringify(file)}, { timeout: 10000 })
    const store = sqliteStore({ db, table: ${JSON.stringify(table)}, pruneInterval: 0 })
    process.stdout.write('ready\\n')
    await new Promise((resolve) => process.stdin.once('data', resolve))
    const now = Date.now()
    const meta = { createdAt: now, lastSeenAt: now, idleExpiresAt: now + 60000, absoluteExpiresAt: now + 60000 }
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
    const printed = await (async () => { ${work} })()
    db.close()
    process.stdout.write(printed + '\\n')
    process.exit(0)
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repo,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let out = ''
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('ready')) resolve()
    })
    child.once('exit', () => reject(new Error(`patcher exited before it was ready: ${out}`)))
  })
  const done = new Promise<string>((resolve) => child.once('exit', () => resolve(out)))
  return { child, ready, done }
}

/**
 * A process that patches `key` with fields `k{from}`..`k{to - 1}` once told to go, a few ms
 * apart, so the processes' writes interleave; it prints `ok` when every patch found the record.
 */
const patcher = (table: string, key: string, from: number, to: number) =>
  worker(
    table,
    `const results = await Promise.all(Array.from({ length: ${to - from} }, async (_, j) => {
      await sleep(Math.random() * 10)
      const i = ${from} + j
      return store.patch(${JSON.stringify(key)}, { clear: false, set: { ['k' + i]: String(i) }, delete: [] }, meta)
    }))
    return results.every(Boolean) ? 'ok' : 'lost'`,
  )

/** Runs `workers` at once and gives what each printed after `ready`. */
async function together(workers: ReturnType<typeof worker>[]): Promise<string[]> {
  try {
    await Promise.all(workers.map((w) => w.ready))
    for (const { child } of workers) child.stdin!.write('go\n')
    return (await Promise.all(workers.map((w) => w.done))).map((out) =>
      out.replace(/^ready\n/, '').trim(),
    )
  } finally {
    for (const { child } of workers) stop(child)
  }
}

describe('lost update (sqlite)', () => {
  it('50 overlapping commits through 10 database handles on one file: all persist', async () => {
    const table = `lost_handles_${process.pid}`
    const stores = Array.from({ length: 10 }, (_, i) =>
      sqliteStore({ db: open(), table, createTable: i === 0, pruneInterval: 0 }),
    )
    const managers = stores.map((store) => createSessions({ secret: SECRET, store }))
    const first = await managers[0]!.load(undefined)
    first.set('base', 0)
    const cookie = (await managers[0]!.commit(first))[0]!.split(';')[0]!

    // every request loads the same state, each through one of the handles, before any commits
    const loaded = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const manager = managers[i % 10]!
        return { manager, session: await manager.load(cookie) }
      }),
    )
    for (const [i, { session }] of loaded.entries()) session.set(`k${i}`, i)
    await Promise.all(loaded.map(({ manager, session }) => manager.commit(session)))

    const after = await managers[9]!.load(cookie)
    for (let i = 0; i < 50; i++) expect(after.get(`k${i}`)).toBe(i)
    expect(after.keys()).toHaveLength(51)
  })

  it('50 patches from 5 processes writing one session at once: all persist', async () => {
    const table = `lost_processes_${process.pid}`
    const store = sqliteStore({ db: open(), table, createTable: true, pruneInterval: 0 })
    const key = newKey()
    await store.set(key, { fields: { base: '0' }, meta: meta() })

    const patchers = Array.from({ length: 5 }, (_, p) => patcher(table, key, p * 10, p * 10 + 10))
    expect(await together(patchers)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok'])

    const fields = (await store.get(key))?.fields ?? {}
    expect(Object.keys(fields)).toHaveLength(51)
    for (let i = 0; i < 50; i++) expect(fields[`k${i}`]).toBe(String(i))
  }, 30_000)

  it('4 processes adding the same 20 keys at once: each key has one writer, whose record it keeps', async () => {
    const table = `add_processes_${process.pid}`
    const store = sqliteStore({ db: open(), table, createTable: true, pruneInterval: 0 })
    const keys = Array.from({ length: 20 }, () => newKey())
    // half the keys hold an expired record, which counts as none
    const past = Date.now() - 3_600_000
    for (const key of keys.slice(10))
      await store.set(key, { fields: { by: 'old' }, meta: meta({ idleExpiresAt: past }, past) })
    const adders = Array.from({ length: 4 }, (_, p) =>
      worker(
        table,
        `const wins = []
        for (const key of ${JSON.stringify(keys)}) {
          await sleep(Math.random() * 2)
          if (await store.add(key, { fields: { by: '${p}' }, meta })) wins.push(key)
        }
        return JSON.stringify(wins)`,
      ),
    )
    const wins = (await together(adders)).map((out) => JSON.parse(out) as string[])
    for (const key of keys) {
      const winners = wins.flatMap((won, p) => (won.includes(key) ? [String(p)] : []))
      expect(winners, key).toHaveLength(1)
      expect((await store.get(key))?.fields).toEqual({ by: winners[0] })
    }
  }, 30_000)
})

function stop(child: ChildProcess) {
  if (child.exitCode === null && child.signalCode === null) child.kill()
}
