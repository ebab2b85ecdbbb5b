/**
 * Threat: two processes (a cluster, PM2, several workers on one box) patch one session at
 * once and one change is lost. The file store locks each session across processes, so both
 * keep their change. Likewise two processes that `add` one key at once must not both win
 * (tessera/oidc would spend a refresh token twice).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { fileStore } from '../../src/stores/file.js'
import { meta, newKey } from '../conformance/store-suite.js'

const directory = mkdtempSync(join(tmpdir(), 'tessera-file-multi-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

const PATCHER = join(import.meta.dirname, '../fixtures/file-store-patcher.ts')
const PATCHES = 200

type Child = ChildProcessByStdio<Writable, Readable, null>

/** A child that prints `ready`, then on a line of stdin prints what each key's `add` resolved. */
const ADDER = `
const [storeUrl, directory, ...keys] = process.argv.slice(1)
const { fileStore } = await import(storeUrl)
const store = fileStore({ directory, sweepInterval: 0, lockTimeout: 20_000 })
const now = Date.now()
const meta = { createdAt: now, lastSeenAt: now, idleExpiresAt: now + 60_000, absoluteExpiresAt: now + 60_000 }
process.stdout.write('ready\\n')
process.stdin.once('data', async () => {
  const won = await Promise.all(keys.map((key) => store.add(key, { fields: { by: String(process.pid) }, meta })))
  process.stdout.write(JSON.stringify(won) + '\\n')
  process.exit(0)
})
`

function start(args: string[]): { child: Child; ready: Promise<void>; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) =>
      chunk.toString().includes('ready') ? resolve() : reject(new Error(chunk.toString())),
    )
    child.once('exit', (code) => reject(new Error(`the child exited early (${code})`)))
  })
  return { child, ready, output: () => output }
}

it(`two processes patching different keys of one session at once: all ${2 * PATCHES} kept`, async () => {
  const store = fileStore({ directory, sweepInterval: 0 })
  const key = newKey()
  await store.set(key, { fields: { base: '0' }, meta: meta() })

  const a = start([PATCHER, directory, key, 'a', String(PATCHES)])
  const b = start([PATCHER, directory, key, 'b', String(PATCHES)])
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

it('processes adding the same keys at once: exactly one wins each key, and its record is kept', async () => {
  const store = fileStore({ directory, sweepInterval: 0 })
  const keys = Array.from({ length: 20 }, () => newKey())
  const storeUrl = pathToFileURL(join(import.meta.dirname, '../../src/stores/file.ts')).href
  const adders = Array.from({ length: 3 }, () =>
    start(['--input-type=module', '-e', ADDER, storeUrl, directory, ...keys]),
  )
  await Promise.all(adders.map((adder) => adder.ready))
  const exits = adders.map((adder) => once(adder.child, 'exit'))
  for (const adder of adders) adder.child.stdin.end('go\n')
  expect((await Promise.all(exits)).map(([code]) => code)).toEqual([0, 0, 0])

  const won = adders.map((adder) => JSON.parse(adder.output().trim().split('\n').pop()!))
  for (const [i, key] of keys.entries()) {
    const winners = adders.filter((_, a) => won[a][i] === true)
    expect(winners).toHaveLength(1)
    expect((await store.get(key))?.fields).toEqual({ by: String(winners[0]!.child.pid) })
  }
})
