/**
 * What each `tessera` command does to a store. Framework- and terminal-free: every command
 * takes the store and a place to write lines, so the tests run them against real stores.
 * @module
 */
import { SessionStoreError, type StoreOperation } from '../core/errors.js'
import { hashSessionId, isStoreKey } from '../core/ids.js'
import {
  type ClientSideStore,
  expiresAt,
  isClientSideStore,
  type SessionMeta,
  type SessionStore,
  type StoredSession,
} from '../core/store.js'

/** Where a command writes, and what it reports progress to. */
export interface Output {
  /**
   * One line of the command's answer (stdout). A promise when the reader is behind: a command
   * that writes many lines waits for it before reading more from the store.
   */
  line(text: string): void | Promise<void>
  /** Long work: called with the total (when the store can count) and then once per item. */
  progress?(total: number | undefined): { tick(): void; stop(): void }
}

/** A command could not do what was asked; the message says why. Exit code 1. */
export class CommandError extends Error {
  override name = 'CommandError'
}

type Capability = 'count' | 'scan' | 'prune' | 'listByUser' | 'destroyByUser'

/** Why a store lacks a capability, in words a user can act on. */
const WHY_NOT: Record<string, Partial<Record<Capability, string>>> = {
  memcached: {
    count: 'Memcached cannot list its keys',
    scan: 'Memcached cannot list its keys',
    prune: 'Memcached expires sessions by itself',
  },
  redis: { prune: 'Redis expires sessions by itself' },
}

