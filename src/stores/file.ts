/**
 * The file store: one file per session in a local directory. Survives restarts and is shared
 * by every process of one machine that uses the same directory; needs no server.
 *
 * Writes are atomic (a temporary file, then a rename), patches of one session are serialized by
 * a lock file that survives a crashed holder, and expired files are swept. For one machine
 * only: network file systems are not supported.
 *
 * @example
 * ```ts
 * import { fileStore } from 'tessera/stores/file'
 * createSessions({ secret, store: fileStore({ directory: '/var/lib/myapp/sessions' }) })
 * ```
 * @module
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, statSync } from 'node:fs'
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises'
import { join, resolve } from 'node:path'
import {
  emitStoreWarning,
  SessionConfigError,
  SessionStoreError,
  type StoreOperation,
} from '../core/errors.js'
import { isStoreKey } from '../core/ids.js'
import type {
  SessionMeta,
  SessionPatch,
  SessionRecord,
  SessionStore,
  StoredSession,
} from '../core/store.js'
import { expiresAt } from '../core/store.js'
import { fileLocks } from './file-lock.js'
import { checkStoreOptions, MAX_TIMER_MS } from './options.js'

/**
 * Options of {@link fileStore}. Only `directory` is required.
 *
 * @example
 * ```ts
 * const options: FileStoreOptions = { directory: './var/sessions', fsync: true }
 * ```
 */
export interface FileStoreOptions {
  /**
   * The directory sessions live in; created (owner-only, `0o700`) when missing. Give every app
   * its own. Relative paths resolve against the working directory. An existing directory
   * must be empty (files starting with `.`, such as `.gitkeep`, aside) or a file store already
   * (it has the store's `sessions/`): any other is refused with a `SessionConfigError`, so the
   * store never spreads its subdirectories among someone else's files.
   */
  directory: string
  /**
   * `fsync` each record (and its directory) before the write resolves, so a power cut loses
   * nothing acknowledged. Without it a crashed *process* still never leaves a torn file (writes
   * are a rename), but a crashed *machine* may lose the last writes.
   * @default false
   */
  fsync?: boolean
  /**
   * How often expired sessions, stale temporary files and stale locks are swept, in ms (one
   * `unref`ed timer per store, so it never keeps the process alive). `0` turns the sweep off;
   * `prune()` still does the same on demand.
   * @default 300_000 (5 minutes)
   */
  sweepInterval?: number
  /**
   * How long a write waits for the lock of its session before it fails with a
   * `SessionStoreError`, in ms.
   * @default 5_000
   */
  lockTimeout?: number
  /**
   * A lock older than this (ms), or held by a process of this machine that is gone, is taken
   * over. Also the age past which a leftover temporary file is removed. Must exceed the
   * longest write.
   * @default 10_000
   */
  staleLockAfter?: number
  /** The time in ms since the epoch, for session expiry. @default Date.now */
  clock?: () => number
  /**
   * Called with what the store survived without throwing: a corrupt session file (treated as
   * absent), a failed background sweep. `info.file` is the file concerned (its name is the
   * session's at-rest hash, not its id). Wire it to your logger. Thrown errors (the disk
   * failing) reach the manager's `storeError` event instead.
   * @default a process warning (`process.emitWarning`)
   * @example
   * ```ts
   * fileStore({ directory, onError: (error, { file }) => logger.warn({ err: error, file }) })
   * ```
   */
  onError?: (error: SessionStoreError, info: { file: string }) => void
}

/**
 * The file store: every optional part of the contract, and the directory it lives in.
 *
 * @example
 * ```ts
 * const store: FileStore = fileStore({ directory: './var/sessions' })
 * await store.prune() // also runs every `sweepInterval`
 * ```
 */
export interface FileStore
  extends Required<Omit<SessionStore, 'name' | 'getNow' | 'patchNow' | 'touchNow'>> {
  readonly name: 'file'
  /** The absolute directory the store lives in. */
  readonly directory: string
}

