/**
 * `tessera migrate` between real stores, on generated sessions: any set of records (fields of
 * any names and values a session writes, every meta field, some expired) copied from one store
 * to another must arrive exactly, the expired ones skipped, whatever the pair of stores.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { migrate } from '../src/cli/commands.js'
import type { SessionMeta, SessionRecord } from '../src/core/store.js'
import { everyStore } from './helpers/every-store.js'
import { fc, runs } from './helpers/property.js'

const STORES = await everyStore('migrate')

/** Each store copied into the next: every store is a source (but Memcached, which cannot list) and a target. */
const PAIRS: [string, string][] = [
  ['memory', 'sqlite'],
  ['sqlite', 'redis'],
  ['redis', 'postgres'],
  ['postgres', 'mysql'],
  ['mysql', 'file'],
  ['file', 'memcached'],
]

/** The characters a session key cannot hold. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: those are the point
const CONTROL = /[\u0000-\u001f\u007f]/
const keyText = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 12 })
  .filter((t) => !CONTROL.test(t) && !['__proto__', 'constructor', 'prototype'].includes(t))
const record = (now: number): fc.Arbitrary<SessionRecord> =>
  fc.record({
    fields: fc.dictionary(
      keyText,
      fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      {
        maxKeys: 4,
      },
    ),
    meta: fc
      .record(
        {
          age: fc.integer({ min: 0, max: 3_600_000 }),
          // well past or well ahead: a store's own expiry (Redis, Memcached) must not take a
          // live one between the copy and the check
          idle: fc.oneof(
            fc.integer({ min: -3_600_000, max: -1_000 }),
            fc.integer({ min: 120_000, max: 3_600_000 }),
          ),
          userId: keyText,
          idleTimeout: fc.integer({ min: 1, max: 1_209_600_000 }),
          persistent: fc.constant(true as const),
        },
        { requiredKeys: ['age', 'idle'] },
      )
      .map(
        ({ age, idle, ...rest }): SessionMeta => ({
          createdAt: now - age,
          lastSeenAt: now - age,
          // some already past: expired, and skipped by migrate
          idleExpiresAt: now + idle,
          absoluteExpiresAt: now + 12 * 3_600_000,
          ...rest,
        }),
      ),
  })

describe.each(PAIRS)('migrate %s into %s', (from, to) => {
  const source = STORES[from]!
  const target = STORES[to]!
  it.runIf(source.available && target.available)(
    'copies every live session exactly and skips the expired',
    async () => {
      const a = source.create()
      const b = target.create()
      const out = { line: () => {} }
      await fc.assert(
        fc.asyncProperty(fc.array(record(Date.now()), { maxLength: 8 }), async (records) => {
          const now = Date.now()
          const keys = records.map(() => randomBytes(32).toString('hex'))
          try {
            for (const [i, r] of records.entries()) await a.set(keys[i]!, r)
            const live = records.filter((r) => r.meta.idleExpiresAt > now)
            const result = await migrate(a, b, out, { now })
            expect(result.copied).toBe(live.length)
            for (const [i, r] of records.entries()) {
              const copied = await b.get(keys[i]!)
              if (r.meta.idleExpiresAt > now) expect(copied).toEqual(r)
              else expect(copied).toBeUndefined()
            }
          } finally {
            // each case on empty stores, a failed one's too
            for (const key of keys) {
              await a.destroy(key)
              await b.destroy(key)
            }
          }
        }),
        { numRuns: runs(25) },
      )
      await a.close?.()
      await b.close?.()
    },
  )
})
