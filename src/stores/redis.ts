/**
 * The Redis store: one hash per session, expired by Redis itself (`PEXPIRE`), patched by a
 * Lua script so concurrent requests merge. Works with an `ioredis` client (`Redis` or
 * `Cluster`) and a `redis` (node-redis) client or cluster, all built and owned by the app.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { redisStore } from 'tessera/stores/redis'
 * createSessions({ secret, store: redisStore({ client: new Redis(process.env.REDIS_URL) }) })
 * ```
 * @module
 */
import { createHash } from 'node:crypto'
import { SessionConfigError, type StoreOperation } from '../core/errors.js'
import type {
  SessionMeta,
  SessionPatch,
  SessionRecord,
  SessionStore,
  StoredSession,
} from '../core/store.js'
import { expiresAt } from '../core/store.js'
import { type Deadline, deadline, noDeadline } from './deadline.js'
import { checkStoreOptions } from './options.js'
import { checkedRecord, corruptRecord, listedMeta } from './record.js'

/** The part of an `ioredis` client (`Redis` or `Cluster`) the store calls. */
export interface IoRedisClientLike {
  call(command: string, ...args: (string | number)[]): Promise<unknown>
  /**
   * `Cluster` only: its nodes, so `count` and `scan` visit every master (read after a `PING`
   * through the cluster, which waits until it is ready).
   */
  nodes?(role: 'master'): IoRedisClientLike[]
}

/**
 * Per-command options the store gives node-redis: `{ timeout: 0 }` when the store keeps its own
 * deadline (see {@link RedisStoreOptions.timeout}).
 */
export interface NodeRedisCommandOptions {
  timeout?: number
}

/** The part of a `redis` (node-redis) client the store calls. */
export interface NodeRedisClientLike {
  sendCommand(args: string[], options?: NodeRedisCommandOptions): Promise<unknown>
}

/** The part of a `redis` (node-redis) cluster (`createCluster()`) the store calls. */
export interface NodeRedisClusterLike {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
    options?: NodeRedisCommandOptions,
  ): Promise<unknown>
  readonly masters: readonly unknown[]
  nodeClient(node: unknown): Promise<NodeRedisClientLike>
}

/** Any client the store accepts: ioredis `Redis`/`Cluster`, node-redis client/cluster. */
export type RedisClientLike = IoRedisClientLike | NodeRedisClientLike | NodeRedisClusterLike

/**
 * Options of {@link redisStore}.
 *
 * @example
 * ```ts
 * redisStore({ client: new Redis(process.env.REDIS_URL), prefix: 'myapp:sessions:' })
 * ```
 */
export interface RedisStoreOptions {
  /**
   * A connected client the app built and closes: `new Redis()` / `new Cluster()` from
   * `ioredis`, or `createClient()` / `createCluster()` from `redis` (after `connect()`).
   * Do not give ioredis a `keyPrefix`: use `prefix`, which `count` and `scan` honour.
   */
  client: RedisClientLike
  /**
   * Put before every key the store writes, so apps and test runs can share a server.
   * @default 'tessera:'
   */
  prefix?: string
  /**
   * How many keys one `SCAN` step asks for, in `count` and `scan`.
   * @default 1000
   */
  scanCount?: number
  /**
   * How long, in milliseconds, a command may go without a reply before the store call fails
   * (the manager reports it as a `SessionStoreError`): a request during a Redis outage gets a
   * clear error instead of waiting for the client to reconnect. The store keeps this deadline
   * itself, with one timer for all its commands, so it fires up to a quarter of it late; on
   * node-redis it turns off the client's own per-command timeout for the store's commands,
   * whose `AbortSignal.timeout()` costs more CPU than the command. `0` keeps no deadline and
   * leaves timing to the client's own settings (node-redis `commandOptions.timeout`, ioredis
   * `commandTimeout`).
   * @default 5000
   */
  timeout?: number
}

