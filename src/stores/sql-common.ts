/**
 * What the PostgreSQL, MySQL/MariaDB and SQLite stores share: their common options, table-name
 * checks, error wrapping, row decoding, the batched prune, the paged scan and the prune timer.
 * Internal: import a store, not this module.
 * @module
 */
import {
  emitStoreWarning,
  SessionConfigError,
  SessionStoreError,
  type StoreOperation,
} from '../core/errors.js'
import type { SessionMeta, SessionRecord, StoredSession } from '../core/store.js'
import { expiresAt } from '../core/store.js'
import { MAX_TIMER_MS } from './options.js'
import { checkedRecord, corruptRecord, listedMeta } from './record.js'

/** The kinds of the text, flag and function options every SQL store takes. */
export const SQL_OPTION_KINDS = {
  table: 'string',
  createTable: 'boolean',
  onPruneError: 'function',
  clock: 'function',
} as const

/** Options every SQL store takes. */
export interface SqlStoreOptions {
  /**
   * The table sessions live in: letters, digits and `_`, starting with a letter or `_`
   * (PostgreSQL also takes `schema.table`). It is quoted in every statement.
   * @default 'tessera_sessions'
   */
  table?: string
  /**
   * Create the table and its indexes (`CREATE TABLE IF NOT EXISTS`) on first use, once. Leave it
   * off when migrations own the schema: the DDL is in the store's docs and its `...Schema()`
   * function.
   * @default false
   */
  createTable?: boolean
  /**
   * How often expired sessions are deleted, in ms, by a timer of this store (`unref`ed, so it
   * never keeps the process alive; `close()` stops it). `0` turns it off: then run `prune()`
   * (or `tessera prune`) yourself, or the table grows. Every app instance runs its own timer;
   * that is fine (a prune is one indexed `DELETE` per 1000 expired rows).
   * @default 600_000 (10 minutes)
   */
  pruneInterval?: number
  /**
   * Called with the error when a timed prune fails (the timer keeps going).
   * @default a process warning of type `TesseraWarning` (`process.emitWarning`)
   */
  onPruneError?: (error: SessionStoreError) => void
  /**
   * The time in ms since the epoch, for `prune()`, `listByUser()` and `add()` (which writes
   * over a record expired by it). @default Date.now
   */
  clock?: () => number
}

/** The default table name of every SQL store. */
export const DEFAULT_TABLE = 'tessera_sessions'

/** Rows deleted per statement by `prune()`. */
export const PRUNE_BATCH = 1000
/** Rows read per query by `scan()`. */
export const SCAN_BATCH = 500

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * Checks a table name and returns its parts, so each can be quoted. A bad name is a startup
 * error, never SQL injection.
 */
export function tableParts(store: string, table: string, allowSchema: boolean): string[] {
  const parts = table.split('.')
  const ok =
    (parts.length === 1 || (allowSchema && parts.length === 2)) &&
    parts.every((p) => IDENTIFIER.test(p))
  if (!ok) {
    throw new SessionConfigError(
      `[store:${store}] table ${JSON.stringify(table)} is not a plain identifier: use letters, digits and _ (at most 63), starting with a letter or _${allowSchema ? ', optionally as schema.table' : ''}`,
    )
  }
  return parts
}

const KEY_LIKE = /[0-9a-f]{64}/gi

/** A driver's message, with anything shaped like a session key blanked out. */
function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message || (err as { code?: string }).code || '' : ''
  const message = text || String(err) || 'unknown error'
  return message.replace(KEY_LIKE, '<key>')
}

/**
 * Fields of a driver error that can hold the statement or the values it carried: mysql2's `sql`
 * (the statement with every value inlined), node-postgres's `detail` ("Failing row contains
 * (...)"), `where` ("JSON data, line 1: ...") and `internalQuery`.
 */
const STATEMENT_FIELDS: readonly string[] = ['sql', 'detail', 'where', 'internalQuery']

/**
 * The driver error to keep as `cause`: `err` itself, or, when it holds the statement or its
 * values (session data, keys), a copy of its class without them, keeping the rest (`code`,
 * `errno`, `sqlState`, `sqlMessage`, `severity`, `constraint`, ...) with anything shaped like
 * a session key blanked out.
 */
function causeOf(err: unknown): unknown {
  if (!(err instanceof Error)) return err
  const fields = err as unknown as Record<string, unknown>
  if (STATEMENT_FIELDS.every((name) => fields[name] === undefined)) return err
  const blank = (value: unknown) =>
    typeof value === 'string' ? value.replace(KEY_LIKE, '<key>') : value
  // of the error's class, `message` and `stack` own and not enumerable, as an Error has them
  const copy = Object.create(Object.getPrototypeOf(err), {
    message: { value: blank(err.message), writable: true, configurable: true },
    stack: { value: blank(err.stack), writable: true, configurable: true },
  }) as Record<string, unknown>
  for (const name of Object.keys(err))
    if (!STATEMENT_FIELDS.includes(name)) copy[name] = blank(fields[name])
  return copy
}