const NAME = 'file'
const RECORD_FILE = /^([0-9a-f]{64})\.json$/
const TEMP_FILE = /^[0-9a-f]{64}\.json\.\d+\.[0-9a-f]+\.tmp$/
const LOCK_FILE = /^[0-9a-f]{64}\.lock$/
const GUARD_FILE = /^[0-9a-f]{64}\.lock\.break$/
const HASH_DIR = /^[0-9a-f]{64}$/
const FORMAT = 1
/** What the store makes in its directory, as every version has made it. */
const LAYOUT = ['sessions', 'locks', 'users']

const errnoCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code
const hex = (bytes: number) => randomBytes(bytes).toString('hex')
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

/** Node's file errors quote the path, which holds the key: keep the code, drop the path. */
function fsError(operation: StoreOperation, err: unknown): SessionStoreError {
  if (err instanceof SessionStoreError) return err
  const e = err as NodeJS.ErrnoException
  const what = e?.code ? `${e.code} on ${e.syscall ?? 'the file system'}` : String(err)
  return new SessionStoreError(NAME, operation, what, { cause: err })
}

function isMeta(meta: unknown): meta is SessionMeta {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return false
  const m = meta as Record<string, unknown>
  for (const k of ['createdAt', 'lastSeenAt', 'idleExpiresAt', 'absoluteExpiresAt'])
    if (typeof m[k] !== 'number' || !Number.isFinite(m[k])) return false
  if (m.userId !== undefined && typeof m.userId !== 'string') return false
  if (m.idleTimeout !== undefined && typeof m.idleTimeout !== 'number') return false
  return m.persistent === undefined || typeof m.persistent === 'boolean'
}

/** A record file's text as a record, or undefined when it is not one (torn, tampered, ...). */
function parseRecord(text: string): SessionRecord | undefined {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof data !== 'object' || data === null) return undefined
  const { v, fields, meta } = data as Record<string, unknown>
  if (v !== FORMAT || !isMeta(meta)) return undefined
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return undefined
  if (!Object.values(fields).every((value) => typeof value === 'string')) return undefined
  // Object.fromEntries defines keys, so a field named `__proto__` stays a plain field
  return {
    fields: Object.fromEntries(Object.entries(fields as Record<string, string>)),
    meta: { ...meta },
  }
}

/**
 * Refuses a directory that is not the store's to use: one that holds other things and not the
 * store's layout (`sessions/`, or nothing but the store's own names: a store whose `sessions/`
 * was deleted to empty it). A missing or empty directory is the store's to make; names that
 * start with `.` (`.gitkeep`, `.DS_Store`) do not count.
 */
function checkDirectory(root: string): void {
  let names: string[]
  try {
    names = readdirSync(root)
  } catch (err) {
    if (errnoCode(err) === 'ENOTDIR')
      throw new SessionConfigError(
        `[store:file] ${root} is a file, not a directory: give the directory sessions are kept in`,
      )
    // missing: made on first use; unreadable: every operation fails with a store error
    return
  }
  const others = names.filter((name) => !name.startsWith('.')).sort()
  if (others.every((name) => LAYOUT.includes(name))) return
  const isDir = (path: string) => statSync(path, { throwIfNoEntry: false })?.isDirectory()
  if (isDir(join(root, 'sessions'))) return
  const shown = others
    .slice(0, 3)
    .map((name) => JSON.stringify(name))
    .join(', ')
  throw new SessionConfigError(
    `[store:file] ${root} is not empty and is not a file store (it holds ${shown}${others.length > 3 ? ', ...' : ''} and no sessions/ directory): give the store a directory of its own, missing or empty`,
  )
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}

/**
 * A store keeping each session in a file named by its at-rest hash, under `directory`:
 * `sessions/<key>.json` (the record), `locks/<key>.lock` (while a write runs) and
 * `users/<sha256(userId)>/<key>` (empty markers, the user index). See docs/stores/file.md.
 *
 * @example
 * ```ts
 * const store = fileStore({ directory: './var/sessions', fsync: true, onError: log.warn })
 * const sessions = createSessions({ secret, store })
 * ```
 */
