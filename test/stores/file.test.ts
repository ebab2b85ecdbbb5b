import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import fsp, { readdir, readFile, writeFile } from 'node:fs/promises'
import { syncBuiltinESMExports } from 'node:module'
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
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('file store', () => {
  it('refuses a missing directory or a nonsense option at startup', () => {
    expect(() => fileStore({} as never)).toThrow(SessionConfigError)
    expect(() => fileStore({ directory: '' })).toThrow(/directory/)
    expect(() => fileStore({ directory: freshDir(), lockTimeout: -1 })).toThrow(/lockTimeout/)
    // more than a Node timer keeps: it would sweep every millisecond
    expect(() => fileStore({ directory: freshDir(), sweepInterval: 30 * 86_400_000 })).toThrow(
      /sweepInterval.*24 days/,
    )
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

    it('breaking a stale lock never lets two writers in at once (three writers, one stale lock)', async () => {
      // Two writers find one dead lock and both judge it stale; the first breaks it and takes
      // the lock. The second must not move that live lock aside: while it is away, a third
      // writer would take the session too, and the first writer's patch, made from what it read
      // before, would overwrite the third's. The interleaving is forced by pausing `rename`.
      const directory = freshDir()
      const options = { directory, sweepInterval: 0, lockTimeout: 5_000 }
      const [first, second, third] = [fileStore(options), fileStore(options), fileStore(options)]
      const key = newKey()
      await first.set(key, { fields: {}, meta: meta() })
      await writeFile(lockFile(directory, key), lockText(123, Date.now() - 60_000, 'elsewhere'))

      const signal = () => {
        let fire = () => {}
        const fired = new Promise<void>((r) => {
          fire = r
        })
        // each wait gives up after a while: a correct store never reaches some of them
        return { fire, fired: () => Promise.race([fired, sleep(300)]) }
      }
      const bothJudged = signal()
      const holderWriting = signal()
      const lockAside = signal()
      const thirdDone = signal()
      let asides = 0
      let records = 0
      const realRename = fsp.rename
      fsp.rename = async (from, to) => {
        const target = String(to)
        if (target.endsWith('.stale')) {
          asides++
          if (asides === 1) await bothJudged.fired()
          else {
            bothJudged.fire()
            await holderWriting.fired()
            await realRename(from, to)
            lockAside.fire()
            await thirdDone.fired()
            return
          }
        } else if (target.endsWith('.json') && ++records === 1) {
          holderWriting.fire()
          await thirdDone.fired()
        }
        return realRename(from, to)
      }
      syncBuiltinESMExports()
      try {
        const patches = [first, second].map((store, i) =>
          store.patch(key, { clear: false, set: { [`w${i}`]: '1' }, delete: [] }, meta()),
        )
        await lockAside.fired()
        await third.patch(key, { clear: false, set: { w2: '1' }, delete: [] }, meta())
        thirdDone.fire()
        expect(await Promise.all(patches)).toEqual([true, true])
      } finally {
        fsp.rename = realRename
        syncBuiltinESMExports()
      }
      expect(Object.keys((await first.get(key))!.fields).sort()).toEqual(['w0', 'w1', 'w2'])
      expect(await readdir(join(directory, 'locks'))).toEqual([])
    })

    it('a breaker that died holding its guard blocks no one: the guard is stale too', async () => {
      const directory = freshDir()
      const store = fileStore({ directory, sweepInterval: 0, lockTimeout: 2_000 })
      const key = newKey()
      await store.set(key, { fields: {}, meta: meta() })
      const { hostname } = await import('node:os')
      const dead = lockText(deadPid(), Date.now(), hostname())
      await writeFile(lockFile(directory, key), dead)
      await writeFile(`${lockFile(directory, key)}.break`, dead)
      const started = Date.now()
      expect(await store.patch(key, { clear: false, set: { a: '1' }, delete: [] }, meta())).toBe(
        true,
      )
      expect(Date.now() - started).toBeLessThan(1_000)
      expect(await readdir(join(directory, 'locks'))).toEqual([])
      // and prune() sweeps a guard left alone
      await writeFile(`${lockFile(directory, key)}.break`, dead)
      await store.prune()
      expect(await readdir(join(directory, 'locks'))).toEqual([])
    })
  })
})
