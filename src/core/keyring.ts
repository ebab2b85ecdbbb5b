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
  /** Signed values that verified (or that this keyring signed) -> their id and store key. */
  readonly #verified = new RecentMap<Verified>(VERIFIED_CACHE_SIZE, 0)

  constructor(secrets: readonly string[]) {
    if (!Array.isArray(secrets)) {
      throw new SessionConfigError(
        `\`secrets\` is a list of secrets, newest first (a single one goes in \`secret\`); got ${secrets === null ? 'null' : typeof secrets}`,
      )
    }
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
   * `id.signature`, signed with the newest key. The value is remembered with its id's store key,
   * so the cookie's first request back needs neither the HMAC nor the SHA-256. (The key is
   * hashed here, not taken from the caller: a wrong one would send the session's reads
   * elsewhere.)
   */
  sign(id: string): string {
    const signed = `${id}.${this.#macs[0]!(id)}`
    this.#remember(signed, id)
    return signed
  }

  /**
   * The id inside a signed value, or the reason it is refused. Length and alphabet are checked
   * before any crypto; signatures are compared in constant time against every key.
   *
   * A bounded cache remembers whole values that verified (from a value's second verification
   * in a while, see {@link RecentMap.admits}; or that `sign` made), with the id's store `key`
   * ({@link hashSessionId}): a value found there is accepted without the HMAC or the SHA-256,
   * so a session's later requests skip both. It only holds values this keyring's keys signed,
   * and keys never change, so it can never make a forged value verify. Without `key`, hash the
   * id.
   *
   * Timing: the cache is looked up by the whole value, so a signature is never compared on its
   * own on this path. The hash table compares the presented value only with the cached values
   * of its bucket, which V8's seeded string hash picks and a client can neither compute nor
   * observe; to learn from a reply's timing anything about the signature of an id one knows,
   * one would have to land in that value's bucket without being able to tell when one did.
   * (An earlier version looked the id up the same way, then compared the signature in constant
   * time: 43 `charCodeAt` pairs, the largest part of a hot load; see docs/benchmark.md.)
   */
  verify(
    value: string,
  ): { id: string; key?: string; stale: boolean } | { rejected: CookieRejection } {
    if (value.length !== SIGNED_LENGTH) return MALFORMED
    const known = this.#verified.get(value)
    if (known !== undefined) return known
    if (!SIGNED_VALUE.test(value)) return MALFORMED
    const idPart = value.slice(0, ID_LENGTH)
    const signature = value.slice(ID_LENGTH + 1)
    // compare the encoded text, not decoded bytes: base64url's last character carries two
    // spare bits, so a decoded comparison would accept a flipped final character
    let ok = false
    let newest = false
    for (let i = 0; i < this.#macs.length; i++) {
      // every key is tried, so timing does not tell which one matched
      if (equalText(this.#macs[i]!(idPart), signature)) {
        ok = true
        if (i === 0) newest = true
      }
    }
    if (!ok) return BAD_SIGNATURE
    // kept from the second request of a session on: one seen once in a long while costs no entry
    if (this.#verified.admits(value)) return this.#remember(value, idPart, !newest)
    return { id: idPart, stale: !newest }
  }

  /** Caches `value` (verified, or signed here) as `id` with its store key. */
  #remember(value: string, id: string, stale = false): Verified {
    // flattened copies: a slice would keep the whole Cookie header alive in the cache
    const result = Object.freeze({ id: flat(id), key: hashSessionIdUncached(id), stale })
    this.#verified.set(flat(value), result)
    return result
  }
}

/**
 * A verified value's id and store key, as cached (shared and frozen). `stale`: signed with an
 * older secret than the newest, so the cookie is to be signed again.
 */
type Verified = { readonly id: string; readonly key: string; readonly stale: boolean }

const MALFORMED = Object.freeze({ rejected: 'malformed' as const })
const BAD_SIGNATURE = Object.freeze({ rejected: 'bad-signature' as const })

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
