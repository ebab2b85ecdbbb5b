/**
 * The MySQL / MariaDB store: one row per session in one InnoDB table, shared by every instance
 * of the app. A commit's patch is one `UPDATE` applying a JSON merge patch, so overlapping
 * requests never lose each other's changes. Takes the `mysql2/promise` pool the app built.
 *
 * @example
 * ```ts
 * import mysql from 'mysql2/promise'
 * import { mysqlStore } from 'tessera/stores/mysql'
 * const pool = mysql.createPool(process.env.DATABASE_URL!)
 * createSessions({ secret, store: mysqlStore({ pool, createTable: true }) })
 * ```
 * @module
 */
import { SessionConfigError } from '../core/errors.js'
import type { SessionStore } from '../core/store.js'
import { deadline } from './deadline.js'
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
  tableParts,
} from './sql-common.js'

/**
 * What the store needs of a MySQL client: `mysql2/promise`'s `query(sql, values)`, resolving
 * to `[rows, fields]`. A `mysql2/promise` pool fits.
 */
export interface MysqlClient {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>
}

/** Options of {@link mysqlStore}. */
export interface MysqlStoreOptions extends SqlStoreOptions {
  /** The pool the app built (`mysql.createPool(...)` from `mysql2/promise`). Never closed. */
  pool: MysqlClient
  /**
   * How long, in milliseconds, a statement (with the wait for a pooled connection) may go
   * without an answer before the store call fails (the manager reports it as a
   * `SessionStoreError`): a request during an outage, or behind a lock, gets a clear error
   * instead of waiting. The statement itself is not cancelled: set `max_statement_time`
   * (MariaDB) or `max_execution_time` (MySQL) on the server for that. One timer for all the
   * store's calls, so it fires up to a quarter late. `0` keeps no deadline.
   * @default 5000
   */
  timeout?: number
}

/** The MySQL / MariaDB store and what it adds to the contract. */
export interface MysqlStore
  extends Required<Omit<SessionStore, 'name' | 'getNow' | 'patchNow' | 'touchNow'>> {
  readonly name: 'mysql'
  /** The table, quoted, as the store's statements use it. */
  readonly table: string
}

/**
 * The DDL the store expects (and runs with `createTable: true`). `JSON` is a real type on
 * MySQL 5.7+ and an alias of `LONGTEXT` with a validity check on MariaDB 10.2+. Index names
 * are per table in MySQL, so they are the plain column names, which fit beside any table name
 * (tables made by earlier versions, with indexes named `<table>_user_id` and
 * `<table>_expires_at`, work as they are).
 *
 * @example
 * ```ts
 * console.log(mysqlSchema('app_sessions')) // paste into a migration
 * ```
 */
export function mysqlSchema(table: string = DEFAULT_TABLE): string {
  const name = tableParts('mysql', table, false)[0]!
  return `CREATE TABLE IF NOT EXISTS \`${name}\` (
  \`key\` CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  \`data\` JSON NOT NULL,
  \`meta\` JSON NOT NULL,
  \`user_id\` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  \`expires_at\` BIGINT NOT NULL,
  PRIMARY KEY (\`key\`),
  KEY \`user_id\` (\`user_id\`),
  KEY \`expires_at\` (\`expires_at\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`
}

/**
 * The rows of one user (two placeholders, both the user id): `user_id = ?` finds them through
 * the index, but `utf8mb4_bin` is a PAD SPACE collation, so it also matches `'alice '` for
 * `'alice'`; comparing the bytes as well makes it exact (the id converted to the column's
 * character set first, whatever the connection's).
 */
const SAME_USER =
  '`user_id` = ? AND CAST(`user_id` AS BINARY) = CAST(CONVERT(? USING utf8mb4) AS BINARY)'

interface Header {
  affectedRows: number
  info?: string
}

/**
 * Rows an `UPDATE` matched. MySQL counts only rows it changed in `affectedRows` unless the
 * connection has the FOUND_ROWS flag (mysql2 sets it by default); the server's info string
 * ("Rows matched: 1  Changed: 0  Warnings: 0") says it either way.
 */