/** The Redis store and the optional parts it has. */
export interface RedisStore
  extends Required<
    Omit<SessionStore, 'name' | 'getNow' | 'patchNow' | 'touchNow' | 'prune' | 'close'>
  > {
  readonly name: 'redis'
}

/** One connection to Redis, whatever the client: send a command, routed by `key` on a cluster. */
interface Connection {
  send(args: string[], key?: string): Promise<unknown>
  /** A connection per master (itself on a single node), for SCAN. */
  masters(): Promise<Connection[]>
}

const NO_CLIENT_TIMEOUT: NodeRedisCommandOptions = Object.freeze({ timeout: 0 })

/**
 * A connection to `client`. `untimed`: the store keeps its own deadline, so node-redis is told
 * not to arm its per-command timeout.
 */
function connect(client: RedisClientLike, untimed: boolean): Connection {
  const c = client as Partial<IoRedisClientLike & NodeRedisClientLike & NodeRedisClusterLike>
  const options = untimed ? NO_CLIENT_TIMEOUT : undefined
  if (typeof c.call === 'function') {
    const io = client as IoRedisClientLike
    const conn: Connection = {
      send: ([command, ...args]) => io.call(command!, ...args),
      masters: async () => {
        if (!io.nodes) return [conn]
        // a Cluster knows its masters once it is ready: until then `nodes` lists none, or only
        // the nodes it was given. A command waits for ready (or fails, with no offline queue).
        await io.call('PING')
        return io.nodes('master').map((n) => connect(n, untimed))
      },
    }
    return conn
  }
  if (Array.isArray(c.masters) && typeof c.nodeClient === 'function') {
    const cluster = client as NodeRedisClusterLike
    return {
      send: (args, key) => cluster.sendCommand(key, false, args, options),
      masters: () =>
        Promise.all(
          cluster.masters.map(async (m) => connect(await cluster.nodeClient(m), untimed)),
        ),
    }
  }
  if (typeof c.sendCommand === 'function') {
    const node = client as NodeRedisClientLike
    const conn: Connection = {
      send: (args) => node.sendCommand(args, options),
      masters: async () => [conn],
    }
    return conn
  }
  throw new SessionConfigError(
    '[store:redis] `client` must be an ioredis Redis or Cluster, or a node-redis client or cluster',
  )
}

/** `conn` with `timed` around every command, its masters' too. */
function withDeadline(conn: Connection, timed: Deadline): Connection {
  const self: Connection = {
    send: (args, key) => timed(conn.send(args, key)),
    masters: async () =>
      (await timed(conn.masters())).map((m) => (m === conn ? self : withDeadline(m, timed))),
  }
  return self
}

interface Script {
  source: string
  sha: string
}
const script = (source: string): Script => ({
  source,
  sha: createHash('sha1').update(source).digest('hex'),
})

// The session hash: `m` the meta as JSON, `d:<name>` each field (the `u` field that earlier
// versions wrote is left alone and never read: the meta names the user).
// ARGV[1]: the time to live in milliseconds, then what each script adds, then field, value
// pairs, the meta first. Redis counts the time to live from when it runs the script, by its own
// clock, so skew between the app's clock and Redis's cannot expire a session early.

/** `command` with the ARGV from `first` to `last`, a thousand at a time (Lua's stack is small). */
const spread = (command: string, first: string, last: string) =>
  `for i = ${first}, ${last}, 1000 do redis.call('${command}', KEYS[1], unpack(ARGV, i, math.min(i + 999, ${last}))) end`

/** Replace the hash with the pairs from ARGV[first]. */
const replace = (first: number) => `redis.call('DEL', KEYS[1])
${spread('HSET', String(first), '#ARGV')}
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`

/** set: replace the hash. ARGV[2..]: the pairs. */
const SET = script(replace(2))

