/**
 * The store contract. Small enough to implement in an afternoon; every store, including an
 * app's own, is checked by the conformance suite in `test/conformance/`.
 *
 * Keys are the at-rest hash of a session id: 64 characters of `[0-9a-f]`. Stores never see
 * an id. Field values are text made by the core's codec; stores keep them as they are and
 * merge fields without decoding them.
 * @module
 */
import type { ResolvedCookie } from './cookies.js'
import type { RejectionReason } from './events.js'
import type { Keyring } from './keyring.js'

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
  /**
   * Not a session: a marker the core leaves for a minute under a key of its own, which no
   * cookie leads to: a session that moved to a new id (see `MOVED_MARKER_MS`), or a refresh of
   * OpenID Connect tokens shared between instances (`SessionStore.add`). It has no user;
   * `tessera list` skips it.
   */
  moved?: boolean
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

/**
 * Meta with the given times and `from`'s bindings. Every meta on a request's path is built
 * here or in the same order (the four times, then `userId`, `idleTimeout`, `persistent`), so
 * V8 gives them all one hidden class. A spread copy (`{ ...meta }`) gets another: code that
 * meets both, such as a cookie store that hands out cached sessions and opened ones, stays
 * polymorphic and is deoptimized whenever the mix of the two changes (see docs/benchmark.md).
 */
export function metaOf(
  from: SessionMeta,
  lastSeenAt = from.lastSeenAt,
  idleExpiresAt = from.idleExpiresAt,
): SessionMeta {
  const meta: SessionMeta = {
    createdAt: from.createdAt,
    lastSeenAt,
    idleExpiresAt,
    absoluteExpiresAt: from.absoluteExpiresAt,
  }
  if (from.userId !== undefined) meta.userId = from.userId
  if (from.idleTimeout !== undefined) meta.idleTimeout = from.idleTimeout
  if (from.persistent !== undefined) meta.persistent = from.persistent
  return meta
}

/** The meta of a marker (see {@link SessionMeta.moved}): no user, expiring `ms` after `now`. */
export function markerMeta(now: number, ms: number): SessionMeta {
  return {
    createdAt: now,
    lastSeenAt: now,
    idleExpiresAt: now + ms,
    absoluteExpiresAt: now + ms,
    moved: true,
  }
}

