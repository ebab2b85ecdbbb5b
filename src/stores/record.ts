/**
 * The check a store makes of a record it reads back from its server or database (the SQL
 * stores, Redis, Memcached) before handing it to the manager: a hand-edited, half-migrated or
 * otherwise damaged record must not load as a session that never expires, nor as a raw
 * `TypeError`. Internal: import a store, not this module.
 * @module
 */
import { SessionStoreError, type StoreOperation } from '../core/errors.js'
import type { SessionMeta, SessionRecord } from '../core/store.js'

/**
 * Whether `fields` and `meta` make a record: `fields` an object (its values are left to the
 * codec, which checks each one as it decodes it), `meta` an object with its four times as
 * numbers and `userId`, when there, a string. A few `typeof` checks: it runs on every load.
 */
export function isRecord(fields: unknown, meta: unknown): meta is SessionMeta {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return false
  if (typeof meta !== 'object' || meta === null) return false
  const m = meta as Partial<Record<keyof SessionMeta, unknown>>
  return (
    typeof m.idleExpiresAt === 'number' &&
    typeof m.absoluteExpiresAt === 'number' &&
    typeof m.createdAt === 'number' &&
    typeof m.lastSeenAt === 'number' &&
    (m.userId === undefined || typeof m.userId === 'string')
  )
}

/**
 * The error of a `get` that found a record it cannot use (not JSON, or not a record's shape).
 * It names neither the key nor anything stored.
 */
export function corruptRecord(store: string): SessionStoreError {
  return new SessionStoreError(
    store,
    'get',
    'the stored session is corrupt (its data is not an object of fields, or its meta lacks a time); it was not loaded: delete it, or let it expire',
  )
}

/**
 * The record made of `fields` and `meta` as parsed from storage, or a {@link corruptRecord}
 * error when they are not one.
 */
export function checkedRecord(store: string, fields: unknown, meta: unknown): SessionRecord {
  if (!isRecord(fields, meta)) throw corruptRecord(store)
  return { fields: fields as Record<string, string>, meta }
}

/**
 * The meta `read` gives (it parses it from storage) of a session that `operation` lists
 * (`listByUser`, `scan`), or a `SessionStoreError` saying the session is corrupt when `read`
 * throws or gives no JSON object: never the parser's error, which quotes the stored text, nor
 * a `null` meta for the caller to trip on.
 */
export function listedMeta(
  store: string,
  operation: StoreOperation,
  read: () => unknown,
): SessionMeta {
  let meta: unknown
  try {
    meta = read()
  } catch {
    meta = undefined
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new SessionStoreError(
      store,
      operation,
      'a stored session is corrupt (its meta is not a JSON object); delete it, or let it expire',
    )
  }
  return meta as SessionMeta
}
