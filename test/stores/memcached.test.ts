import { createHash, randomBytes } from 'node:crypto'
import { Client } from 'memjs'
import { afterAll, describe, expect, it } from 'vitest'
import {
  createSessions,
  SessionConfigError,
  type SessionStore,
  SessionStoreError,
} from '../../src/index.js'
import {
  type MemcachedStore,
  type MemjsClientLike,
  memcachedStore,
} from '../../src/stores/memcached.js'
import { describeStoreConformance, meta, newKey } from '../conformance/store-suite.js'
import { SECRET } from '../helpers/http.js'
import { memcachedService, startMemcached } from '../helpers/memcached.js'

const memcached = await memcachedService()
afterAll(() => memcached.stop())

const quiet = { log: () => {} }
const connect = (url = memcached.url) =>
  Client.create(url, { retries: 1, timeout: 1, logger: quiet, expires: 0 })
const testPrefix = () => `tessera-test-${process.pid}-${randomBytes(4).toString('hex')}:`
const userKey = (prefix: string, userId: string) =>
  `${prefix}u:${createHash('sha256').update(userId).digest('hex')}`

/**
 * Memcached cannot list keys, so the tests remember what they wrote (session keys and users)
 * and delete it afterwards.
 */
function tracked(store: MemcachedStore, client: Client, prefix: string) {
  const keys = new Set<string>()
  const users = new Set<string>()
  const note = (key: string, userId?: string) => {
    keys.add(key)
    if (userId !== undefined) users.add(userId)
  }
  const wrapped: MemcachedStore = {
    ...store,
    set(key, record) {
      note(key, record.meta.userId)
      return store.set(key, record)
    },
    add(key, record) {
      note(key, record.meta.userId)
      return store.add(key, record)
    },
    patch(key, patch, m) {
      note(key, m.userId)
      return store.patch(key, patch, m)
    },
    touch(key, m) {
      note(key, m.userId)
      return store.touch(key, m)
    },
  }
  const cleanup = async () => {
    await Promise.all([...keys].map((key) => client.delete(`${prefix}s:${key}`)))
    await Promise.all([...users].map((user) => client.delete(userKey(prefix, user))))
  }
  return { store: wrapped, cleanup }
}

