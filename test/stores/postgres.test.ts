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

  it('takes a schema-qualified table name', () => {
    expect(postgresSchema('app.sessions')).toContain('"app"."sessions"')
  })
})

let tableCount = 0
if (available) {
  describeSqlStore({
    name: 'postgres',
    create: (table, options) => postgresStore({ pool: pool!, table, ...options }),
    newTable: () => tableFor(`t${tableCount++}`),
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
