/**
 * The file store's lock: one lock file per session under a directory, taken with an exclusive
 * create (`wx`), holding `{ pid, host, at, id }`. A lock older than `staleLockAfter`, or held by
 * a process of this machine that is gone, is taken over, moved aside first so that a lock
 * taken meanwhile is given back rather than broken. Within a process, operations on one
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
   * Remove the lock at `path` if it is stale; true when the lock is gone. The lock is moved
   * aside first and checked to be the one judged stale, so a lock taken meanwhile is given
   * back rather than broken.
   */
  const breakIfStale = async (path: string): Promise<boolean> => {
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

  const acquire = async (key: string, operation: StoreOperation): Promise<string> => {
    const path = lockPath(key)
    const deadline = Date.now() + lockTimeout
    for (let attempt = 0; ; attempt++) {
      const content = JSON.stringify({ pid: process.pid, host: HOST, at: Date.now(), id: hex(8) })
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

  const release = async (key: string, content: string) => {
    const path = lockPath(key)
    try {
      // only our own lock: if it was taken over as stale, it is someone else's now
      if ((await readFile(path, 'utf8')) === content) await unlink(path)
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
  }

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

  return { withLock, breakIfStale }
}
