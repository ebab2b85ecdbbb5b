import { describe, expect, it, vi } from 'vitest'
import { SessionConfigError } from '../../src/core/errors.js'
import { Keyring } from '../../src/core/keyring.js'
import { SessionManager } from '../../src/core/manager.js'
import { Sealer } from '../../src/core/seal.js'
import type { SessionMeta } from '../../src/core/store.js'
import { cookieStore } from '../../src/stores/cookie.js'
import { describeStoreConformance, meta } from '../conformance/store-suite.js'
import { applyToJar, bindForTest, cookieJarStore, headerOf } from '../helpers/cookie-jar.js'
import { SECRET } from '../helpers/http.js'
import { fakeClock } from '../helpers/stores.js'

// every awkward value, meta field and the 64 KB field round-trip through real sealing
describeStoreConformance('cookie (through a per-key browser jar)', {
  create: () => cookieJarStore(cookieStore({ maxChunks: 30 })),
  expiry: 'none',
  capabilities: [],
})

const ID = 'A'.repeat(43)
const sealed = (store = bindForTest(cookieStore()), fields = new Map([['a', '1']]), now = 1e12) =>
  store.seal({ id: ID, fields, meta: meta({}, now) }, { secure: false, now, present: 0 })

describe('cookie store', () => {
  it('round-trips a session through one cookie, and opens nothing from an unrelated header', () => {
    const store = bindForTest(cookieStore())
    const { cookies, present } = sealed(store)
    expect(cookies).toHaveLength(1)
    expect(cookies[0]).toMatch(/^sid=[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/)
    const jar = new Map<string, string>()
    applyToJar(jar, cookies)
    const opened = store.open(`other=1; ${headerOf(jar)}`, 1e12)
    expect(opened).toMatchObject({ present, session: { id: ID, issuedAt: 1e12 } })
    expect(opened && 'session' in opened && [...opened.session.fields]).toEqual([['a', '1']])
    expect(store.open('other=1; sidx=2', 1e12)).toBeUndefined()
    expect(store.open(undefined, 1e12)).toBeUndefined()
  })

  it('has no server-side capabilities in its type or its object', () => {
    const store = cookieStore()
    for (const name of ['listByUser', 'destroyByUser', 'count', 'scan', 'prune', 'get'])
      expect(name in store, name).toBe(false)
    // @ts-expect-error the cookie store cannot list sessions by user
    store.listByUser
  })

  it('binds the cookie name as associated data: a value sealed for one name opens under no other', () => {
    const keyring = new (class {
      deriveKeys = (_purpose: string, length = 32) => [Buffer.alloc(length, 7)]
    })() as never
    const a = Sealer.fromKeyring(keyring, 'cookie-store', 'sid')
    const b = Sealer.fromKeyring(keyring, 'cookie-store', 'other')
    const token = a.seal('hello')
    expect(a.open(token, 1000)).toEqual({ plaintext: 'hello' })
    expect(b.open(token, 1000)).toEqual({ rejected: 'bad-signature' })
    // and the purpose separates keys: the id-signing purpose gives a different key
    const c = Sealer.fromKeyring(
      { deriveKeys: (p: string, l = 32) => [Buffer.alloc(l, p.length)] } as never,
      'cookie-store',
      'sid',
    )
    expect(c.open(token, 1000)).toEqual({ rejected: 'bad-signature' })
  })

  it('seals the documented JSON array, times less the sealing time, exactly as JSON.stringify writes it', () => {
    const opener = Sealer.fromKeyring(new Keyring([SECRET]), 'cookie-store', 'sid')
    const awkward = [
      '',
      '"',
      '\\',
      '\n\u0000\u001f',
      '\u2028é😀',
      '\ud800',
      '__proto__',
      '{"a":[1]}',
    ]
    const cases: [SessionMeta, Map<string, string>, number][] = [
      [meta({}, 1e12), new Map(), 1e12],
      [meta({}, 1_796_067_685_080), new Map([['count', '42']]), 1_796_067_685_081],
      [
        { ...meta({}, 1.5), userId: 'u"\\\u2028😀', idleTimeout: 60_000, persistent: true },
        new Map(awkward.map((text, i) => [awkward[awkward.length - 1 - i]!, text])),
        -0,
      ],
      [{ ...meta({}, 0), idleTimeout: 0.25, persistent: false }, new Map([['a', 'b']]), 0],
    ]
    for (const [m, fields, now] of cases) {
      const store = bindForTest(cookieStore())
      const { cookies } = store.seal(
        { id: ID, fields, meta: m },
        { secure: false, now, present: 0 },
      )
      const token = cookies[0]!.slice('sid='.length, cookies[0]!.indexOf(';'))
      const expected = JSON.stringify([
        2,
        ID,
        now,
        m.createdAt - now,
        m.lastSeenAt - now,
        m.idleExpiresAt - now,
        m.absoluteExpiresAt - now,
        m.userId ?? null,
        m.idleTimeout ?? null,
        m.persistent === undefined ? null : m.persistent ? 1 : 0,
        ...[...fields].flat(),
      ])
      expect(opener.open(token, 4096)).toEqual({ plaintext: expected })
    }
  })

  it('writes the times as they are (format 1) when a difference would not give one back exactly', () => {
    const opener = Sealer.fromKeyring(new Keyring([SECRET]), 'cookie-store', 'sid')
    const store = bindForTest(cookieStore())
    // 0.1 - 1e12 rounds: 1e12 plus it is not 0.1 again
    const m: SessionMeta = { ...meta({}, 1e12), createdAt: 0.1 }
    const { cookies } = store.seal(
      { id: ID, fields: new Map(), meta: m },
      { secure: false, now: 1e12, present: 0 },
    )
    const token = cookies[0]!.slice('sid='.length, cookies[0]!.indexOf(';'))
    const text = JSON.stringify([
      1,
      ID,
      1e12,
      0.1,
      m.lastSeenAt,
      m.idleExpiresAt,
      m.absoluteExpiresAt,
      null,
      null,
      null,
    ])
    expect(opener.open(token, 4096)).toEqual({ plaintext: text })
    expect(store.open(`sid=${token}`, 1e12)).toMatchObject({ session: { meta: m, issuedAt: 1e12 } })
  })

  it('opens a session sealed in format 1, the times as they are', () => {
    const sealer = Sealer.fromKeyring(new Keyring([SECRET]), 'cookie-store', 'sid')
    const store = bindForTest(cookieStore())
    const m: SessionMeta = {
      ...meta({}, 1e12),
      userId: 'u1',
      idleTimeout: 60_000,
      persistent: true,
    }
    const text = JSON.stringify([
      1,
      ID,
      1e12 + 5,
      m.createdAt,
      m.lastSeenAt,
      m.idleExpiresAt,
      m.absoluteExpiresAt,
      'u1',
      60_000,
      1,
      'a',
      '1',
    ])
    const opened = store.open(`sid=${sealer.seal(text)}`, 1e12 + 10)
    expect(opened).toMatchObject({ session: { id: ID, meta: m, issuedAt: 1e12 + 5 } })
    expect(opened && 'session' in opened && [...opened.session.fields]).toEqual([['a', '1']])
    // and a format it does not know is no session
    const unknown = sealer.seal(text.replace('[1,', '[3,'))
    expect(store.open(`sid=${unknown}`, 1e12 + 10)).toMatchObject({ rejected: 'malformed' })
  })

  it('checks the length before any decoding: an over-long genuine-looking value is malformed', () => {
    const store = bindForTest(cookieStore({ maxChunks: 1 }))
    const token = sealed(store).cookies[0]!.split(';')[0]!.slice(4)
    // decoded, this would reach the AEAD and fail as bad-signature; it is refused before that
    expect(store.open(`sid=${token}${'A'.repeat(4096)}`, 1e12)).toMatchObject({
      rejected: 'malformed',
    })
    expect(store.open(`sid=${token}AAAA`, 1e12)).toMatchObject({ rejected: 'bad-signature' })
  })

  it('puts a version marker first, and refuses a version it does not know without decrypting', () => {
    const store = bindForTest(cookieStore())
    const token = sealed(store).cookies[0]!.split(';')[0]!.slice(4)
    const bytes = Buffer.from(token, 'base64url')
    expect(bytes[0]).toBe(1)
    bytes[0] = 3
    expect(store.open(`sid=${bytes.toString('base64url')}`, 1e12)).toMatchObject({
      rejected: 'malformed',
    })
  })

  it('opens a token it has seen again to an equal, separate session', () => {
    const clock = fakeClock()
    const store = bindForTest(cookieStore())
    const jar = new Map<string, string>()
    applyToJar(jar, sealed(store, new Map([['a', '1']]), clock.now()).cookies)
    const first = store.open(headerOf(jar), clock.now())
    if (!first || !('session' in first)) throw new Error('expected a session')
    // the manager changes what it is handed; the next open must not see it
    first.session.fields.set('a', '2')
    first.session.meta.lastSeenAt = 0
    const again = store.open(headerOf(jar), clock.now())
    expect(again).toMatchObject({ session: { fields: new Map([['a', '1']]) } })
    expect(again).not.toMatchObject({ session: { meta: { lastSeenAt: 0 } } })
    // one flipped character is still refused, seen before or not
    const [name, value] = [...jar][0]!
    const flipped = `${value.slice(0, 20)}${value[20] === 'A' ? 'B' : 'A'}${value.slice(21)}`
    expect(store.open(`${name}=${flipped}`, clock.now())).toHaveProperty('rejected')
  })

  it('keeps nothing when it seals; keeps a token it sealed from its first opening on', () => {
    const clock = fakeClock()
    const store = bindForTest(cookieStore())
    const jar = new Map<string, string>()
    applyToJar(jar, sealed(store, new Map([['a', '1']]), clock.now()).cookies)
    const decrypt = vi.spyOn(Sealer.prototype, 'open')
    try {
      for (let i = 0; i < 3; i++) {
        const opened = store.open(headerOf(jar), clock.now())
        expect(opened).toMatchObject({ session: { fields: new Map([['a', '1']]) } })
      }
      // the first opening decrypts (sealing kept no copy), the next two are hits
      expect(decrypt).toHaveBeenCalledTimes(1)
    } finally {
      decrypt.mockRestore()
    }
  })

  it('opens a token sealed elsewhere alike each time, kept or not, and copies what it keeps', () => {
    const clock = fakeClock()
    // another instance with the same secrets sealed it; this one has never seen it
    const jar = new Map<string, string>()
    applyToJar(jar, sealed(bindForTest(cookieStore()), new Map([['a', '1']]), clock.now()).cookies)
    const store = bindForTest(cookieStore())
    // the first opening only marks the token, the second keeps it, the third is a hit
    for (let i = 0; i < 4; i++) {
      const opened = store.open(headerOf(jar), clock.now())
      if (!opened || !('session' in opened)) throw new Error(`opening #${i + 1} failed`)
      expect([...opened.session.fields]).toEqual([['a', '1']])
      expect(opened.session.meta.lastSeenAt).not.toBe(0)
      opened.session.fields.set('a', String(i + 2))
      opened.session.meta.lastSeenAt = 0
    }
  })

  it('refuses a cookie sealed further in the future than clockSkew allows', () => {
    const clock = fakeClock()
    const store = bindForTest(cookieStore({ clockSkew: 60_000 }))
    const jar = new Map<string, string>()
    applyToJar(jar, sealed(store, new Map(), clock.now() + 60_000).cookies)
    expect(store.open(headerOf(jar), clock.now())).toHaveProperty('session')
    jar.clear()
    applyToJar(jar, sealed(store, new Map(), clock.now() + 60_001).cookies)
    expect(store.open(headerOf(jar), clock.now())).toMatchObject({ rejected: 'malformed' })
  })

  it('refuses bad options at startup, saying what to change', () => {
    expect(() => cookieStore({ maxChunks: 0 })).toThrow(/maxChunks/)
    expect(() => cookieStore({ maxChunks: 31 })).toThrow(/server store/)
    expect(() => cookieStore({ maxChunks: 1.5 })).toThrow(SessionConfigError)
    expect(() => cookieStore({ clockSkew: -1 })).toThrow(/clockSkew/)
    expect(() => cookieStore().open('sid=x', 0)).toThrow(/createSessions/)
    const store = cookieStore()
    new SessionManager({ secret: SECRET, store })
    expect(() => new SessionManager({ secret: SECRET, store })).toThrow(/its own cookieStore/)
    expect(
      () =>
        new SessionManager({
          secret: SECRET,
          store: cookieStore(),
          cookie: { name: 'sid', path: `/${'p'.repeat(3700)}` },
        }),
    ).toThrow(/shorten cookie/)
  })
})
