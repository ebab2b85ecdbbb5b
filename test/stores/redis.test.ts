import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  createSessions,
  SessionConfigError,
  type SessionStore,
  SessionStoreError,
} from '../../src/index.js'
import { type RedisClientLike, redisStore } from '../../src/stores/redis.js'
import { describeStoreConformance, meta, newKey } from '../conformance/store-suite.js'
import { SECRET } from '../helpers/http.js'
import { freePorts, redisBinaries, startRedisServer } from '../helpers/redis-cluster.js'
import { REDIS_URL, service } from '../helpers/services.js'

const redis = await service('redis', REDIS_URL)
const binaries = redis.available && (await redisBinaries())

const CAPABILITIES = ['add', 'listByUser', 'destroyByUser', 'count', 'scan'] as const
const testPrefix = () => `tessera-test-${process.pid}-${randomBytes(4).toString('hex')}:`

/** Delete every key under `prefix` (SCAN, never KEYS). */
async function dropPrefix(admin: Redis, prefix: string) {
  const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
  let cursor = '0'
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', match, 'COUNT', 1000)
    if (keys.length > 0) await admin.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

describe.skipIf(!redis.available)('redis store', () => {
  let admin: Redis
  beforeAll(() => {
    admin = new Redis(REDIS_URL)
  })
  afterAll(() => admin.quit())

  const clients = {
    ioredis: async () => {
      const client = new Redis(REDIS_URL)
      return { client: client as RedisClientLike, close: () => client.quit() }
    },
    // the docs recommend it: commands of one tick written together, as node-redis does
    'ioredis enableAutoPipelining': async () => {
      const client = new Redis(REDIS_URL, { enableAutoPipelining: true })
      return { client: client as RedisClientLike, close: () => client.quit() }
    },
    'node-redis': async () => {
      const client = await createClient({ url: REDIS_URL }).connect()
      return { client: client as RedisClientLike, close: () => client.close() }
    },
    'node-redis RESP2': async () => {
      const client = await createClient({ url: REDIS_URL, RESP: 2 }).connect()
      return { client: client as RedisClientLike, close: () => client.close() }
    },
  }
  for (const [kind, make] of Object.entries(clients)) {
    let close: () => Promise<unknown>
    const prefix = testPrefix()
    describeStoreConformance(`redis (${kind})`, {
      create: async () => {
        const made = await make()
        close = made.close
        return redisStore({ client: made.client, prefix })
      },
      cleanup: async () => {
        await dropPrefix(admin, prefix)
        await close()
      },
      expiry: 'ttl',
      capabilities: CAPABILITIES,
    })
  }

  describe('how it keeps sessions', () => {
    const prefix = testPrefix()
    let client: Redis
    let store: ReturnType<typeof redisStore>
    beforeAll(() => {
      client = new Redis(REDIS_URL)
      store = redisStore({ client, prefix })
    })
    afterAll(async () => {
      await dropPrefix(admin, prefix)
      await client.quit()
    })

    /** Redis's expiry of `name`, which counts the store's time to live from when it ran. */
    const expiresBetween = async (name: string, from: number, at: number) => {
      const expiry = await admin.pexpiretime(name)
      expect(expiry).toBeGreaterThanOrEqual(at)
      expect(expiry).toBeLessThanOrEqual(at + (Date.now() - from) + 1)
    }

    it('writes one hash per session, expiring with the record, and a user index', async () => {
      const key = newKey()
      const m = meta({ userId: 'u-keys' })
      const before = Date.now()
      await store.set(key, { fields: { a: '1', m: '"data named m"' }, meta: m })
      expect(await admin.type(`${prefix}s:${key}`)).toBe('hash')
      expect(await admin.hgetall(`${prefix}s:${key}`)).toEqual({
        m: JSON.stringify(m),
        'd:a': '1',
        'd:m': '"data named m"',
      })
      await expiresBetween(`${prefix}s:${key}`, before, m.idleExpiresAt)
      expect(await admin.zscore(`${prefix}u:u-keys`, key)).toBe(String(m.absoluteExpiresAt))
      await expiresBetween(`${prefix}u:u-keys`, before, m.absoluteExpiresAt)
      expect((await store.get(key))?.fields).toEqual({ a: '1', m: '"data named m"' })
    })

    it('expires at the absolute expiry when it comes before the idle one', async () => {
      const key = newKey()
      const now = Date.now()
      const m = meta({ idleExpiresAt: now + 60_000, absoluteExpiresAt: now + 30_000 }, now)
      await store.set(key, { fields: {}, meta: m })
      await expiresBetween(`${prefix}s:${key}`, now, now + 30_000)
      await store.touch(key, { ...m, idleExpiresAt: now + 90_000 })
      await expiresBetween(`${prefix}s:${key}`, now, now + 30_000)
    })

    it('counts the time to live on its own clock: an app clock behind Redis expires nothing early', async () => {
      // the record says it lives ten more minutes by the app's clock; Redis's clock is an hour
      // ahead of it. With an absolute PEXPIREAT the hash would be gone at once
      const key = newKey()
      const appNow = Date.now()
      vi.useFakeTimers({ now: appNow - 3_600_000, toFake: ['Date'] })
      try {
        const m = meta({ idleExpiresAt: Date.now() + 600_000 }, Date.now())
        await store.set(key, { fields: { a: '1' }, meta: m })
        await store.patch(key, { clear: false, set: { b: '2' }, delete: [] }, m)
        await store.touch(key, m)
      } finally {
        vi.useRealTimers()
      }
      expect(await admin.pttl(`${prefix}s:${key}`)).toBeGreaterThan(590_000)
      expect((await store.get(key))?.fields).toEqual({ a: '1', b: '2' })
    })

    it("a record already expired by the app's clock lives a millisecond, never without expiry", async () => {
      const key = newKey()
      const now = Date.now()
      const live = meta({}, now)
      await store.set(key, { fields: { a: '1' }, meta: live })
      const past = meta({ idleExpiresAt: now - 1_000 }, now - 60_000)
      await store.patch(key, { clear: false, set: { b: '2' }, delete: [] }, past)
      const ttl = await admin.pttl(`${prefix}s:${key}`)
      expect(ttl === -2 || (ttl >= 0 && ttl <= 1)).toBe(true)
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(await admin.exists(`${prefix}s:${key}`)).toBe(0)
    })

    it('a patch moves the expiry and the user binding in one step', async () => {
      const key = newKey()
      const now = Date.now()
      await store.set(key, { fields: { a: '1' }, meta: meta({ userId: 'u-before' }, now) })
      const after = meta({ idleExpiresAt: now + 45 * 60_000 }, now)
      expect(await store.patch(key, { clear: false, set: { b: '2' }, delete: [] }, after)).toBe(
        true,
      )
      await expiresBetween(`${prefix}s:${key}`, now, now + 45 * 60_000)
      expect(await admin.hget(`${prefix}s:${key}`, 'm')).toBe(JSON.stringify(after))
      expect(await store.listByUser('u-before')).toEqual([])
      expect(await store.destroyByUser('u-before')).toBe(0)
      expect(await store.get(key)).toBeDefined()
    })

    it('a patch of many fields at once writes and deletes them all', async () => {
      // more arguments than Lua's stack takes in one unpack()
      const key = newKey()
      const many = Object.fromEntries(Array.from({ length: 3_000 }, (_, i) => [`f${i}`, `${i}`]))
      await store.set(key, { fields: many, meta: meta() })
      const set = Object.fromEntries(Array.from({ length: 2_500 }, (_, i) => [`g${i}`, `${i}`]))
      const gone = Array.from({ length: 2_999 }, (_, i) => `f${i}`)
      expect(await store.patch(key, { clear: false, set, delete: gone }, meta())).toBe(true)
      expect((await store.get(key))?.fields).toEqual({ ...set, f2999: '2999' })
    })

    it('reads a session written by an earlier version, with its `u` field', async () => {
      const key = newKey()
      const m = meta({ userId: 'u-legacy' })
      await admin.hset(`${prefix}s:${key}`, 'm', JSON.stringify(m), 'u', 'u-legacy', 'd:a', '1')
      await admin.pexpire(`${prefix}s:${key}`, 60_000)
      await admin.zadd(`${prefix}u:u-legacy`, m.absoluteExpiresAt, key)
      expect(await store.get(key)).toEqual({ fields: { a: '1' }, meta: m })
      expect((await store.listByUser('u-legacy')).map((s) => s.key)).toEqual([key])
      expect(await store.destroyByUser('u-legacy')).toBe(1)
      expect(await admin.exists(`${prefix}s:${key}`)).toBe(0)
    })

    it('a session whose meta is not JSON or lacks its times fails get as corrupt, never loads without expiry', async () => {
      const now = Date.now()
      const metas = [
        JSON.stringify({ createdAt: 1 }),
        JSON.stringify({ ...meta({}, now), idleExpiresAt: String(now + 60_000) }),
        JSON.stringify({ ...meta({}, now), userId: 42 }),
        'null',
        'secret-data {',
      ]
      for (const m of metas) {
        const key = newKey()
        await admin.hset(`${prefix}s:${key}`, 'm', m, 'd:role', '"secret-data"')
        await admin.pexpire(`${prefix}s:${key}`, 60_000)
        const error = await store.get(key).then(
          (record) => record,
          (e: unknown) => e,
        )
        expect(error, m).toMatchObject({
          code: 'ERR_SESSION_STORE',
          store: 'redis',
          operation: 'get',
          message: expect.stringMatching(/the stored session is corrupt/),
        })
        expect((error as Error).message).not.toContain(key)
        expect((error as Error).message).not.toContain('secret-data')
      }
      // a hash with no meta at all is no session, as before
      const key = newKey()
      await admin.hset(`${prefix}s:${key}`, 'd:role', '"x"')
      await admin.pexpire(`${prefix}s:${key}`, 60_000)
      expect(await store.get(key)).toBeUndefined()
    })

    it('a session whose meta is not a JSON object fails scan and listByUser as corrupt, without quoting it', async () => {
      const user = `u-${newKey().slice(0, 8)}`
      const odd = testPrefix()
      const own = redisStore({ client, prefix: odd })
      const scanAll = async () => {
        for await (const _ of own.scan());
      }
      try {
        for (const text of ['secret-data {', 'null', '["secret-data"]']) {
          const key = newKey()
          await own.set(key, { fields: {}, meta: meta({ userId: user }) })
          await admin.hset(`${odd}s:${key}`, 'm', text)
          for (const [operation, call] of [
            ['scan', scanAll],
            ['listByUser', () => own.listByUser(user)],
          ] as const) {
            const error = await call().then(
              (found) => found,
              (e: unknown) => e,
            )
            expect(error, `${operation}: ${text}`).toBeInstanceOf(SessionStoreError)
            expect(error).toMatchObject({ store: 'redis', operation })
            expect((error as Error).message).toMatch(/stored session is corrupt/)
            expect((error as Error).message).not.toContain('secret-data')
            expect((error as Error).message).not.toContain(key)
          }
          await own.destroy(key)
        }
      } finally {
        await dropPrefix(admin, odd)
      }
    })

    it('listByUser drops expired members from the index and skips members bound elsewhere', async () => {
      const user = `u-${newKey().slice(0, 8)}`
      const live = newKey()
      await store.set(live, { fields: {}, meta: meta({ userId: user }) })
      // a member rebound to another user, and one whose absolute expiry passed
      const moved = newKey()
      await store.set(moved, { fields: {}, meta: meta({ userId: user }) })
      await store.touch(moved, meta({ userId: `${user}-other` }))
      await admin.zadd(`${prefix}u:${user}`, Date.now() - 1000, newKey())
      expect(await admin.zcard(`${prefix}u:${user}`)).toBe(3)
      expect((await store.listByUser(user)).map((s) => s.key)).toEqual([live])
      expect(await admin.zcard(`${prefix}u:${user}`)).toBe(2)
      // destroyByUser leaves the session now bound elsewhere alone
      expect(await store.destroyByUser(user)).toBe(1)
      expect(await store.get(moved)).toBeDefined()
      expect(await store.get(live)).toBeUndefined()
    })

    it('destroy removes the session from its user index', async () => {
      const key = newKey()
      await store.set(key, { fields: {}, meta: meta({ userId: 'u-destroy' }) })
      await store.destroy(key)
      expect(await admin.exists(`${prefix}u:u-destroy`)).toBe(0)
    })

    it('count and scan see only their own prefix, even one with glob characters', async () => {
      const odd = `${testPrefix()}[a-z]*?\\:`
      const near = `${odd.slice(0, -3)}x:`
      const a = redisStore({ client, prefix: odd })
      const b = redisStore({ client, prefix: near })
      try {
        for (let i = 0; i < 3; i++) await a.set(newKey(), { fields: {}, meta: meta() })
        await b.set(newKey(), { fields: {}, meta: meta() })
        expect(await a.count()).toBe(3)
        expect(await b.count()).toBe(1)
        const seen = []
        for await (const s of a.scan()) seen.push(s)
        expect(seen).toHaveLength(3)
      } finally {
        await dropPrefix(admin, odd)
        await dropPrefix(admin, near)
      }
    })

    it('count and scan give each session once, though SCAN may return a key twice', async () => {
      // Redis returns a key again when its table shrinks during the iteration (sessions
      // expiring); here every SCAN reply lists its keys twice
      const twice = new Proxy(client, {
        get(target, name) {
          const value = Reflect.get(target, name, target) as unknown
          if (name !== 'call') return typeof value === 'function' ? value.bind(target) : value
          return async (command: string, ...args: unknown[]) => {
            const reply = await target.call(command, ...(args as string[]))
            if (command.toUpperCase() !== 'SCAN') return reply
            const [cursor, keys] = reply as [string, string[]]
            return [cursor, [...keys, ...keys]]
          }
        },
      })
      const odd = testPrefix()
      const store = redisStore({ client: twice as RedisClientLike, prefix: odd, scanCount: 2 })
      try {
        for (let i = 0; i < 5; i++) await store.set(newKey(), { fields: {}, meta: meta() })
        expect(await store.count()).toBe(5)
        const seen = []
        for await (const s of store.scan()) seen.push(s.key)
        expect(new Set(seen).size).toBe(5)
        expect(seen).toHaveLength(5)
      } finally {
        await dropPrefix(admin, odd)
      }
    })

    it('refuses a client it cannot drive', () => {
      expect(() => redisStore({ client: {} as RedisClientLike })).toThrow(SessionConfigError)
    })

    it('refuses a timeout that is not a whole number of milliseconds', () => {
      for (const timeout of [-1, 1.5, Number.NaN, 2 ** 31, '100' as unknown as number])
        expect(() => redisStore({ client, timeout }), String(timeout)).toThrow(
          /`timeout` must be a whole number/,
        )
    })

    it('on node-redis, arms no per-command timer of the client unless told timeout: 0', async () => {
      const node = await createClient({ url: REDIS_URL }).connect()
      const armed = vi.spyOn(AbortSignal, 'timeout')
      try {
        const key = newKey()
        const own = redisStore({ client: node, prefix })
        await own.set(key, { fields: { a: '1' }, meta: meta() })
        expect((await own.get(key))?.fields).toEqual({ a: '1' })
        expect(armed).not.toHaveBeenCalled()
        // timeout: 0 leaves timing to the client: node-redis 6 arms its 5-second default
        await redisStore({ client: node, prefix, timeout: 0 }).get(key)
        expect(armed).toHaveBeenCalledWith(5000)
      } finally {
        armed.mockRestore()
        await node.close()
      }
    })
  })

  describe.skipIf(!binaries)('store failures through the manager', () => {
    const prefix = testPrefix()
    afterAll(() => dropPrefix(admin, prefix))

    /** A committed session on the shared server, and its cookie header. */
    async function liveCookie() {
      const sessions = createSessions({
        secret: SECRET,
        store: redisStore({ client: admin, prefix }),
      })
      const session = await sessions.load(undefined)
      session.set('count', 1)
      const [setCookie] = await sessions.commit(session)
      return setCookie!.split(';')[0]!
    }

    const expectStoreError = (promise: Promise<unknown>, operation: string) =>
      expect(promise).rejects.toMatchObject({
        code: 'ERR_SESSION_STORE',
        store: 'redis',
        operation,
      })

    const stoppable = {
      ioredis: async (url: string) => {
        const client = new Redis(url, {
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          retryStrategy: () => null,
        })
        client.on('error', () => {})
        await new Promise((resolve) => client.once('ready', resolve))
        return { client: client as RedisClientLike, close: () => client.disconnect() }
      },
      'node-redis': async (url: string) => {
        const client = createClient({
          url,
          disableOfflineQueue: true,
          socket: { reconnectStrategy: false, connectTimeout: 500 },
        })
        client.on('error', () => {})
        await client.connect()
        return {
          client: client as RedisClientLike,
          close: () => (client.isOpen ? client.destroy() : undefined),
        }
      },
    }

    for (const [kind, make] of Object.entries(stoppable)) {
      it(`${kind}: a server stopped fails load and commit with SessionStoreError`, async () => {
        const server = await startRedisServer()
        let close = () => {}
        try {
          const made = await make(server.url)
          const client = made.client
          close = made.close
          const sessions = createSessions({ secret: SECRET, store: redisStore({ client }) })
          const first = await sessions.load(undefined)
          first.set('count', 1)
          const cookie = (await sessions.commit(first))[0]!.split(';')[0]!
          const loaded = await sessions.load(cookie)
          expect(loaded.get('count')).toBe(1)

          await server.stop()
          await expectStoreError(sessions.load(cookie), 'get')
          loaded.set('count', 2)
          await expectStoreError(sessions.commit(loaded), 'patch')
        } finally {
          close()
          await server.stop()
        }
      })
    }

    const unreachable = {
      ioredis: async (port: number) => {
        const client = new Redis({
          port,
          host: '127.0.0.1',
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          enableOfflineQueue: false,
          retryStrategy: () => null,
          connectTimeout: 500,
        })
        client.on('error', () => {})
        return { client: client as RedisClientLike, close: () => client.disconnect() }
      },
      'node-redis': async (port: number) => {
        const client = createClient({
          socket: { host: '127.0.0.1', port, reconnectStrategy: false, connectTimeout: 500 },
          disableOfflineQueue: true,
        })
        client.on('error', () => {})
        await expect(client.connect()).rejects.toThrow()
        return { client: client as RedisClientLike, close: () => {} }
      },
    }

    for (const [kind, make] of Object.entries(unreachable)) {
      it(`${kind}: a closed port fails load and commit fast with SessionStoreError`, async () => {
        const cookie = await liveCookie()
        const [port] = await freePorts(1)
        const { client, close } = await make(port!)
        try {
          const started = Date.now()
          const store: SessionStore = redisStore({ client, prefix })
          const sessions = createSessions({ secret: SECRET, store })
          await expectStoreError(sessions.load(cookie), 'get')
          const fresh = await sessions.load(undefined)
          fresh.set('count', 1)
          await expectStoreError(sessions.commit(fresh), 'set')
          expect(Date.now() - started).toBeLessThan(5000)
        } finally {
          close()
        }
      })
    }

    // The clients as built by default: an offline queue, reconnecting for ever, and node-redis's
    // own timeout covering only commands not yet sent.
    const waiting = {
      ioredis: async (url: string) => {
        const client = new Redis(url)
        client.on('error', () => {})
        return { client: client as RedisClientLike, close: () => client.disconnect() }
      },
      'node-redis': async (url: string) => {
        const client = createClient({ url })
        client.on('error', () => {})
        await client.connect()
        return { client: client as RedisClientLike, close: () => client.destroy() }
      },
    }

    for (const [kind, make] of Object.entries(waiting)) {
      it(`${kind} with default settings: a server that stops answering fails load within the timeout`, async () => {
        const server = await startRedisServer()
        const { client, close } = await make(server.url)
        try {
          const sessions = createSessions({
            secret: SECRET,
            store: redisStore({ client, timeout: 300 }),
          })
          const first = await sessions.load(undefined)
          first.set('count', 1)
          const cookie = (await sessions.commit(first))[0]!.split(';')[0]!

          server.freeze()
          const started = Date.now()
          const failed = sessions.load(cookie)
          await expectStoreError(failed, 'get')
          await expect(failed).rejects.toMatchObject({
            cause: { message: expect.stringMatching(/no reply from Redis within 300 ms/) },
          })
          const took = Date.now() - started
          expect(took).toBeGreaterThanOrEqual(290)
          expect(took).toBeLessThan(1500)

          // the server comes back: its late reply to the failed command goes nowhere, and the
          // session is still there
          server.thaw()
          expect((await sessions.load(cookie)).get('count')).toBe(1)
        } finally {
          close()
          await server.stop()
        }
      })
    }

    it('reloads its scripts when the server lost them (SCRIPT FLUSH, restart)', async () => {
      const server = await startRedisServer()
      const client = new Redis(server.url)
      try {
        const store = redisStore({ client })
        const key = newKey()
        await store.set(key, { fields: { a: '1' }, meta: meta({ userId: 'u' }) })
        await client.script('FLUSH')
        expect(await store.patch(key, { clear: false, set: { b: '2' }, delete: [] }, meta())).toBe(
          true,
        )
        expect((await store.get(key))?.fields).toEqual({ a: '1', b: '2' })
      } finally {
        client.disconnect()
        await server.stop()
      }
    })
  })
})
