import { createHash, randomBytes } from 'node:crypto'

/** Bytes of CSPRNG output in a session id (256 bits). */
export const ID_BYTES = 32
/** Length of a session id in base64url. */
export const ID_LENGTH = 43

/** A new session id: 32 bytes from the CSPRNG, base64url. */
export function newSessionId(): string {
  return randomBytes(ID_BYTES).toString('base64url')
}

/**
 * The at-rest key of a session: SHA-256 of its id, hex (64 characters of `[0-9a-f]`).
 * Stores only ever see this, so a leaked store yields no usable cookie. It is also the
 * log-safe `idHash` an app can show, list and revoke by.
 */
export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('hex')
}

const STORE_KEY = /^[0-9a-f]{64}$/

/** Whether a string has the shape of a store key ({@link hashSessionId}'s output). */
export function isStoreKey(key: string): boolean {
  return key.length === 64 && STORE_KEY.test(key)
}
