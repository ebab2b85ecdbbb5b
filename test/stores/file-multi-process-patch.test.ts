/**
 * Threat: two processes (a cluster, PM2, several workers on one box) patch one session at
 * once and one change is lost. The file store locks each session across processes, so both
 * keep their change.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { afterAll, expect, it } from 'vitest'
import { fileStore } from '../../src/stores/file.js'
import { meta, newKey } from '../conformance/store-suite.js'

const directory = mkdtempSync(join(tmpdir(), 'tessera-file-multi-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

const PATCHER = join(import.meta.dirname, '../fixtures/file-store-patcher.ts')
const PATCHES = 200

type Child = ChildProcessByStdio<Writable, Readable, null>

function start(key: string, prefix: string): { child: Child; ready: Promise<void> } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', PATCHER, directory, key, prefix, String(PATCHES)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  )
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) =>
      chunk.toString().includes('ready') ? resolve() : reject(new Error(chunk.toString())),
    )
    child.once('exit', (code) => reject(new Error(`the patcher exited early (${code})`)))
  })
  return { child, ready }
}

it(`two processes patching different keys of one session at once: all ${2 * PATCHES} kept`, async () => {
  const store = fileStore({ directory, sweepInterval: 0 })
  const key = newKey()
  await store.set(key, { fields: { base: '0' }, meta: meta() })

  const a = start(key, 'a')
  const b = start(key, 'b')
  await Promise.all([a.ready, b.ready])
  const exits = [once(a.child, 'exit'), once(b.child, 'exit')]
  // both start together, and this process patches the same session meanwhile
  a.child.stdin.end('go\n')
  b.child.stdin.end('go\n')
  for (let i = 0; i < 20; i++) {
    await store.patch(key, { clear: false, set: { [`p${i}`]: String(i) }, delete: [] }, meta())
  }
  const codes = (await Promise.all(exits)).map(([code]) => code)
  expect(codes).toEqual([0, 0])

  const fields = (await store.get(key))!.fields
  const expected = ['base']
  for (let i = 0; i < PATCHES; i++) expected.push(`a${i}`, `b${i}`)
  for (let i = 0; i < 20; i++) expected.push(`p${i}`)
  expect(Object.keys(fields).sort()).toEqual(expected.sort())
  expect(fields.a199).toBe('199')
  expect(fields.b0).toBe('0')
  expect(await readdir(join(directory, 'locks'))).toEqual([])
  expect(await readdir(join(directory, 'sessions'))).toEqual([`${key}.json`])
})
