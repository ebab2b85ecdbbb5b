import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'
import { SessionConfigError } from './errors.js'
import { ID_LENGTH } from './ids.js'

/** Minimum length of a secret, in bytes. */
export const MIN_SECRET_BYTES = 32

const SIGNATURE_LENGTH = 43 // HMAC-SHA256, base64url
const SIGNED_LENGTH = ID_LENGTH + 1 + SIGNATURE_LENGTH
const SIGNED_VALUE = /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/

const HOW_TO_MAKE_ONE =
  "make one with `npx tessera keygen` or `node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64url'))\"`"

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
  readonly #signingKeys: readonly Buffer[]

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
    this.#signingKeys = this.deriveKeys('cookie-signature')
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

  /** `id.signature`, signed with the newest key. */
  sign(id: string): string {
    return `${id}.${mac(this.#signingKeys[0]!, id)}`
  }

  /**
   * The id inside a signed value, or the reason it is refused. Length and alphabet are checked
   * before any crypto; signatures are compared in constant time against every key.
   */
  verify(value: string): { id: string } | { rejected: CookieRejection } {
    if (value.length !== SIGNED_LENGTH || !SIGNED_VALUE.test(value))
      return { rejected: 'malformed' }
    const id = value.slice(0, ID_LENGTH)
    // compare the encoded text, not decoded bytes: base64url's last character carries two
    // spare bits, so a decoded comparison would accept a flipped final character
    const given = Buffer.from(value.slice(ID_LENGTH + 1), 'latin1')
    let ok = false
    for (const key of this.#signingKeys) {
      // every key is tried, so timing does not tell which one matched
      if (timingSafeEqual(given, Buffer.from(mac(key, id), 'latin1'))) ok = true
    }
    return ok ? { id } : { rejected: 'bad-signature' }
  }
}

function mac(key: Buffer, id: string): string {
  return createHmac('sha256', key).update(id).digest('base64url')
}
