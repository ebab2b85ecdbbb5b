// a namespace import: `crypto.hash` is missing before Node 20.12, and a named import would not link
import * as crypto from 'node:crypto'
import { RecentMap } from './recent.js'

/** Bytes of CSPRNG output in a session id (256 bits). */
export const ID_BYTES = 32
/** Length of a session id in base64url. */
export const ID_LENGTH = 43

/** A new session id: 32 bytes from the CSPRNG, base64url. */
export function newSessionId(): string {
  return crypto.randomBytes(ID_BYTES).toString('base64url')
}

/** The value of each base64url digit by its character code, -1 for any other character. */
const BASE64URL_VALUE = new Int8Array(128).fill(-1)
for (const [i, c] of [
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
].entries())
  BASE64URL_VALUE[c.charCodeAt(0)] = i

/**
 * Whether `text`, if its digits are base64url, decodes to bytes that encode back to the very
 * same text: ASCII only (Node's decoder reads a character's low byte alone, so `Ŕ`, U+0155,
 * would decode as `U`), no standard base64 `+` or `/` (Node's decoder takes them too), a
 * length a whole number of bytes can have, and a last digit whose spare bits are clear
 * (decoding ignores them, so a changed last digit would otherwise decode as the original).
 * Node's decoder skips any other ASCII character, so a caller also checks that the bytes
 * decoded are as many as the length promises; cheaper than a regular expression over the
 * whole text (a sixth of its time on a cookie's 150 characters).
 */
export function canonicalBase64url(text: string): boolean {
  if (Buffer.byteLength(text, 'utf8') !== text.length || text.includes('+') || text.includes('/')) {
    return false
  }
  const rest = text.length % 4
  if (rest === 0) return true
  if (rest === 1) return false
  const last = BASE64URL_VALUE[text.charCodeAt(text.length - 1)]
  return last !== undefined && last >= 0 && (last & (rest === 2 ? 0x0f : 0x03)) === 0
}

/**
 * Writes the 32 bytes of `id` into `into` at `at` when `id` is what {@link newSessionId} makes
 * (43 base64url digits that encode back to the very same text), and says whether it was. A
 * loop over the characters in JavaScript costs ten times as much as Node's decoder.
 */
export function writeIdBytes(into: Buffer, at: number, id: string): boolean {
  return (
    id.length === ID_LENGTH &&
    canonicalBase64url(id) &&
    into.write(id, at, 'base64url') === ID_BYTES
  )
}

/**
 * SHA-256, hex. `crypto.hash` (Node 20.12 and later) does it in one call, a third of the time
 * of `createHash().update().digest()`; earlier Node 20 releases take the long way.
 */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex')

/** How many recent ids keep their hash at hand, per generation (see {@link hashSessionId}). */
export const HASH_CACHE_SIZE = 4096

const hashes = new RecentMap<string>(HASH_CACHE_SIZE, 0)

/**
 * The at-rest key of a session: SHA-256 of its id, hex (64 characters of `[0-9a-f]`).
 * Stores only ever see this, so a leaked store yields no usable cookie. It is also the
 * log-safe `idHash` an app can show, list and revoke by.
 *
 * The hashes of the last 4096 to 8192 ids hashed twice in a while (an approximate LRU in two
 * generations, see {@link RecentMap.admits}) are kept, so a session's later requests skip
 * SHA-256. A hash is a pure function of its id, so a cached one is always right; the core
 * only hashes ids whose cookie signature verified, or new ones. (A server store's ids are kept
 * with their hash by the keyring's cache of verified cookies instead; this one serves the
 * cookie store and new sessions.)
 */
export function hashSessionId(id: string): string {
  let hash = hashes.get(id)
  if (hash === undefined) {
    hash = sha256Hex(id)
    if (hashes.admits(id)) hashes.set(id, hash)
  }
  return hash
}

/**
 * @internal {@link hashSessionId} without its cache: for the keyring, which keeps the hash with
 * each signature it remembers, and the manager on a cookie the keyring does not remember, so
 * that two caches do not track the same ids.
 */
export const hashSessionIdUncached = (id: string): string => sha256Hex(id)

/**
 * @internal Where a session that moved to a new id (a login's `regenerate()`) leaves its marker
 * for a while: a store key of its own, derived from the old one, which no cookie leads to
 * (finding an id that hashes to it is finding a SHA-256 preimage).
 */
export const movedKey = (key: string): string => sha256Hex(`moved:${key}`)

const STORE_KEY = /^[0-9a-f]{64}$/

/** Whether a string has the shape of a store key ({@link hashSessionId}'s output). */
export function isStoreKey(key: string): boolean {
  return key.length === 64 && STORE_KEY.test(key)
}
