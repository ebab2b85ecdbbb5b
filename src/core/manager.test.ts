import { describe, expect, it } from 'vitest'
import { cookieStore } from '../stores/cookie.js'
import { memoryStore } from '../stores/memory.js'
import { SessionConfigError, SessionValidationError } from './errors.js'
import { SessionManager, type SessionsOptions } from './manager.js'
import type { SessionData } from './session.js'
import type { StandardSchemaV1 } from './standard-schema.js'
import type { SessionStore } from './store.js'

const secret = 'x'.repeat(32)
const make = <D extends Record<string, unknown> = Record<string, unknown>>(
  options: Partial<SessionsOptions<D>> = {},
) => new SessionManager<D>({ secret, store: memoryStore({ sweepInterval: 0 }), ...options })
const cookieOf = (setCookies: string[]) => setCookies[0]?.split(';')[0]

/** A Standard Schema that accepts objects whose `count`, if present, is a number. */
const countSchema: StandardSchemaV1<unknown, { count?: number }> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (value) =>
      typeof (value as { count?: unknown }).count === 'string'
        ? { issues: [{ message: 'count must be a number', path: ['count'] }] }
        : { value: value as { count?: number } },
  },
}

describe('SessionManager configuration', () => {
  it('fails at startup on a missing or short secret, saying how to make one', () => {
    expect(() => new SessionManager({ store: memoryStore() })).toThrow(/secret is required.*keygen/)
    expect(() => make({ secret: 'short' })).toThrow(SessionConfigError)
    expect(() => make({ secrets: [] })).toThrow(SessionConfigError)
  })

  it('takes touchAfter 0 with or without a unit: extend on every request', () => {
    for (const touchAfter of [0, '0s', '0m', '0ms']) expect(make({ touchAfter }).touchAfter).toBe(0)
    expect(() => make({ touchAfter: '-1s' })).toThrow(/touchAfter/)
  })

  it('takes durations as strings and refuses nonsense', () => {
    const m = make({ idleTimeout: '15m', absoluteTimeout: '8h', touchAfter: '30s' })
    expect([m.idleTimeout, m.absoluteTimeout, m.touchAfter]).toEqual([900_000, 28_800_000, 30_000])
    expect(() => make({ idleTimeout: 'soon' })).toThrow(/idleTimeout/)
    expect(() => make({ idleTimeout: -1 })).toThrow(/idleTimeout/)
    expect(() => make({ idleTimeout: '1m', touchAfter: '5m' })).toThrow(/touchAfter/)
  })

  it('documents its defaults: 30 minutes idle, 12 hours absolute, 1 minute touch', () => {
    const m = make()
    expect([m.idleTimeout, m.absoluteTimeout, m.touchAfter]).toEqual([
      1_800_000, 43_200_000, 60_000,
    ])
  })
})

