/**
 * The store conformance suite: one set of tests every store passes against its real server.
 * A store's own test file is a thin call:
 *
 * ```ts
 * describeStoreConformance('redis', { create: () => redisStore({ client, prefix }) })
 * ```
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionMeta, SessionRecord, SessionStore } from '../../src/core/store.js'
import { fc, runs } from '../helpers/property.js'

export interface ConformanceOptions {
  /** A store on a namespace of its own (key prefix, table, directory). Called once per file. */
  create: () => SessionStore | Promise<SessionStore>
  /** Drop the namespace, close clients. */
  cleanup?: (store: SessionStore) => void | Promise<void>
  /**
   * How the store gets rid of expired records by itself: `'ttl'` (the server expires them:
   * Redis, Memcached), `'prune'` (`prune()` removes them: SQL, file, memory), or `'none'`.
   */
  expiry: 'ttl' | 'prune' | 'none'
  /** The optional parts the store has; the suite checks it has exactly these. */
  capabilities: readonly Capability[]
  /** Overlapping patches in the lost-update test. @default 50 */
  concurrency?: number
}

export type Capability =
  | 'add'
  | 'getNow'
  | 'patchNow'
  | 'touchNow'
  | 'listByUser'
  | 'destroyByUser'
  | 'count'
  | 'scan'
  | 'prune'
  | 'close'
const CAPABILITIES: readonly Capability[] = [
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
]

/** Registers a test only where it applies, so a store's run shows no skipped tests. */
function when<T extends typeof it | typeof describe>(applies: boolean, register: T): T {
  return applies ? register : ((() => {}) as unknown as T)
}

export const newKey = (): string => randomBytes(32).toString('hex')

export function meta(overrides: Partial<SessionMeta> = {}, now = Date.now()): SessionMeta {
  return {
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: now + 30 * 60_000,
    absoluteExpiresAt: now + 12 * 3_600_000,
    ...overrides,
  }
}

/** Values that trip naive stores: quotes, JSON syntax, unicode, control characters, size. */
const AWKWARD_FIELDS: Record<string, string> = {
  plain: '"hello"',
  number: '42',
  json: '{"a":[1,2,{"b":"c\\"d"}],"e":null}',
  'with space': '"x"',
  'dotted.key': '"y"',
  'unicode-ключ-🔑': '"значение 🎉"',
  $flash_like: '"flash"',
  '$flash:notice': '"Saved!"',
  'quote"key': '"q"',
  "single'key": '"s"',
  newline: '"line1\\nline2"',
  backslash: '"a\\\\b"',
  empty: '""',
  big: JSON.stringify('x'.repeat(64 * 1024)),
}

/** Characters of JavaScript text: any code point, and now and then a lone surrogate. */
const anyChar = fc.oneof(
  { weight: 9, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  },
)

/**
 * Text a session key or user id can be: any code point but the control characters. Not a
 * lone surrogate, which UTF-8 cannot carry, so the session refuses it (test/properties.test.ts).
 */
const keyText = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 24 })
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the characters keys cannot hold
  .filter((t) => !/[\u0000-\u001f\u007f]/.test(t))

/**
 * Fields as a session writes them: names a session key can take (some as flash keys), values
 * as the codecs write them (JSON text, in which JSON escapes NUL, lone surrogates and the
 * other awkward characters).
 */
const storedFields = fc.dictionary(
  fc.oneof(
    keyText.filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k)),
    keyText.map((k) => `$flash:${k}`),
  ),
  fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.string({ unit: anyChar, maxLength: 40 }).map((v) => JSON.stringify(v)),
  ),
  { maxKeys: 6 },
)