describe.skipIf(!memcached.available)('memcached store', () => {
  {
    const prefix = testPrefix()
    let client: Client
    let cleanup: () => Promise<void>
    describeStoreConformance('memcached (memjs)', {
      create: () => {
        client = connect()
        const t = tracked(memcachedStore({ client, prefix }), client, prefix)
        cleanup = t.cleanup
        return t.store
      },
      cleanup: async () => {
        await cleanup()
        client.close()
      },
      expiry: 'ttl',
      capabilities: ['add', 'listByUser', 'destroyByUser'],
    })
  }

  describe('how it keeps sessions', () => {
    const prefix = testPrefix()
    const client = connect()
    const { store, cleanup } = tracked(memcachedStore({ client, prefix }), client, prefix)
    afterAll(async () => {
      await cleanup()
      client.close()
    })

    it('writes one JSON item per session and a user index keyed by the user’s hash', async () => {
      const key = newKey()
      const m = meta({ userId: 'u keys ✓' })
      await store.set(key, { fields: { a: '1' }, meta: m })
      const item = await client.get(`${prefix}s:${key}`)
      expect(JSON.parse(item.value!.toString())).toEqual({ m, f: { a: '1' } })
      const index = await client.get(userKey(prefix, 'u keys ✓'))
      expect(JSON.parse(index.value!.toString())).toEqual({
        u: 'u keys ✓',
        s: { [key]: m.absoluteExpiresAt },
      })
    })

    it('keeps a record whose expiry is more than 30 days away (sent as a unix time)', async () => {
      const key = newKey()
      const now = Date.now()
      const day = 86_400_000
      await store.set(key, {
        fields: { a: '1' },
        meta: meta({ idleExpiresAt: now + 60 * day, absoluteExpiresAt: now + 90 * day }, now),
      })
      expect(await store.get(key)).toBeDefined()
      await store.touch(
        key,
        meta({ idleExpiresAt: now + 61 * day, absoluteExpiresAt: now + 90 * day }, now),
      )
      expect(await store.get(key)).toBeDefined()
    })

    it('keeps a record until its expiry, though Memcached expires on its once-a-second tick', async () => {
      // Memcached counts an expiration of N seconds from its clock's last tick, so an item set
      // 0.7 s after a tick is gone N - 0.7 s later. Ten records set 100 ms apart meet every
      // phase of that tick; each is read 100 ms before its expiry.
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)))
      const reads: Promise<unknown>[] = []
      for (let i = 0; i < 10; i++) {
        const key = newKey()
        const now = Date.now()
        const at = now + 1900
        await store.set(key, { fields: { a: '1' }, meta: meta({ idleExpiresAt: at }, now) })
        reads.push(sleep(at - 100 - Date.now()).then(() => store.get(key)))
        await sleep(100)
      }
      const found = await Promise.all(reads)
      expect(found.filter((record) => record === undefined)).toHaveLength(0)
    })

    it('a record set already expired is not kept', async () => {
      const key = newKey()
      const past = Date.now() - 60_000
      await store.set(key, { fields: {}, meta: meta({ idleExpiresAt: past + 1000 }, past) })
      expect(await store.get(key)).toBeUndefined()
    })

    it('listByUser drops expired entries from the index', async () => {
      const user = `u-${newKey().slice(0, 8)}`
      const live = newKey()
      await store.set(live, { fields: {}, meta: meta({ userId: user }) })
      const index = userKey(prefix, user)
      const stale = newKey()
      const raw = JSON.parse((await client.get(index)).value!.toString())
      raw.s[stale] = Date.now() - 1000
      await client.set(index, JSON.stringify(raw), { expires: 600 })
      expect((await store.listByUser(user)).map((s) => s.key)).toEqual([live])
      expect(Object.keys(JSON.parse((await client.get(index)).value!.toString()).s)).toEqual([live])
    })

    it('a session over the item size limit fails with a SessionStoreError that says so', async () => {
      const key = newKey()
      const big = JSON.stringify('x'.repeat(2 * 1024 * 1024))
      await expect(store.set(key, { fields: { big }, meta: meta() })).rejects.toMatchObject({
        code: 'ERR_SESSION_STORE',
        operation: 'set',
        message: expect.stringMatching(/too large .*item size limit/),
      })
      expect(await store.get(key)).toBeUndefined()
    })

    it('an item that holds no session: destroy removes it, listByUser fails as corrupt, destroyByUser leaves it', async () => {
      for (const item of ['null', '{"f":{}}', '{"m":null,"f":{}}', '["secret-data"]']) {
        const user = `u-${newKey().slice(0, 8)}`
        const key = newKey()
        await store.set(key, { fields: {}, meta: meta({ userId: user }) })
        await client.set(`${prefix}s:${key}`, item, { expires: 60 })
        const error = await store.listByUser(user).then(
          (found) => found,
          (e: unknown) => e,
        )
        expect(error, item).toBeInstanceOf(SessionStoreError)
        expect(error).toMatchObject({ store: 'memcached', operation: 'listByUser' })
        expect((error as Error).message).toMatch(/stored session is corrupt/)
        expect((error as Error).message).not.toContain('secret-data')
        expect(await store.destroyByUser(user), item).toBe(0)
        expect((await client.get(`${prefix}s:${key}`)).value).not.toBeNull()
        await expect(store.destroy(key), item).resolves.toBeUndefined()
        expect((await client.get(`${prefix}s:${key}`)).value).toBeNull()
      }
    })

    it('destroy removes the session from its user index', async () => {
      const key = newKey()
      await store.set(key, { fields: {}, meta: meta({ userId: 'u-destroy' }) })
      await store.destroy(key)
      expect((await client.get(userKey(prefix, 'u-destroy'))).value).toBeNull()
    })

    it('an item that holds no session fails get as corrupt, never loads without expiry', async () => {
      const now = Date.now()
      const items = [
        { m: { createdAt: 1 }, f: { role: '"secret-data"' } },
        { m: { ...meta({}, now), absoluteExpiresAt: String(now + 60_000) }, f: {} },
        { m: meta({}, now), f: null },
        { m: meta({}, now), f: '"secret-data"' },
        { f: { role: '"secret-data"' } },
        null,
        ['secret-data'],
      ]
      for (const item of [...items.map((i) => JSON.stringify(i)), 'secret-data {']) {
        const key = newKey()
        await client.set(`${prefix}s:${key}`, item, { expires: 60 })
        const error = await store.get(key).then(
          (record) => record,
          (e: unknown) => e,
        )
        expect(error, item).toMatchObject({
          code: 'ERR_SESSION_STORE',
          store: 'memcached',
          operation: 'get',
          message: expect.stringMatching(/the stored session is corrupt/),
        })
        expect((error as Error).message).not.toContain(key)
        expect((error as Error).message).not.toContain('secret-data')
        await client.delete(`${prefix}s:${key}`)
      }
    })

    it('keeps working once memjs’s request counter passes 2^31', async () => {
      // memjs wraps its counter with `&= 0xffffffff`, which makes it negative from 2^31 on:
      // a request number the binary header cannot carry
      const own = connect()
      try {
        ;(own as { seq: number }).seq = 2 ** 31 - 2
        const counted = memcachedStore({ client: own, prefix })
        const key = newKey()
        const m = meta({ userId: 'u-seq' })
        await counted.set(key, { fields: { a: '1' }, meta: m })
        expect(own.seq).toBeLessThan(0)
        expect(await counted.patch(key, { clear: false, set: { b: '2' }, delete: [] }, m)).toBe(
          true,
        )
        expect(await counted.get(key)).toEqual({ fields: { a: '1', b: '2' }, meta: m })
        expect((await counted.listByUser('u-seq')).map((s) => s.key)).toEqual([key])
        await counted.destroy(key)
        expect(await counted.get(key)).toBeUndefined()
      } finally {
        own.close()
      }
    })

    it('refuses keys that are not store keys, so nothing can reach the protocol', async () => {
      for (const bad of [
        'x',
        `${newKey()}\r\nflush_all`,
        `${newKey().slice(2)} a`,
        'A'.repeat(64),
      ]) {
        await expect(store.get(bad)).rejects.toMatchObject({
          code: 'ERR_SESSION_STORE',
          store: 'memcached',
          operation: 'get',
        })
        await expect(store.set(bad, { fields: {}, meta: meta() })).rejects.toMatchObject({
          operation: 'set',
        })
      }
    })

    it('refuses a prefix with spaces or control characters, or too long for a key', () => {
      for (const prefix of ['has space:', 'ctl\r\n:', 'tab\t', 'é:', 'x'.repeat(185)])
        expect(() => memcachedStore({ client, prefix })).toThrow(SessionConfigError)
      expect(() => memcachedStore({ client, prefix: 'x'.repeat(184) })).not.toThrow()
      expect(() => memcachedStore({ client: {} as MemjsClientLike })).toThrow(SessionConfigError)
    })
  })

  describe('compare-and-swap', () => {
    const prefix = testPrefix()
    const client = connect()
    const plain = memcachedStore({ client, prefix })
    afterAll(() => client.close())

    /** A client on which, before each compare-and-swap write, `interfere` runs first. */
    function contended(interfere: (request: Buffer) => Promise<unknown>): MemjsClientLike {
      return {
        get seq() {
          return client.seq
        },
        incrSeq: () => client.incrSeq(),
        perform(key, request, seq, callback) {
          const isCasWrite = request[1] === 0x01 && request.readBigUInt64BE(16) !== 0n
          if (!isCasWrite) return client.perform(key, request, seq, callback)
          interfere(request).then(
            () => client.perform(key, request, seq, callback),
            (err) => callback(err, null),
          )
        },
      }
    }

    it('a patch that loses a race retries and merges with the winner', async () => {
      const key = newKey()
      await plain.set(key, { fields: { base: '0' }, meta: meta() })
      let races = 3
      const store = memcachedStore({
        prefix,
        client: contended(async () => {
          if (races-- > 0)
            await plain.patch(
              key,
              { clear: false, set: { [`other${races}`]: '1' }, delete: [] },
              meta(),
            )
        }),
      })
      expect(await store.patch(key, { clear: false, set: { mine: '1' }, delete: [] }, meta())).toBe(
        true,
      )
      expect(Object.keys((await plain.get(key))!.fields).sort()).toEqual(
        ['base', 'mine', 'other0', 'other1', 'other2'].sort(),
      )
      await plain.destroy(key)
    })

    it('a patch that keeps losing fails with a clear SessionStoreError', async () => {
      const key = newKey()
      await plain.set(key, { fields: { base: '0' }, meta: meta() })
      const store = memcachedStore({
        prefix,
        casRetries: 5,
        client: contended(() => plain.touch(key, meta())),
      })
      await expect(
        store.patch(key, { clear: false, set: { mine: '1' }, delete: [] }, meta()),
      ).rejects.toMatchObject({
        code: 'ERR_SESSION_STORE',
        store: 'memcached',
        operation: 'patch',
        message: expect.stringMatching(/gave up after 5 compare-and-swap attempts/),
      })
      expect((await plain.get(key))?.fields).toEqual({ base: '0' })
      await plain.destroy(key)
    })
  })

  describe('store failures through the manager', () => {
    const expectStoreError = (promise: Promise<unknown>, operation: string) =>
      expect(promise).rejects.toMatchObject({
        code: 'ERR_SESSION_STORE',
        store: 'memcached',
        operation,
      })

    it('a server stopped fails load and commit with SessionStoreError', async () => {
      const server = await startMemcached()
      const client = connect(server.url)
      try {
        const sessions = createSessions({ secret: SECRET, store: memcachedStore({ client }) })
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
        client.close()
        await server.stop()
      }
    })

    it('a closed port fails load and commit fast with SessionStoreError', async () => {
      // a session made on a live server, then asked of one that is gone
      const server = await startMemcached()
      const live = connect(server.url)
      const prefix = testPrefix()
      let cookie: string
      try {
        const sessions = createSessions({
          secret: SECRET,
          store: memcachedStore({ client: live, prefix }),
        })
        const first = await sessions.load(undefined)
        first.set('count', 1)
        cookie = (await sessions.commit(first))[0]!.split(';')[0]!
      } finally {
        live.close()
        await server.stop()
      }
      const client = connect(server.url)
      try {
        const started = Date.now()
        const store: SessionStore = memcachedStore({ client, prefix })
        const sessions = createSessions({ secret: SECRET, store })
        await expectStoreError(sessions.load(cookie), 'get')
        const fresh = await sessions.load(undefined)
        fresh.set('count', 1)
        await expectStoreError(sessions.commit(fresh), 'set')
        expect(Date.now() - started).toBeLessThan(5000)
      } finally {
        client.close()
      }
    })
  })
})
