import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import mysql from 'mysql2/promise'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionStoreError } from '../../src/core/errors.js'
import { hashSessionId } from '../../src/core/ids.js'
import { createSessions } from '../../src/index.js'
import { type MysqlClient, mysqlSchema, mysqlStore } from '../../src/stores/mysql.js'
import { describeSqlStore } from '../conformance/sql-store-suite.js'
import { describeStoreConformance, meta, newKey } from '../conformance/store-suite.js'
import { SECRET } from '../helpers/http.js'
import { MYSQL_URL, service } from '../helpers/services.js'

const { available } = await service('mysql', MYSQL_URL)
const prefix = `tessera_test_${process.pid}_${randomBytes(3).toString('hex')}`
const tables: string[] = []
const tableFor = (name: string) => {
  const table = `${prefix}_${name}`
  tables.push(table)
  return table
}
const pool = available ? mysql.createPool({ uri: MYSQL_URL, connectionLimit: 10 }) : undefined

afterAll(async () => {
  if (!pool) return
  for (const table of tables) await pool.query(`DROP TABLE IF EXISTS \`${table}\``)
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
function recording(inner: MysqlClient) {
  const statements: string[] = []
  const client: MysqlClient = {
    query: (sql, values) => {
      statements.push(sql)
      return inner.query(sql, values)
    },
  }
  return { client, statements }
}

/** `n` rows expiring at `expires`, inserted in one statement. */
async function insertRows(table: string, n: number, expires: number) {
  const rows = Array.from({ length: n }, (_, i) => [
    createHash('sha256').update(`${table}:${i}`).digest('hex'),
    '{}',
    '{"createdAt":1}',
    null,
    expires,
  ])
  await pool!.query(
    `INSERT INTO \`${table}\` (\`key\`, \`data\`, \`meta\`, \`user_id\`, \`expires_at\`) VALUES ?`,
    [rows],
  )
}

if (available) {
  describeStoreConformance('mysql', {
    create: () => mysqlStore({ pool: pool!, table: tableFor('conformance'), createTable: true }),
    cleanup: (store) => store.close?.(),
    expiry: 'prune',
    capabilities: ['add', 'listByUser', 'destroyByUser', 'count', 'scan', 'prune', 'close'],
  })
}

describe.runIf(available)('mysql store', () => {
  it('creates its table and both indexes once, however many first calls overlap', async () => {
    const table = tableFor('create')
    const { client, statements } = recording(pool!)
    const store = mysqlStore({ pool: client, table, createTable: true, pruneInterval: 0 })
    await Promise.all(Array.from({ length: 5 }, () => store.get(newKey())))
    await store.get(newKey())
    expect(statements.filter((s) => s.startsWith('CREATE TABLE'))).toHaveLength(1)
    const [rows] = await pool!.query<mysql.RowDataPacket[]>(`SHOW INDEX FROM \`${table}\``)
    expect([...new Set(rows.map((r) => r.Key_name as string))].sort()).toEqual([
      'PRIMARY',
      'expires_at',
      'user_id',
    ])
  })

  it('creates its table for the longest name the option takes (63 characters)', async () => {
    const table = tableFor('')
    const name = `${table}${'x'.repeat(63 - table.length)}`
    tables.push(name)
    const store = mysqlStore({ pool: pool!, table: name, createTable: true, pruneInterval: 0 })
    const key = newKey()
    await store.set(key, { fields: { a: '1' }, meta: meta({ userId: 'u' }) })
    expect((await store.get(key))?.fields).toEqual({ a: '1' })
    expect((await store.listByUser('u')).map((s) => s.key)).toEqual([key])
    const [rows] = await pool!.query<mysql.RowDataPacket[]>(`SHOW INDEX FROM \`${name}\``)
    expect(rows.map((r) => `${r.Key_name}(${r.Column_name})`).sort()).toEqual([
      'PRIMARY(key)',
      'expires_at(expires_at)',
      'user_id(user_id)',
    ])
  })

  it('works on a table made by earlier versions, whose indexes are named after the table', async () => {
    const table = tableFor('legacy')
    const legacy = mysqlSchema(table)
      .replace('KEY `user_id`', `KEY \`${table}_user_id\``)
      .replace('KEY `expires_at`', `KEY \`${table}_expires_at\``)
    expect(legacy).toContain(`${table}_expires_at`)
    await pool!.query(legacy)
    const store = mysqlStore({ pool: pool!, table, createTable: true, pruneInterval: 0 })
    const key = newKey()
    await store.set(key, { fields: { a: '1' }, meta: meta({ userId: 'u' }) })
    expect((await store.get(key))?.fields).toEqual({ a: '1' })
    expect((await store.listByUser('u')).map((s) => s.key)).toEqual([key])
    const [rows] = await pool!.query<mysql.RowDataPacket[]>(`SHOW INDEX FROM \`${table}\``)
    expect([...new Set(rows.map((r) => r.Key_name as string))].sort()).toEqual([
      'PRIMARY',
      `${table}_expires_at`,
      `${table}_user_id`,
    ])
  })

  it('applies a patch in one statement', async () => {
    const { client, statements } = recording(pool!)
    const store = mysqlStore({ pool: client, table: tableFor('one'), createTable: true })
    const key = newKey()
    await store.set(key, { fields: { a: '1', b: '2' }, meta: meta() })
    statements.length = 0
    await store.patch(key, { clear: false, set: { c: '3' }, delete: ['a'] }, meta())
    expect(statements).toHaveLength(1)
    expect(statements[0]).toMatch(/^UPDATE/)
    expect((await store.get(key))?.fields).toEqual({ b: '2', c: '3' })
    await store.close()
  })

  it('a commit deleting a thousand fields applies in one statement (no nesting that overruns the server stack)', async () => {
    // a JSON_MERGE_PATCH nested per deleted field failed with "Thread stack overrun" from
    // about 450 deletes on MariaDB 10.11's default stack, and crashed the server near 500
    const { client, statements } = recording(pool!)
    const store = mysqlStore({ pool: client, table: tableFor('deletes'), createTable: true })
    const key = newKey()
    const fields: Record<string, string> = { keep: '"k"' }
    const doomed = Array.from({ length: 1000 }, (_, i) => `cart:${i}`)
    for (const field of doomed) fields[field] = '"item"'
    await store.set(key, { fields, meta: meta() })
    statements.length = 0
    const changes = { clear: false, set: { total: '0' }, delete: doomed }
    expect(await store.patch(key, changes, meta())).toBe(true)
    expect(statements).toHaveLength(1)
    expect((await store.get(key))?.fields).toEqual({ keep: '"k"', total: '0' })
    await store.close()
  })

  it('a patch that changes nothing still finds its row, without the FOUND_ROWS flag', async () => {
    const plain = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1, flags: ['-FOUND_ROWS'] })
    try {
      const store = mysqlStore({ pool: plain, table: tableFor('found'), createTable: true })
      const key = newKey()
      const m = meta()
      await store.set(key, { fields: { a: '1' }, meta: m })
      // the first may reformat the stored JSON; the second changes nothing at all
      for (let i = 0; i < 2; i++)
        expect(await store.patch(key, { clear: false, set: { a: '1' }, delete: [] }, m)).toBe(true)
      expect(await store.patch(newKey(), { clear: false, set: {}, delete: [] }, m)).toBe(false)
      await store.close()
    } finally {
      await plain.end()
    }
  })

  it('compares keys and user ids byte for byte', async () => {
    const store = mysqlStore({ pool: pool!, table: tableFor('binary'), createTable: true })
    const [lower, upper] = ['ab'.repeat(32), 'AB'.repeat(32)]
    await store.set(lower, { fields: { who: '"lower"' }, meta: meta({ userId: 'user' }) })
    await store.set(upper, { fields: { who: '"upper"' }, meta: meta({ userId: 'User' }) })
    expect((await store.get(lower))?.fields).toEqual({ who: '"lower"' })
    expect((await store.get(upper))?.fields).toEqual({ who: '"upper"' })
    expect((await store.listByUser('user')).map((s) => s.key)).toEqual([lower])
    await store.close()
  })

  it('user ids differing only in trailing spaces are two users (utf8mb4_bin pads with spaces)', async () => {
    const store = mysqlStore({ pool: pool!, table: tableFor('pad'), createTable: true })
    const ids = ['alice', 'alice ', 'alice  ', 'ü', 'ü ']
    const keys = new Map(ids.map((id) => [id, newKey()]))
    for (const [id, key] of keys) await store.set(key, { fields: {}, meta: meta({ userId: id }) })
    for (const [id, key] of keys)
      expect(
        (await store.listByUser(id)).map((s) => s.key),
        JSON.stringify(id),
      ).toEqual([key])
    const alice = keys.get('alice')!
    expect(await store.destroyByUser('alice', alice)).toBe(0)
    expect(await store.destroyByUser('alice')).toBe(1)
    expect(await store.get(alice)).toBeUndefined()
    for (const id of ids.slice(1)) expect(await store.get(keys.get(id)!), id).toBeDefined()
    await store.close()
  })

  it('a failed statement keeps the driver error as cause without the statement, whose values are session data', async () => {
    const store = mysqlStore({ pool: pool!, table: `${prefix}_missing`, pruneInterval: 0 })
    const key = newKey()
    const failures = [
      () => store.patch(key, { clear: false, set: { t: '"refresh-SECRET"' }, delete: [] }, meta()),
      () => store.set(key, { fields: { t: '"refresh-SECRET"' }, meta: meta({ userId: 'u' }) }),
      () => store.add(key, { fields: { t: '"refresh-SECRET"' }, meta: meta() }),
    ]
    for (const failure of failures) {
      const error = (await failure().catch((e: unknown) => e)) as Error
      expect(error).toBeInstanceOf(SessionStoreError)
      expect(error.cause).toBeInstanceOf(Error)
      expect(error.cause).toMatchObject({
        code: 'ER_NO_SUCH_TABLE',
        errno: 1146,
        sqlState: '42S02',
        sqlMessage: expect.stringMatching(/doesn't exist/),
        message: expect.stringMatching(/doesn't exist/),
      })
      expect(error.cause).not.toHaveProperty('sql')
      const everything = [
        JSON.stringify(error, Object.getOwnPropertyNames(error)),
        JSON.stringify(error.cause, Object.getOwnPropertyNames(error.cause)),
      ].join()
      expect(everything).not.toContain('refresh-SECRET')
      expect(everything).not.toContain(key)
    }
  })
})

let tableCount = 0
if (available) {
  describeSqlStore({
    name: 'mysql',
    create: (table, options) => mysqlStore({ pool: pool!, table, ...options }),
    newTable: () => tableFor(`t${tableCount++}`),
    insertRows,
    writeColumn: (table, key, column, json) =>
      pool!.query(`UPDATE \`${table}\` SET \`${column}\` = ? WHERE \`key\` = ?`, [json, key]),
    missingTable: /doesn't exist/,
    badTableNames: ['sessions; DROP TABLE users', 'a`b', '1abc', 'db.sessions', ''],
    clientOpen: async () => {
      const [rows] = await pool!.query<mysql.RowDataPacket[]>('SELECT 1 AS one')
      return rows[0]?.one === 1
    },
    schema: () => mysqlSchema(),
    lockTable: async (table) => {
      const connection = await pool!.getConnection()
      await connection.query(`LOCK TABLES \`${table}\` WRITE`)
      return async () => {
        await connection.query('UNLOCK TABLES')
        connection.release()
      }
    },
  })
}

describe.runIf(available)('mysql store failure', () => {
  it('an unreachable server fails load and commit with ERR_SESSION_STORE, never a fresh session', async () => {
    const down = mysql.createPool({
      host: '127.0.0.1',
      port: await closedPort(),
      user: 'root',
      connectTimeout: 500,
    })
    try {
      const sessions = createSessions({
        secret: SECRET,
        store: mysqlStore({ pool: down, pruneInterval: 0 }),
      })
      const id = randomBytes(32).toString('base64url')
      const error = await sessions.load(`sid=${sessions.keyring.sign(id)}`).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(SessionStoreError)
      expect(error).toMatchObject({ code: 'ERR_SESSION_STORE', store: 'mysql', operation: 'get' })
      expect((error as Error).message).toMatch(/ECONNREFUSED/)
      expect((error as Error).message).not.toContain(hashSessionId(id))

      const session = await sessions.load(undefined)
      session.set('count', 1)
      await expect(sessions.commit(session)).rejects.toMatchObject({
        code: 'ERR_SESSION_STORE',
        store: 'mysql',
        operation: 'set',
      })
    } finally {
      await down.end()
    }
  })
})
