/**
 * The Memcached store: one item per session, expired by Memcached itself, patched by
 * compare-and-swap so concurrent requests merge. Takes a `memjs` client the app built; CAS
 * goes through memjs's binary-protocol `perform`, since memjs has no `gets`/`cas` of its own.
 *
 * Memcached cannot list its keys, so this store has no `count` and no `scan`.
 *
 * @example
 * ```ts
 * import memjs from 'memjs'
 * import { memcachedStore } from 'tessera/stores/memcached'
 * const client = memjs.Client.create('127.0.0.1:11211')
 * createSessions({ secret, store: memcachedStore({ client }) })
 * ```
 * @module
 */
import { createHash } from 'node:crypto'
import { SessionConfigError, SessionStoreError, type StoreOperation } from '../core/errors.js'
import type { SessionMeta, SessionStore, StoredSession } from '../core/store.js'
import { expiresAt } from '../core/store.js'
import { checkStoreOptions } from './options.js'
import { checkedRecord, corruptRecord, listedMeta } from './record.js'

/** The part of a `memjs` `Client` the store calls: its binary-protocol request path. */
export interface MemjsClientLike {
  readonly seq: number
  incrSeq(): void
  perform(
    key: string,
    request: Buffer,
    seq: number,
    callback: (err: Error | null, response: unknown) => void,
  ): void
}

/**
 * Options of {@link memcachedStore}.
 *
 * @example
 * ```ts
 * memcachedStore({ client: memjs.Client.create('127.0.0.1:11211'), prefix: 'myapp:' })
 * ```
 */
export interface MemcachedStoreOptions {
  /** A `memjs` client the app built and closes (`memjs.Client.create('host:11211')`). */
  client: MemjsClientLike
  /**
   * Put before every key the store writes. Printable ASCII without spaces, at most 184
   * characters (Memcached keys stop at 250 bytes; the store adds 66).
   * @default 'tessera:'
   */
  prefix?: string
  /**
   * How many times a write retries when another write to the same item won the
   * compare-and-swap, with jittered backoff, before failing with a `SessionStoreError`.
   * @default 20
   */
  casRetries?: number
}

/** The Memcached store: the contract plus the user index; no `count`, `scan` or `prune`. */
export interface MemcachedStore
  extends Required<
    Omit<
      SessionStore,
      'name' | 'getNow' | 'patchNow' | 'touchNow' | 'count' | 'scan' | 'prune' | 'close'
    >
  > {
  readonly name: 'memcached'
}

/** Past 30 days, Memcached reads an expiration as a unix time instead of seconds from now. */
const THIRTY_DAYS = 30 * 24 * 3600
const STORE_KEY = /^[0-9a-f]{64}$/
const PREFIX = /^[\x21-\x7e]*$/
const MAX_PREFIX = 250 - 66

/** Binary protocol opcodes. */
const Op = { Get: 0x00, Set: 0x01, Add: 0x02, Delete: 0x04 } as const
/** Binary protocol statuses the store acts on; the others are errors. */
const Status = { Ok: 0, NotFound: 1, Exists: 2 } as const
type Status = (typeof Status)[keyof typeof Status]
/** A compare-and-swap that lost to another write: try again. */
const LOST: unique symbol = Symbol('lost')
const STATUS: Record<number, string> = {
  3: 'value too large for the server (its item size limit is `memcached -I`)',
  4: 'invalid arguments',
  5: 'item not stored',
  129: 'unknown command (is the binary protocol turned off, `-B ascii`?)',
  130: 'out of memory',
}

interface Response {
  header: { status: number; cas: Buffer }
  val: Buffer
}

/** What a session item holds. */
interface Item {
  m: SessionMeta
  f: Record<string, string>
}
/** What a user index item holds: the user, and each session key with its absolute expiry. */
interface UserIndex {
  u: string
  s: Record<string, number>
}

