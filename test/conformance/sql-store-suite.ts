/**
 * What every SQL store (postgres, mysql, sqlite) does beyond the store contract: batched prune,
 * paged scan, a prune timer that close() stops without closing the user's client, errors for a
 * missing table, table-name checks, and docs that carry the DDL. Each store's test file passes
 * the few things that differ.
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { SessionConfigError, SessionStoreError } from '../../src/core/errors.js'
import type { SessionStore } from '../../src/core/store.js'
import { meta, newKey } from './store-suite.js'

type SqlStore = SessionStore & Required<Pick<SessionStore, 'prune' | 'count' | 'scan' | 'close'>>

export interface SqlStoreSuiteOptions {
  name: 'postgres' | 'mysql' | 'sqlite'
  /** A store on `table` with the given options (the client is the test file's). */
  create: (
    table: string,
    options?: {
      createTable?: boolean
      clock?: () => number
      pruneInterval?: number
      timeout?: number
    },
  ) => SqlStore
  /** A fresh table name, dropped by the test file afterwards. */
  newTable: () => string
  /** Insert `n` rows with meta `{"createdAt":1}` expiring at `expires` (ms). */
  insertRows: (table: string, n: number, expires: number) => unknown
  /** Overwrite the `data` or `meta` column of the row of `key` with the JSON text `json`. */
  writeColumn: (table: string, key: string, column: 'data' | 'meta', json: string) => unknown
  /** The driver's words for a missing table. */
  missingTable: RegExp
  /** Table names the store must refuse. */
  badTableNames: readonly string[]
  /** Whether the user's client (pool, database) still answers. */
  clientOpen: () => Promise<boolean> | boolean
  /** The DDL the store runs, which its docs page must carry. */
  schema: () => string
  /**
   * Stores with a `timeout` (over the network): lock `table` from another connection so that
   * the store's statements wait, and give back what lets them go on.
   */
  lockTable?: (table: string) => Promise<() => Promise<void>>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function describeSqlStore(options: SqlStoreSuiteOptions): void {
  const { name, create, newTable } = options

  describe(`SQL store: ${name}`, () => {
    it('without createTable, a missing table is a store error naming the operation, not the key', async () => {
      const store = create(`${newTable()}_missing`, { pruneInterval: 0 })
      const key = newKey()
      const error = await store.get(key).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(SessionStoreError)
      expect(error).toMatchObject({ code: 'ERR_SESSION_STORE', store: name, operation: 'get' })
      expect((error as Error).message).toMatch(options.missingTable)
      expect((error as Error).message).not.toContain(key)
      expect((error as Error).cause).toBeInstanceOf(Error)
    })

    const { lockTable } = options
    if (lockTable) {
      it('a statement with no answer within `timeout` fails the call; the store answers again after', async () => {
        const table = newTable()
        const store = create(table, { createTable: true, pruneInterval: 0, timeout: 300 })
        const key = newKey()
        await store.set(key, { fields: { a: '1' }, meta: meta() })
        const release = await lockTable(table)
        const started = Date.now()
        let error: unknown
        try {
          error = await store.get(key).catch((e: unknown) => e)
        } finally {
          await release()
        }
        const took = Date.now() - started
        expect(error).toBeInstanceOf(SessionStoreError)
        expect(error).toMatchObject({ code: 'ERR_SESSION_STORE', store: name, operation: 'get' })
        expect((error as Error).message).toMatch(/no reply from .* within 300 ms/)
        expect(took).toBeGreaterThanOrEqual(290)
        expect(took).toBeLessThan(1500)
        // the lock gone, the same store answers, and the session is still there
        expect((await store.get(key))?.fields).toEqual({ a: '1' })
        await store.close()
      })

      it('refuses a timeout that is not a whole number of ms', () => {
        for (const timeout of [-1, 0.5, Number.NaN])
          expect(() => create(newTable(), { timeout }), String(timeout)).toThrow(
            /`timeout` must be a whole number/,
          )
      })
    }

    it('refuses a table name that is not a plain identifier, or a bad pruneInterval, as a config error', () => {
      for (const table of options.badTableNames) {
        expect(() => create(table), table).toThrow(/plain identifier/)
        expect(() => create(table), table).toThrow(SessionConfigError)
      }
      // 30 days is more than a Node timer keeps: it would prune every millisecond
      for (const pruneInterval of [-1, Number.NaN, 30 * 86_400_000]) {
        expect(() => create(newTable(), { pruneInterval }), String(pruneInterval)).toThrow(
          SessionConfigError,
        )
      }
    })

    it('prunes by its clock in batches, past the batch size', async () => {
      let now = Date.now()
      const table = newTable()
      const store = create(table, { createTable: true, clock: () => now })
      const live = newKey()
      await store.set(live, { fields: {}, meta: meta({}, now) })
      await options.insertRows(table, 2100, now + 1000)
      expect(await store.prune()).toBe(0)
      now += 1000
      expect(await store.prune()).toBe(2100)
      expect(await store.count()).toBe(1)
      expect(await store.get(live)).toBeDefined()
      await store.close()
    })

    it('scans every record once across pages', async () => {
      const table = newTable()
      const store = create(table, { createTable: true })
      await store.count()
      await options.insertRows(table, 1234, 1)
      const seen = new Set<string>()
      for await (const { key, meta: m } of store.scan()) {
        seen.add(key)
        expect(m.createdAt).toBe(1)
      }
      expect(seen.size).toBe(1234)
      await store.close()
    })

    it('prunes on its timer until closed, and close() leaves the client open', async () => {
      const store = create(newTable(), { createTable: true, pruneInterval: 40 })
      const past = Date.now() - 60_000
      const expired = () => ({ fields: {}, meta: meta({ idleExpiresAt: past + 1 }, past) })
      const [a, b] = [newKey(), newKey()]
      await store.set(a, expired())
      await sleep(200)
      expect(await store.get(a)).toBeUndefined()
      await store.close()
      await store.set(b, expired())
      await sleep(200)
      expect(await store.get(b)).toBeDefined()
      expect(await options.clientOpen()).toBe(true)
    })

    it('reports a failing timed prune as a TesseraWarning by default', async () => {
      const store = create(`${newTable()}_missing`, { pruneInterval: 20 })
      const warned = new Promise<Error>((resolve) => {
        const listener = (warning: Error) => {
          if (warning.name !== 'TesseraWarning') return
          process.off('warning', listener)
          resolve(warning)
        }
        process.on('warning', listener)
      })
      const warning = await warned
      await store.close()
      expect(warning).toMatchObject({ code: 'ERR_SESSION_STORE' })
      expect(warning.message).toContain(`[store:${name}] prune failed`)
    })

    it('a row that holds no session (meta without its times, data not an object) fails get as corrupt, never loads without expiry', async () => {
      const table = newTable()
      const store = create(table, { createTable: true, pruneInterval: 0 })
      const now = Date.now()
      const corrupt: [column: 'data' | 'meta', json: string][] = [
        ['meta', '{"createdAt": 1}'],
        ['meta', JSON.stringify({ ...meta({}, now), idleExpiresAt: String(now + 60_000) })],
        ['meta', JSON.stringify({ ...meta({}, now), userId: 42 })],
        ['meta', 'null'],
        ['meta', '[]'],
        ['data', 'null'],
        ['data', '"secret-data"'],
        ['data', '["secret-data"]'],
      ]
      for (const [column, json] of corrupt) {
        const key = newKey()
        await store.set(key, { fields: { role: '"secret-data"' }, meta: meta({}, now) })
        await options.writeColumn(table, key, column, json)
        const error = await store.get(key).then(
          (record) => record,
          (e: unknown) => e,
        )
        expect(error, `${column} = ${json}`).toBeInstanceOf(SessionStoreError)
        expect(error).toMatchObject({ code: 'ERR_SESSION_STORE', store: name, operation: 'get' })
        expect((error as Error).message).toMatch(/the stored session is corrupt/)
        expect((error as Error).message).not.toContain(key)
        expect((error as Error).message).not.toContain('secret-data')
      }
      // the check leaves a record's optional meta and empty data alone
      const key = newKey()
      const m = meta({ userId: 'u', idleTimeout: 1000, persistent: true, moved: true }, now)
      await store.set(key, { fields: {}, meta: m })
      expect(await store.get(key)).toEqual({ fields: {}, meta: m })
      await store.close()
    })

    it('the docs carry the DDL the store runs', async () => {
      const docs = await readFile(new URL(`../../docs/stores/${name}.md`, import.meta.url), 'utf8')
      expect(docs).toContain(options.schema())
    })
  })
}
