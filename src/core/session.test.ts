import { describe, expect, expectTypeOf, it } from 'vitest'
import { memoryStore } from '../stores/memory.js'
import { SessionImmutableError, SessionSerializeError } from './errors.js'
import { SessionManager } from './manager.js'
import { deleteReservedField, reservedField, setReservedField } from './session.js'

const secret = 'x'.repeat(32)
const manager = <D extends Record<string, unknown>>() =>
  new SessionManager<D>({ secret, store: memoryStore({ sweepInterval: 0 }) })

/** A browser: keeps the last cookie it was sent; commits a session and loads the next request's. */
function browser<D extends Record<string, unknown>>(m: SessionManager<D>) {
  let cookie: string | undefined
  return async (session: Awaited<ReturnType<SessionManager<D>['load']>>) => {
    const [setCookie] = await m.commit(session)
    if (setCookie) cookie = setCookie.split(';')[0]
    const next = await m.load(cookie)
    expect(next.isNew).toBe(false)
    return next
  }
}

describe('Session data API', () => {
  it('get/set/has/delete/clear/keys/entries', async () => {
    const m = manager()
    const roundTrip = browser(m)
    const s = await m.load(undefined)
    s.set('a', 1)
    s.set('b', { nested: ['x'] })
    expect(s.has('a')).toBe(true)
    expect(s.keys()).toEqual(['a', 'b'])
    expect(s.entries()).toEqual([
      ['a', 1],
      ['b', { nested: ['x'] }],
    ])
    s.delete('a')
    expect(s.has('a')).toBe(false)
    const next = await roundTrip(s)
    expect(next.toJSON()).toEqual({ b: { nested: ['x'] } })
    next.clear()
    expect(next.keys()).toEqual([])
    const cleared = await roundTrip(next)
    expect(cleared.keys()).toEqual([])
  })

  it('copies on set: mutating the original afterwards changes nothing stored', async () => {
    const m = manager()
    const roundTrip = browser(m)
    const s = await m.load(undefined)
    const cart = ['apple']
    s.set('cart', cart)
    cart.push('pear')
    expect((await roundTrip(s)).get('cart')).toEqual(['apple'])
  })

  it('get: the same object or array at each call until a set or delete; primitives as stored', async () => {
    const m = manager()
    const fresh = await m.load(undefined)
    fresh.set('cart', ['apple'])
    fresh.set('n', 7)
    fresh.set('off', null)
    const s = await browser(m)(fresh)
    const cart = s.get('cart')!
    expect(s.get('cart')).toBe(cart)
    ;(cart as string[]).push('pear') // not stored: only set() writes
    expect(s.get('cart')).toEqual(['apple', 'pear'])
    expect(m.needsCommit(s)).toBe(false)
    s.set('cart', ['plum'])
    expect(s.get('cart')).toEqual(['plum'])
    expect(s.get('cart')).not.toBe(cart)
    expect([s.get('n'), s.get('n'), s.get('off')]).toEqual([7, 7, null])
    s.delete('cart')
    expect(s.get('cart')).toBeUndefined()
  })

  it('coercing reads with defaults', async () => {
    const s = await manager().load(undefined)
    s.set('n', '42')
    s.set('b', 'true')
    s.set('d', '2026-01-02T00:00:00.000Z')
    s.set('o', { x: 1 })
    expect(s.getNumber('n')).toBe(42)
    expect(s.getNumber('o', -1)).toBe(-1)
    expect(s.getNumber('missing', 7)).toBe(7)
    expect(s.getString('n')).toBe('42')
    expect(s.getString('o', 'dflt')).toBe('dflt')
    expect(s.getBoolean('b')).toBe(true)
    expect(s.getBoolean('o', true)).toBe(true)
    expect(s.getDate('d')?.toISOString()).toBe('2026-01-02T00:00:00.000Z')
    expect(s.getDate('o')).toBeUndefined()
  })

  it('immutable keys: later writes fail with a typed error, reads are frozen copies, across requests', async () => {
    const m = manager()
    const roundTrip = browser(m)
    const s = await m.load(undefined)
    s.set('role', { name: 'admin' }, { immutable: true })
    expect(() => s.set('role', { name: 'root' })).toThrow(SessionImmutableError)
    const read = s.get('role') as { name: string }
    expect(Object.isFrozen(read)).toBe(true)
    expect(() => {
      read.name = 'root'
    }).toThrow(TypeError)
    const next = await roundTrip(s)
    expect(() => next.set('role', 1)).toThrow(/immutable/)
    next.delete('role')
    next.set('role', 2)
    expect(next.get('role')).toBe(2)
  })

  it('a value that cannot be stored fails at set(), naming the key', async () => {
    const s = await manager().load(undefined)
    const err = (() => {
      try {
        s.set('when', new Date())
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(SessionSerializeError)
    expect(err).toMatchObject({ code: 'ERR_SESSION_SERIALIZE', key: 'when' })
    expect((err as Error).message).toMatch(/"when"/)
  })

  it.each([
    '',
    '$flash:x',
    '__proto__',
    'constructor',
    'a\nb',
    'x'.repeat(201),
    'a\ud800',
    '\udc00',
  ])('refuses the key %j', async (key) => {
    const s = await manager().load(undefined)
    expect(() => s.set(key, 1)).toThrow(SessionSerializeError)
    expect(() => s.flash.set(key, 1)).toThrow(SessionSerializeError)
  })

  it('takes keys and user ids of any well-formed text, astral characters too', async () => {
    const s = await manager().load(undefined)
    s.set('🔑 ключ', 1)
    expect(s.get('🔑 ключ')).toBe(1)
    s.setUser('用户 😀')
    expect(s.userId).toBe('用户 😀')
    // UTF-8 cannot carry a lone surrogate: Redis would keep another id, SQL refuse the record
    expect(() => s.setUser('u\ud800')).toThrow(/well-formed Unicode/)
    expect(s.userId).toBe('用户 😀')
  })

  it('flash: set, peek, has, get consumes, all, clear; survives a round trip and is read once', async () => {
    const m = manager()
    const roundTrip = browser(m)
    const s = await m.load(undefined)
    s.flash.set('notice', 'Saved')
    s.flash.set('error', { field: 'email' })
    expect(s.keys()).toEqual([])
    const next = await roundTrip(s)
    expect(next.flash.has('notice')).toBe(true)
    expect(next.flash.peek('notice')).toBe('Saved')
    expect(next.flash.get('notice')).toBe('Saved')
    expect(next.flash.get('notice')).toBeUndefined()
    const third = await roundTrip(next)
    expect(third.flash.all()).toEqual({ error: { field: 'email' } })
    const fourth = await roundTrip(third)
    expect(fourth.flash.all()).toEqual({})
    fourth.flash.set('a', 1)
    fourth.flash.clear()
    expect(fourth.flash.has('a')).toBe(false)
  })
})

describe('reserved fields', () => {
  it('are kept and removed across requests, out of keys() and toJSON()', async () => {
    const m = manager<{ a: number }>()
    const roundTrip = browser(m)
    const s = await m.load(undefined)
    s.set('a', 1)
    setReservedField(s, '$module', 'secret text')
    expect(s.keys()).toEqual(['a'])
    expect(JSON.stringify(s)).not.toContain('secret text')
    const next = await roundTrip(s)
    expect(reservedField(next, '$module')).toBe('secret text')
    deleteReservedField(next, '$module')
    expect(m.needsCommit(next)).toBe(true)
    const after = await roundTrip(next)
    expect(reservedField(after, '$module')).toBeUndefined()
    expect(after.get('a')).toBe(1)
    // removing what is not there changes nothing
    deleteReservedField(after, '$module')
    expect(m.needsCommit(after)).toBe(false)
  })
})

describe('Session types', () => {
  it('types get and set by the Data generic', async () => {
    const m = manager<{ count: number; name?: string }>()
    const s = await m.load(undefined)
    expectTypeOf(s.get('count')).toEqualTypeOf<number | undefined>()
    expectTypeOf(s.get('name')).toEqualTypeOf<string | undefined>()
    s.set('count', 1)
    // @ts-expect-error a string is not a number
    s.set('count', 'one')
    // @ts-expect-error not a key of Data
    s.get('nope')
    expectTypeOf(s.keys()).toEqualTypeOf<('count' | 'name')[]>()
  })

  it('untyped sessions take any key and give unknown', async () => {
    const s = await manager().load(undefined)
    expectTypeOf(s.get('anything')).toEqualTypeOf<unknown>()
  })
})