export function describeStoreConformance(name: string, options: ConformanceOptions): void {
  const concurrency = options.concurrency ?? 50
  const has = (c: Capability) => options.capabilities.includes(c)

  describe(`store conformance: ${name}`, () => {
    let store: SessionStore
    beforeAll(async () => {
      store = await options.create()
    })
    afterAll(async () => {
      await options.cleanup?.(store)
    })

    it('has a name and exactly the optional parts it declares', () => {
      expect(typeof store.name).toBe('string')
      expect(store.name.length).toBeGreaterThan(0)
      const present = CAPABILITIES.filter((c) => typeof store[c] === 'function')
      expect(present).toEqual(CAPABILITIES.filter(has))
    })

    it('returns undefined for a key it never stored', async () => {
      expect(await store.get(newKey())).toBeUndefined()
    })

    it('round-trips a record exactly: awkward field names and values, every meta field', async () => {
      const key = newKey()
      const record: SessionRecord = {
        fields: AWKWARD_FIELDS,
        meta: meta({ userId: 'user-ü 1', idleTimeout: 1_209_600_000, persistent: true }),
      }
      await store.set(key, record)
      expect(await store.get(key)).toEqual(record)
    })

    it('round-trips a record with no fields and no optional meta', async () => {
      const key = newKey()
      const record = { fields: {}, meta: meta() }
      await store.set(key, record)
      expect(await store.get(key)).toEqual(record)
    })

    it('hands out records the caller may change, and keeps none it was given', async () => {
      const key = newKey()
      const expected = { fields: { a: '1' }, meta: meta({ userId: 'u1' }) }
      const given = structuredClone(expected)
      await store.set(key, given)
      given.fields.a = 'changed by the caller after set'
      given.meta.lastSeenAt = 1
      const got = (await store.get(key))!
      got.fields.a = 'changed by the caller after get'
      got.meta.idleExpiresAt = 2
      delete got.meta.userId
      expect(await store.get(key)).toEqual(expected)
    })

    when(has('getNow'), it)('getNow answers at once with what get gives', async () => {
      const getNow = store.getNow!.bind(store)
      const key = newKey()
      expect(getNow(key)).toBeUndefined()
      const record = { fields: { a: '1', b: '"two"' }, meta: meta({ userId: 'u-now' }) }
      await store.set(key, record)
      const now = getNow(key)
      expect(now).not.toBeInstanceOf(Promise)
      expect(now).toEqual(record)
      expect(now).toEqual(await store.get(key))
      // the caller's to change, as get's
      now!.fields.a = 'changed by the caller'
      await store.patch(key, { clear: false, set: { c: '3' }, delete: ['b'] }, meta())
      expect(getNow(key)).toEqual(await store.get(key))
      expect(getNow(key)?.fields).toEqual({ a: '1', c: '3' })
      await store.destroy(key)
      expect(getNow(key)).toBeUndefined()
    })

    when(has('patchNow') && has('touchNow'), it)(
      'patchNow and touchNow write at once what patch and touch write',
      async () => {
        const patchNow = store.patchNow!.bind(store)
        const touchNow = store.touchNow!.bind(store)
        const key = newKey()
        expect(patchNow(key, { clear: false, set: { a: '1' }, delete: [] }, meta())).toBe(false)
        touchNow(key, meta())
        expect(await store.get(key)).toBeUndefined() // neither resurrects a session
        await store.set(key, { fields: { a: '1', b: '"two"' }, meta: meta() })
        const patched = meta({ userId: 'u-now', lastSeenAt: 5 })
        const answer = patchNow(key, { clear: false, set: { c: '3' }, delete: ['b'] }, patched)
        expect(answer).toBe(true)
        // done on return: no promise, nothing left to wait for
        expect(await store.get(key)).toEqual({ fields: { a: '1', c: '3' }, meta: patched })
        expect(patchNow(key, { clear: true, set: { d: '4' }, delete: [] }, patched)).toBe(true)
        expect((await store.get(key))?.fields).toEqual({ d: '4' })
        const touched = meta({ userId: 'u-now', lastSeenAt: 9 })
        expect(touchNow(key, touched)).toBeUndefined()
        expect(await store.get(key)).toEqual({ fields: { d: '4' }, meta: touched })
        await store.destroy(key)
      },
    )

    when(has('add'), describe)('add', () => {
      it('writes where no record is, and resolves true', async () => {
        const key = newKey()
        const record = { fields: { a: '"1"' }, meta: meta() }
        expect(await store.add!(key, record)).toBe(true)
        expect(await store.get(key)).toEqual(record)
      })

      it('leaves a live record as it is, and resolves false', async () => {
        const key = newKey()
        const live = { fields: { a: '"live"' }, meta: meta({ userId: 'u-add' }) }
        await store.set(key, live)
        expect(await store.add!(key, { fields: { b: '"2"' }, meta: meta() })).toBe(false)
        expect(await store.get(key)).toEqual(live)
      })

      it('writes over a record that has expired, as if none were there', async () => {
        const past = Date.now() - 3_600_000
        for (const expired of [
          meta({ idleExpiresAt: past + 1000 }, past),
          meta({ absoluteExpiresAt: past + 2000 }, past),
        ]) {
          const key = newKey()
          await store.set(key, { fields: { old: '"x"' }, meta: expired })
          const record = { fields: { fresh: '"y"' }, meta: meta() }
          expect(await store.add!(key, record)).toBe(true)
          expect(await store.get(key)).toEqual(record)
        }
      })

      it('of many adds of one key at once, exactly one writes, and its record is kept', async () => {
        for (let round = 0; round < 5; round++) {
          const key = newKey()
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              store.add!(key, { fields: { by: `"${i}"` }, meta: meta() }),
            ),
          )
          const winners = results.flatMap((won, i) => (won ? [i] : []))
          expect(winners).toHaveLength(1)
          expect((await store.get(key))?.fields).toEqual({ by: `"${winners[0]}"` })
        }
      })
    })

    it('keeps records apart by key', async () => {
      const [a, b] = [newKey(), newKey()]
      await store.set(a, { fields: { who: '"a"' }, meta: meta() })
      await store.set(b, { fields: { who: '"b"' }, meta: meta() })
      expect((await store.get(a))?.fields).toEqual({ who: '"a"' })
      expect((await store.get(b))?.fields).toEqual({ who: '"b"' })
    })

    it('set replaces the whole record', async () => {
      const key = newKey()
      await store.set(key, { fields: { a: '1', b: '2' }, meta: meta({ userId: 'u1' }) })
      const replacement = { fields: { c: '3' }, meta: meta() }
      await store.set(key, replacement)
      expect(await store.get(key)).toEqual(replacement)
    })

    it('patch sets and deletes fields, leaves the others, replaces the meta', async () => {
      const key = newKey()
      const before = meta()
      await store.set(key, { fields: { keep: '"k"', change: '1', drop: 'true' }, meta: before })
      const after = meta({
        lastSeenAt: before.lastSeenAt + 5000,
        idleExpiresAt: before.idleExpiresAt + 5000,
      })
      const ok = await store.patch(
        key,
        { clear: false, set: { change: '2', added: '"new"' }, delete: ['drop', 'absent'] },
        after,
      )
      expect(ok).toBe(true)
      expect(await store.get(key)).toEqual({
        fields: { keep: '"k"', change: '2', added: '"new"' },
        meta: after,
      })
    })

    it('patch applies every delete and set, whatever their order and neighbours', async () => {
      // MariaDB's JSON_MERGE_PATCH skipped a change next to a deleted key
      const cases: [Record<string, string>, Record<string, string>, string[]][] = [
        [{ a: '0', b: '1' }, { b: '0' }, ['a']],
        [{ a: '1', b: '2', c: '3' }, {}, ['b', 'a']],
        [{ c: '6', e: '5' }, { e: '6' }, ['c']],
        [{ b: '4', d: '2', e: '5' }, { d: '3', e: '8', c: '1', a: '8' }, ['b']],
      ]
      for (const [fields, set, del] of cases) {
        const key = newKey()
        await store.set(key, { fields, meta: meta() })
        expect(await store.patch(key, { clear: false, set, delete: del }, meta())).toBe(true)
        const expected: Record<string, string> = { ...fields, ...set }
        for (const k of del) delete expected[k]
        expect((await store.get(key))?.fields).toEqual(expected)
        await store.destroy(key)
      }
    })

    it('patch with clear removes every field before setting', async () => {
      const key = newKey()
      await store.set(key, { fields: { a: '1', b: '2' }, meta: meta() })
      expect(await store.patch(key, { clear: true, set: { c: '3' }, delete: [] }, meta())).toBe(
        true,
      )
      expect((await store.get(key))?.fields).toEqual({ c: '3' })
    })

    it('patch with awkward field names and values', async () => {
      const key = newKey()
      await store.set(key, { fields: {}, meta: meta() })
      await store.patch(key, { clear: false, set: AWKWARD_FIELDS, delete: [] }, meta())
      expect((await store.get(key))?.fields).toEqual(AWKWARD_FIELDS)
      await store.patch(key, { clear: false, set: {}, delete: Object.keys(AWKWARD_FIELDS) }, meta())
      expect((await store.get(key))?.fields).toEqual({})
    })

    it('round-trips any field names and values a session can hold, through set and patch', async () => {
      await fc.assert(
        fc.asyncProperty(
          storedFields,
          storedFields,
          fc.option(keyText),
          async (first, second, userId) => {
            const key = newKey()
            const record: SessionRecord = {
              fields: first,
              meta: userId === null ? meta() : meta({ userId }),
            }
            await store.set(key, record)
            expect(await store.get(key)).toEqual(record)
            const gone = Object.keys(first)
              .filter((k) => !(k in second))
              .slice(0, 2)
            expect(
              await store.patch(key, { clear: false, set: second, delete: gone }, record.meta),
            ).toBe(true)
            const expected = { ...first, ...second }
            for (const k of gone) delete expected[k]
            expect((await store.get(key))?.fields).toEqual(expected)
            await store.destroy(key)
          },
        ),
        { numRuns: runs(60) },
      )
    })

    it('patch of a missing record returns false and creates nothing (no resurrection)', async () => {
      const key = newKey()
      expect(await store.patch(key, { clear: false, set: { a: '1' }, delete: [] }, meta())).toBe(
        false,
      )
      expect(await store.get(key)).toBeUndefined()
    })

    it('touch replaces the meta and keeps the data', async () => {
      const key = newKey()
      const before = meta()
      await store.set(key, { fields: { a: '1' }, meta: before })
      const after = {
        ...before,
        lastSeenAt: before.lastSeenAt + 60_000,
        idleExpiresAt: before.idleExpiresAt + 60_000,
      }
      await store.touch(key, after)
      expect(await store.get(key)).toEqual({ fields: { a: '1' }, meta: after })
    })

    it('touch of a missing record creates nothing', async () => {
      const key = newKey()
      await store.touch(key, meta())
      expect(await store.get(key)).toBeUndefined()
    })

    it('destroy removes the record; destroying a missing one is fine', async () => {
      const key = newKey()
      await store.set(key, { fields: { a: '1' }, meta: meta() })
      await store.destroy(key)
      expect(await store.get(key)).toBeUndefined()
      await expect(store.destroy(key)).resolves.toBeUndefined()
      await expect(store.destroy(newKey())).resolves.toBeUndefined()
    })

    it(`lost update: ${concurrency} overlapping patches of different keys all persist`, async () => {
      const key = newKey()
      await store.set(key, { fields: { base: '0' }, meta: meta() })
      const results = await Promise.all(
        Array.from({ length: concurrency }, (_, i) =>
          store.patch(key, { clear: false, set: { [`k${i}`]: String(i) }, delete: [] }, meta()),
        ),
      )
      expect(results.every(Boolean)).toBe(true)
      const fields = (await store.get(key))?.fields ?? {}
      expect(Object.keys(fields).sort()).toEqual(
        ['base', ...Array.from({ length: concurrency }, (_, i) => `k${i}`)].sort(),
      )
      for (let i = 0; i < concurrency; i++) expect(fields[`k${i}`]).toBe(String(i))
    })

    when(has('listByUser') && has('destroyByUser'), describe)('user index', () => {
      it('lists a user’s sessions and follows changes of user', async () => {
        const user = `user-${newKey().slice(0, 8)}`
        const other = `user-${newKey().slice(0, 8)}`
        const [a, b, c] = [newKey(), newKey(), newKey()]
        await store.set(a, { fields: {}, meta: meta({ userId: user }) })
        await store.set(b, { fields: {}, meta: meta({ userId: user }) })
        await store.set(c, { fields: {}, meta: meta({ userId: other }) })
        expect((await store.listByUser!(user)).map((s) => s.key).sort()).toEqual([a, b].sort())
        const listed = (await store.listByUser!(user)).find((s) => s.key === a)
        expect(listed?.meta.userId).toBe(user)

        // b moves to the other user by patch; c is unbound by touch
        await store.patch(b, { clear: false, set: {}, delete: [] }, meta({ userId: other }))
        await store.touch(c, meta())
        expect((await store.listByUser!(user)).map((s) => s.key)).toEqual([a])
        expect((await store.listByUser!(other)).map((s) => s.key)).toEqual([b])

        await store.destroy(a)
        expect(await store.listByUser!(user)).toEqual([])
      })

      it('leaves expired sessions out of the list', async () => {
        const user = `user-${newKey().slice(0, 8)}`
        const live = newKey()
        await store.set(live, { fields: {}, meta: meta({ userId: user }) })
        const past = Date.now() - 60_000
        // expired by meta, still present if the store has not swept it
        await store.set(newKey(), {
          fields: {},
          meta: meta({ userId: user, idleExpiresAt: past + 1000 }, past),
        })
        expect((await store.listByUser!(user)).map((s) => s.key)).toEqual([live])
      })

      it('follows any sequence of writes, binds and removals, against a model', async () => {
        // three sessions, two users (per run), every way the user binding can change; `add`
        // where the store has it (a refused add must leave the index as it was)
        type Op =
          | { op: 'set' | 'add' | 'patch' | 'touch'; k: number; user: number | null }
          | { op: 'destroy'; k: number }
          | { op: 'destroyByUser'; user: number; except: number | null }
        const user = fc.option(fc.integer({ min: 0, max: 1 }))
        const k = fc.integer({ min: 0, max: 2 })
        const op: fc.Arbitrary<Op> = fc.oneof(
          fc.record({
            op: fc.constantFrom(
              'set' as const,
              'patch' as const,
              'touch' as const,
              ...(has('add') ? ['add' as const] : []),
            ),
            k,
            user,
          }),
          fc.record({ op: fc.constant('destroy' as const), k }),
          fc.record({
            op: fc.constant('destroyByUser' as const),
            user: fc.integer({ min: 0, max: 1 }),
            except: fc.option(k),
          }),
        )
        await fc.assert(
          fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
            const users = [`user-${newKey().slice(0, 8)}`, `user-${newKey().slice(0, 8)}`]
            const keys = [newKey(), newKey(), newKey()]
            // the model: which sessions exist, and whose each is
            const model = new Map<number, number | null>()
            const metaOf = (u: number | null) => (u === null ? meta() : meta({ userId: users[u]! }))
            for (const o of ops) {
              if (o.op === 'set') {
                await store.set(keys[o.k]!, { fields: { n: '1' }, meta: metaOf(o.user) })
                model.set(o.k, o.user)
              } else if (o.op === 'add') {
                const wrote = await store.add!(keys[o.k]!, { fields: {}, meta: metaOf(o.user) })
                expect(wrote).toBe(!model.has(o.k))
                if (wrote) model.set(o.k, o.user)
              } else if (o.op === 'patch') {
                const change = { clear: false, set: { n: '2' }, delete: [] }
                const ok = await store.patch(keys[o.k]!, change, metaOf(o.user))
                expect(ok).toBe(model.has(o.k))
                if (ok) model.set(o.k, o.user)
              } else if (o.op === 'touch') {
                await store.touch(keys[o.k]!, metaOf(o.user))
                if (model.has(o.k)) model.set(o.k, o.user)
              } else if (o.op === 'destroy') {
                await store.destroy(keys[o.k]!)
                model.delete(o.k)
              } else if (o.op === 'destroyByUser') {
                const { user: owner, except: kept } = o
                const except = kept === null ? undefined : keys[kept]
                const gone = [...model].filter(([i, u]) => u === owner && i !== kept)
                expect(await store.destroyByUser!(users[owner]!, except)).toBe(gone.length)
                for (const [i] of gone) model.delete(i)
              }
              for (const u of [0, 1]) {
                const listed = (await store.listByUser!(users[u]!)).map((x) => x.key).sort()
                const expected = [...model].filter(([, owner]) => owner === u)
                expect(listed).toEqual(expected.map(([i]) => keys[i]!).sort())
              }
            }
            for (const key of keys) await store.destroy(key)
          }),
          { numRuns: runs(30) },
        )
      })

      it('destroyByUser removes all but the kept session', async () => {
        const user = `user-${newKey().slice(0, 8)}`
        const keys = [newKey(), newKey(), newKey()]
        for (const key of keys)
          await store.set(key, { fields: { a: '1' }, meta: meta({ userId: user }) })
        const bystander = newKey()
        await store.set(bystander, { fields: {}, meta: meta({ userId: `${user}-x` }) })
        expect(await store.destroyByUser!(user, keys[0])).toBe(2)
        expect(await store.get(keys[0]!)).toBeDefined()
        expect(await store.get(keys[1]!)).toBeUndefined()
        expect(await store.get(keys[2]!)).toBeUndefined()
        expect(await store.get(bystander)).toBeDefined()
        expect(await store.destroyByUser!(user)).toBe(1)
        expect(await store.listByUser!(user)).toEqual([])
      })
    })

    when(has('count') || has('scan'), it)('count and scan see stored records', async () => {
      const keys = [newKey(), newKey()]
      for (const key of keys)
        await store.set(key, { fields: {}, meta: meta({ userId: 'scanned' }) })
      if (store.count) expect(await store.count()).toBeGreaterThanOrEqual(2)
      if (store.scan) {
        const seen = new Map<string, SessionMeta>()
        for await (const { key, meta: m } of store.scan()) seen.set(key, m)
        for (const key of keys) expect(seen.get(key)?.userId).toBe('scanned')
      }
    })

    when(has('prune'), it)('prune removes expired records and keeps live ones', async () => {
      const past = Date.now() - 3_600_000
      const [expiredIdle, expiredAbsolute, live] = [newKey(), newKey(), newKey()]
      await store.set(expiredIdle, {
        fields: { a: '1' },
        meta: meta({ idleExpiresAt: past + 1000 }, past),
      })
      await store.set(expiredAbsolute, {
        fields: { a: '1' },
        meta: meta({ absoluteExpiresAt: past + 2000 }, past),
      })
      await store.set(live, { fields: { a: '1' }, meta: meta() })
      expect(await store.prune!()).toBeGreaterThanOrEqual(2)
      expect(await store.get(expiredIdle)).toBeUndefined()
      expect(await store.get(expiredAbsolute)).toBeUndefined()
      expect(await store.get(live)).toBeDefined()
    })

    when(options.expiry === 'ttl', it)(
      'expires a record by itself once its expiry passes',
      async () => {
        const key = newKey()
        const now = Date.now()
        await store.set(key, { fields: { a: '1' }, meta: meta({ idleExpiresAt: now + 1000 }, now) })
        expect(await store.get(key)).toBeDefined()
        await new Promise((r) => setTimeout(r, 2200))
        expect(await store.get(key)).toBeUndefined()
      },
    )

    when(options.expiry !== 'none', it)('a touch moves the store’s own expiry', async () => {
      const key = newKey()
      const now = Date.now()
      await store.set(key, { fields: { a: '1' }, meta: meta({ idleExpiresAt: now + 1000 }, now) })
      await store.touch(key, meta({ idleExpiresAt: now + 60_000 }, now))
      if (options.expiry === 'ttl') await new Promise((r) => setTimeout(r, 2200))
      else await store.prune?.()
      expect(await store.get(key)).toBeDefined()
    })
  })
}
