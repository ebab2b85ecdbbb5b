/**
 * Threat: a process killed in the middle of a write (deploy, OOM killer, `kill -9`) leaves a
 * torn session file, which then fails to load or loads half a record. The file store writes a
 * temporary file and renames it, so the record on disk is always the old one or the new one.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { SessionStoreError } from '../../src/core/errors.js'
import { fileStore } from '../../src/stores/file.js'
import { meta, newKey } from '../conformance/store-suite.js'

const directory = mkdtempSync(join(tmpdir(), 'tessera-file-crash-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

const WRITER = join(import.meta.dirname, '../fixtures/file-store-writer.ts')

/** Start the writer, let it write for a moment after its first write, SIGKILL it. */
async function writeThenKill(key: string, runMs: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, directory, key], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit')
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve()
    })
    child.once('exit', () => reject(new Error('the writer exited before its first write')))
  })
  await new Promise((r) => setTimeout(r, runMs))
  child.kill('SIGKILL')
  const [code, signal] = await exited
  expect(code === null && signal === 'SIGKILL').toBe(true)
}

it('a writer killed with SIGKILL mid-write never leaves a torn record', async () => {
  const errors: SessionStoreError[] = []
  const store = fileStore({
    directory,
    sweepInterval: 0,
    staleLockAfter: 300,
    lockTimeout: 2_000,
    onError: (error) => errors.push(error),
  })
  const key = newKey()
  // several kills at different moments; each writer starts over what the last one left
  for (const runMs of [150, 320, 470]) {
    await writeThenKill(key, runMs)
    const names = await readdir(join(directory, 'sessions'))
    expect(names).toContain(`${key}.json`)
    for (const name of names) {
      if (!name.endsWith('.json')) continue
      const record = await store.get(name.slice(0, -'.json'.length))
      expect(record).toBeDefined()
      const { size, payload } = record!.fields
      expect(payload?.length).toBe(Number(size))
    }
  }
  expect(errors).toEqual([])
  // (a kill nearly always lands inside a write: writes of up to 4 MB take most of the loop,
  // so a lock and often a temporary file are left behind for what follows to cope with)

  // a lock left by a killed writer does not block the session: its holder is gone
  const started = Date.now()
  expect(await store.patch(key, { clear: false, set: { after: '1' }, delete: [] }, meta())).toBe(
    true,
  )
  expect(Date.now() - started).toBeLessThan(1_000)

  // leftover temporary files are ignored by count and scan, then swept once stale
  await new Promise((r) => setTimeout(r, 350))
  expect(await store.count()).toBe(1)
  const scanned: string[] = []
  for await (const s of store.scan()) scanned.push(s.key)
  expect(scanned).toEqual([key])
  expect(await store.prune()).toBe(0)
  expect(await readdir(join(directory, 'sessions'))).toEqual([`${key}.json`])
  expect(await readdir(join(directory, 'locks'))).toEqual([])
  expect((await store.get(key))?.fields.after).toBe('1')
  expect(errors).toEqual([])
})