function matched(header: Header): number {
  const found = /Rows matched: (\d+)/.exec(header.info ?? '')
  return found ? Number(found[1]) : header.affectedRows
}

/**
 * A session store on MySQL 5.7+ or MariaDB 10.2.25+. Columns: `key` (the at-rest hash, binary
 * collation), `data` (JSON: field -> encoded value), `meta` (JSON), and the indexed `user_id`
 * and `expires_at` (ms since the epoch: the earlier of the idle and absolute expiry).
 *
 * @example
 * ```ts
 * const store = mysqlStore({ pool, table: 'app_sessions', pruneInterval: 0 })
 * await store.prune() // from a cron job instead of the timer
 * ```
 */
export function mysqlStore(options: MysqlStoreOptions): MysqlStore {
  checkStoreOptions('mysql', options, SQL_OPTION_KINDS)
  const { pool } = options
  if (typeof pool?.query !== 'function') {
    throw new SessionConfigError(
      "[store:mysql] give the pool the app built: mysqlStore({ pool: mysql.createPool(...) }) from 'mysql2/promise'",
    )
  }
  const tableName = options.table ?? DEFAULT_TABLE
  const t = `\`${tableParts('mysql', tableName, false)[0]!}\``
  const clock = options.clock ?? Date.now
  const timed = deadline('mysql', 'MySQL', options.timeout)

  let ready: Promise<void> | undefined
  const ensureTable = () => {
    ready ??= timed(pool.query(mysqlSchema(tableName))).then(
      () => {},
      (err: unknown) => {
        ready = undefined // try again on the next call
        throw err
      },
    )
    return ready
  }
  const query = async <R>(sql: string, values: unknown[]): Promise<R> => {
    if (options.createTable) await ensureTable()
    const [result] = await timed(pool.query(sql, values))
    return result as R
  }

  const prune = () =>
    guard('mysql', 'prune', async () => {
      const now = clock()
      return pruneInBatches(async () => {
        const { affectedRows } = await query<Header>(
          `DELETE FROM ${t} WHERE \`expires_at\` <= ? LIMIT ${PRUNE_BATCH}`,
          [now],
        )
        return affectedRows
      })
    })
  const stopPruning = startPruning('mysql', options, prune)

  return {
    name: 'mysql',
    table: t,
    get: (key) =>
      guard('mysql', 'get', async () => {
        const rows = await query<DataRow[]>(
          `SELECT \`data\`, \`meta\` FROM ${t} WHERE \`key\` = ?`,
          [key],
        )
        const row = rows[0]
        return row && recordOf('mysql', row)
      }),
    set: (key, record) =>
      guard('mysql', 'set', async () => {
        const [data, meta, userId, expires] = rowValues(record)
        await query(
          `INSERT INTO ${t} (\`key\`, \`data\`, \`meta\`, \`user_id\`, \`expires_at\`)
           VALUES (?, ?, ?, ?, ?)
           ON DUPLICATE KEY UPDATE \`data\` = ?, \`meta\` = ?, \`user_id\` = ?, \`expires_at\` = ?`,
          [key, data, meta, userId, expires, data, meta, userId, expires],
        )
      }),
    /** `set`, unless an unexpired record is there. */
    add: (key, record) =>
      guard('mysql', 'add', async () => {
        const [data, meta, userId, expires] = rowValues(record)
        const now = clock()
        // One statement: InnoDB locks the duplicate row, so of overlapping adds one writes and
        // the others find a live row. Assignments run left to right, each seeing the ones
        // before, so `expires_at` goes last and every test reads the old one. affectedRows
        // cannot tell a write (with FOUND_ROWS, which mysql2 sets by default, a row left as it
        // is counts 1, as an insert does), so the branch that keeps a live row passes its
        // `expires_at` (after now, so not 0) through LAST_INSERT_ID(expr), which the server
        // reports as the statement's insertId; a write reports 0 (the table has no
        // AUTO_INCREMENT column).
        const header = await query<Header & { insertId: number }>(
          `INSERT INTO ${t} (\`key\`, \`data\`, \`meta\`, \`user_id\`, \`expires_at\`)
           VALUES (?, ?, ?, ?, ?)
           ON DUPLICATE KEY UPDATE
             \`data\` = IF(\`expires_at\` <= ?, ?, \`data\`),
             \`meta\` = IF(\`expires_at\` <= ?, ?, \`meta\`),
             \`user_id\` = IF(\`expires_at\` <= ?, ?, \`user_id\`),
             \`expires_at\` = IF(\`expires_at\` <= ?, ?, LAST_INSERT_ID(\`expires_at\`))`,
          [key, data, meta, userId, expires, now, data, now, meta, now, userId, now, expires],
        )
        return Number(header.insertId) === 0
      }),
    patch: (key, patch, meta) =>
      guard('mysql', 'patch', async () => {
        // One statement; InnoDB's row lock serialises overlapping patches and each merges into
        // the data as the previous one left it. The changes go as RFC 7396 merge patches, so
        // field names travel as JSON keys, never as JSON paths to escape: a field to delete is
        // `null`, which no encoded value can be (values are strings). MariaDB (10.11 at least)
        // applies a patch that holds a `null` beside other keys wrongly, skipping a set or a
        // delete next to the deleted key, so each delete is a patch of its own, and the sets
        // one patch without nulls. They are the arguments of one JSON_MERGE_PATCH, which
        // applies them in turn, left to right: nesting a call per delete overruns MariaDB's
        // thread stack at a few hundred deletes, failing the commit or crashing the server.
        // after a clear there is nothing to delete
        const deletes = patch.clear
          ? []
          : patch.delete.map((field) => JSON.stringify({ [field]: null }))
        const header = await query<Header>(
          `UPDATE ${t} SET
             \`data\` = JSON_MERGE_PATCH(CASE WHEN ? THEN '{}' ELSE \`data\` END, ${'?, '.repeat(deletes.length)}?),
             \`meta\` = ?, \`user_id\` = ?, \`expires_at\` = ?
           WHERE \`key\` = ?`,
          [
            patch.clear,
            ...deletes,
            JSON.stringify(patch.set),
            JSON.stringify(meta),
            meta.userId ?? null,
            expiresColumn(meta),
            key,
          ],
        )
        return matched(header) > 0
      }),
    touch: (key, meta) =>
      guard('mysql', 'touch', async () => {
        await query(
          `UPDATE ${t} SET \`meta\` = ?, \`user_id\` = ?, \`expires_at\` = ? WHERE \`key\` = ?`,
          [JSON.stringify(meta), meta.userId ?? null, expiresColumn(meta), key],
        )
      }),
    destroy: (key) =>
      guard('mysql', 'destroy', async () => {
        await query(`DELETE FROM ${t} WHERE \`key\` = ?`, [key])
      }),
    listByUser: (userId) =>
      guard('mysql', 'listByUser', async () => {
        const rows = await query<MetaRow[]>(
          `SELECT \`key\`, \`meta\` FROM ${t} WHERE ${SAME_USER} AND \`expires_at\` > ?`,
          [userId, userId, clock()],
        )
        return rows.map((row) => storedSessionOf('mysql', 'listByUser', row))
      }),
    destroyByUser: (userId, exceptKey) =>
      guard('mysql', 'destroyByUser', async () => {
        const { affectedRows } = await query<Header>(
          `DELETE FROM ${t} WHERE ${SAME_USER} AND \`key\` <> ?`,
          [userId, userId, exceptKey ?? ''],
        )
        return affectedRows
      }),
    count: () =>
      guard('mysql', 'count', async () => {
        const rows = await query<{ n: number | string }[]>(`SELECT COUNT(*) AS \`n\` FROM ${t}`, [])
        return Number(rows[0]?.n ?? 0)
      }),
    scan: () =>
      scanInPages('mysql', (after) =>
        guard('mysql', 'scan', () =>
          query<MetaRow[]>(
            `SELECT \`key\`, \`meta\` FROM ${t} WHERE \`key\` > ? ORDER BY \`key\` LIMIT ${SCAN_BATCH}`,
            [after],
          ),
        ),
      ),
    prune,
    async close() {
      stopPruning()
    },
  }
}