describe('SessionManager lifecycle', () => {
  it('setLifetime ("remember me") gives a persistent cookie and its own timeouts', async () => {
    let now = 1_000_000
    const m = make({ clock: () => now })
    const s = await m.load(undefined)
    s.set('a', 1)
    s.setLifetime({ idleTimeout: '14d', absoluteTimeout: '30d' })
    const cookies = await m.commit(s)
    expect(cookies[0]).toContain(`Max-Age=${30 * 86_400}`)
    now += 7 * 86_400_000 // a week later, far past the manager's 30-minute idle timeout
    const later = await m.load(cookieOf(cookies))
    expect(later.isNew).toBe(false)
    expect(later.get('a')).toBe(1)
  })

  it.each([
    ['memory', () => memoryStore({ sweepInterval: 0 })],
    ['cookie', () => cookieStore()],
  ] as const)(
    'setLifetime with an idle timeout shorter than touchAfter: a session in use does not lapse (%s store)',
    async (_name, store) => {
      let now = 1_000_000
      const m = make({ store: store(), clock: () => now, touchAfter: '1m' })
      let s = await m.load(undefined)
      s.set('a', 1)
      s.setLifetime({ idleTimeout: '30s', persistent: false })
      let cookie = cookieOf(await m.commit(s))!
      // a request every 20 s: touched every 15 s (half its idle timeout), never idle for 30
      for (let i = 1; i <= 4; i++) {
        now += 20_000
        s = await m.load(cookie)
        expect(s.isNew, `request ${i}`).toBe(false)
        cookie = cookieOf(await m.commit(s)) ?? cookie
      }
      now += 31_000 // and idle for longer than its own 30 s: expired
      expect((await m.load(cookie)).isNew).toBe(true)
    },
  )

  it('a listener that removes itself while an event is emitted leaves the others their turn', async () => {
    const m = make()
    const seen: string[] = []
    const off = m.on('created', () => {
      seen.push('once')
      off()
      off() // a second call removes nothing more
    })
    m.on('created', () => seen.push('metrics'))
    m.on('created', () => seen.push('audit'))
    for (let i = 0; i < 2; i++) {
      const s = await m.load(undefined)
      s.set('a', i)
      await m.commit(s)
    }
    expect(seen).toEqual(['once', 'metrics', 'audit', 'metrics', 'audit'])
  })

  it('a stored record whose meta lacks its expiry times has expired: it is destroyed, never served', async () => {
    const inner = memoryStore({ sweepInterval: 0 })
    const destroyed: string[] = []
    const store: SessionStore = {
      name: 'damaged',
      get: async (key) => {
        const r = await inner.get(key)
        // a damaged or hand-edited record: no expiry times
        return (
          r && { fields: r.fields, meta: { createdAt: r.meta.createdAt, lastSeenAt: 0 } as never }
        )
      },
      set: (key, record) => inner.set(key, record),
      patch: (key, patch, meta) => inner.patch(key, patch, meta),
      touch: (key, meta) => inner.touch(key, meta),
      destroy: (key) => {
        destroyed.push(key)
        return inner.destroy(key)
      },
    }
    const m = make({ store })
    const s = await m.load(undefined)
    s.set('role', 'admin')
    const cookie = cookieOf(await m.commit(s))
    const later = await m.load(cookie)
    expect(later.isNew).toBe(true)
    expect(later.get('role')).toBeUndefined()
    expect(destroyed).toHaveLength(1)
  })

  it('regenerate emits regenerated; destroy emits destroyed and clears the cookie', async () => {
    const m = make()
    const events: string[] = []
    m.on('created', () => events.push('created'))
    m.on('regenerated', () => events.push('regenerated'))
    m.on('destroyed', () => events.push('destroyed'))
    const s = await m.load(undefined)
    s.set('a', 1)
    const c1 = await m.commit(s)
    const s2 = await m.load(cookieOf(c1))
    const before = s2.idHash
    s2.regenerate()
    expect(s2.idHash).not.toBe(before)
    const c2 = await m.commit(s2)
    const s3 = await m.load(cookieOf(c2))
    expect(s3.get('a')).toBe(1)
    s3.destroy()
    const c3 = await m.commit(s3)
    expect(c3[0]).toMatch(/^sid=;/)
    expect(events).toEqual(['created', 'regenerated', 'destroyed'])
    // what is left is the marker of the move, for a minute (MOVED_MARKER_MS)
    expect(await m.store.count?.()).toBe(1)
  })

  it('after destroy(), new data starts a new session with a new id', async () => {
    const m = make()
    const s = await m.load(undefined)
    s.set('user', 'alice')
    const old = cookieOf(await m.commit(s))
    const s2 = await m.load(old)
    s2.destroy()
    s2.flash.set('notice', 'Logged out')
    const fresh = cookieOf(await m.commit(s2))
    expect(fresh).not.toBe(old)
    const s3 = await m.load(fresh)
    expect(s3.get('user')).toBeUndefined()
    expect(s3.flash.get('notice')).toBe('Logged out')
    expect((await m.load(old)).isNew).toBe(true)
  })

  it('a patch to a session destroyed meanwhile does not resurrect it', async () => {
    const m = make()
    const s = await m.load(undefined)
    s.set('a', 1)
    const cookie = cookieOf(await m.commit(s))
    const [tab1, tab2] = [await m.load(cookie), await m.load(cookie)]
    tab1.destroy()
    await m.commit(tab1)
    tab2.set('b', 2)
    // no clearing cookie: by now the browser may hold a newer one (a login in tab1)
    expect(await m.commit(tab2)).toEqual([])
    expect((await m.load(cookie)).isNew).toBe(true)
  })

  it('a request that overlapped a login keeps its hands off the new cookie', async () => {
    const m = make()
    const s = await m.load(undefined)
    s.set('cart', 1)
    const cookie = cookieOf(await m.commit(s))
    const [login, other] = [await m.load(cookie), await m.load(cookie)]
    login.regenerate()
    login.setUser('u1')
    const fresh = cookieOf(await m.commit(login))
    other.set('seen', true)
    // its record moved: the change is dropped, and the browser keeps the login's cookie
    expect(await m.commit(other)).toEqual([])
    const after = await m.load(fresh)
    expect(after.userId).toBe('u1')
    expect(after.get('cart')).toBe(1)
  })

  it('setUser moves a stored session to a new id, so an overlapping commit cannot unbind it', async () => {
    const m = make()
    const s = await m.load(undefined)
    s.set('cart', 1)
    const cookie = cookieOf(await m.commit(s))
    const [login, other] = [await m.load(cookie), await m.load(cookie)]
    const before = login.idHash
    login.setUser('u1')
    const fresh = cookieOf(await m.commit(login))
    expect(fresh).not.toBe(cookie)
    expect(login.idHash).not.toBe(before)
    // the other request loaded the unbound session: its commit must not write that meta back
    other.set('seen', true)
    expect(await m.commit(other)).toEqual([])
    expect((await m.listByUser('u1')).map((x) => x.idHash)).toEqual([login.idHash])
    const after = await m.load(fresh)
    expect(after.userId).toBe('u1')
    expect(after.get('cart')).toBe(1)
    expect((await m.load(cookie)).isNew).toBe(true)
    // the same user again changes nothing; a new session is bound without a new id
    after.setUser('u1')
    expect(await m.commit(after)).toEqual([])
    const anonymous = await m.load(undefined)
    anonymous.setUser('u2')
    const id = anonymous.idHash
    await m.commit(anonymous)
    expect(anonymous.idHash).toBe(id)
  })

  it('regenerate carries what other requests committed meanwhile, with its own changes on top', async () => {
    const m = make()
    const s = await m.load(undefined)
    s.set('cart', 1)
    s.set('theme', 'dark')
    const cookie = cookieOf(await m.commit(s))
    const [login, tab] = [await m.load(cookie), await m.load(cookie)]
    tab.set('cart', 2) // another tab adds to the cart while the login is in flight
    tab.set('lang', 'fr')
    await m.commit(tab)
    login.regenerate()
    login.setUser('u1')
    login.delete('theme')
    login.set('lang', 'en') // the same key: the later commit wins
    const fresh = cookieOf(await m.commit(login))
    const after = await m.load(fresh)
    expect(Object.fromEntries(after.entries())).toEqual({ cart: 2, lang: 'en' })
    expect(after.userId).toBe('u1')
    expect((await m.load(cookie)).isNew).toBe(true)
    // regenerate() then clear() starts from nothing, though the session looked empty when
    // loaded and another request filled it meanwhile
    const stored = await m.load(undefined)
    stored.set('x', 1)
    const emptyCookie = cookieOf(await m.commit(stored))
    const emptied = await m.load(emptyCookie)
    emptied.delete('x') // a stored session with no data
    await m.commit(emptied)
    const [wipe, filler] = [await m.load(emptyCookie), await m.load(emptyCookie)]
    filler.set('late', 1)
    await m.commit(filler)
    wipe.regenerate()
    wipe.clear()
    wipe.set('mine', 1)
    const wiped = cookieOf(await m.commit(wipe))
    expect(Object.fromEntries((await m.load(wiped)).entries())).toEqual({ mine: 1 })
    // a regenerate after clear() starts from nothing: express-session's regenerate
    const again = await m.load(fresh)
    again.regenerate()
    again.clear()
    again.set('only', 1)
    const third = cookieOf(await m.commit(again))
    expect(Object.fromEntries((await m.load(third)).entries())).toEqual({ only: 1 })
  })

  it('changes made while a commit runs are kept for the next commit', async () => {
    const m = make()
    const s = await m.load(undefined)
    s.set('a', 1)
    const cookie = cookieOf(await m.commit(s))
    const s2 = await m.load(cookie)
    s2.set('b', 2)
    const running = m.commit(s2)
    s2.set('c', 3) // e.g. a flash read after res.writeHead()
    await running
    await m.commit(s2)
    expect((await m.load(cookie)).toJSON()).toEqual({ a: 1, b: 2, c: 3 })
  })

  it.each([
    ['patch', 'patch'],
    ['patchNow', 'patch'],
    ['touch', 'touch'],
    ['touchNow', 'touch'],
  ] as const)(
    'a failed commit (%s) keeps its changes, so a retry writes them',
    async (method, operation) => {
      let now = 1_000_000
      const store = memoryStore({ sweepInterval: 0, clock: () => now })
      let fail = true
      const down = () => {
        throw new Error('down')
      }
      const atOnce = method.endsWith('Now')
      const flaky: SessionStore = { ...store }
      // the manager writes through patchNow and touchNow together, or through neither
      if (!atOnce) {
        delete flaky.patchNow
        delete flaky.touchNow
      }
      ;(flaky as unknown as Record<string, unknown>)[method] = (...a: unknown[]) => {
        if (fail) return atOnce ? down() : Promise.reject(new Error('down'))
        return (store[method] as (...a: unknown[]) => unknown)(...a)
      }
      const m = new SessionManager({ secret, store: flaky, clock: () => now })
      const s = await m.load(undefined)
      s.set('a', 1)
      const cookie = cookieOf(await m.commit(s))
      const s2 = await m.load(cookie)
      if (operation === 'patch') s2.set('b', 2)
      else now += 60_000 // a touch is due
      const committed = m.commitNow(s2)
      expect(committed).toBeInstanceOf(Promise)
      await expect(committed).rejects.toMatchObject({ code: 'ERR_SESSION_STORE', operation })
      expect(m.needsCommit(s2)).toBe(true)
      fail = false
      await m.commit(s2)
      expect(m.needsCommit(s2)).toBe(false)
      const after = await m.load(cookie)
      expect(after.toJSON()).toEqual(operation === 'patch' ? { a: 1, b: 2 } : { a: 1 })
      expect(after.expiresAt).toBe(now + 30 * 60_000)
    },
  )

  it('commit twice writes only once', async () => {
    const m = make()
    const s = await m.load(undefined)
    s.set('a', 1)
    expect(await m.commit(s)).toHaveLength(1)
    expect(await m.commit(s)).toEqual([])
  })

  it('lists and revokes sessions by user, except the current one', async () => {
    const m = make()
    const cookies: string[] = []
    for (let i = 0; i < 3; i++) {
      const s = await m.load(undefined)
      s.setUser('u1')
      cookies.push(cookieOf(await m.commit(s))!)
    }
    const current = await m.load(cookies[0])
    const list = await m.listByUser('u1', { current })
    expect(list).toHaveLength(3)
    expect(list.filter((x) => x.current).map((x) => x.idHash)).toEqual([current.idHash])
    expect(await m.destroyByUser('u1', { except: current })).toBe(2)
    expect((await m.load(cookies[1])).isNew).toBe(true)
    expect((await m.load(cookies[0])).isNew).toBe(false)
    await m.destroy(current.idHash)
    expect(await m.listByUser('u1')).toEqual([])
    // no session has an id setUser refuses: in UTF-8 it would read as another user's
    const other = await m.load(undefined)
    other.setUser('\ufffd')
    await m.commit(other)
    expect(await m.listByUser('\ud800')).toEqual([])
    expect(await m.destroyByUser('\ud800')).toBe(0)
    expect(await m.listByUser('\ufffd')).toHaveLength(1)
    // a missing id is a mistake, not a user with no sessions
    await expect(m.destroyByUser(undefined as unknown as string)).rejects.toThrow(/user id/)
    await expect(m.listByUser('')).rejects.toThrow(/user id/)
    await expect(m.destroy('not-a-hash')).rejects.toThrow(SessionConfigError)
  })

  it('says clearly when the store cannot list by user', async () => {
    const { listByUser: _l, destroyByUser: _d, ...store } = memoryStore()
    const m = new SessionManager({ secret, store })
    await expect(m.listByUser('u')).rejects.toThrow(/cannot list sessions by user/)
  })
})