/**
 * add: set, only where no unexpired session is. ARGV[2] now, ARGV[3..]: the pairs. Redis
 * expires the hash by its own clock, the manager by the meta and the app's clock: a hash Redis
 * still keeps past its meta's expiry counts as none, as it does for the manager.
 */
const ADD = script(`local m = redis.call('HGET', KEYS[1], 'm')
if m then
  local meta = cjson.decode(m)
  if math.min(meta.idleExpiresAt, meta.absoluteExpiresAt) > tonumber(ARGV[2]) then return 0 end
end
${replace(3)}`)

/**
 * patch and touch: ARGV[2] how many names to delete (at the end), ARGV[3..] the pairs, then
 * those names. `PEXPIRE` answers 0 when the hash is gone (no resurrection after a logout
 * elsewhere), and a time to live of at least 1 ms never removes it, so it goes first: two
 * commands in all for an ordinary commit.
 */
const PATCH = script(`if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return 0 end
local last = #ARGV - tonumber(ARGV[2])
${spread('HSET', '3', 'last')}
${spread('HDEL', 'last + 1', '#ARGV')}
return 1`)

/** patch with clear: set, only where the hash still is. ARGV[2..]: the pairs. */
const REPLACE = script(`if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
${replace(2)}`)

/** destroy: remove the hash, answer its meta (which names its user). */
const DESTROY = script(`local m = redis.call('HGET', KEYS[1], 'm')
redis.call('DEL', KEYS[1])
return m`)

/** destroyByUser: remove the hash only while its meta still names ARGV[1]. */
const DESTROY_IF_OWNER = script(`local m = redis.call('HGET', KEYS[1], 'm')
if not m then return 0 end
local ok, meta = pcall(cjson.decode, m)
if ok and type(meta) == 'table' and meta.userId == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`)

// The user index: a sorted set of session keys scored by absolute expiry (which activity
// never moves, so a touch never has to update it), expiring with its last member.
const CLEAN = `redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])`

/** ARGV: now, member, score. Raises a member's score, never lowers it. */
const INDEX_ADD = script(`local cur = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not cur or tonumber(cur) < tonumber(ARGV[3]) then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2]) end
${CLEAN}
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', math.max(1, tonumber(top[2]) - tonumber(ARGV[1]))))
end
return 1`)

/** ARGV: now. The unexpired members. */
const INDEX_LIST = script(`${CLEAN}
return redis.call('ZRANGE', KEYS[1], 0, -1)`)

const isNoScript = (err: unknown) => err instanceof Error && err.message.startsWith('NOSCRIPT')

const text = (value: unknown): string | undefined =>
  value === null || value === undefined
    ? undefined
    : Buffer.isBuffer(value)
      ? value.toString('utf8')
      : String(value)

/**
 * The record in HGETALL's reply: a flat array of names and values (RESP2), or a Map or object
 * (RESP3); `undefined` when the hash is gone or has no meta; a `SessionStoreError` saying the
 * stored session is corrupt when its meta is not JSON or lacks its times.
 */
function recordOf(reply: unknown): SessionRecord | undefined {
  let meta: unknown
  const fields: Record<string, string> = {}
  const take = (name: string, value: string) => {
    if (name === 'm') {
      try {
        meta = JSON.parse(value)
      } catch {
        // not the parser's message: it quotes the meta
        throw corruptRecord('redis')
      }
    } else if (name.startsWith('d:')) fields[name.slice(2)] = value
  }
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) take(text(reply[i])!, text(reply[i + 1])!)
  } else if (reply instanceof Map) {
    for (const [name, value] of reply) take(text(name)!, text(value)!)
  } else if (reply !== null && typeof reply === 'object') {
    const object = reply as Record<string, unknown>
    for (const name in object) take(name, text(object[name])!)
  }
  return meta === undefined ? undefined : checkedRecord('redis', fields, meta)
}

const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&')
const STORE_KEY = /^[0-9a-f]{64}$/

