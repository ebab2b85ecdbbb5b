import { hkdfSync } from 'node:crypto'
import { SessionConfigError } from './errors.js'
import { hmacSha256 } from './hmac.js'
import { hashSessionIdUncached, ID_LENGTH } from './ids.js'
import { RecentMap } from './recent.js'

/** Minimum length of a secret, in bytes. */
export const MIN_SECRET_BYTES = 32

const SIGNATURE_LENGTH = 43 // HMAC-SHA256, base64url
const SIGNED_LENGTH = ID_LENGTH + 1 + SIGNATURE_LENGTH
const SIGNED_VALUE = /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/

const HOW_TO_MAKE_ONE =
  "make one with `npx tessera keygen` or `node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64url'))\"`"

/**
 * How many verified cookie values a keyring remembers, per generation: the last 4096 to 8192
 * sessions seen skip the HMAC on their next request. See {@link Keyring.verify}.
 */
export const VERIFIED_CACHE_SIZE = 4096

/** Why a cookie value was not accepted. */
export type CookieRejection = 'malformed' | 'bad-signature'

/**
 * The application's secrets, newest first. The newest signs; every one verifies, so a
 * secret can be rotated without logging anybody out. Each secret is stretched by HKDF into
 * one key per purpose, so the cookie signature and (say) the cookie store's encryption never
 * share a key.
 */
export class Keyring {
  readonly #secrets: readonly Buffer[]
  /** HMAC-SHA256 under each secret's signing key, newest first. */
  readonly #macs: readonly ((text: string) => string)[]
  /** id -> what verified for it (or what this keyring signed), newest generation. */
  readonly #verified = new RecentMap<Verified>(VERIFIED_CACHE_SIZE, 0)

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) {
      throw new SessionConfigError(
        `a secret is required (option \`secret\` or \`secrets\`); ${HOW_TO_MAKE_ONE}`,
      )
    }
    this.#secrets = secrets.map((secret, index) => {
      if (typeof secret !== 'string' || Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
        throw new SessionConfigError(
          `secret #${index + 1} is ${typeof secret === 'string' ? `${Buffer.byteLength(secret)} bytes` : 'not a string'}; at least ${MIN_SECRET_BYTES} random bytes are needed: ${HOW_TO_MAKE_ONE}`,
        )
      }
      return Buffer.from(secret)
    })
    this.#macs = this.deriveKeys('cookie-signature').map(hmacSha256)
  }

  /** The number of secrets. */
  get size(): number {
    return this.#secrets.length
  }

  /** One 32-byte key per secret (newest first) for `purpose`, derived with HKDF-SHA256. */
  deriveKeys(purpose: string, length = 32): Buffer[] {
    return this.#secrets.map((secret) =>
      Buffer.from(hkdfSync('sha256', secret, 'tessera', `tessera/${purpose}`, length)),
    )
  }

  /**
   * `id.signature`, signed with the newest key. The id is remembered with its store key, so the
   * cookie's first request back needs neither the HMAC nor the SHA-256. (The key is hashed
   * here, not taken from the caller: a wrong one would send the session's reads elsewhere.)
   */
  sign(id: string): string {
    const signature = this.#macs[0]!(id)
    this.#remember(verified(id, signature, hashSessionIdUncached(id)))
    return `${id}.${signature}`
  }

  /**
   * The id inside a signed value, or the reason it is refused. Length and alphabet are checked
   * before any crypto; signatures are compared in constant time against every key.
   *
   * A bounded cache remembers, per id, the signature that verified (from the id's second
   * verification in a while, see {@link RecentMap.admits}; or that `sign` made): a value whose
   * signature equals it (compared in constant time) is accepted without the HMAC, so a
   * session's later requests skip it. Anything else (a new id, or a known id with
   * another signature) takes the full path, so the cache can never make a forged value verify:
   * it only holds signatures this keyring's keys produced, and keys never change.
   *
   * A remembered id comes with its store `key` ({@link hashSessionId}), so a session's later
   * requests look in one cache, not two; without `key`, hash the id.
   */
  verify(value: string): { id: string; key?: string } | { rejected: CookieRejection } {
    if (value.length !== SIGNED_LENGTH) return MALFORMED
    const idPart = value.slice(0, ID_LENGTH)
    const signature = value.slice(ID_LENGTH + 1)
    // a hit means the whole value equals one that passed the checks below (the id is the key,
    // the signature compares equal, the separator is checked here)
    const known = this.#verified.get(idPart)
    if (
      known !== undefined &&
      equalText(known.signature, signature) &&
      value.charCodeAt(ID_LENGTH) === DOT
    ) {
      return known.result
    }
    if (!SIGNED_VALUE.test(value)) return MALFORMED
    // compare the encoded text, not decoded bytes: base64url's last character carries two
    // spare bits, so a decoded comparison would accept a flipped final character
    let ok = false
    for (const mac of this.#macs) {
      // every key is tried, so timing does not tell which one matched
      if (equalText(mac(idPart), signature)) ok = true
    }
    if (!ok) return BAD_SIGNATURE
    // kept from the second request of a session on: one seen once in a long while costs no entry
    if (this.#verified.admits(idPart)) {
      return this.#remember(verified(idPart, signature, hashSessionIdUncached(idPart))).result
    }
    return { id: idPart }
  }

  #remember(entry: Verified): Verified {
    this.#verified.set(entry.result.id, entry)
    return entry
  }
}

/**
 * A verified value, as cached: its signature and the (shared, frozen) result of `verify`,
 * with the id's store key.
 */
interface Verified {
  readonly signature: string
  readonly result: { readonly id: string; readonly key: string }
}

const DOT = 46
const MALFORMED = Object.freeze({ rejected: 'malformed' as const })
const BAD_SIGNATURE = Object.freeze({ rejected: 'bad-signature' as const })

/** Flattened copies: a slice would keep the whole Cookie header alive in the cache. */
function verified(id: string, signature: string, key: string): Verified {
  return { signature: flat(signature), result: Object.freeze({ id: flat(id), key }) }
}

/**
 * Equality of two strings of the same length (both checked by SIGNED_VALUE) in time that
 * depends on the length only.
 */
function equalText(a: string, b: string): boolean {
  let diff = a.length ^ b.length
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/** A copy of `s` that does not point into the string it was sliced from. */
function flat(s: string): string {
  return (' ' + s).slice(1)
}
