/**
 * The PostgreSQL store: one row per session in one table, shared by every instance of the app.
 * A commit's patch is one `UPDATE` merging `jsonb`, so overlapping requests never lose each
 * other's changes. Takes the `pg` pool the app built (any client with `query(text, values)`).
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { postgresStore } from 'tessera/stores/postgres'
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * createSessions({ secret, store: postgresStore({ pool, createTable: true }) })
 * ```
 * @module
 */
import { createHash } from 'node:crypto'
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
 * What the store needs of a PostgreSQL client: `query(text, values)`. A `pg.Pool` fits (use a
 * pool, not one `pg.Client`, so requests do not queue behind each other).
 */
export interface PostgresClient {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>
}

/** Options of {@link postgresStore}. */
export interface PostgresStoreOptions extends SqlStoreOptions {
  /** The pool the app built (`new pg.Pool(...)`). The store never closes it. */
  pool: PostgresClient
  /**
   * How long, in milliseconds, a statement (with the wait for a pooled connection) may go
   * without an answer before the store call fails (the manager reports it as a
   * `SessionStoreError`): a request during an outage, or behind a lock, gets a clear error
   * instead of waiting. The statement itself is not cancelled: set `statement_timeout` on the
   * pool for that. One timer for all the store's calls, so it fires up to a quarter late.
   * `0` keeps no deadline.
   * @default 5000
   */
  timeout?: number
}

/** The PostgreSQL store and what it adds to the contract. */
export interface PostgresStore
  extends Required<Omit<SessionStore, 'name' | 'getNow' | 'patchNow' | 'touchNow'>> {
  readonly name: 'postgres'
  /** The table, quoted, as the store's statements use it. */
  readonly table: string
}

const quote = (part: string) => `"${part}"`

/** PostgreSQL's limit on an identifier, in bytes (table names here are ASCII). */
const MAX_IDENTIFIER = 63

/**
 * The name of the index `suffix` of table `base`: `<base>_<suffix>` where it fits in 63
 * bytes. Where it does not, PostgreSQL cut it to 63 and used that, which earlier versions of
 * this store relied on: that cut name is kept where it was still unique (a table name of up
 * to 61 characters keeps `_u` / `_e` of the two suffixes), so such tables get no new index.
 * Longer table names cut both names to the table name itself or to one shared name, so one
 * index or both were skipped; they get `<base, shortened>_<8 hex of the SHA-256 of base>_<suffix>`.
 */
function indexName(base: string, suffix: string): string {
  const name = `${base}_${suffix}`
  if (name.length <= MAX_IDENTIFIER) return name
  if (base.length <= MAX_IDENTIFIER - 2) return name.slice(0, MAX_IDENTIFIER)
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 8)
  return `${base.slice(0, MAX_IDENTIFIER - suffix.length - 10)}_${hash}_${suffix}`
}

/**
 * The DDL the store expects (and runs with `createTable: true`): a table and two indexes,
 * named `<table>_user_id_idx` and `<table>_expires_at_idx`, shortened to fit PostgreSQL's 63
 * bytes for long table names.
 *
 * @example
 * ```ts
 * console.log(postgresSchema('app_sessions')) // paste into a migration
 * ```
 */
export function postgresSchema(table: string = DEFAULT_TABLE): string {
  const parts = tableParts('postgres', table, true)
  const name = parts.map(quote).join('.')
  const base = parts[parts.length - 1]!
  return `CREATE TABLE IF NOT EXISTS ${name} (
  "key" text PRIMARY KEY,
  "data" jsonb NOT NULL,
  "meta" jsonb NOT NULL,
  "user_id" text,
  "expires_at" bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS "${indexName(base, 'user_id_idx')}" ON ${name} ("user_id") WHERE "user_id" IS NOT NULL;
CREATE INDEX IF NOT EXISTS "${indexName(base, 'expires_at_idx')}" ON ${name} ("expires_at");`
}

