import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionStoreError } from '../../src/core/errors.js'
import { createSessions } from '../../src/index.js'
import { type SqliteDatabase, sqliteSchema, sqliteStore } from '../../src/stores/sqlite.js'
import { describeSqlStore } from '../conformance/sql-store-suite.js'
import { describeStoreConformance, meta, newKey } from '../conformance/store-suite.js'
import { SECRET } from '../helpers/http.js'

const dir = mkdtempSync(join(tmpdir(), 'tessera-sqlite-'))
const db = new Database(join(dir, 'sessions.db'))
db.pragma('journal_mode = WAL')
const table = `tessera_test_${process.pid}_${randomBytes(3).toString('hex')}`
let tables = 0
const tableFor = () => `${table}_${tables++}`

afterAll(() => {
  db.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Wraps the database and records every statement it prepares and runs. */
function recording(inner: SqliteDatabase) {
  const prepared: string[] = []
  const ran: string[] = []
  const client: SqliteDatabase = {
    exec: (sql) => inner.exec(sql),
    prepare: (sql) => {
      prepared.push(sql)
      const statement = inner.prepare(sql)
      const log =
        <A extends unknown[], R>(fn: (...args: A) => R) =>
        (...args: A) => {
          ran.push(sql)
          return fn.apply(statement, args)
        }
      return { run: log(statement.run), get: log(statement.get), all: log(statement.all) }
    },
  }
  return { client, prepared, ran }
}

/** `n` rows expiring at `expires`, in one transaction. */
function insertRows(name: string, n: number, expires: number) {
  const insert = db.prepare(
    `INSERT INTO "${name}" ("key", "data", "meta", "user_id", "expires_at") VALUES (?, '{}', '{"createdAt":1}', NULL, ?)`,
  )
  db.transaction(() => {
    for (let i = 0; i < n; i++)
      insert.run(createHash('sha256').update(`${name}:${i}`).digest('hex'), expires)
  })()
}

describeStoreConformance('sqlite', {
  create: () => sqliteStore({ db, table: tableFor(), createTable: true }),
  cleanup: (store) => store.close?.(),
  expiry: 'prune',
  capabilities: [
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
  ],
})

describe('sqlite store', () => {
  it('prepares each statement once and patches in one statement', async () => {
    const { client, prepared, ran } = recording(db)
    const store = sqliteStore({ db: client, table: tableFor(), createTable: true })
    const key = newKey()
    await store.set(key, { fields: { a: '1', b: '2' }, meta: meta() })
    const count = prepared.length
    ran.length = 0
    await store.patch(key, { clear: false, set: { c: '3' }, delete: ['a'] }, meta())
    expect(ran).toHaveLength(1)
    expect(ran[0]).toMatch(/^UPDATE/)
    for (let i = 0; i < 5; i++) await store.get(key)
    expect((await store.get(key))?.fields).toEqual({ b: '2', c: '3' })
    expect(prepared.length).toBe(count)
    await store.close()
  })

  it('creates its table and both indexes', async () => {
    const name = tableFor()
    const store = sqliteStore({ db, table: name, createTable: true, pruneInterval: 0 })
    await store.count()
    const indexes = db
      .prepare(
        `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`,
      )
      .all(name) as { name: string }[]
    expect(indexes.map((i) => i.name)).toEqual([`${name}_expires_at`, `${name}_user_id`])
    // listByUser uses the user index
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT "key" FROM "${name}" WHERE "user_id" = ? AND "expires_at" > ?`,
      )
      .all('u', 0) as { detail: string }[]
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/INDEX/)
  })

  it('a row whose data or meta is not JSON fails get as corrupt, without quoting it', async () => {
    const name = tableFor()
    const store = sqliteStore({ db, table: name, createTable: true, pruneInterval: 0 })
    for (const column of ['data', 'meta']) {
      const key = newKey()
      await store.set(key, { fields: { a: '1' }, meta: meta() })
      db.prepare(`UPDATE "${name}" SET "${column}" = 'secret-data {' WHERE "key" = ?`).run(key)
      for (const read of [() => store.get(key), async () => store.getNow(key)]) {
        const error = await read().catch((e: unknown) => e)
        expect(error, column).toBeInstanceOf(SessionStoreError)
        expect(error).toMatchObject({ store: 'sqlite', operation: 'get' })
        expect((error as Error).message).toMatch(/the stored session is corrupt/)
        expect((error as Error).message).not.toContain('secret-data')
      }
    }
  })

  it('a row whose meta is not a JSON object fails scan and listByUser as corrupt, without quoting it', async () => {
    const name = tableFor()
    const store = sqliteStore({ db, table: name, createTable: true, pruneInterval: 0 })
    const scanAll = async () => {
      for await (const _ of store.scan());
    }
    for (const text of ['secret-data {', 'null', '["secret-data"]']) {
      const key = newKey()
      await store.set(key, { fields: {}, meta: meta({ userId: 'u' }) })
      db.prepare(`UPDATE "${name}" SET "meta" = ? WHERE "key" = ?`).run(text, key)
      for (const [operation, call] of [
        ['scan', scanAll],
        ['listByUser', () => store.listByUser('u')],
      ] as const) {
        const error = await call().then(
          (found) => found,
          (e: unknown) => e,
        )
        expect(error, `${operation}: ${text}`).toBeInstanceOf(SessionStoreError)
        expect(error).toMatchObject({ store: 'sqlite', operation })
        expect((error as Error).message).toMatch(/stored session is corrupt/)
        expect((error as Error).message).not.toContain('secret-data')
        expect((error as Error).message).not.toContain(key)
      }
      await store.destroy(key)
    }
    await store.close()
  })

  it('keeps sessions across reopening the file', async () => {
    const name = tableFor()
    const key = newKey()
    await sqliteStore({ db, table: name, createTable: true }).set(key, {
      fields: { a: '1' },
      meta: meta(),
    })
    const other = new Database(db.name)
    try {
      expect((await sqliteStore({ db: other, table: name }).get(key))?.fields).toEqual({ a: '1' })
    } finally {
      other.close()
    }
  })
})

describeSqlStore({
  name: 'sqlite',
  create: (name, options) => sqliteStore({ db, table: name, ...options }),
  newTable: tableFor,
  insertRows,
  writeColumn: (name, key, column, json) =>
    db.prepare(`UPDATE "${name}" SET "${column}" = ? WHERE "key" = ?`).run(json, key),
  missingTable: /no such table/,
  badTableNames: ['sessions; DROP TABLE users', 'a"b', '1abc', 'main.sessions', ''],
  clientOpen: () => db.open,
  schema: () => sqliteSchema(),
})

describe('sqlite store failure', () => {
  it('a closed database fails load and commit with ERR_SESSION_STORE, never a fresh session', async () => {
    const closed = new Database(join(dir, 'closed.db'))
    const sessions = createSessions({
      secret: SECRET,
      store: sqliteStore({ db: closed, createTable: true, pruneInterval: 0 }),
    })
    const first = await sessions.load(undefined)
    first.set('count', 1)
    const cookie = (await sessions.commit(first))[0]!.split(';')[0]!
    closed.close()

    const error = await sessions.load(cookie).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionStoreError)
    expect(error).toMatchObject({ code: 'ERR_SESSION_STORE', store: 'sqlite', operation: 'get' })
    expect((error as Error).message).toMatch(/not open/)
    expect((error as Error).message).not.toContain(first.idHash)

    const session = await sessions.load(undefined)
    session.set('count', 1)
    await expect(sessions.commit(session)).rejects.toMatchObject({
      code: 'ERR_SESSION_STORE',
      store: 'sqlite',
      operation: 'set',
    })
  })
})