/** When a record expires in the store: the earlier of its idle and absolute expiry. */
export function expiresAt(meta: Pick<SessionMeta, 'idleExpiresAt' | 'absoluteExpiresAt'>): number {
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
  /**
   * The record, or undefined. May return an expired record: the manager checks expiry. The
   * record is the caller's to change: never one the store keeps using.
   */
  get(key: string): Promise<SessionRecord | undefined>
  /**
   * `get`, answered at once: for a store whose records are in this process (memory) or behind
   * a synchronous driver (`better-sqlite3`). When a store has it, the manager reads through it
   * instead of `get`, so a request whose session needs no other I/O is loaded without waiting
   * for a promise, and the framework goes on in the same tick. It must return what `get`
   * would; a throw is a store error, as a rejected `get` is.
   */
  getNow?(key: string): SessionRecord | undefined
  /** Write a whole record, replacing any there (new session, regenerate). */
  set(key: string, record: SessionRecord): Promise<void>
  /**
   * Write `record` under `key` only if no unexpired record is there (an expired one that is
   * still kept counts as none), and resolve whether it wrote. Atomic: of any number of `add`s
   * of one key at once, from any number of processes, exactly one writes. tessera/oidc uses it
   * so that the instances of an app spend a refresh token once between them (a provider that
   * rotates refresh tokens may revoke the whole grant when one is spent twice); without it,
   * refreshes are shared within one process.
   */
  add?(key: string, record: SessionRecord): Promise<boolean>
  /**
   * Apply one commit's changes atomically and replace the meta. Two patches of different
   * fields running at once both keep their change. Returns false, changing nothing, when no
   * record exists (destroyed meanwhile: a patch never resurrects a session).
   */
  patch(key: string, patch: SessionPatch, meta: SessionMeta): Promise<boolean>
  /**
   * `patch`, done before returning, as `getNow` is `get`. When a store has both `patchNow` and
   * `touchNow`, the manager writes a session the store already holds through them, so a
   * request that changed its session is answered in the same tick. It must do what `patch`
   * would; a throw is a store error, as a rejected `patch` is.
   */
  patchNow?(key: string, patch: SessionPatch, meta: SessionMeta): boolean
  /** Replace the meta (extend the idle expiry). No-op when no record exists. */
  touch(key: string, meta: SessionMeta): Promise<void>
  /** `touch`, done before returning; see `patchNow`. */
  touchNow?(key: string, meta: SessionMeta): void
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

/**
 * What a client-side store gives back to itself between `open` and `seal`: which of its cookies
 * the request carried, so a later write clears the ones it no longer needs. Opaque to callers.
 */
export type CookiePresence = number

/** A session a client-side store opened: everything it needs is in the cookie. */
export interface OpenedSession {
  /** The session id sealed inside (never sent in clear). */
  id: string
  /** Encoded fields, as a server store keeps them. */
  fields: Map<string, string>
  meta: SessionMeta
  /** When this cookie was sealed (ms since the epoch), for {@link ClientSideStore.isRevoked}. */
  issuedAt: number
}

/** What a client-side store found in a `Cookie` header. */
export type OpenResult =
  | { session: OpenedSession; present: CookiePresence }
  | { rejected: RejectionReason; present: CookiePresence }

/** What the revocation hook is told about a sealed session before it is accepted. */
export interface SealedSessionInfo {
  /** The session's `idHash`, as in events. */
  idHash: string
  /** The user bound by `session.setUser`, if any. */
  userId: string | undefined
  /** When the session was created (ms since the epoch). */
  createdAt: number
  /** When this cookie was sealed (ms since the epoch); a revocation time rejects older ones. */
  issuedAt: number
}

/** What the manager hands a client-side store once, when it is created. */
export interface ClientSideBinding {
  /** The app's secrets: the store derives its own keys from them (HKDF, once). */
  keyring: Keyring
  /** The session cookie's name and attributes. */
  cookie: ResolvedCookie
}

/**
 * A store that keeps the whole session in the browser (the cookie store). The manager skips the
 * id signature (the store's encryption authenticates the cookie), asks the store to `open` the
 * request's cookies on load and to `seal` the whole session into `Set-Cookie` values on commit.
 *
 * It has no server-side record, so it cannot list or revoke sessions by user, nor merge two
 * concurrent writes of one session (the later cookie wins); use a server store where that
 * matters. {@link isRevoked} lets the app refuse cookies sealed before a per-user time.
 */
export interface ClientSideStore {
  /** Short name used in errors and docs, e.g. `'cookie'`. */
  readonly name: string
  /** Marks the store as client-side. */
  readonly clientSide: true
  /** Called once by the manager's constructor, before any other method. */
  bind(binding: ClientSideBinding): void
  /**
   * The session in `cookieHeader`, the reason it was refused, or undefined when the header
   * holds none of the store's cookies. Expiry is the manager's to check (so it can emit
   * `expired`); anything the store cannot trust (a bad seal, a missing chunk, a time sealed
   * too far in the future) is refused.
   */
  open(cookieHeader: string | null | undefined, now: number): OpenResult | undefined
  /**
   * `Set-Cookie` values carrying the sealed session, plus ones clearing cookies of `present`
   * that are no longer needed. Throws `SessionCookieTooLargeError` when it does not fit.
   */
  seal(
    session: { id: string; fields: ReadonlyMap<string, string>; meta: SessionMeta },
    options: { secure: boolean; now: number; present: CookiePresence },
  ): { cookies: string[]; present: CookiePresence }
  /** `Set-Cookie` values clearing every cookie of `present` (the main one when none is known). */
  clear(secure: boolean, present: CookiePresence): string[]
  /**
   * Refuse a cookie that is authentic and unexpired (ASVS 5.0 7.4.1: sessions end when the
   * user logs out everywhere). True refuses it; a throw fails the request like a store error.
   */
  isRevoked?(session: SealedSessionInfo): boolean | Promise<boolean>
}

/** Whether `store` keeps its sessions in the browser. */
export function isClientSideStore(store: SessionStore | ClientSideStore): store is ClientSideStore {
  return (store as ClientSideStore).clientSide === true
}
