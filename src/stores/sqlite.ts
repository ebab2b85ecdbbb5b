/**
 * The SQLite store: sessions in one table of a database file, shared by every process on the
 * machine that opens it. The embedded, persistent choice for a single machine. A commit's
 * patch is one `UPDATE` applying a JSON merge patch (SQLite's JSON1 `json_patch`), so
 * overlapping requests, in one process or several, never lose each other's changes. Takes the
 * `better-sqlite3` database the app opened.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { sqliteStore } from 'tessera/stores/sqlite'
 * const db = new Database('sessions.db')
 * db.pragma('journal_mode = WAL')
 * createSessions({ secret, store: sqliteStore({ db, createTable: true }) })
 * ```
 * @module
 */
import { SessionConfigError, type StoreOperation } from '../core/errors.js'
import type { SessionMeta, SessionPatch, SessionRecord, SessionStore } from '../core/store.js'
import { checkStoreOptions } from './options.js'
import {
  type DataRow,
  DEFAULT_TABLE,
  expiresColumn,
  guard,
  type MetaRow,
  PRUNE_BATCH,
  pruneInBatches,
  recordOf,
  rowValues,
  SCAN_BATCH,
  SQL_OPTION_KINDS,
  type SqlStoreOptions,
  scanInPages,
  startPruning,
  storedSessionOf,
  storeError,
  tableParts,
} from './sql-common.js'

/** What the store needs of a prepared statement (`better-sqlite3`'s `Statement`). */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number | bigint }
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
}

/** What the store needs of a database: `prepare(sql)` and `exec(sql)`, as `better-sqlite3`'s. */
export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement
  exec(sql: string): unknown
}

/** Options of {@link sqliteStore}. */
export interface SqliteStoreOptions extends SqlStoreOptions {
  /** The database the app opened (`new Database(file)` from `better-sqlite3`). Never closed. */
  db: SqliteDatabase
}

/** The SQLite store and what it adds to the contract. */
export interface SqliteStore extends Required<Omit<SessionStore, 'name'>> {
  readonly name: 'sqlite'
  /** The table, quoted, as the store's statements use it. */
  readonly table: string
}

/**
 * The DDL the store expects (and runs with `createTable: true`): a table and two indexes.
 *
 * @example
 * ```ts
 * db.exec(sqliteSchema('app_sessions'))
 * ```
 */
export function sqliteSchema(table: string = DEFAULT_TABLE): string {
  const name = tableParts('sqlite', table, false)[0]!
  return `CREATE TABLE IF NOT EXISTS "${name}" (
  "key" TEXT PRIMARY KEY NOT NULL,
  "data" TEXT NOT NULL,
  "meta" TEXT NOT NULL,
  "user_id" TEXT,
  "expires_at" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS "${name}_user_id" ON "${name}" ("user_id") WHERE "user_id" IS NOT NULL;
CREATE INDEX IF NOT EXISTS "${name}_expires_at" ON "${name}" ("expires_at");`
}

/** Yields to the event loop, so a long prune does not starve requests. */
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * A session store on SQLite 3.24 or later with JSON1 (built in since 3.38; `better-sqlite3`
 * bundles a recent SQLite).
 * Columns: `key` (the at-rest hash), `data` (JSON text: field -> encoded value), `meta` (JSON
 * text), and the indexed `user_id` and `expires_at` (ms since the epoch: the earlier of the
 * idle and absolute expiry). Statements are prepared once, on first use.
 *
 * @example
 * ```ts
 * const store = sqliteStore({ db, table: 'app_sessions', pruneInterval: 0 })
 * await store.prune() // from a cron job instead of the timer
 * ```
 */