export function fileStore(options: FileStoreOptions): FileStore {
  checkStoreOptions('file', options, { fsync: 'boolean', clock: 'function' })
  if (typeof options?.directory !== 'string' || options.directory === '') {
    throw new SessionConfigError(
      '[store:file] `directory` is required: the directory sessions are kept in, e.g. ' +
        "fileStore({ directory: './var/sessions' })",
    )
  }
  const number = (name: string, value: number | undefined, fallback: number, min: number) => {
    const n = value ?? fallback
    // at most what a Node timer keeps: a longer interval would sweep every millisecond
    if (typeof n !== 'number' || !(n >= min && n <= MAX_TIMER_MS)) {
      throw new SessionConfigError(
        `[store:file] \`${name}\` must be a number of ms from ${min} to ${MAX_TIMER_MS} (about 24 days)`,
      )
    }
    return n
  }
  const root = resolve(options.directory)
  const sessionsDir = join(root, 'sessions')
  const locksDir = join(root, 'locks')
  const usersDir = join(root, 'users')
  const doFsync = options.fsync ?? false
  const sweepInterval = number('sweepInterval', options.sweepInterval, 300_000, 0)
  const lockTimeout = number('lockTimeout', options.lockTimeout, 5_000, 0)
  const staleLockAfter = number('staleLockAfter', options.staleLockAfter, 10_000, 1)
  const clock = options.clock ?? Date.now
  const onError = options.onError ?? emitStoreWarning
  checkDirectory(root)

  const report = (error: SessionStoreError, file: string) => {
    try {
      onError(error, { file })
    } catch {
      // a failing logger must not take the store down
    }
  }

  let ready: Promise<void> | undefined
  const init = () => {
    ready ??= (async () => {
      // again: a directory missing when the store was made may have been filled since
      checkDirectory(root)
      await mkdir(root, { recursive: true, mode: 0o700 })
      for (const dir of [sessionsDir, locksDir, usersDir])
        await mkdir(dir, { recursive: true, mode: 0o700 })
    })().catch((err) => {
      ready = undefined
      throw err
    })
    return ready
  }

  /** Every entry point: the key must be a store key before it comes near a path. */
  const checkKey = (key: unknown, operation: StoreOperation): string => {
    if (typeof key !== 'string' || !isStoreKey(key)) {
      throw new SessionStoreError(
        NAME,
        operation,
        'not a store key (64 characters of [0-9a-f]); refused before touching the file system',
      )
    }
    return key
  }
  const recordPath = (key: string) => join(sessionsDir, `${key}.json`)
  const userDir = (userId: string) => join(usersDir, sha256(userId))

  // --- records -----------------------------------------------------------------------------

  /** The record, undefined when absent or corrupt (reported). Other I/O errors throw. */
  const read = async (key: string, operation: StoreOperation, quiet = false) => {
    const file = recordPath(key)
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined
      if (errnoCode(err) !== 'EISDIR') throw err
      text = ''
    }
    const record = parseRecord(text)
    if (!record && !quiet) {
      report(
        new SessionStoreError(NAME, operation, 'a session file is corrupt; treated as absent'),
        file,
      )
    }
    return record
  }

  const syncDir = async (dir: string) => {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  }

  /** Write the whole record atomically: a temporary file beside it, then a rename. */
  const write = async (key: string, record: SessionRecord) => {
    const file = recordPath(key)
    const temp = `${file}.${process.pid}.${hex(6)}.tmp`
    const text = JSON.stringify({ v: FORMAT, meta: record.meta, fields: record.fields })
    try {
      const handle = await open(temp, 'wx', 0o600)
      try {
        await handle.writeFile(text, 'utf8')
        if (doFsync) await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(temp, file)
    } catch (err) {
      await unlink(temp).catch(() => {})
      throw err
    }
    if (doFsync) await syncDir(sessionsDir)
  }

  const removeFile = async (file: string) => {
    try {
      await unlink(file)
      return true
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false
      throw err
    }
  }

  // --- the user index: users/<sha256(userId)>/<key> ----------------------------------------

  const addMarker = async (userId: string, key: string) => {
    const dir = userDir(userId)
    for (let attempt = 0; ; attempt++) {
      try {
        await writeFile(join(dir, key), '', { mode: 0o600 })
        return
      } catch (err) {
        // the directory is new, or a sweep just removed it as empty
        if (errnoCode(err) !== 'ENOENT' || attempt > 2) throw err
        await mkdir(dir, { recursive: true, mode: 0o700 })
      }
    }
  }
  const removeMarker = (userId: string, key: string) => removeFile(join(userDir(userId), key))

  /**
   * Write a record and keep the index right. Order matters for a crash at any point: the new
   * marker before the record, the old marker after, so a record is never unindexed (a marker
   * left over is dropped when found).
   */
  const save = async (key: string, before: SessionMeta | undefined, record: SessionRecord) => {
    const was = before?.userId
    const now = record.meta.userId
    if (now !== undefined && now !== was) await addMarker(now, key)
    await write(key, record)
    if (was !== undefined && was !== now) await removeMarker(was, key)
  }

  /** Remove a record and its marker; true when there was one. Call under the lock. */
  const drop = async (key: string, userId: string | undefined) => {
    const removed = await removeFile(recordPath(key))
    if (userId !== undefined) await removeMarker(userId, key)
    return removed
  }

  const { withLock, breakIfStale, removeIfStale } = fileLocks({
    directory: locksDir,
    store: NAME,
    lockTimeout,
    staleLockAfter,
  })

  /** Runs a store operation: key checked, directory ready, file errors without paths. */
  const op = async <T>(operation: StoreOperation, fn: () => Promise<T>): Promise<T> => {
    try {
      await init()
      return await fn()
    } catch (err) {
      if (err instanceof SessionConfigError) throw err
      throw fsError(operation, err)
    }
  }

  const listDir = async (dir: string) => {
    try {
      return await readdir(dir)
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return []
      throw err
    }
  }

  /** Drop a marker whose record is gone or belongs to someone else (checked under the lock). */
  const dropStaleMarker = (userId: string | undefined, dirName: string, key: string) =>
    withLock(key, 'listByUser', async () => {
      const record = await read(key, 'listByUser', true)
      const owner = record?.meta.userId
      if (owner !== undefined && sha256(owner) === dirName && owner === (userId ?? owner)) return
      await removeFile(join(usersDir, dirName, key))
    })

  // --- prune -------------------------------------------------------------------------------

  const prune = async (): Promise<number> => {
    const now = clock()
    let removed = 0
    const indexed = new Set<string>() // `${sha256(userId)}/${key}` of records seen
    await mapLimit(await listDir(sessionsDir), 8, async (name) => {
      const file = join(sessionsDir, name)
      const key = RECORD_FILE.exec(name)?.[1]
      if (key) {
        const record = await read(key, 'prune')
        if (record && expiresAt(record.meta) > now) {
          if (record.meta.userId !== undefined) indexed.add(`${sha256(record.meta.userId)}/${key}`)
          return
        }
        try {
          await withLock(key, 'prune', async () => {
            const again = await read(key, 'prune', true)
            if (again && expiresAt(again.meta) > now) return
            if (await drop(key, again?.meta.userId)) removed++
          })
        } catch (err) {
          report(fsError('prune', err), file)
        }
      } else if (TEMP_FILE.test(name)) {
        // left by a writer that died between writing and renaming
        const info = await stat(file).catch(() => undefined)
        if (info && Date.now() - info.mtimeMs > staleLockAfter) await unlink(file).catch(() => {})
      }
    })
    for (const name of await listDir(locksDir)) {
      const file = join(locksDir, name)
      if (LOCK_FILE.test(name)) await breakIfStale(file).catch(() => {})
      else if (GUARD_FILE.test(name)) await removeIfStale(file).catch(() => {})
      else if (name.endsWith('.stale')) {
        const info = await stat(file).catch(() => undefined)
        if (info && Date.now() - info.mtimeMs > staleLockAfter) await unlink(file).catch(() => {})
      }
    }
    for (const dirName of await listDir(usersDir)) {
      if (!HASH_DIR.test(dirName)) continue
      for (const key of await listDir(join(usersDir, dirName))) {
        if (!isStoreKey(key) || indexed.has(`${dirName}/${key}`)) continue
        await dropStaleMarker(undefined, dirName, key).catch(() => {})
      }
      // only when empty; a writer that loses the race recreates it
      await rmdir(join(usersDir, dirName)).catch(() => {})
    }
    return removed
  }

  let sweeping: Promise<unknown> | undefined
  const sweep = () => {
    sweeping ??= op('prune', prune)
      .catch((err) => report(fsError('prune', err), root))
      .finally(() => {
        sweeping = undefined
      })
  }
  const timer = sweepInterval > 0 ? setInterval(sweep, sweepInterval) : undefined
  timer?.unref()

  // --- the contract ------------------------------------------------------------------------

  return {
    name: NAME,
    directory: root,
    async get(key) {
      checkKey(key, 'get')
      return op('get', () => read(key, 'get'))
    },
    async set(key, record) {
      checkKey(key, 'set')
      return op('set', () =>
        withLock(key, 'set', async () => {
          const before = await read(key, 'set')
          await save(key, before?.meta, { fields: { ...record.fields }, meta: { ...record.meta } })
        }),
      )
    },
    /** `set` unless a live record is there; the lock makes the check and the write one step. */
    async add(key, record) {
      checkKey(key, 'add')
      return op('add', () =>
        withLock(key, 'add', async () => {
          const before = await read(key, 'add')
          // an expired record may still be on disk until a sweep: it counts as none
          if (before && expiresAt(before.meta) > clock()) return false
          await save(key, before?.meta, { fields: { ...record.fields }, meta: { ...record.meta } })
          return true
        }),
      )
    },
    async patch(key, patch: SessionPatch, meta) {
      checkKey(key, 'patch')
      return op('patch', () =>
        withLock(key, 'patch', async () => {
          const before = await read(key, 'patch')
          if (!before) return false
          const fields = new Map(patch.clear ? [] : Object.entries(before.fields))
          for (const [field, value] of Object.entries(patch.set)) fields.set(field, value)
          for (const field of patch.delete) fields.delete(field)
          await save(key, before.meta, { fields: Object.fromEntries(fields), meta: { ...meta } })
          return true
        }),
      )
    },
    async touch(key, meta) {
      checkKey(key, 'touch')
      return op('touch', () =>
        withLock(key, 'touch', async () => {
          const before = await read(key, 'touch')
          if (before) await save(key, before.meta, { fields: before.fields, meta: { ...meta } })
        }),
      )
    },
    async destroy(key) {
      checkKey(key, 'destroy')
      return op('destroy', () =>
        withLock(key, 'destroy', async () => {
          const before = await read(key, 'destroy')
          await drop(key, before?.meta.userId)
        }),
      )
    },
    async listByUser(userId) {
      return op('listByUser', async () => {
        const now = clock()
        const dirName = sha256(userId)
        const out: StoredSession[] = []
        await mapLimit(await listDir(userDir(userId)), 8, async (key) => {
          if (!isStoreKey(key)) return
          const record = await read(key, 'listByUser')
          if (record?.meta.userId !== userId) await dropStaleMarker(userId, dirName, key)
          else if (expiresAt(record.meta) > now) out.push({ key, meta: record.meta })
        })
        return out
      })
    },
    async destroyByUser(userId, exceptKey) {
      if (exceptKey !== undefined) checkKey(exceptKey, 'destroyByUser')
      return op('destroyByUser', async () => {
        let removed = 0
        for (const key of await listDir(userDir(userId))) {
          if (!isStoreKey(key) || key === exceptKey) continue
          await withLock(key, 'destroyByUser', async () => {
            const record = await read(key, 'destroyByUser')
            if (record?.meta.userId === userId) {
              if (await drop(key, userId)) removed++
            } else await removeMarker(userId, key)
          })
        }
        return removed
      })
    },
    async count() {
      return op('count', async () => {
        let n = 0
        for (const name of await listDir(sessionsDir)) if (RECORD_FILE.test(name)) n++
        return n
      })
    },
    async *scan() {
      const names = await op('scan', () => listDir(sessionsDir))
      for (const name of names) {
        const key = RECORD_FILE.exec(name)?.[1]
        if (!key) continue
        const record = await op('scan', () => read(key, 'scan'))
        if (record) yield { key, meta: record.meta }
      }
    },
    async prune() {
      return op('prune', prune)
    },
    async close() {
      if (timer) clearInterval(timer)
      await sweeping
    },
  }
}