describe('schema validation on load', () => {
  async function stored(m: SessionManager<{ count?: number }>, raw: unknown) {
    // write data the schema would refuse, as an older release might have
    const loose = new SessionManager({ secret, store: m.store })
    const s = await loose.load(undefined)
    s.set('count', raw)
    return cookieOf(await loose.commit(s))
  }

  it("'reset': invalid data gives a fresh session and an event; the record is left alone", async () => {
    const m = make<{ count?: number }>({ schema: countSchema })
    const invalid: string[] = []
    m.on('invalid', (e) => invalid.push(e.issues[0]!.message))
    const cookie = await stored(m, 'seven')
    const s = await m.load(cookie)
    expect(s.isNew).toBe(true)
    expect(invalid).toEqual(['count must be a number'])
    expect(await m.store.count?.()).toBe(1)
    expect((await m.load(await stored(m, 7))).get('count')).toBe(7)
  })

  it("'error': invalid data throws SessionValidationError", async () => {
    const m = make<{ count?: number }>({ schema: countSchema, onInvalidData: 'error' })
    await expect(m.load(await stored(m, 'seven'))).rejects.toThrow(SessionValidationError)
  })
})

describe('loadNow: the session at once when nothing needs waiting for', () => {
  const saved = async <D extends SessionData>(manager: SessionManager<D>) => {
    const m = manager as unknown as SessionManager
    const s = await m.load(undefined)
    s.set('count', 1)
    return cookieOf(await m.commit(s))!
  }
  /** The memory store without its synchronous read, as a networked store is. */
  const asyncOnly = () => {
    const { getNow: _, ...store } = memoryStore({ sweepInterval: 0 })
    return store
  }

  it('gives the session itself for no cookie, a forged one, and a stored one', async () => {
    const m = make()
    const cookie = await saved(m)
    const none = m.loadNow(undefined)
    const forged = m.loadNow(`sid=${'a'.repeat(43)}.${'b'.repeat(43)}`)
    const stored = m.loadNow(cookie)
    for (const s of [none, forged, stored]) expect(s).not.toBeInstanceOf(Promise)
    expect((stored as Awaited<typeof stored>).get('count')).toBe(1)
    expect((forged as Awaited<typeof forged>).isNew).toBe(true)
  })

  it('gives a promise when the store has no getNow, and load agrees either way', async () => {
    const m = make({ store: asyncOnly() })
    const cookie = await saved(m)
    const loaded = m.loadNow(cookie)
    expect(loaded).toBeInstanceOf(Promise)
    expect((await loaded).get('count')).toBe(1)
    expect((await m.load(cookie)).get('count')).toBe(1)
    expect(make().load(undefined)).toBeInstanceOf(Promise)
  })

  it('rejects, never throws, when getNow fails; the error names the get', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const m = make({ store })
    const cookie = await saved(m)
    store.getNow = () => {
      throw new Error('disk on fire')
    }
    let loaded: unknown
    expect(() => {
      loaded = m.loadNow(cookie)
    }).not.toThrow()
    await expect(loaded).rejects.toMatchObject({ code: 'ERR_SESSION_STORE', operation: 'get' })
  })

  it('waits for the destroy of an expired session', async () => {
    let now = 1_000_000
    const store = memoryStore({ sweepInterval: 0, clock: () => now })
    const m = make({ store, clock: () => now })
    const cookie = await saved(m)
    now += 31 * 60_000
    const loaded = m.loadNow(cookie)
    expect(loaded).toBeInstanceOf(Promise)
    expect((await loaded).isNew).toBe(true)
    expect(await store.count()).toBe(0)
  })

  it('stays synchronous with a synchronous schema and waits for an async one', async () => {
    const sync = make({ schema: countSchema })
    expect(sync.loadNow(await saved(sync))).not.toBeInstanceOf(Promise)
    const asyncSchema: StandardSchemaV1<unknown, { count?: number }> = {
      '~standard': {
        ...countSchema['~standard'],
        validate: async (v) => ({ value: v as { count?: number } }),
      },
    }
    const slow = make({ schema: asyncSchema })
    const loaded = slow.loadNow(await saved(slow))
    expect(loaded).toBeInstanceOf(Promise)
    expect((await loaded).get('count')).toBe(1)
    // a thenable of another promise library is waited for, and its issues count
    const refusing: StandardSchemaV1<unknown, { count?: number }> = {
      '~standard': {
        ...countSchema['~standard'],
        validate: () =>
          ({
            // biome-ignore lint/suspicious/noThenProperty: a thenable is what this test is about
            then: (resolve: (r: StandardSchemaV1.Result<{ count?: number }>) => void) =>
              resolve({ issues: [{ message: 'refused' }] }),
          }) as unknown as Promise<StandardSchemaV1.Result<{ count?: number }>>,
      },
    }
    const strict = make({ schema: refusing })
    const refused = strict.loadNow(await saved(strict))
    expect(refused).toBeInstanceOf(Promise)
    expect((await refused).isNew).toBe(true)
  })
})

