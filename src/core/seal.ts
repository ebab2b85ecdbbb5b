/**
 * Authenticated encryption of short texts or bytes, for values the browser keeps: the cookie
 * store's sessions. Keys come from the keyring by HKDF, one per purpose and cipher, derived
 * once when the sealer is made; sealing and opening are one AEAD operation each.
 *
 * A sealed value is base64url of `version (1) | key id (4) | IV (12) | ciphertext | tag (16)`.
 * The version byte names the cipher: 1 is AES-256-GCM through node:crypto (the default), 2 is
 * ChaCha20-Poly1305 (RFC 8439), written when the sealer is given libsodium (`sodium-native`),
 * whose one native call costs far less than node:crypto's cipher set-up per message. Both are
 * always read (version 2 through node:crypto when libsodium is not given), so switching
 * either way logs nobody out. The key id picks the key, so rotation costs one decryption,
 * never one per key. The header and a context string (the cookie name) are bound as
 * associated data: a value sealed for one cookie does not open under another.
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type DecipherChaCha20Poly1305,
  type DecipherGCM,
  type KeyObject,
  randomFillSync,
} from 'node:crypto'
import { SessionConfigError } from './errors.js'
import { canonicalBase64url } from './ids.js'
import type { Keyring } from './keyring.js'

/** The format version of AES-256-GCM values (node:crypto), written by default. */
export const SEAL_VERSION = 1
/** The format version of ChaCha20-Poly1305 values, written when the sealer has libsodium. */
export const CHACHA_VERSION = 2

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

/**
 * Where a plaintext is laid out to be sealed, and where libsodium opens one (it takes bytes):
 * three bytes per UTF-16 unit of a token that fits {@link WORK}. Zeroed after each use.
 */
const PLAIN = Buffer.allocUnsafeSlow(3 * WORK.length)

/**
 * Views of {@link WORK} from the ciphertext on, by the value's length, and of the start of
 * {@link PLAIN}, by the plaintext's: libsodium takes buffers of exact lengths, and a view made
 * once per length (sessions of one app come in a few sizes) spares two views per message.
 */
const BODIES: (Buffer | undefined)[] = Array.from({ length: WORK.length + 1 }, () => undefined)
const PLAINS: (Buffer | undefined)[] = Array.from({ length: WORK.length + 1 }, () => undefined)
const bodyOf = (length: number) =>
  (BODIES[length] ??= WORK.subarray(HEADER_BYTES + IV_BYTES, length))
/** The first `n` bytes of `plain`: a kept view of {@link PLAIN}, or a new one of another. */
function plainOf(plain: Buffer, n: number): Buffer {
  if (plain !== PLAIN || n > WORK.length) return plain.subarray(0, n)
  let view = PLAINS[n]
  if (view === undefined) {
    view = PLAIN.subarray(0, n)
    PLAINS[n] = view
  }
  return view
}

/** {@link PLAIN} as 8-byte words, to wipe a plaintext in a few steps. */
const PLAIN_WORDS = new Float64Array(PLAIN.buffer, PLAIN.byteOffset, PLAIN.length >>> 3)

/**
 * Zeroes the first `n` bytes of `plain`. {@link PLAIN} a word at a time: `fill` is a call into
 * V8's C++ after Node's argument checks, 500 instructions for the hundred bytes of a session,
 * where this loop takes a tenth of that.
 */
function wipe(plain: Buffer, n: number): void {
  if (plain !== PLAIN) plain.fill(0, 0, n)
  else for (let i = 0, words = (n + 7) >>> 3; i < words; i++) PLAIN_WORDS[i] = 0
}

/**
 * A buffer of at least `bytes` bytes to lay a plaintext out in for {@link Sealer.sealBytes}:
 * the sealers' one working buffer when it is large enough (a session in one cookie), else a
 * new one. Valid until the next seal or open, which must not come before `sealBytes`.
 */
export function plaintextBuffer(bytes: number): Buffer {
  return bytes <= PLAIN.length ? PLAIN : Buffer.alloc(bytes)
}