/** A driver's error as the store error the app would see: store, operation, no session id. */
function failed(store: SessionStore, operation: StoreOperation, err: unknown): SessionStoreError {
  if (err instanceof SessionStoreError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new SessionStoreError(store.name, operation, message, { cause: err })
}

/**
 * `store`, with every failure of its methods a `SessionStoreError`, as the session manager
 * reports them (a store may throw anything).
 */
function guarded(store: SessionStore): SessionStore {
  const wrapped = Object.create(store) as SessionStore
  const methods = [
    'get',
    'set',
    'destroy',
    'count',
    'listByUser',
    'destroyByUser',
    'prune',
  ] as const
  for (const op of methods) {
    const method = store[op] as ((...args: unknown[]) => Promise<unknown>) | undefined
    if (method === undefined) continue
    ;(wrapped as unknown as Record<string, unknown>)[op] = (...args: unknown[]) =>
      method.apply(store, args).catch((err: unknown) => {
        throw failed(store, op, err)
      })
  }
  const { scan } = store
  if (scan !== undefined) {
    wrapped.scan = async function* () {
      try {
        yield* scan.call(store)
      } catch (err) {
        throw failed(store, 'scan', err)
      }
    }
  }
  return wrapped
}

/**
 * The server-side store, its failures wrapped as store errors, or a CommandError saying why
 * the command cannot work on it.
 */
export function serverStore(store: SessionStore | ClientSideStore, what: string): SessionStore {
  if (isClientSideStore(store))
    throw new CommandError(
      `the ${store.name} store keeps each session in its browser's cookie: there is nothing on the server to ${what}`,
    )
  if (store.name === 'memory')
    throw new CommandError(
      `the memory store lives inside one app process: the tessera command cannot reach it to ${what}`,
    )
  return guarded(store)
}

function needs<K extends Capability>(
  store: SessionStore,
  capability: K,
  what: string,
): NonNullable<SessionStore[K]> {
  const method = store[capability]
  if (method === undefined) {
    const why = WHY_NOT[store.name]?.[capability]
    throw new CommandError(
      `the ${store.name} store cannot ${what}${why === undefined ? ` (it has no ${capability}())` : `: ${why}`}`,
    )
  }
  return method.bind(store) as NonNullable<SessionStore[K]>
}

/**
 * The store key of `ref`: a key as `list` prints it (64 hex digits), a session id, or a
 * cookie's value (`id.signature`; the signature is not checked: the store is already yours).
 */
export function keyOf(ref: string): string {
  if (isStoreKey(ref)) return ref
  const id = ref.split('.')[0] ?? ''
  if (!/^[A-Za-z0-9_-]{43}$/.test(id))
    throw new CommandError(
      `"${ref.slice(0, 80)}" is neither a session's key (64 hex digits, as \`tessera list\` prints) nor a session id`,
    )
  return hashSessionId(id)
}

/** A time as `2026-12-02 21:40:03Z`. */
export function time(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z`
}

function row(s: StoredSession): string {
  const m = s.meta
  return [
    s.key,
    (m.userId ?? '-').padEnd(16),
    time(m.createdAt),
    time(m.lastSeenAt),
    time(expiresAt(m)),
  ].join('  ')
}

const HEADER = [
  'KEY'.padEnd(64),
  'USER'.padEnd(16),
  'CREATED'.padEnd(20),
  'LAST SEEN'.padEnd(20),
  'EXPIRES',
].join('  ')

function json(s: StoredSession): string {
  return JSON.stringify({ key: s.key, ...s.meta })
}

/** `tessera count`. */
export async function count(store: SessionStore, out: Output, asJson: boolean): Promise<void> {
  const n = await needs(store, 'count', 'count its sessions')()
  out.line(asJson ? JSON.stringify({ count: n }) : String(n))
}

export interface ListOptions {
  user?: string | undefined
  limit?: number | undefined
  json: boolean
  now: number
}

/**
 * `tessera list`: unexpired sessions, one user's (newest activity first) or every one (in the
 * store's order, streamed). Returns how many were listed.
 */
export async function list(
  store: SessionStore,
  out: Output,
  options: ListOptions,
): Promise<number> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  // a session that moved to a new id leaves a marker for a minute, which is no session
  const live = (s: StoredSession) => expiresAt(s.meta) > options.now && s.meta.moved !== true
  let listed = 0
  const print = async (s: StoredSession) => {
    if (listed === 0 && !options.json) await out.line(HEADER)
    await out.line(options.json ? json(s) : row(s))
    listed++
  }
  if (options.user !== undefined) {
    const sessions = await needs(store, 'listByUser', 'list sessions by user')(options.user)
    sessions.sort((a, b) => b.meta.lastSeenAt - a.meta.lastSeenAt)
    for (const s of sessions.filter(live)) {
      if (listed >= limit) break
      await print(s)
    }
  } else {
    for await (const s of needs(store, 'scan', 'list every session')()) {
      if (listed >= limit) break
      if (live(s)) await print(s)
    }
  }
  return listed
}

/**
 * `tessera show`: one session's times, user and data. Values of reserved fields (`$csrf`,
 * `$oidc`, ...) are secrets and are never printed, only their size.
 */
export async function show(
  store: SessionStore,
  out: Output,
  ref: string,
  options: { json: boolean; now: number },
): Promise<void> {
  const key = keyOf(ref)
  const record = await store.get(key)
  if (record === undefined || expiresAt(record.meta) <= options.now)
    throw new CommandError(`no session with the key ${key}`)
  const fields: Record<string, string> = {}
  for (const [name, text] of Object.entries(record.fields))
    fields[name] = name.startsWith('$') ? `(hidden, ${text.length} characters)` : text
  if (options.json) {
    out.line(JSON.stringify({ key, ...record.meta, fields }))
    return
  }
  const m: SessionMeta = record.meta
  out.line(`key            ${key}`)
  out.line(`user           ${m.userId ?? '-'}`)
  out.line(`created        ${time(m.createdAt)}`)
  out.line(`last seen      ${time(m.lastSeenAt)}`)
  out.line(`idle expiry    ${time(m.idleExpiresAt)}`)
  out.line(`absolute       ${time(m.absoluteExpiresAt)}`)
  if (m.persistent !== undefined) out.line(`persistent     ${m.persistent}`)
  const names = Object.keys(fields).sort()
  out.line(names.length === 0 ? 'data           (none)' : 'data')
  for (const name of names) out.line(`  ${name}: ${fields[name]}`)
}

/** `tessera revoke KEY`: ends one session. */
export async function revoke(store: SessionStore, out: Output, ref: string): Promise<void> {
  const key = keyOf(ref)
  if ((await store.get(key)) === undefined) throw new CommandError(`no session with the key ${key}`)
  await store.destroy(key)
  out.line(`revoked 1 session`)
}

/** `tessera revoke --user ID`: ends every session of a user. */
export async function revokeUser(store: SessionStore, out: Output, user: string): Promise<number> {
  const n = await needs(store, 'destroyByUser', 'revoke sessions by user')(user)
  out.line(`revoked ${n} session${n === 1 ? '' : 's'} of ${user}`)
  return n
}

/** `tessera prune`: removes expired sessions now. */
export async function prune(store: SessionStore, out: Output): Promise<number> {
  const n = await needs(store, 'prune', 'prune')()
  out.line(`removed ${n} expired session${n === 1 ? '' : 's'}`)
  return n
}

/** What `migrate` did. */
export interface Migrated {
  copied: number
  /** Expired, or gone between the scan and the read. */
  skipped: number
}

/**
 * `tessera migrate --to URL`: copies every unexpired session, data and times unchanged, so
 * users stay signed in when the app moves to the new store. A session already in the target
 * is replaced. Reads and writes `concurrency` sessions at a time; after a copy fails no other
 * starts, and once those under way have ended the first failure is thrown.
 */
export async function migrate(
  from: SessionStore,
  to: SessionStore,
  out: Output,
  options: { now: number; concurrency?: number },
): Promise<Migrated> {
  const scan = needs(from, 'scan', 'list every session')
  const total = from.count === undefined ? undefined : await from.count()
  const bar = out.progress?.(total)
  const result: Migrated = { copied: 0, skipped: 0 }
  const copy = async (s: StoredSession) => {
    const record = expiresAt(s.meta) > options.now ? await from.get(s.key) : undefined
    if (record === undefined || expiresAt(record.meta) <= options.now) result.skipped++
    else {
      await to.set(s.key, record)
      result.copied++
    }
    bar?.tick()
  }
  // each copy's failure is caught as it happens (one left for a later race would be an
  // unhandled rejection): the first is kept, and ends the scan
  let failure: { error: unknown } | undefined
  const running = new Set<Promise<void>>()
  try {
    for await (const s of scan()) {
      if (failure !== undefined) break
      const p: Promise<void> = copy(s)
        .catch((error: unknown) => {
          failure ??= { error }
        })
        .finally(() => running.delete(p))
      running.add(p)
      if (running.size >= (options.concurrency ?? 16)) await Promise.race(running)
      if (failure !== undefined) break
    }
  } finally {
    await Promise.all(running)
    bar?.stop()
  }
  if (failure !== undefined) throw failure.error
  out.line(
    `copied ${result.copied} session${result.copied === 1 ? '' : 's'} from ${from.name} to ${to.name}` +
      (result.skipped === 0 ? '' : ` (${result.skipped} expired, skipped)`),
  )
  return result
}