const EMPTY = Buffer.alloc(0)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * A Memcached store.
 *
 * @example
 * ```ts
 * import memjs from 'memjs'
 * const store = memcachedStore({
 *   client: memjs.Client.create(process.env.MEMCACHED_URL ?? '127.0.0.1:11211'),
 *   prefix: 'myapp:',
 * })
 * ```
 */
export function memcachedStore(options: MemcachedStoreOptions): MemcachedStore {
  checkStoreOptions('memcached', options, { prefix: 'string' })
  const { client } = options
  const prefix = options.prefix ?? 'tessera:'
  const casRetries = options.casRetries ?? 20
  if (typeof client?.perform !== 'function' || typeof client.incrSeq !== 'function')
    throw new SessionConfigError('[store:memcached] `client` must be a memjs Client')
  if (typeof prefix !== 'string' || !PREFIX.test(prefix) || prefix.length > MAX_PREFIX)
    throw new SessionConfigError(
      `[store:memcached] \`prefix\` must be printable ASCII without spaces, at most ${MAX_PREFIX} characters`,
    )
  if (!Number.isInteger(casRetries) || casRetries < 1)
    throw new SessionConfigError(
      '[store:memcached] `casRetries` must be a whole number of at least 1',
    )

  const fail = (operation: StoreOperation, message: string) =>
    new SessionStoreError('memcached', operation, message)
  const sessionKey = (operation: StoreOperation, key: string) => {
    if (typeof key !== 'string' || !STORE_KEY.test(key))
      throw fail(operation, 'a key must be 64 characters of [0-9a-f]')
    return `${prefix}s:${key}`
  }
  const userKey = (userId: string) =>
    `${prefix}u:${createHash('sha256').update(userId).digest('hex')}`

  function send(key: string, opcode: number, extras = EMPTY, value = EMPTY, cas?: Buffer) {
    client.incrSeq()
    // memjs wraps its counter with `&= 0xffffffff`, which is negative from 2^31 on; memjs
    // matches a response by its header's unsigned number, so the same unsigned number is sent
    const seq = client.seq >>> 0
    const k = Buffer.from(key, 'latin1')
    const body = extras.length + k.length + value.length
    const request = Buffer.alloc(24 + body)
    request.writeUInt8(0x80, 0)
    request.writeUInt8(opcode, 1)
    request.writeUInt16BE(k.length, 2)
    request.writeUInt8(extras.length, 4)
    request.writeUInt32BE(body, 8)
    request.writeUInt32BE(seq, 12)
    cas?.copy(request, 16)
    extras.copy(request, 24)
    k.copy(request, 24 + extras.length)
    value.copy(request, 24 + extras.length + k.length)
    return new Promise<Response>((resolve, reject) =>
      client.perform(key, request, seq, (err, response) =>
        err ? reject(err) : resolve(response as Response),
      ),
    )
  }
  const check = (operation: StoreOperation, { header }: Response) => {
    if (header.status > Status.Exists)
      throw fail(operation, STATUS[header.status] ?? `server status ${header.status}`)
    return header.status as Status
  }

  async function get<T>(operation: StoreOperation, key: string) {
    const response = await send(key, Op.Get)
    if (check(operation, response) === Status.NotFound) return undefined
    let value: T
    try {
      value = JSON.parse(response.val.toString('utf8')) as T
    } catch {
      // not the parser's message: it quotes the item
      throw operation === 'get'
        ? corruptRecord('memcached')
        : fail(operation, 'a stored item is corrupt: it is not JSON')
    }
    return { value, cas: response.header.cas }
  }

  /**
   * Seconds from now, or a unix time past 30 days; undefined when `at` has passed. One second
   * more than `at` needs: Memcached's clock ticks once a second and counts from its last tick,
   * so an item given N seconds goes up to a second before N seconds have passed, and a live
   * session must not. The manager checks the meta's expiry on every load.
   */
  function expiration(at: number) {
    const now = Date.now()
    if (at <= now) return undefined
    const seconds = Math.ceil((at - now) / 1000) + 1
    return seconds > THIRTY_DAYS ? Math.ceil(at / 1000) + 1 : seconds
  }

  /**
   * Write an item expiring at `at` (deleting it when `at` has passed): `'set'` whatever is
   * there, `'add'` only where nothing is, a CAS value only over that version.
   */
  async function put(
    operation: StoreOperation,
    key: string,
    value: unknown,
    at: number,
    how: 'set' | 'add' | Buffer,
  ) {
    const cas = Buffer.isBuffer(how) ? how : undefined
    const exp = expiration(at)
    if (exp === undefined) return remove(operation, key, cas)
    const extras = Buffer.alloc(8)
    extras.writeUInt32BE(exp, 4)
    const op = how === 'add' ? Op.Add : Op.Set
    return check(operation, await send(key, op, extras, Buffer.from(JSON.stringify(value)), cas))
  }

  async function remove(operation: StoreOperation, key: string, cas?: Buffer) {
    return check(operation, await send(key, Op.Delete, EMPTY, EMPTY, cas))
  }

  /** Run `attempt` until it stops reporting a lost compare-and-swap. */
  async function retry<T>(operation: StoreOperation, attempt: () => Promise<T | typeof LOST>) {
    for (let i = 0; i < casRetries; i++) {
      const result = await attempt()
      if (result !== LOST) return result
      await sleep(Math.random() * Math.min(50, 2 ** i))
    }
    throw fail(
      operation,
      `gave up after ${casRetries} compare-and-swap attempts: other writes to the same item kept winning; raise \`casRetries\` if this is expected`,
    )
  }

  /**
   * Change a session item by compare-and-swap: false when there is none. `change` returns the
   * new item.
   */
  function update(operation: StoreOperation, key: string, change: (item: Item) => Item) {
    const k = sessionKey(operation, key)
    return retry(operation, async () => {
      const current = await get<Item>(operation, k)
      if (current === undefined) return false
      const next = change(current.value)
      const status = await put(operation, k, next, expiresAt(next.m), current.cas)
      if (status === Status.Exists) return LOST
      return status === Status.Ok
    })
  }

  /** Change a user's index by compare-and-swap; `change` returns undefined to leave it as is. */
  function updateIndex(
    operation: StoreOperation,
    userId: string,
    change: (index: UserIndex) => UserIndex | undefined,
  ) {
    const k = userKey(userId)
    return retry(operation, async () => {
      const current = await get<UserIndex>(operation, k)
      const before = current?.value.u === userId ? current.value : { u: userId, s: {} }
      const next = change({ u: userId, s: { ...before.s } })
      if (next === undefined) return true
      const now = Date.now()
      let last = 0
      for (const [key, at] of Object.entries(next.s)) {
        if (at <= now) delete next.s[key]
        else last = Math.max(last, at)
      }
      if (last === 0) {
        // nothing left: remove the index (gone already is as good)
        if (current !== undefined) await remove(operation, k, current.cas)
        return true
      }
      const status = await put(operation, k, next, last, current?.cas ?? 'add')
      return status === Status.Ok ? true : LOST
    })
  }

  /**
   * Bind the session in its user's index before the session itself is written: a failure in
   * between leaves an entry that lists nothing (it is checked against the session), never a
   * bound session the index misses. Entries carry the absolute expiry, which activity never
   * moves, so a touch finds its entry already there and writes nothing.
   */
  async function index(operation: StoreOperation, key: string, meta: SessionMeta) {
    if (meta.userId === undefined) return
    const at = meta.absoluteExpiresAt
    await updateIndex(operation, meta.userId, (idx) => {
      if ((idx.s[key] ?? 0) >= at) return undefined
      idx.s[key] = at
      return idx
    })
  }

  /** The unexpired keys of a user's index; drops its expired entries. */
  async function members(operation: StoreOperation, userId: string) {
    const current = await get<UserIndex>(operation, userKey(userId))
    if (current === undefined || current.value.u !== userId) return []
    const now = Date.now()
    const entries = Object.entries(current.value.s)
    const live = entries.filter(([, at]) => at > now).map(([key]) => key)
    if (live.length < entries.length) await updateIndex(operation, userId, (idx) => idx)
    return live
  }

  return {
    name: 'memcached',
    async get(key) {
      const item = await get<Partial<Item> | null>('get', sessionKey('get', key))
      // an item of another shape is refused, never loaded as a session without expiry
      return item === undefined
        ? undefined
        : checkedRecord('memcached', item.value?.f, item.value?.m)
    },
    async set(key, record) {
      const k = sessionKey('set', key)
      await index('set', key, record.meta)
      const item: Item = { m: record.meta, f: record.fields }
      await put('set', k, item, expiresAt(record.meta), 'set')
    },
    /**
     * Memcached's own add settles racing writers. It counts whole seconds, so it may keep an
     * item a second or two past its meta's expiry: that one counts as none and is replaced by
     * compare-and-swap over the version checked, which again only one writer wins.
     */
    async add(key, record) {
      const k = sessionKey('add', key)
      await index('add', key, record.meta)
      const item: Item = { m: record.meta, f: record.fields }
      const at = expiresAt(record.meta)
      return retry('add', async () => {
        // put deletes whatever is there when the record has already expired: only look then
        const expired = expiration(at) === undefined
        if (!expired && (await put('add', k, item, at, 'add')) === Status.Ok) return true
        const current = await get<Item>('add', k)
        if (current === undefined) return expired || LOST
        if (expiresAt(current.value.m) > Date.now()) return false
        return (await put('add', k, item, at, current.cas)) === Status.Ok || LOST
      })
    },
    async patch(key, patch, meta) {
      sessionKey('patch', key)
      await index('patch', key, meta)
      return update('patch', key, (item) => {
        const f = patch.clear ? {} : item.f
        for (const name in patch.set) f[name] = patch.set[name]!
        for (const name of patch.delete) delete f[name]
        return { m: meta, f }
      })
    },
    async touch(key, meta) {
      sessionKey('touch', key)
      await index('touch', key, meta)
      await update('touch', key, (item) => ({ m: meta, f: item.f }))
    },
    async destroy(key) {
      const k = sessionKey('destroy', key)
      const item = await get<Item>('destroy', k)
      if (item === undefined) return
      await remove('destroy', k)
      // an item of another shape goes too: deleting it is the remedy for it
      const userId = item.value?.m?.userId
      if (userId !== undefined)
        await updateIndex('destroy', userId, (idx) => {
          if (!(key in idx.s)) return undefined
          delete idx.s[key]
          return idx
        })
    },
    async listByUser(userId) {
      const now = Date.now()
      const found = await Promise.all(
        (await members('listByUser', userId)).map(async (key) => {
          const item = await get<Item | null>('listByUser', sessionKey('listByUser', key))
          if (item === undefined) return undefined
          const meta = listedMeta('memcached', 'listByUser', () => item.value?.m)
          return meta.userId === userId && expiresAt(meta) > now ? { key, meta } : undefined
        }),
      )
      return found.filter((s): s is StoredSession => s !== undefined)
    },
    async destroyByUser(userId, exceptKey) {
      const doomed = (await members('destroyByUser', userId)).filter((key) => key !== exceptKey)
      const gone: string[] = []
      await Promise.all(
        doomed.map((key) => {
          const k = sessionKey('destroyByUser', key)
          // delete only while it is still this user's, and only the version that was checked
          return retry('destroyByUser', async () => {
            const item = await get<Item | null>('destroyByUser', k)
            if (item?.value?.m?.userId !== userId) return false
            const status = await remove('destroyByUser', k, item.cas)
            if (status === Status.Exists) return LOST
            if (status === Status.Ok) gone.push(key)
            return true
          })
        }),
      )
      if (gone.length > 0)
        await updateIndex('destroyByUser', userId, (idx) => {
          for (const key of gone) delete idx.s[key]
          return idx
        })
      return gone.length
    },
  }
}