/**
 * The two libsodium calls the sealer makes, as `sodium-native` exports them: pass that module
 * (`import sodium from 'sodium-native'`). Typed here, since sodium-native publishes no types
 * and Tessera does not depend on it.
 */
export interface SodiumAead {
  crypto_aead_chacha20poly1305_ietf_encrypt(
    ciphertext: Uint8Array,
    message: Uint8Array,
    additionalData: Uint8Array | null,
    nsec: null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number
  crypto_aead_chacha20poly1305_ietf_decrypt(
    message: Uint8Array,
    nsec: null,
    ciphertext: Uint8Array,
    additionalData: Uint8Array | null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number
}

/**
 * Whether `sodium` has the two calls of {@link SodiumAead} and they behave as sodium-native's:
 * a known message sealed through them is what node:crypto's ChaCha20-Poly1305 makes of it, and
 * a forged one throws. Checked once, where the store or sealer is made: a module with these
 * names and other arguments (libsodium-wrappers takes `(message, ad, nsec, nonce, key)` and
 * returns the ciphertext) would otherwise fail every commit, or write cookies that never open.
 */
export function isSodiumAead(sodium: unknown): sodium is SodiumAead {
  const s = sodium as Partial<SodiumAead> | null | undefined
  if (
    typeof s?.crypto_aead_chacha20poly1305_ietf_encrypt !== 'function' ||
    typeof s.crypto_aead_chacha20poly1305_ietf_decrypt !== 'function'
  ) {
    return false
  }
  const key = Buffer.alloc(32, 7)
  const nonce = Buffer.alloc(IV_BYTES, 9)
  const aad = Buffer.from('tessera')
  const message = Buffer.from('sodium-native?')
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad, { plaintextLength: message.length })
  const expected = Buffer.concat([cipher.update(message), cipher.final(), cipher.getAuthTag()])
  const sealed = Buffer.alloc(expected.length)
  const opened = Buffer.alloc(message.length)
  try {
    s.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, message, aad, null, nonce, key)
    if (!sealed.equals(expected)) return false
    s.crypto_aead_chacha20poly1305_ietf_decrypt(opened, null, sealed, aad, nonce, key)
    if (!opened.equals(message)) return false
  } catch {
    return false
  }
  // the open path takes a throw, as sodium-native's, for a tag that does not check
  const last = sealed.length - 1
  sealed[last] = sealed[last]! ^ 1
  try {
    s.crypto_aead_chacha20poly1305_ietf_decrypt(opened, null, sealed, aad, nonce, key)
  } catch {
    return true
  }
  return false
}

/** What to say when `sodium` is not the `sodium-native` module. */
export const NOT_SODIUM =
  "sodium must be the sodium-native module (import sodium from 'sodium-native'): its crypto_aead_chacha20poly1305_ietf_encrypt and _decrypt are missing, or do not take sodium-native's arguments, or do not throw on a forged value"

/** Options of a {@link Sealer}. */
export interface SealerOptions {
  /**
   * libsodium (the `sodium-native` module): seal with ChaCha20-Poly1305 through it (format 2),
   * about a third of node:crypto's AES-256-GCM instructions per seal and two fifths per open.
   * @default undefined (AES-256-GCM through node:crypto)
   */
  sodium?: SodiumAead
}

interface SealKey {
  key: KeyObject
  /** The header this key's values start with; with the context, the associated data. */
  aad: Buffer
  /** The ChaCha20-Poly1305 key (format 2), raw for libsodium and as a key for node:crypto. */
  chacha?: { raw: Buffer; key: KeyObject; aad: Buffer }
}

