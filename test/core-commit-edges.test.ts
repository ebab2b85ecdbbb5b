import { describe, expect, it } from 'vitest'
import { SessionStoreError } from '../src/core/errors.js'
import { SessionManager } from '../src/core/manager.js'
import type { SessionStore } from '../src/core/store.js'
import { memoryStore } from '../src/stores/memory.js'

const secret = 'x'.repeat(32)
const cookieOf = (setCookies: string[]) => setCookies[0]?.split(';')[0]

/** The memory store without its at-once methods: the manager waits for it, as for Redis. */
function asyncOnly(store: SessionStore): SessionStore {
  return {
    name: store.name,
    get: (key) => store.get(key),
    set: (key, record) => store.set(key, record),
    patch: (key, patch, meta) => store.patch(key, patch, meta),
    touch: (key, meta) => store.touch(key, meta),
    destroy: (key) => store.destroy(key),
  }
}

/** `store`, whose `op` fails the next `times` calls (a store that blinked). */
function blinking(store: SessionStore, op: 'destroy' | 'set', times = 1) {
  let left = 0
  const wrapped: SessionStore = {
    ...asyncOnly(store),
    async [op](...args: unknown[]) {
      if (left > 0) {
        left--
        throw new Error(`${op} failed`)
      }
      return (store[op] as (...a: unknown[]) => Promise<void>)(...args)
    },
  }
  return { store: wrapped, failNext: () => (left = times) }
}

const stores = [
  ['at once (memory)', () => memoryStore({ sweepInterval: 0 })],
  ['waiting', () => asyncOnly(memoryStore({ sweepInterval: 0 }))],
] as const

describe.each(stores)('a commit after the record went (%s)', (_name, makeStore) => {
  it('a second commit of a request whose session was logged out meanwhile does not bring it back', async () => {
    const m = new SessionManager({ secret, store: makeStore() })
    const s = await m.load(undefined)
    s.set('a', 1)
    s.setUser('u1')
    const cookie = cookieOf(await m.commit(s))
    const [logout, other] = [await m.load(cookie), await m.load(cookie)]
    logout.destroy()
    await m.commit(logout)
    other.set('b', 2)
    expect(await m.commit(other)).toEqual([]) // session.save(): nothing resurrected
    expect(m.needsCommit(other)).toBe(false)
    other.set('c', 3)
    expect(await m.commit(other)).toEqual([]) // the adapter's commit at the end
    expect((await m.load(cookie)).isNew).toBe(true)
    // (the waiting stand-in cannot list by user: the memory store's run checks this)
    expect(await m.listByUser('u1').catch(() => [])).toEqual([])
  })

  it('a second commit of a request that overlapped a login leaves the new cookie alone', async () => {
    const m = new SessionManager({ secret, store: makeStore() })
    const s = await m.load(undefined)
    s.set('cart', 1)
    const cookie = cookieOf(await m.commit(s))
    const [login, other] = [await m.load(cookie), await m.load(cookie)]
    login.setUser('u1')
    const fresh = cookieOf(await m.commit(login))
    other.set('seen', true)
    expect(await m.commit(other)).toEqual([])
    expect(await m.commit(other)).toEqual([])
    const old = await m.load(cookie)
    expect(old.isNew).toBe(true)
    expect(old.get('cart')).toBeUndefined()
    expect((await m.load(fresh)).userId).toBe('u1')
  })
})

describe('a commit retried after the store failed part-way', () => {
  it('regenerate: the retry removes the old record and sends the new cookie', async () => {
    const { store, failNext } = blinking(memoryStore({ sweepInterval: 0 }), 'destroy')
    const m = new SessionManager({ secret, store })
    const s = await m.load(undefined)
    s.set('cart', 1)
    const cookie = cookieOf(await m.commit(s))
    const login = await m.load(cookie)
    login.setUser('u1')
    failNext()
    await expect(m.commit(login)).rejects.toBeInstanceOf(SessionStoreError)
    const retried = await m.commit(login)
    expect(retried).toHaveLength(1)
    const fresh = cookieOf(retried)
    expect(fresh).not.toBe(cookie)
    // session fixation: the id from before the login must be worth nothing now
    expect((await m.load(cookie)).isNew).toBe(true)
    const after = await m.load(fresh)
    expect(after.userId).toBe('u1')
    expect(after.get('cart')).toBe(1)
  })

  it('destroy with a flash message: the retry still logs the old session out', async () => {
    const { store, failNext } = blinking(memoryStore({ sweepInterval: 0 }), 'destroy')
    const m = new SessionManager({ secret, store })
    const s = await m.load(undefined)
    s.set('user', 'alice')
    const cookie = cookieOf(await m.commit(s))
    const logout = await m.load(cookie)
    logout.destroy()
    logout.flash.set('notice', 'Logged out')
    failNext()
    await expect(m.commit(logout)).rejects.toBeInstanceOf(SessionStoreError)
    const retried = await m.commit(logout)
    expect(retried).toHaveLength(1)
    expect((await m.load(cookie)).isNew).toBe(true)
    const next = await m.load(cookieOf(retried))
    expect(next.get('user')).toBeUndefined()
    expect(next.flash.get('notice')).toBe('Logged out')
  })
})

describe('events of a destroy followed by new data', () => {
  it('emits destroyed for the old session and created for the new one', async () => {
    const m = new SessionManager({ secret, store: memoryStore({ sweepInterval: 0 }) })
    const events: [string, unknown][] = []
    for (const name of ['created', 'regenerated', 'destroyed'] as const)
      m.on(name, (e) => events.push([name, e]))
    const s = await m.load(undefined)
    s.set('user', 'alice')
    await m.commit(s)
    const old = s.idHash
    events.length = 0
    s.destroy()
    s.flash.set('notice', 'Logged out')
    await m.commit(s)
    expect(events).toEqual([
      ['destroyed', { idHash: old }],
      ['created', { idHash: s.idHash }],
    ])
  })
})
