/**
 * Authenticated encryption of short text (AES-256-GCM), for values the browser keeps: the
 * cookie store's sessions. Keys come from the keyring by HKDF, one per purpose, derived once
 * when the sealer is made; sealing and opening are one AES-GCM operation each.
 *
 * A sealed value is base64url of `version (1) | key id (4) | IV (12) | ciphertext | tag (16)`.
 * The version byte lets a later format be read beside this one, so changing the format logs
 * nobody out; the key id picks the key, so rotation costs one decryption, never one per key.
 * The header and a context string (the cookie name) are bound as associated data: a value
 * sealed for one cookie does not open under another.
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomFillSync,
} from 'node:crypto'
import { SessionConfigError } from './errors.js'
import type { Keyring } from './keyring.js'

/** The format version this code writes. */
export const SEAL_VERSION = 1

const HEADER_BYTES = 5
const IV_BYTES = 12
const TAG_BYTES = 16
/** Bytes a sealed value adds to its plaintext, before base64url. */
export const SEAL_OVERHEAD = HEADER_BYTES + IV_BYTES + TAG_BYTES
/** Base64url characters of the shortest sealed value (an empty plaintext). */
const MIN_SEALED_LENGTH = Math.ceil((SEAL_OVERHEAD * 4) / 3)

/** Base64url characters a sealed value of `plaintextBytes` bytes takes. */
export function sealedLength(plaintextBytes: number): number {
  return Math.ceil(((plaintextBytes + SEAL_OVERHEAD) * 4) / 3)
}

/** Why a sealed value was refused: not our format, or not made with any key we hold. */
export type SealRejection = 'malformed' | 'bad-signature'

/** The plaintext of a sealed value, or why it was refused. */
export type Opened = { plaintext: string } | { rejected: SealRejection }

/** Base64url alphabet values, to check the spare bits of the last character. */
const B64_VALUE = new Int8Array(128).fill(-1)
for (const [i, c] of [
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
].entries())
  B64_VALUE[c.charCodeAt(0)] = i

/**
 * Whether the last character of a base64url text carries zero spare bits. Decoding ignores
 * them, so without this check a value with a changed last character would open as the original.
 */
function canonicalTail(text: string): boolean {
  const rest = text.length % 4
  if (rest === 0) return true
  if (rest === 1) return false
  const last = B64_VALUE[text.charCodeAt(text.length - 1)]!
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0
}

/** Random IVs drawn from a pooled CSPRNG buffer: one `randomFillSync` per 512 seals. */
const IV_POOL = Buffer.allocUnsafe(IV_BYTES * 512)
let ivOffset = IV_POOL.length

/**
 * Copies a fresh random IV into `out` at `at`. Byte by byte: `Buffer#copy` of part of a buffer
 * makes a view of that part first, which costs more than the twelve steps.
 */
function writeIv(out: Buffer, at: number): void {
  if (ivOffset === IV_POOL.length) {
    randomFillSync(IV_POOL)
    ivOffset = 0
  }
  for (let i = 0; i < IV_BYTES; i++) out[at + i] = IV_POOL[ivOffset + i]!
  ivOffset += IV_BYTES
}

/**
 * Where a sealed value of a usual size (a token of 4096 characters at most) is laid out, with
 * a view over its IV made once: sealing or opening one allocates no buffer of its own, only
 * the cipher's output (each buffer or view is about 0.3 µs). Every use is synchronous and
 * done with it before returning, so one serves all sealers. It holds sealed bytes (header, IV,
 * ciphertext, tag), never a plaintext.
 */
const WORK = Buffer.allocUnsafeSlow(3072)
const WORK_IV = WORK.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)

interface SealKey {
  key: KeyObject
  /** The header this key's values start with; with the context, the associated data. */
  aad: Buffer
}

/**
 * Seals and opens text with AES-256-GCM under keys derived from a keyring.
 *
 * @example
 * ```ts
 * const sealer = Sealer.fromKeyring(keyring, 'cookie-store', 'sid')
 * const token = sealer.seal('{"a":1}')
 * sealer.open(token) // { plaintext: '{"a":1}' }
 * ```
 */
export class Sealer {
  readonly #current: SealKey
  readonly #byId: Map<number, SealKey>