export function sqliteStore(options: SqliteStoreOptions): SqliteStore {
  checkStoreOptions('sqlite', options, SQL_OPTION_KINDS)
  const { db } = options
  if (typeof db?.prepare !== 'function' || typeof db.exec !== 'function') {
    throw new SessionConfigError(
      "[store:sqlite] give the database the app opened: sqliteStore({ db: new Database('sessions.db') }) from 'better-sqlite3'",
    )
  }
  const tableName = options.table ?? DEFAULT_TABLE
  const t = `"${tableParts('sqlite', tableName, false)[0]!}"`
  const clock = options.clock ?? Date.now

  const upsert = `INSERT INTO ${t} ("key", "data", "meta", "user_id", "expires_at") VALUES (?, ?, ?, ?, ?)
      ON CONFLICT ("key") DO UPDATE SET "data" = excluded."data", "meta" = excluded."meta",
        "user_id" = excluded."user_id", "expires_at" = excluded."expires_at"`
  const sql = {
    get: `SELECT "data", "meta" FROM ${t} WHERE "key" = ?`,
    set: upsert,
    // one statement, so one write lock: the row there is replaced only when it has expired;
    // unqualified columns in the DO UPDATE are its values, and `changes` counts no row it keeps
    add: `${upsert} WHERE "expires_at" <= ?`,
    // one statement, so one write lock: a merge patch (RFC 7396) where a field to delete is
    // null, which no encoded value can be (values are strings)
    patch: `UPDATE ${t} SET "data" = json_patch(CASE WHEN ? THEN '{}' ELSE "data" END, ?),
      "meta" = ?, "user_id" = ?, "expires_at" = ? WHERE "key" = ?`,
    touch: `UPDATE ${t} SET "meta" = ?, "user_id" = ?, "expires_at" = ? WHERE "key" = ?`,
    destroy: `DELETE FROM ${t} WHERE "key" = ?`,
    listByUser: `SELECT "key", "meta" FROM ${t} WHERE "user_id" = ? AND "expires_at" > ?`,
    destroyByUser: `DELETE FROM ${t} WHERE "user_id" = ? AND "key" <> ?`,
    count: `SELECT count(*) AS "n" FROM ${t}`,
    scan: `SELECT "key", "meta" FROM ${t} WHERE "key" > ? ORDER BY "key" LIMIT ${SCAN_BATCH}`,
    prune: `DELETE FROM ${t} WHERE rowid IN (SELECT rowid FROM ${t} WHERE "expires_at" <= ? LIMIT ${PRUNE_BATCH})`,
  }
  type Statements = Record<keyof typeof sql, SqliteStatement>
  let statements: Statements | undefined
  /** The prepared statements, made once (after creating the table, when asked). */
  const prepared = (): Statements => {
    if (statements) return statements
    if (options.createTable) db.exec(sqliteSchema(tableName))
    const made = {} as Statements
    for (const name of Object.keys(sql) as (keyof typeof sql)[]) made[name] = db.prepare(sql[name])
    statements = made
    return made
  }

  // better-sqlite3 answers at once: `getNow`, `patchNow` and `touchNow` let a request load and
  // commit without waiting for a promise
  const read = (key: string): SessionRecord | undefined => {
    const row = prepared().get.get(key) as DataRow | undefined
    return row && recordOf('sqlite', row)
  }
  const patch = (key: string, changes: SessionPatch, meta: SessionMeta): boolean => {
    const merge: Record<string, string | null> = { ...changes.set }
    for (const field of changes.delete) merge[field] = null
    const result = prepared().patch.run(
      changes.clear ? 1 : 0,
      JSON.stringify(merge),
      JSON.stringify(meta),
      meta.userId ?? null,
      expiresColumn(meta),
      key,
    )
    return Number(result.changes) > 0
  }
  const touch = (key: string, meta: SessionMeta): void => {
    prepared().touch.run(JSON.stringify(meta), meta.userId ?? null, expiresColumn(meta), key)
  }
  /** `fn` done now, its failure a store error, as `guard` does for the promise-returning methods. */
  const atOnce = <T>(operation: StoreOperation, fn: () => T): T => {
    try {
      return fn()
    } catch (err) {
      throw storeError('sqlite', operation, err)
    }
  }
  const prune = () =>
    guard('sqlite', 'prune', async () => {
      const now = clock()
      return pruneInBatches(async () => {
        const changes = Number(prepared().prune.run(now).changes)
        // a full batch: let requests run before the next one
        if (changes >= PRUNE_BATCH) await yieldToLoop()
        return changes
      })
    })
  const stopPruning = startPruning('sqlite', options, prune)

  return {
    name: 'sqlite',
    table: t,
    getNow: (key) => atOnce('get', () => read(key)),
    get: (key) => guard('sqlite', 'get', () => read(key)),
    set: (key, record) =>
      guard('sqlite', 'set', () => {
        prepared().set.run(key, ...rowValues(record))
      }),
    /** `set`, unless an unexpired record is there. */
    add: (key, record) =>
      guard('sqlite', 'add', () => {
        const result = prepared().add.run(key, ...rowValues(record), clock())
        return Number(result.changes) > 0
      }),
    patchNow: (key, changes, meta) => atOnce('patch', () => patch(key, changes, meta)),
    patch: (key, changes, meta) => guard('sqlite', 'patch', () => patch(key, changes, meta)),
    touchNow: (key, meta) => atOnce('touch', () => touch(key, meta)),
    touch: (key, meta) => guard('sqlite', 'touch', () => touch(key, meta)),
    destroy: (key) =>
      guard('sqlite', 'destroy', () => {
        prepared().destroy.run(key)
      }),
    listByUser: (userId) =>
      guard('sqlite', 'listByUser', () =>
        (prepared().listByUser.all(userId, clock()) as MetaRow[]).map((row) =>
          storedSessionOf('sqlite', 'listByUser', row),
        ),
      ),
    destroyByUser: (userId, exceptKey) =>
      guard('sqlite', 'destroyByUser', () =>
        Number(prepared().destroyByUser.run(userId, exceptKey ?? '').changes),
      ),
    count: () =>
      guard('sqlite', 'count', () => {
        const row = prepared().count.get() as { n: number | bigint } | undefined
        return Number(row?.n ?? 0)
      }),
    scan: () =>
      scanInPages('sqlite', (after) =>
        guard('sqlite', 'scan', () => prepared().scan.all(after) as MetaRow[]),
      ),
    prune,
    async close() {
      stopPruning()
    },
  }
}