/**
 * A Redis store.
 *
 * @example
 * ```ts
 * // ioredis
 * import { Redis } from 'ioredis'
 * const store = redisStore({ client: new Redis(process.env.REDIS_URL), prefix: 'myapp:' })
 *
 * // node-redis
 * import { createClient } from 'redis'
 * const client = await createClient({ url: process.env.REDIS_URL }).connect()
 * const store = redisStore({ client })
 * ```
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  checkStoreOptions('redis', options, { prefix: 'string' })
  const prefix = options.prefix ?? 'tessera:'
  const scanCount = options.scanCount ?? 1000
  const timed = deadline('redis', 'Redis', options.timeout)
  const redis =
    timed === noDeadline
      ? connect(options.client, false)
      : withDeadline(connect(options.client, true), timed)
  if (typeof prefix !== 'string')
    throw new SessionConfigError('[store:redis] `prefix` must be a string')
  if (!Number.isInteger(scanCount) || scanCount < 1)
    throw new SessionConfigError('[store:redis] `scanCount` must be a whole number of at least 1')
  const sessionKey = (key: string) => `${prefix}s:${key}`
  const userKey = (userId: string) => `${prefix}u:${userId}`

  async function run(s: Script, key: string, args: (string | number)[]): Promise<unknown> {
    const command = ['EVALSHA', s.sha, '1', key]
    for (const arg of args) command.push(typeof arg === 'string' ? arg : String(arg))
    try {
      return await redis.send(command, key)
    } catch (err) {
      if (!isNoScript(err)) throw err
      command[0] = 'EVAL'
      command[1] = s.source
      return redis.send(command, key)
    }
  }

  /** ARGV[1]: the time to live, at least 1 ms (a record already expired lives 1 ms). */
  const ttl = (meta: SessionMeta) => String(Math.max(1, Math.ceil(expiresAt(meta) - Date.now())))

  /** The pairs every write ends with: the meta, then each field. */
  const pairs = (args: string[], meta: SessionMeta, fields: Record<string, string>) => {
    args.push('m', JSON.stringify(meta))
    for (const name in fields) args.push(`d:${name}`, fields[name]!)
    return args
  }

  /**
   * Bind the session in its user's index before the session itself is written: a failure in
   * between leaves a member that lists nothing (it is checked against the hash), never a
   * bound session the index misses. Callers skip it for an anonymous session rather than
   * await a call that does nothing: one tick less on every write.
   */
  function index(key: string, userId: string, absoluteExpiresAt: number): Promise<unknown> {
    return run(INDEX_ADD, userKey(userId), [Date.now(), key, Math.ceil(absoluteExpiresAt)])
  }

  async function members(userId: string): Promise<string[]> {
    const reply = await run(INDEX_LIST, userKey(userId), [Date.now()])
    return (Array.isArray(reply) ? reply : []).map((m) => text(m)!)
  }

  /**
   * The meta of a session `operation` lists, undefined when it is gone; a corrupt one is an
   * error (see {@link listedMeta}).
   */
  async function metaOf(key: string, operation: StoreOperation): Promise<SessionMeta | undefined> {
    const m = text(await redis.send(['HGET', sessionKey(key), 'm'], sessionKey(key)))
    return m === undefined ? undefined : listedMeta('redis', operation, () => JSON.parse(m))
  }

  /**
   * Every session key, in batches, each once: `SCAN` may return a key twice (when the server's
   * table shrinks during the iteration, as it does while sessions expire), so the keys seen are
   * kept for the iteration, about 100 bytes each.
   */
  async function* keys(): AsyncGenerator<string[]> {
    const match = `${escapeGlob(prefix)}s:*`
    const seen = new Set<string>()
    for (const node of await redis.masters()) {
      let cursor = '0'
      do {
        const reply = (await node.send([
          'SCAN',
          cursor,
          'MATCH',
          match,
          'COUNT',
          String(scanCount),
        ])) as [unknown, unknown[]]
        cursor = text(reply[0]) ?? '0'
        const found: string[] = []
        for (const name of reply[1]) {
          const key = text(name)!.slice(prefix.length + 2)
          if (STORE_KEY.test(key) && !seen.has(key)) {
            seen.add(key)
            found.push(key)
          }
        }
        if (found.length > 0) yield found
      } while (cursor !== '0')
    }
  }

  /**
   * Indexes the record's user, then runs `script` (SET or ADD) with the record's time to live,
   * `extra` (ADD's time) and its pairs.
   */
  const write = async (script: Script, key: string, record: SessionRecord, ...extra: string[]) => {
    const { userId, absoluteExpiresAt } = record.meta
    if (userId !== undefined) await index(key, userId, absoluteExpiresAt)
    return run(
      script,
      sessionKey(key),
      pairs([ttl(record.meta), ...extra], record.meta, record.fields),
    )
  }

  /** The user a destroyed hash's meta named, if it named one (and none for meta not JSON). */
  const userOf = (m: unknown): string | undefined => {
    try {
      return (JSON.parse(text(m) ?? 'null') as SessionMeta | null)?.userId
    } catch {
      return undefined
    }
  }

  return {
    name: 'redis',
    async get(key) {
      const hash = sessionKey(key)
      return recordOf(await redis.send(['HGETALL', hash], hash))
    },
    async set(key, record) {
      await write(SET, key, record)
    },
    async add(key, record) {
      return Number(await write(ADD, key, record, String(Date.now()))) === 1
    },
    async patch(key, patch: SessionPatch, meta) {
      if (meta.userId !== undefined) await index(key, meta.userId, meta.absoluteExpiresAt)
      if (patch.clear) {
        return (
          Number(await run(REPLACE, sessionKey(key), pairs([ttl(meta)], meta, patch.set))) === 1
        )
      }
      const args = pairs([ttl(meta), String(patch.delete.length)], meta, patch.set)
      for (const name of patch.delete) args.push(`d:${name}`)
      return Number(await run(PATCH, sessionKey(key), args)) === 1
    },
    async touch(key, meta) {
      if (meta.userId !== undefined) await index(key, meta.userId, meta.absoluteExpiresAt)
      await run(PATCH, sessionKey(key), [ttl(meta), '0', 'm', JSON.stringify(meta)])
    },
    async destroy(key) {
      const userId = userOf(await run(DESTROY, sessionKey(key), []))
      if (userId !== undefined) await redis.send(['ZREM', userKey(userId), key], userKey(userId))
    },
    async listByUser(userId) {
      const now = Date.now()
      const found = await Promise.all(
        (await members(userId)).map(async (key) => {
          const meta = await metaOf(key, 'listByUser')
          return meta?.userId === userId && expiresAt(meta) > now ? { key, meta } : undefined
        }),
      )
      return found.filter((s): s is StoredSession => s !== undefined)
    },
    async destroyByUser(userId, exceptKey) {
      const doomed = (await members(userId)).filter((key) => key !== exceptKey)
      const gone: string[] = []
      await Promise.all(
        doomed.map(async (key) => {
          if (Number(await run(DESTROY_IF_OWNER, sessionKey(key), [userId])) === 1) gone.push(key)
        }),
      )
      if (gone.length > 0) await redis.send(['ZREM', userKey(userId), ...gone], userKey(userId))
      return gone.length
    },
    async count() {
      let n = 0
      for await (const batch of keys()) n += batch.length
      return n
    },
    async *scan() {
      for await (const batch of keys()) {
        const metas = await Promise.all(batch.map((key) => metaOf(key, 'scan')))
        for (let i = 0; i < batch.length; i++) {
          const meta = metas[i]
          if (meta !== undefined) yield { key: batch[i]!, meta }
        }
      }
    },
  }
}