  /**
   * Keys newest first (the first seals, all open), each with a 4-byte id, and the context
   * bound as associated data (different contexts never open each other's values).
   */
  constructor(keys: readonly { key: Buffer; id: number }[], context: string) {
    if (keys.length === 0) throw new SessionConfigError('a sealer needs at least one key')
    const contextBytes = Buffer.from(context)
    this.#byId = new Map()
    const entries = keys.map(({ key, id }) => {
      if (key.length !== 32) throw new SessionConfigError('AES-256-GCM keys are 32 bytes')
      const aad = Buffer.alloc(HEADER_BYTES + contextBytes.length)
      aad[0] = SEAL_VERSION
      aad.writeUInt32BE(id >>> 0, 1)
      contextBytes.copy(aad, HEADER_BYTES)
      const entry: SealKey = { key: createSecretKey(key), aad }
      const known = this.#byId.get(id >>> 0)
      if (known === undefined) this.#byId.set(id >>> 0, entry)
      else if (!known.key.equals(entry.key)) {
        // two different secrets whose key ids collide: 1 in 2^32; say what to do
        throw new SessionConfigError(
          'two secrets give the same sealing key id; replace one of them with a new secret',
        )
      }
      return entry
    })
    this.#current = entries[0]!
  }

  /**
   * A sealer for `purpose` (HKDF-separated from every other use of the secrets), one key per
   * secret of the keyring, derived here once.
   */
  static fromKeyring(keyring: Keyring, purpose: string, context: string): Sealer {
    const keys = keyring.deriveKeys(purpose)
    const ids = keyring.deriveKeys(`${purpose}/key-id`, 4)
    return new Sealer(
      keys.map((key, i) => ({ key, id: ids[i]!.readUInt32BE(0) })),
      context,
    )
  }

  /** `plaintext` sealed with the newest key, as base64url. */
  seal(plaintext: string): string {
    const { key, aad } = this.#current
    for (let i = 0; i < HEADER_BYTES; i++) WORK[i] = aad[i]!
    writeIv(WORK, HEADER_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key, WORK_IV)
    cipher.setAAD(aad)
    const body = cipher.update(plaintext, 'utf8')
    cipher.final()
    const length = SEAL_OVERHEAD + body.length
    let out = WORK
    if (length > WORK.length) {
      // a larger value (a session over several cookies) gets a buffer of its own
      out = Buffer.allocUnsafe(length)
      WORK.copy(out, 0, 0, HEADER_BYTES + IV_BYTES)
    }
    // whole buffers: set, as Buffer#copy would after a few checks of its own
    out.set(body, HEADER_BYTES + IV_BYTES)
    out.set(cipher.getAuthTag(), HEADER_BYTES + IV_BYTES + body.length)
    return out.toString('base64url', 0, length)
  }

  /**
   * The plaintext of `token`, or why it is refused. Shape and length are checked before any
   * decoding; `maxLength` bounds the work an attacker can ask for.
   */
  open(token: string, maxLength: number): Opened {
    if (
      token.length < MIN_SEALED_LENGTH ||
      token.length > maxLength ||
      // Node's decoder also takes standard base64's `+` and `/`, and skips what is neither:
      // refusing those two and checking the decoded length admits base64url alone, cheaper
      // than a regular expression over the whole value
      token.includes('+') ||
      token.includes('/') ||
      !canonicalTail(token)
    ) {
      return MALFORMED
    }
    const length = (token.length * 3) >>> 2
    let bytes = WORK
    let iv = WORK_IV
    if (length <= WORK.length) {
      if (WORK.write(token, 0, 'base64url') !== length) return MALFORMED
    } else {
      // a session over several cookies
      bytes = Buffer.from(token, 'base64url')
      if (bytes.length !== length) return MALFORMED
      iv = bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)
    }
    // a later format would be dispatched here on its version byte
    if (bytes[0] !== SEAL_VERSION) return MALFORMED
    const entry = this.#byId.get(bytes.readUInt32BE(1))
    if (entry === undefined) return BAD
    const decipher = createDecipheriv('aes-256-gcm', entry.key, iv)
    decipher.setAAD(entry.aad)
    // the length is checked above, so the tag is always 16 bytes (no truncated-tag forgery)
    decipher.setAuthTag(bytes.subarray(length - TAG_BYTES, length))
    // bytes out, decoded once the tag checks: asking `update` for 'utf8' makes the decipher
    // build a StringDecoder for the call, a microsecond of the open's three or four
    const body = decipher.update(bytes.subarray(HEADER_BYTES + IV_BYTES, length - TAG_BYTES))
    try {
      decipher.final()
    } catch {
      return BAD
    }
    return { plaintext: body.toString('utf8') }
  }
}

const MALFORMED: Opened = Object.freeze({ rejected: 'malformed' })
const BAD: Opened = Object.freeze({ rejected: 'bad-signature' })
