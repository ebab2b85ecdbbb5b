import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionStoreError } from '../../src/core/errors.js'
import { hashSessionId } from '../../src/core/ids.js'
import { createSessions } from '../../src/index.js'
import { type PostgresClient, postgresSchema, postgresStore } from '../../src/stores/postgres.js'
import { describeSqlStore } from '../conformance/sql-store-suite.js'
import { describeStoreConformance, meta, newKey } from '../conformance/store-suite.js'
import { SECRET } from '../helpers/http.js'
import { POSTGRES_URL, service } from '../helpers/services.js'

const { available } = await service('postgres', POSTGRES_URL)
const prefix = `tessera_test_${process.pid}_${randomBytes(3).toString('hex')}`
const tables: string[] = []
const tableFor = (name: string) => {
  const table = `${prefix}_${name}`
  tables.push(table)
  return table
}
const pool = available ? new pg.Pool({ connectionString: POSTGRES_URL, max: 10 }) : undefined

afterAll(async () => {
  if (!pool) return
  for (const table of tables) await pool.query(`DROP TABLE IF EXISTS "${table}"`)
  await pool.end()
})

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Wraps the pool and records every statement. */
function recording(inner: PostgresClient) {
  const statements: string[] = []
  const client: PostgresClient = {
    query: (text, values) => {
      statements.push(text)
      return inner.query(text, values)
    },
  }
  return { client, statements }
}

if (available) {
  describeStoreConformance('postgres', {
    create: () => postgresStore({ pool: pool!, table: tableFor('conformance'), createTable: true }),
    cleanup: (store) => store.close?.(),
    expiry: 'prune',
    capabilities: ['add', 'listByUser', 'destroyByUser', 'count', 'scan', 'prune', 'close'],
  })
}

