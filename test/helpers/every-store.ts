/**
 * Every server store on a namespace of one test file's own (a key prefix, a table, a
 * directory), for tests that run the same scenario on each against the real servers. Call it
 * once per file, at the top; what it opens is closed and dropped after the file's tests.
 *
 * ```ts
 * const STORES = await everyStore('interleaved')
 * describe.each(Object.keys(STORES))('... (%s)', (name) => {
 *   const { available, create } = STORES[name]!
 *   it.runIf(available)('...', async () => { const store = create(); ... })
 * })
 * ```
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
import { createClient } from 'redis'
import { afterAll } from 'vitest'
import type { SessionStore } from '../../src/core/store.js'
import { fileStore } from '../../src/stores/file.js'
import { memcachedStore } from '../../src/stores/memcached.js'
import { memoryStore } from '../../src/stores/memory.js'
import { mysqlStore } from '../../src/stores/mysql.js'
import { postgresStore } from '../../src/stores/postgres.js'
import { type RedisClientLike, redisStore } from '../../src/stores/redis.js'
import { sqliteStore } from '../../src/stores/sqlite.js'
import { memcachedService } from './memcached.js'
import { MYSQL_URL, POSTGRES_URL, REDIS_URL, service } from './services.js'

export interface StoreMaker {
  /** Whether its server answers (in CI a missing one fails the file, as `service` does). */
  available: boolean
  /** A new store over a new client; every one made shares the file's namespace. */
  create: () => SessionStore
}

/** Memory, file, SQLite, Redis (ioredis and node-redis), PostgreSQL, MySQL/MariaDB, Memcached. */
export async function everyStore(file: string): Promise<Record<string, StoreMaker>> {
  const tag = `${file}_${process.pid}_${randomBytes(3).toString('hex')}`
  const table = `tessera_${tag}`
  const prefix = `tessera-test-${tag}:`
  const cleanups: (() => unknown)[] = []
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })
  const redis = await service('redis', REDIS_URL)
  const postgres = await service('postgres', POSTGRES_URL)
  const mariadb = await service('mysql', MYSQL_URL)
  const memcached = await memcachedService()
  cleanups.push(() => memcached.stop())
  const dropRedis = async (
    client: { keys(p: string): Promise<string[]> },
    del: (k: string[]) => unknown,
    p: string,
  ) => {
    const keys = await client.keys(`${p}*`)
    if (keys.length > 0) await del(keys)
  }
  return {
    memory: { available: true, create: () => memoryStore({ sweepInterval: 0 }) },
    file: {
      available: true,
      create: () => {
        const directory = mkdtempSync(join(tmpdir(), `tessera-${file}-`))
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
        cleanups.push(async () => {
          await dropRedis(client, (keys) => client.del(...keys), prefix)
          await client.quit()
        })
        return redisStore({ client: client as RedisClientLike, prefix, scanCount: 3 })
      },
    },
    'redis (node-redis)': {
      available: redis.available,
      create: () => {
        const client = createClient({ url: REDIS_URL })
        const connected = client.connect()
        const own = `${prefix}node:`
        cleanups.push(async () => {
          await connected
          await dropRedis(client, (keys) => client.del(keys), own)
          await client.close()
        })
        return redisStore({ client: client as RedisClientLike, prefix: own })
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
        return memcachedStore({ client, prefix })
      },
    },
  }
}