describe('commitNow: the cookies at once when the store can write at once', () => {
  const saved = async (m: SessionManager) => {
    const s = await m.load(undefined)
    s.set('count', 1)
    return cookieOf(await m.commit(s))!
  }

  it('answers at once for a stored session with patchNow and touchNow, and for no change', async () => {
    let now = 1_000_000
    const m = make({ store: memoryStore({ sweepInterval: 0, clock: () => now }), clock: () => now })
    const cookie = await saved(m)
    const s = await m.load(cookie)
    expect(m.commitNow(s)).toEqual([]) // nothing changed, no touch due
    s.set('count', 2)
    expect(m.commitNow(s)).toEqual([])
    now += 60_000
    const t = await m.load(cookie)
    expect(m.commitNow(t)).toEqual([]) // a touch
    expect(t.expiresAt).toBe(now + 30 * 60_000)
    t.regenerate()
    // a new id is stored through set(), which has no synchronous form
    const moved = m.commitNow(t)
    expect(moved).toBeInstanceOf(Promise)
    const fresh = cookieOf(await moved)!
    expect((await m.load(fresh)).get('count')).toBe(2)
    expect((await m.load(cookie)).isNew).toBe(true)
  })

  it('gives a promise when the store cannot write at once, and writes the same', async () => {
    const { patchNow: _p, touchNow: _t, ...waiting } = memoryStore({ sweepInterval: 0 })
    for (const store of [waiting, memoryStore({ sweepInterval: 0 })]) {
      const m = make({ store })
      const cookie = await saved(m)
      const s = await m.load(cookie)
      s.set('count', 5)
      const committed = m.commitNow(s)
      expect(committed instanceof Promise).toBe(store === waiting)
      expect(await committed).toEqual([])
      expect((await m.load(cookie)).get('count')).toBe(5)
    }
  })
})

describe('clientSide', () => {
  it('tells a manager over the cookie store from one over a server store', () => {
    expect(make({ store: cookieStore() }).clientSide).toBe(true)
    expect(make({ store: memoryStore({ sweepInterval: 0 }) }).clientSide).toBe(false)
  })
})

describe('commitNow with the cookie store', () => {
  it('answers at once: the session is sealed into the cookie, nothing waits', async () => {
    const m = make({ store: cookieStore() })
    const s = await m.load(undefined)
    s.set('count', 1)
    const first = m.commitNow(s)
    if (first instanceof Promise) throw new Error('expected the cookies at once')
    const s2 = m.loadNow(cookieOf(first))
    if (s2 instanceof Promise) throw new Error('expected the session at once')
    expect(s2.get('count')).toBe(1)
    s2.set('count', 2)
    const second = m.commitNow(s2)
    expect(second).not.toBeInstanceOf(Promise)
    expect((await m.load(cookieOf(second as string[]))).get('count')).toBe(2)
  })
})
