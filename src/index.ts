/**
 * Tessera: server-side HTTP sessions. This is the framework-free core; adapters live in
 * `tessera/node`, `tessera/fetch`, ...; stores in `tessera/stores/<name>`.
 *
 * @example
 * ```ts
 * import { createSessions } from 'tessera'
 * const sessions = createSessions<{ count: number }>({ secret: process.env.SESSION_SECRET })
 * const session = await sessions.load(request.headers.get('cookie'))
 * session.set('count', (session.get('count') ?? 0) + 1)
 * const setCookies = await sessions.commit(session)
 * ```
 * @module
 */

import { SessionManager, type SessionsOptions } from './core/manager.js'
import type { SessionData } from './core/session.js'
import { memoryStore } from './stores/memory.js'

export type { Codec, RegisteredType, RichCodecOptions } from './core/codec.js'
export { jsonCodec, richCodec } from './core/codec.js'
export type { CookieOptions } from './core/cookies.js'
export type { Duration } from './core/duration.js'
export * from './core/errors.js'
export type {
  RejectionReason,
  SessionEventName,
  SessionEvents,
  SessionListener,
} from './core/events.js'
export { applySetCookies, type HeaderTarget, isSecureRequest } from './core/http.js'
export { hashSessionId, isStoreKey } from './core/ids.js'
export { Keyring, MIN_SECRET_BYTES } from './core/keyring.js'
export type { LoadOptions, SessionsOptions, UserSession } from './core/manager.js'
export { MOVED_MARKER_MS, SessionManager } from './core/manager.js'
export type { Flash, LifetimeOptions, SessionData, SessionKey, SetOptions } from './core/session.js'
export { Session } from './core/session.js'
export type { StandardSchemaV1 } from './core/standard-schema.js'
export type {
  ClientSideBinding,
  ClientSideStore,
  CookiePresence,
  OpenedSession,
  OpenResult,
  SealedSessionInfo,
  SessionMeta,
  SessionPatch,
  SessionRecord,
  SessionStore,
  StoredSession,
} from './core/store.js'
export { expiresAt, isClientSideStore } from './core/store.js'

/** A session manager; what `createSessions()` returns. */
export type Sessions<Data extends SessionData = SessionData> = SessionManager<Data>

/**
 * Create the session manager. Without a `store`, sessions live in a bounded memory store
 * (one process only).
 *
 * @example
 * ```ts
 * const sessions = createSessions<{ userId?: string; count: number }>({
 *   secret: process.env.SESSION_SECRET,   // 32+ random bytes: `npx tessera keygen`
 *   idleTimeout: '30m',
 *   absoluteTimeout: '12h',
 * })
 * ```
 */
export function createSessions<Data extends SessionData = SessionData>(
  options: SessionsOptions<Data>,
): Sessions<Data> {
  return new SessionManager<Data>({ ...options, store: options.store ?? memoryStore() })
}
