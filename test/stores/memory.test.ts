import { describe, expect, it } from 'vitest'
import { SessionConfigError } from '../../src/core/errors.js'
import { memoryStore } from '../../src/stores/memory.js'
import { describeStoreConformance, meta, newKey } from '../conformance/store-suite.js'

describeStoreConformance('memory', {
  create: () => memoryStore({ sweepInterval: 0 }),
  cleanup: (store) => store.close?.(),
  expiry: 'prune',
  capabilities: [
    'add',
    'getNow',
    'patchNow',
    'touchNow',
    'listByUser',
    'destroyByUser',
    'count',
    'scan',
    'prune',
    'close',
  ],
})

describe('memory store', () => {
  it('evicts a session not used lately past maxSessions', async () => {
    const store = memoryStore({ maxSessions: 3, sweepInterval: 0 })
    const [a, b, c, d] = [newKey(), newKey(), newKey(), newKey()]
    for (const key of [a, b, c]) await store.set(key, { fields: {}, meta: meta({ userId: 'u' }) })
    await store.get(a) // a is now the most recently used; b is the least
    await store.set(d, { fields: {}, meta: meta() })
    expect(await store.count()).toBe(3)
    expect(await store.get(b)).toBeUndefined()
    expect(await store.get(a)).toBeDefined()
    // the user index forgets an evicted session
    expect((await store.listByUser('u')).map((s) => s.key).sort()).toEqual([a, c].sort())
  })

  it('spares every session used since the eviction hand passed, once', async () => {
    const store = memoryStore({ maxSessions: 4, sweepInterval: 0 })
    const keys = [newKey(), newKey(), newKey(), newKey()]
    for (const key of keys) await store.set(key, { fields: {}, meta: meta() })
    // all four used: the hand clears every mark, wraps, and takes the oldest
    await store.get(keys[0]!)
    await store.patch(keys[1]!, { clear: false, set: { a: '1' }, delete: [] }, meta())
    await store.touch(keys[2]!, meta())
    await store.get(keys[3]!)
    const e = newKey()
    await store.set(e, { fields: {}, meta: meta() })
    expect(await store.get(keys[0]!)).toBeUndefined()
    // the hand now stands after keys[0]: keys[1..3] lost their marks on its way, so the next
    // insert takes keys[1] unless it was used again; use it, and keys[2] goes instead
    await store.get(keys[1]!)
    await store.set(newKey(), { fields: {}, meta: meta() })
    expect(await store.get(keys[1]!)).toBeDefined()
    expect(await store.get(keys[2]!)).toBeUndefined()
    expect(await store.count()).toBe(4)
  })

  it('prunes by its injected clock', async () => {
    let now = 1_000_000
    const store = memoryStore({ clock: () => now, sweepInterval: 0 })
    const key = newKey()
    await store.set(key, { fields: {}, meta: meta({ idleExpiresAt: now + 1000 }, now) })
    now += 999
    expect(await store.prune()).toBe(0)
    now += 1
    expect(await store.prune()).toBe(1)
    expect(await store.get(key)).toBeUndefined()
  })

  it('sweeps expired records on its interval without one timer per session', async () => {
    let now = 1_000_000
    const store = memoryStore({ clock: () => now, sweepInterval: 20 })
    for (let i = 0; i < 100; i++)
      await store.set(newKey(), { fields: {}, meta: meta({ idleExpiresAt: now + 10 }, now) })
    now += 11
    await new Promise((r) => setTimeout(r, 60))
    expect(await store.count()).toBe(0)
    await store.close()
  })

  it('returns copies, so a caller cannot change what is stored', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const key = newKey()
    await store.set(key, { fields: { a: '1' }, meta: meta() })
    const got = await store.get(key)
    got!.fields.a = '2'
    got!.meta.userId = 'x'
    expect(await store.get(key)).toEqual({
      fields: { a: '1' },
      meta: expect.not.objectContaining({ userId: 'x' }),
    })
  })

  it('refuses a maxSessions that is not a positive whole number', () => {
    expect(() => memoryStore({ maxSessions: 0 })).toThrow(/maxSessions/)
    expect(() => memoryStore({ maxSessions: 0 })).toThrow(SessionConfigError)
  })

  it('refuses a sweepInterval Node cannot time, rather than sweeping every millisecond', async () => {
    // over 2^31 - 1 ms, Node fires the timer after 1 ms: a scan of every session each ms
    let sweeps = 0
    const clock = () => {
      sweeps++
      return Date.now()
    }
    let store: ReturnType<typeof memoryStore> | undefined
    try {
      store = memoryStore({ sweepInterval: 30 * 86_400_000, clock })
    } catch (err) {
      expect(err).toBeInstanceOf(SessionConfigError)
      expect(String(err)).toMatch(/sweepInterval.*2147483647/)
    }
    await new Promise((r) => setTimeout(r, 30))
    await store?.close()
    expect(sweeps).toBe(0)
    expect(store).toBeUndefined()
    // and one that would turn the sweep off without a word
    for (const bad of [-1, Number.NaN, '1m' as unknown as number]) {
      expect(() => memoryStore({ sweepInterval: bad })).toThrow(SessionConfigError)
    }
    // the largest a timer keeps is accepted
    await memoryStore({ sweepInterval: 2_147_483_647 }).close()
  })
})