/**
 * A session store on PostgreSQL (9.5 or later). Columns: `key` (the at-rest hash), `data`
 * (`jsonb`: field -> encoded value), `meta` (`jsonb`), and the indexed `user_id` and
 * `expires_at` (ms since the epoch: the earlier of the idle and absolute expiry).
 *
 * @example
 * ```ts
 * const store = postgresStore({ pool, table: 'app_sessions', pruneInterval: 0 })
 * await store.prune() // from a cron job instead of the timer
 * ```
 */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  checkStoreOptions('postgres', options, SQL_OPTION_KINDS)
  const { pool } = options
  if (typeof pool?.query !== 'function') {
    throw new SessionConfigError(
      '[store:postgres] give the pool the app built: postgresStore({ pool: new pg.Pool(...) })',
    )
  }
  const tableName = options.table ?? DEFAULT_TABLE
  const t = tableParts('postgres', tableName, true).map(quote).join('.')
  const clock = options.clock ?? Date.now
  const timed = deadline('postgres', 'PostgreSQL', options.timeout)

  let ready: Promise<void> | undefined
  const createTable = async () => {
    const ddl = postgresSchema(tableName)
    try {
      await timed(pool.query(ddl))
    } catch (err) {
      // two processes creating the table at once: one loses a race on the catalog; the
      // statements are idempotent, so running them again settles it
      const code = (err as { code?: string }).code
      if (code !== '23505' && code !== '42P07') throw err
      await timed(pool.query(ddl))
    }
  }
  const ensureTable = () => {
    ready ??= createTable().catch((err: unknown) => {
      ready = undefined // try again on the next call
      throw err
    })
    return ready
  }
  const query = async <R>(text: string, values: unknown[]) => {
    if (options.createTable) await ensureTable()
    const result = await timed(pool.query(text, values))
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 }
  }

  const prune = () =>
    guard('postgres', 'prune', async () => {
      const now = Math.floor(clock())
      return pruneInBatches(async () => {
        // SKIP LOCKED: rows a request is writing right now wait for the next prune
        const { rowCount } = await query(
          `DELETE FROM ${t} WHERE "key" IN (SELECT "key" FROM ${t} WHERE "expires_at" <= $1 LIMIT ${PRUNE_BATCH} FOR UPDATE SKIP LOCKED)`,
          [now],
        )
        return rowCount
      })
    })
  const stopPruning = startPruning('postgres', options, prune)

  /** `set`: a whole record, replacing the row; `add` puts its condition after it. */
  const upsert = `INSERT INTO ${t} AS "s" ("key", "data", "meta", "user_id", "expires_at")
    VALUES ($1, $2::jsonb, $3::jsonb, $4, $5)
    ON CONFLICT ("key") DO UPDATE SET "data" = EXCLUDED."data", "meta" = EXCLUDED."meta",
      "user_id" = EXCLUDED."user_id", "expires_at" = EXCLUDED."expires_at"`

  return {
    name: 'postgres',
    table: t,
    get: (key) =>
      guard('postgres', 'get', async () => {
        const { rows } = await query<DataRow>(`SELECT "data", "meta" FROM ${t} WHERE "key" = $1`, [
          key,
        ])
        const row = rows[0]
        return row && recordOf('postgres', row)
      }),
    set: (key, record) =>
      guard('postgres', 'set', async () => {
        await query(upsert, [key, ...rowValues(record)])
      }),
    /** `set`, unless an unexpired record is there. */
    add: (key, record) =>
      guard('postgres', 'add', async () => {
        // One statement: a conflicting insert waits for the other to commit, then the row is
        // locked and the WHERE sees its latest version, so of overlapping adds one writes and
        // the others find a live row, which the WHERE leaves as it is and rowCount does not count
        const { rowCount } = await query(`${upsert} WHERE "s"."expires_at" <= $6`, [
          key,
          ...rowValues(record),
          Math.floor(clock()),
        ])
        return rowCount > 0
      }),
    patch: (key, patch, meta) =>
      guard('postgres', 'patch', async () => {
        // one statement: the row lock serialises overlapping patches, and each one merges into
        // the data as the previous one left it
        const { rowCount } = await query(
          `UPDATE ${t} SET
             "data" = ((CASE WHEN $2::boolean THEN '{}'::jsonb ELSE "data" END) || $3::jsonb) - $4::text[],
             "meta" = $5::jsonb, "user_id" = $6, "expires_at" = $7
           WHERE "key" = $1`,
          [
            key,
            patch.clear,
            JSON.stringify(patch.set),
            patch.delete,
            JSON.stringify(meta),
            meta.userId ?? null,
            expiresColumn(meta),
          ],
        )
        return rowCount > 0
      }),
    touch: (key, meta) =>
      guard('postgres', 'touch', async () => {
        await query(
          `UPDATE ${t} SET "meta" = $2::jsonb, "user_id" = $3, "expires_at" = $4 WHERE "key" = $1`,
          [key, JSON.stringify(meta), meta.userId ?? null, expiresColumn(meta)],
        )
      }),
    destroy: (key) =>
      guard('postgres', 'destroy', async () => {
        await query(`DELETE FROM ${t} WHERE "key" = $1`, [key])
      }),
    listByUser: (userId) =>
      guard('postgres', 'listByUser', async () => {
        const { rows } = await query<MetaRow>(
          `SELECT "key", "meta" FROM ${t} WHERE "user_id" = $1 AND "expires_at" > $2`,
          [userId, Math.floor(clock())],
        )
        return rows.map((row) => storedSessionOf('postgres', 'listByUser', row))
      }),
    destroyByUser: (userId, exceptKey) =>
      guard('postgres', 'destroyByUser', async () => {
        const { rowCount } = await query(`DELETE FROM ${t} WHERE "user_id" = $1 AND "key" <> $2`, [
          userId,
          exceptKey ?? '',
        ])
        return rowCount
      }),
    count: () =>
      guard('postgres', 'count', async () => {
        const { rows } = await query<{ n: string | number }>(`SELECT count(*) AS "n" FROM ${t}`, [])
        return Number(rows[0]?.n ?? 0)
      }),
    scan: () =>
      scanInPages('postgres', async (after) => {
        const { rows } = await guard('postgres', 'scan', () =>
          query<MetaRow>(
            `SELECT "key", "meta" FROM ${t} WHERE "key" > $1 ORDER BY "key" LIMIT ${SCAN_BATCH}`,
            [after],
          ),
        )
        return rows
      }),
    prune,
    async close() {
      stopPruning()
    },
  }
}
