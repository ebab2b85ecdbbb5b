import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionConfigError, SessionStoreError } from '../../src/core/errors.js'
import { createSessions } from '../../src/index.js'
import { fileStore } from '../../src/stores/file.js'
import { describeStoreConformance, meta, newKey } from '../conformance/store-suite.js'

const dirs: string[] = []
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-file-store-'))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describeStoreConformance('file', {
  create: () => fileStore({ directory: freshDir(), sweepInterval: 0 }),
  cleanup: (store) => store.close?.(),
  expiry: 'prune',
  capabilities: ['add', 'listByUser', 'destroyByUser', 'count', 'scan', 'prune', 'close'],
})

/** The pid of a process that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid

describe('file store', () => {
  it('refuses a missing directory or a nonsense option at startup', () => {
    expect(() => fileStore({} as never)).toThrow(SessionConfigError)
    expect(() => fileStore({ directory: '' })).toThrow(/directory/)
    expect(() => fileStore({ directory: freshDir(), lockTimeout: -1 })).toThrow(/lockTimeout/)
  })

  it('keeps one file per session, named by its key, and nothing else once writes are done', async () => {
    const directory = freshDir()
    const store = fileStore({ directory, sweepInterval: 0 })
    const key = newKey()
    await store.set(key, { fields: { a: '1' }, meta: meta({ userId: 'u' }) })
    await store.patch(key, { clear: false, set: { b: '2' }, delete: [] }, meta({ userId: 'u' }))
    expect(await readdir(join(directory, 'sessions'))).toEqual([`${key}.json`])
    expect(await readdir(join(directory, 'locks'))).toEqual([])
    const text = await readFile(join(directory, 'sessions', `${key}.json`), 'utf8')
    expect(JSON.parse(text)).toMatchObject({ v: 1, fields: { a: '1', b: '2' } })
  })

  it('shares sessions between two store instances on one directory', async () => {
    const directory = freshDir()
    const [a, b] = [
      fileStore({ directory, sweepInterval: 0 }),
      fileStore({ directory, sweepInterval: 0 }),
    ]
    const key = newKey()
    await a.set(key, { fields: {}, meta: meta() })
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).patch(key, { clear: false, set: { [`k${i}`]: '1' }, delete: [] }, meta()),
      ),
    )
    expect(Object.keys((await a.get(key))!.fields)).toHaveLength(20)
  })

  it('keeps sessions across a restart (a new store on the same directory)', async () => {
    const directory = freshDir()
    const secret = 'x'.repeat(43)
    const before = createSessions<{ count: number }>({
      secret,
      store: fileStore({ directory, sweepInterval: 0 }),
    })
    const session = await before.load(undefined)
    session.set('count', 41)
    const [cookie] = await before.commit(session)
    const after = createSessions<{ count: number }>({
      secret,
      store: fileStore({ directory, sweepInterval: 0 }),
    })
    const again = await after.load(cookie!.split(';')[0]!)
    expect(again.get('count')).toBe(41)
  })

  it('fsync: true writes and reads the same', async () => {
    const store = fileStore({ directory: freshDir(), sweepInterval: 0, fsync: true })
    const key = newKey()
    const record = { fields: { a: '"x"' }, meta: meta() }
    await store.set(key, record)
    expect(await store.get(key)).toEqual(record)
  })

  describe('locks', () => {
    const lockFile = (directory: string, key: string) => join(directory, 'locks', `${key}.lock`)
    const lockText = (pid: number, at: number, host?: string) =>
      JSON.stringify({ pid, host: host ?? undefined, at, id: 'x' })

    it('takes over a lock whose holder died', async () => {
      const directory = freshDir()
      const store = fileStore({ directory, sweepInterval: 0, lockTimeout: 2_000 })
      const key = newKey()
      await store.set(key, { fields: {}, meta: meta() })
      const { hostname } = await import('node:os')
      await writeFile(lockFile(directory, key), lockText(deadPid(), Date.now(), hostname()))
      const started = Date.now()
      expect(await store.patch(key, { clear: false, set: { a: '1' }, delete: [] }, meta())).toBe(
        true,
      )
      expect(Date.now() - started).toBeLessThan(1_000)
      expect(await readdir(join(directory, 'locks'))).toEqual([])
    })

    it('takes over a lock older than staleLockAfter, even held by a live process', async () => {
      const directory = freshDir()
      const store = fileStore({ directory, sweepInterval: 0, staleLockAfter: 1_000 })
      const key = newKey()
      await store.set(key, { fields: {}, meta: meta() })
      await writeFile(lockFile(directory, key), lockText(process.pid, Date.now() - 5_000))
      expect(await store.patch(key, { clear: false, set: { a: '1' }, delete: [] }, meta())).toBe(
        true,
      )
    })

    it('waits for a live lock, then fails with a SessionStoreError after lockTimeout', async () => {
      const directory = freshDir()
      const store = fileStore({ directory, sweepInterval: 0, lockTimeout: 150 })
      const key = newKey()
      await store.set(key, { fields: { a: '1' }, meta: meta() })
      // a live holder on another machine: its pid means nothing here, only its age counts
      await writeFile(lockFile(directory, key), lockText(deadPid(), Date.now(), 'elsewhere'))
      const started = Date.now()
      const error = await store
        .patch(key, { clear: false, set: { a: '2' }, delete: [] }, meta())
        .catch((e) => e)
      expect(error).toBeInstanceOf(SessionStoreError)
      expect(error.operation).toBe('patch')
      expect(error.message).not.toContain(key)
      expect(Date.now() - started).toBeGreaterThanOrEqual(140)
      expect((await store.get(key))?.fields).toEqual({ a: '1' })
    })

    it('a lock file being created (still empty) is waited for, not broken', async () => {
      const directory = freshDir()
      const store = fileStore({ directory, sweepInterval: 0, lockTimeout: 100 })
      const key = newKey()
      await store.set(key, { fields: {}, meta: meta() })
      await writeFile(lockFile(directory, key), '')
      await expect(store.destroy(key)).rejects.toThrow(/lockTimeout/)
      expect(await store.get(key)).toBeDefined()
    })
  })
})