describe.runIf(available)('postgres store', () => {
  it('creates its table and both indexes once, however many first calls overlap', async () => {
    const table = tableFor('create')
    const { client, statements } = recording(pool!)
    const store = postgresStore({ pool: client, table, createTable: true, pruneInterval: 0 })
    await Promise.all(Array.from({ length: 5 }, () => store.get(newKey())))
    await store.get(newKey())
    expect(statements.filter((s) => s.startsWith('CREATE TABLE'))).toHaveLength(1)
    const { rows } = await pool!.query(
      'SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname',
      [table],
    )
    expect(rows.map((r: { indexname: string }) => r.indexname)).toEqual([
      `${table}_expires_at_idx`,
      `${table}_pkey`,
      `${table}_user_id_idx`,
    ])
  })

  it('applies a patch in one statement', async () => {
    const { client, statements } = recording(pool!)
    const store = postgresStore({ pool: client, table: tableFor('one'), createTable: true })
    const key = newKey()
    await store.set(key, { fields: { a: '1', b: '2' }, meta: meta() })
    statements.length = 0
    await store.patch(key, { clear: false, set: { c: '3' }, delete: ['a'] }, meta())
    expect(statements).toHaveLength(1)
    expect(statements[0]).toMatch(/^UPDATE/)
    expect((await store.get(key))?.fields).toEqual({ b: '2', c: '3' })
    await store.close()
  })

  it('keeps times with a fraction of a millisecond (a sub-millisecond clock) and expires by them', async () => {
    let now = Date.now() + 0.25
    const store = postgresStore({
      pool: pool!,
      table: tableFor('fraction'),
      createTable: true,
      pruneInterval: 0,
      clock: () => now,
    })
    const key = newKey()
    const m = meta({ userId: 'u', idleExpiresAt: now + 1000.5 }, now)
    await store.set(key, { fields: { a: '1' }, meta: m })
    expect(await store.get(key)).toEqual({ fields: { a: '1' }, meta: m })
    const later = meta({ userId: 'u', idleExpiresAt: now + 2000.5 }, now + 0.5)
    expect(await store.patch(key, { clear: false, set: { b: '2' }, delete: [] }, later)).toBe(true)
    await store.touch(key, later)
    expect(await store.add(key, { fields: {}, meta: m })).toBe(false)
    expect((await store.listByUser('u')).map((s) => s.meta)).toEqual([later])
    now += 2000.25 // 0.25 ms before the idle expiry: still live
    expect(await store.prune()).toBe(0)
    expect(await store.listByUser('u')).toHaveLength(1)
    now += 0.5 // past it
    expect(await store.listByUser('u')).toEqual([])
    expect(await store.prune()).toBe(1)
    await store.close()
  })

  it('takes a schema-qualified table name', () => {
    expect(postgresSchema('app.sessions')).toContain('"app"."sessions"')
  })

  /** The indexes of `table`: name and the column it is on. */
  const indexesOf = async (table: string) => {
    const { rows } = await pool!.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname`,
      [table],
    )
    return rows as { indexname: string; indexdef: string }[]
  }

  it('creates both indexes for every table name length the option takes, up to 63', async () => {
    const base = tableFor('')
    for (const length of [48, 49, 52, 61, 62, 63]) {
      const table = `${base}${'x'.repeat(length - base.length)}`
      tables.push(table)
      const ddl = postgresSchema(table)
      for (const [, index] of ddl.matchAll(/CREATE INDEX IF NOT EXISTS "([^"]+)"/g))
        expect(Buffer.byteLength(index!), index).toBeLessThanOrEqual(63)
      const store = postgresStore({ pool: pool!, table, createTable: true, pruneInterval: 0 })
      await store.count()
      const defs = (await indexesOf(table)).map((i) => i.indexdef.replace(/^.* USING btree /, ''))
      expect(defs.sort(), `${length} characters`).toEqual([
        '(expires_at)',
        '(key)',
        '(user_id) WHERE (user_id IS NOT NULL)',
      ])
      await store.close()
    }
    // names that fit are as they always were
    expect(postgresSchema('app.sessions')).toContain('"sessions_user_id_idx"')
    expect(postgresSchema('app.sessions')).toContain('"sessions_expires_at_idx"')
  })

  it('a table made by an earlier version (index names cut by PostgreSQL) gets no new index', async () => {
    const base = tableFor('')
    const table = `${base}${'y'.repeat(58 - base.length)}`
    tables.push(table)
    // the DDL of earlier versions, whose index names PostgreSQL cut to 63 bytes
    await pool!.query(`CREATE TABLE "${table}" ("key" text PRIMARY KEY, "data" jsonb NOT NULL,
      "meta" jsonb NOT NULL, "user_id" text, "expires_at" bigint NOT NULL);
      CREATE INDEX "${table}_user_id_idx" ON "${table}" ("user_id") WHERE "user_id" IS NOT NULL;
      CREATE INDEX "${table}_expires_at_idx" ON "${table}" ("expires_at");`)
    const before = await indexesOf(table)
    expect(before).toHaveLength(3)
    const store = postgresStore({ pool: pool!, table, createTable: true, pruneInterval: 0 })
    await store.set(newKey(), { fields: {}, meta: meta() })
    expect(await indexesOf(table)).toEqual(before)
    await store.close()
  })

  it('a failed write keeps the driver error as cause without the values PostgreSQL quotes in detail and where', async () => {
    const store = postgresStore({ pool: pool!, table: tableFor('quoted'), createTable: true })
    const key = newKey()
    // jsonb refuses \u0000 in a field name, and quotes the JSON around it in `where`
    const fields = { token: '"refresh-SECRET"', 'bad\u0000name': '"x"' }
    const error = (await store.set(key, { fields, meta: meta() }).catch((e: unknown) => e)) as Error
    expect(error).toBeInstanceOf(SessionStoreError)
    expect(error).toMatchObject({ store: 'postgres', operation: 'set' })
    expect(error.cause).toBeInstanceOf(Error)
    expect(error.cause).toMatchObject({ code: '22P05', severity: 'ERROR' })
    for (const name of ['detail', 'where', 'internalQuery'])
      expect(error.cause).not.toHaveProperty(name)
    const everything = [
      JSON.stringify(error, Object.getOwnPropertyNames(error)),
      JSON.stringify(error.cause, Object.getOwnPropertyNames(error.cause)),
    ].join()
    expect(everything).not.toContain('refresh-SECRET')
    expect(everything).not.toContain(key)
    await store.close()
  })
})

let tableCount = 0
if (available) {
  describeSqlStore({
    name: 'postgres',
    create: (table, options) => postgresStore({ pool: pool!, table, ...options }),
    newTable: () => tableFor(`t${tableCount++}`),
    writeColumn: (table, key, column, json) =>
      pool!.query(`UPDATE "${table}" SET "${column}" = $1::jsonb WHERE "key" = $2`, [json, key]),
    insertRows: (table, n, expires) =>
      pool!.query(
        `INSERT INTO "${table}" ("key", "data", "meta", "user_id", "expires_at")
         SELECT md5(i::text) || md5((i + 1)::text), '{}', '{"createdAt":1}', NULL, $1 FROM generate_series(1, $2::int) i`,
        [expires, n],
      ),
    missingTable: /does not exist/,
    badTableNames: ['sessions; DROP TABLE users', 'a"b', '1abc', 'a.b.c', ''],
    clientOpen: async () => (await pool!.query('SELECT 1 AS one')).rows[0]?.one === 1,
    schema: () => postgresSchema(),
    lockTable: async (table) => {
      const client = await pool!.connect()
      await client.query('BEGIN')
      await client.query(`LOCK TABLE "${table}" IN ACCESS EXCLUSIVE MODE`)
      return async () => {
        await client.query('ROLLBACK')
        client.release()
      }
    },
  })
}

describe.runIf(available)('postgres store failure', () => {
  it('an unreachable server fails load and commit with ERR_SESSION_STORE, never a fresh session', async () => {
    const down = new pg.Pool({
      host: '127.0.0.1',
      port: await closedPort(),
      user: 'postgres',
      connectionTimeoutMillis: 500,
    })
    try {
      const sessions = createSessions({
        secret: SECRET,
        store: postgresStore({ pool: down, pruneInterval: 0 }),
      })
      const id = randomBytes(32).toString('base64url')
      const error = await sessions.load(`sid=${sessions.keyring.sign(id)}`).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(SessionStoreError)
      expect(error).toMatchObject({
        code: 'ERR_SESSION_STORE',
        store: 'postgres',
        operation: 'get',
      })
      expect((error as Error).message).toMatch(/ECONNREFUSED/)
      expect((error as Error).message).not.toContain(hashSessionId(id))

      const session = await sessions.load(undefined)
      session.set('count', 1)
      await expect(sessions.commit(session)).rejects.toMatchObject({
        code: 'ERR_SESSION_STORE',
        store: 'postgres',
        operation: 'set',
      })
    } finally {
      await down.end()
    }
  })
})
