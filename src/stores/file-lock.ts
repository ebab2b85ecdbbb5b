/**
 * The file store's lock: one lock file per session under a directory, taken with an exclusive
 * create (`wx`), holding `{ pid, host, at, id }`. A lock older than `staleLockAfter`, or held by
 * a process of this machine that is gone, is taken over: breakers of one lock take turns
 * through a guard file and judge the lock again under it, then move it aside and check it, so
 * a lock taken meanwhile is given back rather than broken. Within a process, operations on one
 * session also queue in memory, so the lock file only orders processes.
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { Stats } from 'node:fs'
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { SessionStoreError, type StoreOperation } from '../core/errors.js'

const HOST = hostname()

const errnoCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code
const hex = (bytes: number) => randomBytes(bytes).toString('hex')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * What a lock or a breaker's guard file holds: who took it (process and host, judged by
 * `lockIsStale`), when, and a random id that makes it this taking's own.
 */
const ownerText = () => JSON.stringify({ pid: process.pid, host: HOST, at: Date.now(), id: hex(8) })

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return errnoCode(err) === 'EPERM'
  }
}

export interface FileLocksOptions {
  /** The directory of the lock files (`<key>.lock`). */
  directory: string
  /** The store's name, for errors. */
  store: string
  /** How long an operation waits for a lock before it fails, in ms. */
  lockTimeout: number
  /** A lock older than this (ms) is taken over. */
  staleLockAfter: number
}

/** The locks of one file store. */
export interface FileLocks {
  /** Runs `fn` holding the lock of `key`: after this process's earlier operations on it. */
  withLock<T>(key: string, operation: StoreOperation, fn: () => Promise<T>): Promise<T>
  /** Removes the lock file at `path` if it is stale; true when no lock is left there. */
  breakIfStale(path: string): Promise<boolean>
  /** Removes a breaker's guard file (`<key>.lock.break`) at `path` if its breaker died. */
  removeIfStale(path: string): Promise<boolean>
}

export function fileLocks(options: FileLocksOptions): FileLocks {
  const { lockTimeout, staleLockAfter } = options
  const lockPath = (key: string) => join(options.directory, `${key}.lock`)

  const lockIsStale = (text: string, mtimeMs: number) => {
    const now = Date.now()
    let info: { pid?: unknown; host?: unknown; at?: unknown } | undefined
    try {
      info = JSON.parse(text)
    } catch {
      // created but not yet written, or its holder died in between: judge by the file's age
    }
    if (typeof info?.at !== 'number') return now - mtimeMs > staleLockAfter
    if (now - info.at > staleLockAfter) return true
    // a pid only means something on this machine (and in this pid namespace)
    const { pid } = info
    return (
      info.host === HOST &&
      Number.isInteger(pid) &&
      (pid as number) > 0 &&
      !processAlive(pid as number)
    )
  }

  /**
   * Remove the file at `path` (a lock or a breaker's guard) if it is stale; true when it is
   * gone. It is moved aside first and checked to be the file judged stale, so one taken
   * meanwhile is given back rather than removed. Alone this is not enough: while a live file is
   * aside, its path is free and a third process can take it too (the put-back then fails, and
   * two processes hold one lock). So a lock is only ever moved under its guard (see
   * {@link breakIfStale}), where the lock judged stale cannot change before it is moved.
   */
  const removeIfStale = async (path: string): Promise<boolean> => {
    let before: Stats
    let text: string
    try {
      before = await stat(path)
      text = await readFile(path, 'utf8')
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return true
      throw err
    }
    if (!lockIsStale(text, before.mtimeMs)) return false
    const aside = `${path}.${hex(6)}.stale`
    try {
      await rename(path, aside)
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return true
      throw err
    }
    const moved = await stat(aside).catch(() => undefined)
    const movedText = await readFile(aside, 'utf8').catch(() => undefined)
    if (moved?.ino === before.ino && movedText === text) {
      await unlink(aside).catch(() => {})
      return true
    }
    await link(aside, path).catch(() => {})
    await unlink(aside).catch(() => {})
    return false
  }

  /**
   * Remove the lock at `path` if it is stale; true when no lock is left there. Breakers of one
   * lock take turns through a guard file (`<key>.lock.break`, created with `wx`) and judge the
   * lock again once they hold it. Without the guard, two waiters could both judge one dead lock
   * stale: the first breaks it and takes the lock, the second then moves that live lock aside,
   * and a third takes the free path before it is put back: two writers in one session at once,
   * and a lost patch (or, if the holder finished meanwhile, its lock put back as an orphan that
   * blocks the session for `staleLockAfter`). Under the guard, a lock judged stale (its holder
   * gone) cannot change before it is moved: no other breaker runs, and nobody can create a
   * lock where one exists. A guard left by a breaker that died is itself stale and removed.
   */
  const breakIfStale = async (path: string): Promise<boolean> => {
    try {
      const text = await readFile(path, 'utf8')
      const { mtimeMs } = await stat(path)
      if (!lockIsStale(text, mtimeMs)) return false
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return true
      throw err
    }
    const guard = `${path}.break`
    const content = ownerText()
    try {
      await writeFile(guard, content, { flag: 'wx', mode: 0o600 })
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err
      // another process is breaking this lock; or one died doing so and left its guard
      await removeIfStale(guard)
      return false
    }
    try {
      return await removeIfStale(path)
    } finally {
      await releaseFile(guard, content)
    }
  }

  /** Remove the file at `path` if it still holds `content` (ours, not a successor's). */
  const releaseFile = async (path: string, content: string) => {
    try {
      if ((await readFile(path, 'utf8')) === content) await unlink(path)
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
  }

  const acquire = async (key: string, operation: StoreOperation): Promise<string> => {
    const path = lockPath(key)
    const deadline = Date.now() + lockTimeout
    for (let attempt = 0; ; attempt++) {
      const content = ownerText()
      try {
        await writeFile(path, content, { flag: 'wx', mode: 0o600 })
        return content
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err
      }
      if (await breakIfStale(path)) continue
      if (Date.now() >= deadline) {
        throw new SessionStoreError(
          options.store,
          operation,
          `the session stayed locked by another process for ${lockTimeout} ms (lockTimeout)`,
        )
      }
      // small, growing, jittered waits: 1-2 ms at first, at most ~50 ms
      await sleep(Math.min(2 ** attempt, 32) * (0.5 + Math.random()))
    }
  }

  // only our own lock: if it was taken over as stale, it is someone else's now
  const release = (key: string, content: string) => releaseFile(lockPath(key), content)

  // in this process, one operation per session at a time; the lock file orders processes
  const queues = new Map<string, Promise<unknown>>()
  const withLock = <T>(key: string, operation: StoreOperation, fn: () => Promise<T>) => {
    const run = (queues.get(key) ?? Promise.resolve()).then(async () => {
      const content = await acquire(key, operation)
      try {
        return await fn()
      } finally {
        await release(key, content)
      }
    })
    const tail = run.then(
      () => {},
      () => {},
    )
    queues.set(key, tail)
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key)
    })
    return run
  }

  return { withLock, breakIfStale, removeIfStale }
}
