/**
 * `tessera migrate` between real stores, on generated sessions: any set of records (fields of
 * any names and values a session writes, every meta field, some expired) copied from one store
 * to another must arrive exactly, the expired ones skipped, whatever the pair of stores.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Redis } from 'ioredis'
import memjs from 'memjs'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { migrate } from '../src/cli/commands.js'
import type { SessionMeta, SessionRecord, SessionStore } from '../src/core/store.js'
import { fileStore } from '../src/stores/file.js'
import { memcachedStore } from '../src/stores/memcached.js'
import { memoryStore } from '../src/stores/memory.js'
import { mysqlStore } from '../src/stores/mysql.js'
import { postgresStore } from '../src/stores/postgres.js'
import { type RedisClientLike, redisStore } from '../src/stores/redis.js'
import { sqliteStore } from '../src/stores/sqlite.js'
import { memcachedService } from './helpers/memcached.js'
import { fc, runs } from './helpers/property.js'
import { MYSQL_URL, POSTGRES_URL, REDIS_URL, service } from './helpers/services.js'

const tag = `${process.pid}_${randomBytes(3).toString('hex')}`
const table = `tessera_migrate_${tag}`
const cleanups: (() => unknown)[] = []
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})
const redis = await service('redis', REDIS_URL)
const postgres = await service('postgres', POSTGRES_URL)
const mariadb = await service('mysql', MYSQL_URL)
const memcached = await memcachedService()
cleanups.push(() => memcached.stop())

/** The stores, each on a namespace of this file's own. */
const STORES: Record<string, { available: boolean; create: () => SessionStore }> = {
  memory: { available: true, create: () => memoryStore({ sweepInterval: 0 }) },
  file: {
    available: true,
    create: () => {
      const directory = mkdtempSync(join(tmpdir(), 'tessera-migrate-'))
      cleanups.push(() => rmSync(directory, { recursive: true, force: true }))
      return fileStore({ directory, sweepInterval: 0 })
    },
  },
  sqlite: {
    available: true,
    create: () => {
      const db = new Database(':memory:')
      cleanups.push(() => db.close())
      return sqliteStore({ db, createTable: true, pruneInterval: 0 })
    },
  },
  redis: {
    available: redis.available,
    create: () => {
      const client = new Redis(REDIS_URL)
      const prefix = `tessera-test-${tag}:`
      cleanups.push(async () => {
        const keys = await client.keys(`${prefix}*`)
        if (keys.length > 0) await client.del(...keys)
        await client.quit()
      })
      return redisStore({ client: client as RedisClientLike, prefix, scanCount: 3 })
    },
  },
  postgres: {
    available: postgres.available,
    create: () => {
      const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 4 })
      cleanups.push(async () => {
        await pool.query(`DROP TABLE IF EXISTS "${table}"`)
        await pool.end()
      })
      return postgresStore({ pool, table, createTable: true, pruneInterval: 0 })
    },
  },
  mysql: {
    available: mariadb.available,
    create: () => {
      const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 4 })
      cleanups.push(async () => {
        await pool.query(`DROP TABLE IF EXISTS \`${table}\``)
        await pool.end()
      })
      return mysqlStore({ pool, table, createTable: true, pruneInterval: 0 })
    },
  },
  memcached: {
    available: memcached.available,
    create: () => {
      const client = memjs.Client.create(memcached.url)
      cleanups.push(() => client.close())
      return memcachedStore({ client, prefix: `tessera-test-${tag}:` })
    },
  },
}

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