/**
 * Wraps a driver error in a `SessionStoreError` naming the store and operation, never a key;
 * its `cause` is the driver's error without the statement and values (see {@link causeOf}).
 */
export function storeError(store: string, operation: StoreOperation, err: unknown) {
  if (err instanceof SessionStoreError) return err
  return new SessionStoreError(store, operation, messageOf(err), { cause: causeOf(err) })
}

/** Runs `fn`, turning what it throws (or rejects with) into a `SessionStoreError`. */
export async function guard<T>(
  store: string,
  operation: StoreOperation,
  fn: () => T | Promise<T>,
): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw storeError(store, operation, err)
  }
}

/** Parses a JSON column: drivers hand back text (MariaDB, SQLite) or already-parsed values. */
export function fromJson<T>(value: unknown): T {
  if (typeof value === 'string') return JSON.parse(value) as T
  if (value instanceof Uint8Array) return JSON.parse(new TextDecoder().decode(value)) as T
  return value as T
}

/** A selected session row: its `data` and `meta` columns. */
export interface DataRow {
  data: unknown
  meta: unknown
}

/** A row of `scan()`: the key and the `meta` column. */
export interface MetaRow {
  key: string
  meta: unknown
}

/**
 * The record in a row `store` selected; a `SessionStoreError` for `get` saying the stored
 * session is corrupt when the row holds no record (not JSON, `data` not an object, `meta`
 * without its times), so it never loads as a session that does not expire.
 */
export function recordOf(store: string, row: DataRow): SessionRecord {
  let fields: unknown
  let meta: unknown
  try {
    fields = fromJson(row.data)
    meta = fromJson(row.meta)
  } catch {
    // not the parser's message: it quotes the stored text
    throw corruptRecord(store)
  }
  return checkedRecord(store, fields, meta)
}

/**
 * The `expires_at` column of `meta`: its expiry in whole ms, rounded up. The column is an
 * integer, and PostgreSQL refuses a fraction (a clock with sub-millisecond precision) where
 * MySQL would round it, down as often as up; rounded up, a prune never removes a live record.
 */
export function expiresColumn(meta: SessionMeta): number {
  return Math.ceil(expiresAt(meta))
}

/** A record's `data`, `meta`, `user_id` and `expires_at` values, as `set` and `add` write them. */
export function rowValues(record: SessionRecord): [string, string, string | null, number] {
  return [
    JSON.stringify(record.fields),
    JSON.stringify(record.meta),
    record.meta.userId ?? null,
    expiresColumn(record.meta),
  ]
}

/** Runs `deleteBatch` (at most PRUNE_BATCH rows each) until one comes back short; the total. */
export async function pruneInBatches(deleteBatch: () => Promise<number>): Promise<number> {
  let removed = 0
  for (;;) {
    const deleted = await deleteBatch()
    removed += deleted
    if (deleted < PRUNE_BATCH) return removed
  }
}

/**
 * The key and meta of a row `store` listed (`listByUser`, `scan`); a `SessionStoreError` for
 * `operation` when its `meta` is not a JSON object (see {@link listedMeta}).
 */
export function storedSessionOf(
  store: string,
  operation: StoreOperation,
  row: MetaRow,
): StoredSession {
  return { key: String(row.key), meta: listedMeta(store, operation, () => fromJson(row.meta)) }
}

/**
 * Every row's key and meta in key order, SCAN_BATCH rows a page, each page the rows after the
 * last key seen (keyset pagination: no cursor held open across a yield, no OFFSET).
 */
export async function* scanInPages(
  store: string,
  page: (after: string) => Promise<readonly MetaRow[]>,
): AsyncGenerator<StoredSession> {
  let after = ''
  for (;;) {
    const rows = await page(after)
    for (const row of rows) yield storedSessionOf(store, 'scan', row)
    if (rows.length < SCAN_BATCH) return
    after = String(rows[rows.length - 1]!.key)
  }
}

/**
 * Starts the prune timer (none when `interval` is 0) and returns what stops it. A prune still
 * running when the next is due is not overlapped.
 */
export function startPruning(
  store: string,
  options: SqlStoreOptions,
  prune: () => Promise<number>,
): () => void {
  const interval = options.pruneInterval ?? 600_000
  // at most what a Node timer keeps: a longer interval would prune every millisecond
  if (typeof interval !== 'number' || !(interval >= 0 && interval <= MAX_TIMER_MS)) {
    throw new SessionConfigError(
      `[store:${store}] pruneInterval must be a number of ms up to ${MAX_TIMER_MS} (about 24 days), or 0 to turn it off`,
    )
  }
  if (interval === 0) return () => {}
  const onError = options.onPruneError ?? emitStoreWarning
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    prune()
      .catch((err: unknown) => {
        try {
          onError(storeError(store, 'prune', err))
        } catch {
          // a throwing handler must not become an unhandled rejection
        }
      })
      .finally(() => {
        running = false
      })
  }, interval)
  timer.unref()
  return () => clearInterval(timer)
}