/** `version | key id | context`: a value's associated data. */
function aadOf(version: number, id: number, context: Buffer): Buffer {
  const aad = Buffer.alloc(HEADER_BYTES + context.length)
  aad[0] = version
  aad.writeUInt32BE(id >>> 0, 1)
  context.copy(aad, HEADER_BYTES)
  return aad
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
  readonly #sodium: SodiumAead | undefined

  /**
   * Keys newest first (the first seals, all open), each with a 4-byte id and, for format 2, a
   * ChaCha20-Poly1305 key of its own (`chacha`; without one, that key's format-2 values are
   * refused), and the context bound as associated data (different contexts never open each
   * other's values).
   */
  constructor(
    keys: readonly { key: Buffer; id: number; chacha?: Buffer }[],
    context: string,
    options: SealerOptions = {},
  ) {
    if (keys.length === 0) throw new SessionConfigError('a sealer needs at least one key')
    const { sodium } = options
    if (sodium !== undefined && !isSodiumAead(sodium)) throw new SessionConfigError(NOT_SODIUM)
    this.#sodium = sodium
    const contextBytes = Buffer.from(context)
    this.#byId = new Map()
    const entries = keys.map(({ key, id, chacha }) => {
      if (key.length !== 32 || (chacha !== undefined && chacha.length !== 32)) {
        throw new SessionConfigError('AES-256-GCM and ChaCha20-Poly1305 keys are 32 bytes')
      }
      if (sodium !== undefined && chacha === undefined) {
        throw new SessionConfigError('sealing with libsodium needs a ChaCha20-Poly1305 key')
      }
      const entry: SealKey = {
        key: createSecretKey(key),
        aad: aadOf(SEAL_VERSION, id, contextBytes),
        ...(chacha === undefined
          ? {}
          : {
              chacha: {
                raw: chacha,
                key: createSecretKey(chacha),
                aad: aadOf(CHACHA_VERSION, id, contextBytes),
              },
            }),
      }
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
  static fromKeyring(
    keyring: Keyring,
    purpose: string,
    context: string,
    options: SealerOptions = {},
  ): Sealer {
    const keys = keyring.deriveKeys(purpose)
    const chacha = keyring.deriveKeys(`${purpose}/chacha20-poly1305`)
    const ids = keyring.deriveKeys(`${purpose}/key-id`, 4)
    return new Sealer(
      keys.map((key, i) => ({ key, id: ids[i]!.readUInt32BE(0), chacha: chacha[i]! })),
      context,
      options,
    )
  }

  /** `plaintext` sealed with the newest key, as base64url. */
  seal(plaintext: string): string {
    const plain = plaintextBuffer(3 * plaintext.length)
    return this.sealBytes(plain, plain.write(plaintext, 0, 'utf8'))
  }

  /**
   * The first `n` bytes of `plain` (from {@link plaintextBuffer}) sealed with the newest key,
   * as base64url; those bytes are zeroed after.
   */
  sealBytes(plain: Buffer, n: number): string {
    try {
      const sodium = this.#sodium
      return sodium === undefined ? this.#sealAes(plain, n) : this.#sealChacha(sodium, plain, n)
    } finally {
      wipe(plain, n)
    }
  }

  /**
   * The plaintext of `token`, or why it is refused. Shape and length are checked before any
   * decoding; `maxLength` bounds the work an attacker can ask for.
   */
  open(token: string, maxLength: number): Opened {
    return this.openWith(token, maxLength, textOf)
  }

  /**
   * {@link open}, handing the plaintext's bytes (the first `n` of `plain`) to `read` instead of
   * decoding them as text, and giving back what it gives. `read` must be done with them when
   * it returns, and must not seal or open: they are zeroed then, and may be the working buffer.
   */
  openWith<T>(
    token: string,
    maxLength: number,
    read: (plain: Buffer, n: number) => T,
  ): T | { rejected: SealRejection } {
    if (
      token.length < MIN_SEALED_LENGTH ||
      token.length > maxLength ||
      // with the decoded length checked below, base64url alone, and only its canonical form
      !canonicalBase64url(token)
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
    const version = bytes[0]
    if (version !== SEAL_VERSION && version !== CHACHA_VERSION) return MALFORMED
    const entry = this.#byId.get(bytes.readUInt32BE(1))
    if (entry === undefined) return BAD
    if (version === CHACHA_VERSION) return this.#openChacha(entry, bytes, iv, length, read)
    const body = nodeOpen(createDecipheriv('aes-256-gcm', entry.key, iv), entry.aad, bytes, length)
    return body === undefined ? BAD : read(body, body.length)
  }

  /** {@link sealBytes} with AES-256-GCM through node:crypto (format 1). */
  #sealAes(plain: Buffer, n: number): string {
    const { key, aad } = this.#current
    for (let i = 0; i < HEADER_BYTES; i++) WORK[i] = aad[i]!
    writeIv(WORK, HEADER_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key, WORK_IV)
    cipher.setAAD(aad)
    const body = cipher.update(plainOf(plain, n))
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
   * {@link sealBytes} with ChaCha20-Poly1305 through libsodium (format 2): the value in
   * {@link WORK}, one native call.
   */
  #sealChacha(sodium: SodiumAead, plain: Buffer, n: number): string {
    const { raw, aad } = this.#current.chacha!
    const length = SEAL_OVERHEAD + n
    const fits = length <= WORK.length
    // a larger value (a session over several cookies) gets a buffer of its own
    const out = fits ? WORK : Buffer.allocUnsafe(length)
    for (let i = 0; i < HEADER_BYTES; i++) out[i] = aad[i]!
    writeIv(out, HEADER_BYTES)
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      fits ? bodyOf(length) : out.subarray(HEADER_BYTES + IV_BYTES),
      plainOf(plain, n),
      aad,
      null,
      fits ? WORK_IV : out.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES),
      raw,
    )
    return out.toString('base64url', 0, length)
  }

  /** {@link openWith} of a format-2 value: libsodium when the sealer has it, else node:crypto. */
  #openChacha<T>(
    entry: SealKey,
    bytes: Buffer,
    iv: Buffer,
    length: number,
    read: (plain: Buffer, n: number) => T,
  ): T | { rejected: SealRejection } {
    const chacha = entry.chacha
    if (chacha === undefined) return BAD
    const n = length - SEAL_OVERHEAD
    const sodium = this.#sodium
    if (sodium === undefined) {
      const decipher = createDecipheriv('chacha20-poly1305', chacha.key, iv, {
        authTagLength: TAG_BYTES,
      })
      const body = nodeOpen(decipher, chacha.aad, bytes, length)
      return body === undefined ? BAD : read(body, body.length)
    }
    const work = bytes === WORK
    const message = work ? plainOf(PLAIN, n) : Buffer.allocUnsafe(n)
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        message,
        null,
        work ? bodyOf(length) : bytes.subarray(HEADER_BYTES + IV_BYTES, length),
        chacha.aad,
        iv,
        chacha.raw,
      )
    } catch {
      // sodium-native throws when the tag does not check
      return BAD
    }
    try {
      return read(work ? PLAIN : message, n)
    } finally {
      wipe(work ? PLAIN : message, n)
    }
  }
}

