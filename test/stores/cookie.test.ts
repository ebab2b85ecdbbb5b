import { describe, expect, it, vi } from 'vitest'
import { SessionConfigError } from '../../src/core/errors.js'
import { newSessionId } from '../../src/core/ids.js'
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

  it('seals format 3 as documented: a binary head, the id as bytes, a JSON tail', () => {
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
    const DAY = 86_400_000
    const cases: [SessionMeta, Map<string, string>, number, string][] = [
      [meta({}, 1e12), new Map(), 1e12, ID],
      [meta({}, 1_796_067_685_080), new Map([['count', '42']]), 1_796_067_685_081, newSessionId()],
      [
        { ...meta({}, 1.5), userId: 'u"\\\u2028😀', idleTimeout: 60_000, persistent: true },
        new Map(awkward.map((text, i) => [awkward[awkward.length - 1 - i]!, text])),
        -0,
        ID,
      ],
      [{ ...meta({}, 0), idleTimeout: 0.25, persistent: false }, new Map([['a', 'b']]), 0, ID],
      // a session older than an int32 of milliseconds (24.8 days): its times as they are
      [meta({ createdAt: 1e12 - 30 * DAY }, 1e12), new Map([['a', 'b']]), 1e12, ID],
      // an id that newSessionId would not make goes in the tail, as text
      [meta({}, 1e12), new Map([['a', 'b']]), 1e12, 'not+base64url/"id"'],
      [meta({}, 1e12), new Map(), 1e12, `${ID.slice(0, 42)}B`],
      [meta({}, 1e12), new Map(), 1e12, `*${ID.slice(1)}`],
    ]
    for (const [m, fields, now, id] of cases) {
      const store = bindForTest(cookieStore())
      const { cookies } = store.seal({ id, fields, meta: m }, { secure: false, now, present: 0 })
      const token = cookies[0]!.slice('sid='.length, cookies[0]!.indexOf(';'))
      const times = [m.createdAt, m.lastSeenAt, m.idleExpiresAt, m.absoluteExpiresAt]
      const relative = times.every((t) => Number.isInteger(t - now) && Math.abs(t - now) < 2 ** 31)
      const rawId = /^[\w-]{42}[AEIMQUYcgkosw048]$/.test(id)
      const head = Buffer.alloc(relative ? 26 : 42)
      head[0] = 3
      head[1] =
        (m.userId === undefined ? 0 : 1) |
        (m.idleTimeout === undefined ? 0 : 2) |
        (m.persistent === undefined ? 0 : m.persistent ? 4 : 8) |
        (relative ? 0 : 16) |
        (rawId ? 0 : 32)
      head.writeDoubleLE(now, 2)
      for (const [k, t] of times.entries()) {
        if (relative) head.writeInt32LE(t - now, 10 + 4 * k)
        else head.writeDoubleLE(t, 10 + 8 * k)
      }
      const tail = JSON.stringify([
        ...(rawId ? [] : [id]),
        ...(m.userId === undefined ? [] : [m.userId]),
        ...(m.idleTimeout === undefined ? [] : [m.idleTimeout]),
        ...[...fields].flat(),
      ])
      const expected = Buffer.concat([
        head,
        rawId ? Buffer.from(id, 'base64url') : Buffer.alloc(0),
        Buffer.from(tail),
      ])
      const plaintext = opener.openWith(token, 4096, (plain, n) =>
        Buffer.from(plain.subarray(0, n)),
      )
      expect(plaintext, id).toEqual(expected)
      expect(store.open(`sid=${token}`, now)).toMatchObject({
        session: { id, meta: m, issuedAt: now, fields },
      })
    }
  })

  it("opens a session sealed in format 1, an earlier build's, the times as they are", () => {
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
    const unknown = sealer.seal(text.replace('[1,', '[4,'))
    expect(store.open(`sid=${unknown}`, 1e12 + 10)).toMatchObject({ rejected: 'malformed' })
  })

  it("opens format 2 (times less the sealing time, null for absent meta), an earlier build's", () => {
    const sealer = Sealer.fromKeyring(new Keyring([SECRET]), 'cookie-store', 'sid')
    const store = bindForTest(cookieStore())
    const m = meta({}, 1e12)
    const text = JSON.stringify([
      2,
      ID,
      1e12,
      m.createdAt - 1e12,
      m.lastSeenAt - 1e12,
      m.idleExpiresAt - 1e12,
      m.absoluteExpiresAt - 1e12,
      null,
      null,
      0,
    ])
    expect(store.open(`sid=${sealer.seal(text)}`, 1e12)).toMatchObject({
      session: { id: ID, meta: { ...m, persistent: false }, issuedAt: 1e12 },
    })
  })

  it('refuses format-3 flags it does not know, contradicting ones, and meta they promise but lack', () => {
    const sealer = Sealer.fromKeyring(new Keyring([SECRET]), 'cookie-store', 'sid')
    const store = bindForTest(cookieStore())
    const open = (flags: number, tail: unknown, head = 26) => {
      const plain = Buffer.alloc(head + 32)
      plain[0] = 3
      plain[1] = flags
      plain.writeDoubleLE(1e12, 2)
      plain.writeInt32LE(60_000, 18)
      plain.writeInt32LE(90_000, 22)
      Buffer.from(ID, 'base64url').copy(plain, head)
      const bytes = Buffer.concat([plain, Buffer.from(JSON.stringify(tail))])
      return store.open(`sid=${sealer.sealBytes(bytes, bytes.length)}`, 1e12)
    }
    expect(open(0, [])).toMatchObject({ session: { id: ID } })
    expect(open(1, ['u1', 'a', '1'])).toMatchObject({ session: { meta: { userId: 'u1' } } })
    expect(open(6, [60_000])).toMatchObject({
      session: { meta: { idleTimeout: 60_000, persistent: true } },
    })
    const refused: [number, unknown][] = [
      [64, []],
      [128, []],
      [12, []],
      [1, [7]],
      [2, ['x']],
      [3, ['u1']],
      [1, []],
      [0, ['a']],
      [0, {}],
    ]
    for (const [flags, tail] of refused) {
      expect(open(flags, tail), JSON.stringify([flags, tail])).toMatchObject({
        rejected: 'malformed',
      })
    }
    // the head with float64 times is 16 bytes longer: one byte short of it, no session
    const absolute = (tail: string) =>
      Buffer.concat([
        Buffer.from([3, 16]),
        Buffer.alloc(40),
        Buffer.from(ID, 'base64url'),
        Buffer.from(tail),
      ])
    const sealedBytes = (bytes: Buffer) => `sid=${sealer.sealBytes(bytes, bytes.length)}`
    expect(store.open(sealedBytes(absolute('[]')), 1e12)).toMatchObject({ session: { id: ID } })
    expect(store.open(sealedBytes(absolute('[')), 1e12)).toMatchObject({ rejected: 'malformed' })
    expect(store.open(sealedBytes(Buffer.from([3])), 1e12)).toMatchObject({ rejected: 'malformed' })
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
    const decrypt = vi.spyOn(Sealer.prototype, 'openWith')
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
