/**
 * Expired session files are swept (on demand and on an interval), stale leftovers of crashed
 * writers go too, and a corrupt file is treated as absent and reported, never a crash.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { SessionStoreError } from '../../src/core/errors.js'
import { fileStore } from '../../src/stores/file.js'
import { meta, newKey } from '../conformance/store-suite.js'
import { fakeClock } from '../helpers/stores.js'

const dirs: string[] = []
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-file-sweep-'))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe('sweep', () => {
  it('prune() removes expired files by the injected clock and keeps live ones', async () => {
    const directory = freshDir()
    const clock = fakeClock()
    const store = fileStore({ directory, sweepInterval: 0, clock: clock.now })
    const now = clock.now()
    const idle = newKey()
    const absolute = newKey()
    const live = newKey()
    await store.set(idle, {
      fields: {},
      meta: meta({ idleExpiresAt: now + 1_000, userId: 'u' }, now),
    })
    await store.set(absolute, { fields: {}, meta: meta({ absoluteExpiresAt: now + 2_000 }, now) })
    await store.set(live, { fields: {}, meta: meta({ userId: 'u' }, now) })

    clock.advance(999)
    expect(await store.prune()).toBe(0)
    clock.advance(1)
    expect(await store.prune()).toBe(1)
    expect(await store.get(idle)).toBeUndefined()
    clock.advance(1_000)
    expect(await store.prune()).toBe(1)
    expect(await store.get(absolute)).toBeUndefined()
    expect(await store.get(live)).toBeDefined()
    expect(await store.count()).toBe(1)
    // the pruned session's marker went with it
    const [userDir] = await readdir(join(directory, 'users'))
    expect(await readdir(join(directory, 'users', userDir!))).toEqual([live])
  })

  it('sweeps on its interval, and stops when closed', async () => {
    const clock = fakeClock()
    const store = fileStore({ directory: freshDir(), sweepInterval: 20, clock: clock.now })
    const now = clock.now()
    for (let i = 0; i < 10; i++)
      await store.set(newKey(), { fields: {}, meta: meta({ idleExpiresAt: now + 10 }, now) })
    const live = newKey()
    await store.set(live, { fields: {}, meta: meta({}, now) })
    clock.advance(11)
    for (let i = 0; i < 50 && (await store.count()) > 1; i++)
      await new Promise((r) => setTimeout(r, 20))
    expect(await store.count()).toBe(1)
    expect(await store.get(live)).toBeDefined()

    await store.close()
    await store.set(newKey(), { fields: {}, meta: meta({ idleExpiresAt: now + 10 }, now) })
    await new Promise((r) => setTimeout(r, 80))
    expect(await store.count()).toBe(2)
  })

  it('removes leftovers of crashed writers once stale, and nothing in use', async () => {
    const directory = freshDir()
    const store = fileStore({ directory, sweepInterval: 0, staleLockAfter: 5_000 })
    const key = newKey()
    await store.set(key, { fields: { a: '1' }, meta: meta() })
    const sessions = join(directory, 'sessions')
    const locks = join(directory, 'locks')
    const old = new Date(Date.now() - 60_000)
    const oldTemp = join(sessions, `${key}.json.12345.abcdef.tmp`)
    const freshTemp = join(sessions, `${newKey()}.json.${process.pid}.abcdef.tmp`)
    await writeFile(oldTemp, '{"v":1,"fie')
    await utimes(oldTemp, old, old)
    await writeFile(freshTemp, '{"v":1,"fie')
    const oldLock = join(locks, `${newKey()}.lock`)
    await writeFile(
      oldLock,
      JSON.stringify({ pid: process.pid, host: 'x', at: Date.now() - 60_000 }),
    )
    const liveLock = join(locks, `${newKey()}.lock`)
    await writeFile(liveLock, JSON.stringify({ pid: process.pid, host: 'x', at: Date.now() }))
    // a marker whose session is gone, and an empty user directory
    await mkdir(join(directory, 'users', 'f'.repeat(64)), { mode: 0o700 })
    await mkdir(join(directory, 'users', 'e'.repeat(64)), { mode: 0o700 })
    await writeFile(join(directory, 'users', 'f'.repeat(64), newKey()), '')

    expect(await store.count()).toBe(1)
    expect(await store.prune()).toBe(0)
    expect((await readdir(sessions)).sort()).toEqual(
      [`${key}.json`, freshTemp.split('/').pop()].sort(),
    )
    expect(await readdir(locks)).toEqual([liveLock.split('/').pop()])
    expect(await readdir(join(directory, 'users'))).toEqual([])
    expect((await store.get(key))?.fields).toEqual({ a: '1' })
  })
})

describe('corrupt files', () => {
  const CORRUPT: Record<string, string> = {
    'torn JSON': '{"v":1,"meta":{"createdAt":1,"lastSeenAt"',
    empty: '',
    'not an object': '"just a string"',
    'unknown format version': JSON.stringify({ v: 99, fields: {}, meta: meta() }),
    'a field that is not text': JSON.stringify({ v: 1, fields: { a: 1 }, meta: meta() }),
    'meta without times': JSON.stringify({ v: 1, fields: {}, meta: { userId: 'u' } }),
    'binary garbage': '\u0000\uffff\u0001garbage',
  }

  it('treats each as absent, reports it through onError, and never crashes', async () => {
    const directory = freshDir()
    const reported: { error: SessionStoreError; file: string }[] = []
    const store = fileStore({
      directory,
      sweepInterval: 0,
      onError: (error, { file }) => reported.push({ error, file }),
    })
    const good = newKey()
    await store.set(good, { fields: { a: '1' }, meta: meta({ userId: 'u' }) })
    const keys: string[] = []
    for (const text of Object.values(CORRUPT)) {
      const key = newKey()
      keys.push(key)
      await writeFile(join(directory, 'sessions', `${key}.json`), text)
    }
    // a directory where a record should be
    const dirKey = newKey()
    keys.push(dirKey)
    await mkdir(join(directory, 'sessions', `${dirKey}.json`))

    for (const key of keys) {
      reported.length = 0
      expect(await store.get(key)).toBeUndefined()
      expect(reported).toHaveLength(1)
      expect(reported[0]!.error.code).toBe('ERR_SESSION_STORE')
      expect(reported[0]!.error.operation).toBe('get')
      expect(reported[0]!.error.message).toMatch(/corrupt/)
      expect(reported[0]!.error.message).not.toContain(key)
      expect(reported[0]!.file).toBe(join(directory, 'sessions', `${key}.json`))
      // a patch does not resurrect it, a touch leaves it
      expect(await store.patch(key, { clear: false, set: { a: '1' }, delete: [] }, meta())).toBe(
        false,
      )
      await store.touch(key, meta())
    }
    const scanned: string[] = []
    for await (const s of store.scan()) scanned.push(s.key)
    expect(scanned).toEqual([good])

    // a set replaces a corrupt record; prune removes the others
    await store.set(keys[0]!, { fields: { b: '2' }, meta: meta() })
    expect((await store.get(keys[0]!))?.fields).toEqual({ b: '2' })
    const regularFiles = keys.length - 2 // all but the replaced one and the directory
    expect(await store.prune()).toBe(regularFiles)
    expect(await store.count()).toBe(3) // good, the replaced one, the directory
    expect(await store.get(good)).toBeDefined()
  })

  it('a throwing onError does not break the store', async () => {
    const directory = freshDir()
    const store = fileStore({
      directory,
      sweepInterval: 0,
      onError: () => {
        throw new Error('logger down')
      },
    })
    const key = newKey()
    await store.set(key, { fields: {}, meta: meta() })
    await writeFile(join(directory, 'sessions', `${key}.json`), '{')
    expect(await store.get(key)).toBeUndefined()
  })
})