/** A plaintext's bytes as text, for {@link Sealer.open}. */
const textOf = (plain: Buffer, n: number): Opened => ({ plaintext: plain.toString('utf8', 0, n) })

/**
 * The plaintext of the sealed value `bytes[0, length)` through a node:crypto `decipher` made
 * with its key and IV, or `undefined` when its tag does not check.
 */
function nodeOpen(
  decipher: DecipherGCM | DecipherChaCha20Poly1305,
  aad: Buffer,
  bytes: Buffer,
  length: number,
): Buffer | undefined {
  decipher.setAAD(aad, { plaintextLength: length - SEAL_OVERHEAD })
  // the length is checked before, so the tag is always 16 bytes (no truncated-tag forgery)
  decipher.setAuthTag(bytes.subarray(length - TAG_BYTES, length))
  // bytes out, decoded once the tag checks: asking `update` for 'utf8' makes the decipher
  // build a StringDecoder for the call, a microsecond of the open's three or four
  const body = decipher.update(bytes.subarray(HEADER_BYTES + IV_BYTES, length - TAG_BYTES))
  try {
    decipher.final()
  } catch {
    return undefined
  }
  return body
}

const MALFORMED = Object.freeze({ rejected: 'malformed' as const })
const BAD = Object.freeze({ rejected: 'bad-signature' as const })
