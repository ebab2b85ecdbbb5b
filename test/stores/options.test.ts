/**
 * Every store built from generated options around a real client (values of every kind, and
 * some near what each option takes): a store, or a `SessionConfigError` naming the option,
 * never another error from inside. A store that was built must work.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { Redis } from 'ioredis'
import memjs from 'memjs'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionConfigError } from '../../src/core/errors.js'
import type { SessionStore } from '../../src/core/store.js'
import { fileStore } from '../../src/stores/file.js'
import { memcachedStore } from '../../src/stores/memcached.js'
import { mysqlStore } from '../../src/stores/mysql.js'
import { postgresStore } from '../../src/stores/postgres.js'
import { type RedisClientLike, redisStore } from '../../src/stores/redis.js'
import { sqliteStore } from '../../src/stores/sqlite.js'
import { meta, newKey } from '../conformance/store-suite.js'
import { memcachedService } from '../helpers/memcached.js'
import { fc, optionValue, runs } from '../helpers/property.js'
import { MYSQL_URL, POSTGRES_URL, REDIS_URL, service } from '../helpers/services.js'

const redis = await service('redis', REDIS_URL)
const postgres = await service('postgres', POSTGRES_URL)
const mariadb = await service('mysql', MYSQL_URL)
const memcached = await memcachedService()
const cleanups: (() => unknown)[] = [() => memcached.stop()]
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

const value = optionValue(
  '',
  'sessions',
  'a-b',
  'public.sessions',
  'x'.repeat(70),
  0,
  -1,
  1,
  1.5,
  300,
  2 ** 31,
  Number.NaN,
  true,
  false,
  null,
  () => 1,
  () => Number.NaN,
)

/** A table name of this file's own, or the generated one. */
const tag = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`

interface Case {
  available: boolean
  options: fc.Arbitrary<Record<string, unknown>>
  build: (options: Record<string, unknown>) => SessionStore
}

const redisClient = redis.available ? new Redis(REDIS_URL) : undefined
if (redisClient) cleanups.push(() => redisClient.quit())
const pool = postgres.available
  ? new pg.Pool({ connectionString: POSTGRES_URL, max: 2 })
  : undefined
if (pool) cleanups.push(() => pool.end())
const mysqlPool = mariadb.available
  ? mysql.createPool({ uri: MYSQL_URL, connectionLimit: 2 })
  : undefined
if (mysqlPool) cleanups.push(() => mysqlPool.end())
const db = new Database(':memory:')
cleanups.push(() => db.close())
const memjsClient = memcached.available ? memjs.Client.create(memcached.url) : undefined
if (memjsClient) cleanups.push(() => memjsClient.close())
const dir = mkdtempSync(join(tmpdir(), 'tessera-options-'))
cleanups.push(() => rmSync(dir, { recursive: true, force: true }))

const sql = (more: Record<string, fc.Arbitrary<unknown>> = {}) =>
  fc.record(
    {
      table: fc.oneof(fc.constant(`tessera_options_${tag}`), value),
      createTable: fc.oneof(fc.constant(true), value),
      pruneInterval: fc.oneof(fc.constant(0), value),
      onPruneError: value,
      clock: value,
      ...more,
    },
    { requiredKeys: ['table', 'createTable', 'pruneInterval'] },
  )

const CASES: Record<string, Case> = {
  redis: {
    available: redis.available,
    options: fc.record(
      {
        prefix: fc.oneof(fc.constant(`tessera-test-${tag}:`), value),
        scanCount: value,
        timeout: value,
      },
      { requiredKeys: ['prefix'] },
    ),
    build: (o) => redisStore({ ...o, client: redisClient as RedisClientLike } as never),
  },
  postgres: {
    available: postgres.available,
    options: sql({ timeout: value }),
    build: (o) => postgresStore({ ...o, pool } as never),
  },
  mysql: {
    available: mariadb.available,
    options: sql({ timeout: value }),
    build: (o) => mysqlStore({ ...o, pool: mysqlPool } as never),
  },
  sqlite: { available: true, options: sql(), build: (o) => sqliteStore({ ...o, db } as never) },
  memcached: {
    available: memcached.available,
    options: fc.record(
      { prefix: fc.oneof(fc.constant(`tessera-test-${tag}:`), value), casRetries: value },
      { requiredKeys: ['prefix'] },
    ),
    build: (o) => memcachedStore({ ...o, client: memjsClient } as never),
  },
  file: {
    available: true,
    options: fc.record(
      {
        fsync: value,
        sweepInterval: fc.oneof(fc.constant(0), value),
        lockTimeout: value,
        staleLockAfter: value,
        clock: value,
      },
      { requiredKeys: ['sweepInterval'] },
    ),
    build: (o) => fileStore({ ...o, directory: dir } as never),
  },
}

const SQL = ['postgres', 'mysql', 'sqlite']

describe.each(Object.keys(CASES))('%s store options of any kind', (name) => {
  const { available, options, build } = CASES[name]!
  it.runIf(available)('give a working store or a SessionConfigError', async () => {
    if (SQL.includes(name)) {
      // the table exists from the start: a case with createTable false may come before any
      // case that creates it, and a missing table is the app's to create, not a defect
      const store = build({ table: `tessera_options_${tag}`, createTable: true, pruneInterval: 0 })
      await store.get(newKey())
      await store.close?.()
    }
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        let store: SessionStore
        try {
          store = build(o)
        } catch (err) {
          if (!(err instanceof SessionConfigError)) throw err
          return
        }
        try {
          const key = newKey()
          const now = Date.now()
          await store.set(key, { fields: { a: '1' }, meta: meta({}, now) })
          expect((await store.get(key))?.fields).toEqual({ a: '1' })
          await store.destroy(key)
        } catch (err) {
          // a deadline of a few milliseconds is an option like another: its calls time out
          // (the store's own error; the manager wraps it in a SessionStoreError)
          const timeout = o.timeout
          const late = /no reply from \w+ within/.test(String((err as Error)?.message))
          if (!(late && typeof timeout === 'number' && timeout < 100)) throw err
        } finally {
          await store.close?.()
        }
      }),
      { numRuns: runs(150) },
    )
  })
})
