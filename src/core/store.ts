/**
 * The store contract. Small enough to implement in an afternoon; every store, including an
 * app's own, is checked by the conformance suite in `test/conformance/`.
 *
 * Keys are the at-rest hash of a session id: 64 characters of `[0-9a-f]`. Stores never see
 * an id. Field values are text made by the core's codec; stores keep them as they are and
 * merge fields without decoding them.
 * @module
 */

/** Timestamps (ms since the epoch) and bindings of a session. Stores keep every field as given. */
export interface SessionMeta {
  createdAt: number
  lastSeenAt: number
  /** Sliding expiry: `lastSeenAt + idle timeout`. */
  idleExpiresAt: number
  /** Fixed at creation; activity never moves it. */
  absoluteExpiresAt: number
  /** The user the session is bound to (`session.setUser`), for listing and revoking. */
  userId?: string
  /** A per-session idle timeout ("remember me"), in ms, overriding the manager's. */
  idleTimeout?: number
  /** The cookie carries Max-Age (survives a browser restart). */
  persistent?: boolean
}

/** What a store keeps for one session. */
export interface SessionRecord {
  /** Top-level data keys, each encoded by the codec. */
  fields: Record<string, string>
  meta: SessionMeta
}

/** One commit's changes, applied atomically by {@link SessionStore.patch}. */
export interface SessionPatch {
  /** Remove every field first (`session.clear()`). */
  clear: boolean
  /** Fields to write, after `clear`. */
  set: Record<string, string>
  /** Fields to remove. */
  delete: string[]
}

/** A session as listed: its key and meta, no data. */
export interface StoredSession {
  key: string
  meta: SessionMeta
}

/** When a record expires in the store: the earlier of its idle and absolute expiry. */
export function expiresAt(meta: SessionMeta): number {
  return Math.min(meta.idleExpiresAt, meta.absoluteExpiresAt)
}

/**
 * A session store. `get`, `set`, `patch`, `touch` and `destroy` are required; the rest are
 * capabilities a store declares by having them.
 *
 * Errors: throw anything; the manager wraps it in a `SessionStoreError` naming the store and
 * operation (a store may throw its own `SessionStoreError`, which passes as it is).
 */
export interface SessionStore {
  /** Short name used in errors and docs, e.g. `'redis'`. */
  readonly name: string
  /** The record, or undefined. May return an expired record: the manager checks expiry. */
  get(key: string): Promise<SessionRecord | undefined>
  /** Write a whole record, replacing any there (new session, regenerate). */
  set(key: string, record: SessionRecord): Promise<void>
  /**
   * Apply one commit's changes atomically and replace the meta. Two patches of different
   * fields running at once both keep their change. Returns false, changing nothing, when no
   * record exists (destroyed meanwhile: a patch never resurrects a session).
   */
  patch(key: string, patch: SessionPatch, meta: SessionMeta): Promise<boolean>
  /** Replace the meta (extend the idle expiry). No-op when no record exists. */
  touch(key: string, meta: SessionMeta): Promise<void>
  /** Remove the record. No-op when none exists. */
  destroy(key: string): Promise<void>
  /** Sessions bound to `userId`, unexpired, in no particular order. */
  listByUser?(userId: string): Promise<StoredSession[]>
  /** Remove every session bound to `userId` but `exceptKey`; resolves to how many went. */
  destroyByUser?(userId: string, exceptKey?: string): Promise<number>
  /** How many records the store holds (expired ones not yet removed may count). */
  count?(): Promise<number>
  /** Every record's key and meta. */
  scan?(): AsyncIterable<StoredSession>
  /** Remove expired records now; resolves to how many went. */
  prune?(): Promise<number>
  /** Release timers and connections the store itself opened (never the client it was given). */
  close?(): Promise<void>
}
