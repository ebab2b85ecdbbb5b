import { createCipheriv, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { SessionConfigError } from '../../src/core/errors.js'
import { Keyring } from '../../src/core/keyring.js'
import { SessionManager } from '../../src/core/manager.js'
import { CHACHA_VERSION, Sealer, type SodiumAead } from '../../src/core/seal.js'
import { cookieStore } from '../../src/stores/cookie.js'
import { describeStoreConformance, meta } from '../conformance/store-suite.js'
import { bindForTest, cookieJarStore } from '../helpers/cookie-jar.js'
import { SECRET } from '../helpers/http.js'

// the module the option documents; it publishes no types
const sodium = ((await import('sodium-native' as string)) as { default: SodiumAead }).default

// every awkward value, meta field and the 64 KB field (over several cookies, the sealer's
// large path) round-trip through libsodium
describeStoreConformance('cookie with libsodium (through a per-key browser jar)', {
  create: () => cookieJarStore(cookieStore({ maxChunks: 30, sodium })),
  expiry: 'none',
  capabilities: [],
})

const ID = 'A'.repeat(43)
const NOW = 1e12
const sealed = (store: ReturnType<typeof cookieStore>, fields = new Map([['a', '1']])) => {
  const { cookies } = store.seal(
    { id: ID, fields, meta: meta({}, NOW) },
    { secure: false, now: NOW, present: 0 },
  )
  return cookies[0]!.split(';')[0]!.slice(4)
}
const fieldsOf = (result: ReturnType<ReturnType<typeof cookieStore>['open']>) =>
  result !== undefined && 'session' in result ? result.session.fields : result

describe('cookie store with libsodium (ChaCha20-Poly1305, format 2)', () => {
  it('seals format 2, and either store opens what the other sealed', () => {
    const withSodium = bindForTest(cookieStore({ sodium }))
    const plain = bindForTest(cookieStore())
    const chacha = sealed(withSodium, new Map([['cart', '["ü",1]']]))
    const aes = sealed(plain)
    expect(Buffer.from(chacha, 'base64url')[0]).toBe(CHACHA_VERSION)
    expect(Buffer.from(aes, 'base64url')[0]).toBe(1)
    // the same session's token is as long either way: same layout, same overhead
    expect(chacha.length).toBe(sealed(plain, new Map([['cart', '["ü",1]']])).length)
    // without libsodium, format 2 opens through node:crypto's ChaCha20-Poly1305
    expect(fieldsOf(plain.open(`sid=${chacha}`, NOW))).toEqual(new Map([['cart', '["ü",1]']]))
    expect(fieldsOf(withSodium.open(`sid=${chacha}`, NOW))).toEqual(new Map([['cart', '["ü",1]']]))
    // and adding libsodium logs nobody out
    expect(fieldsOf(withSodium.open(`sid=${aes}`, NOW))).toEqual(new Map([['a', '1']]))
  })

  it('is RFC 8439 ChaCha20-Poly1305 under its own HKDF key: a value node:crypto made opens', () => {
    const keyring = new Keyring([SECRET])
    const [key] = keyring.deriveKeys('cookie-store/chacha20-poly1305')
    const [id] = keyring.deriveKeys('cookie-store/key-id', 4)
    const header = Buffer.concat([Buffer.from([CHACHA_VERSION]), id!])
    const iv = randomBytes(12)
    const cipher = createCipheriv('chacha20-poly1305', key!, iv, { authTagLength: 16 })
    cipher.setAAD(Buffer.concat([header, Buffer.from('sid')]), { plaintextLength: 14 })
    const body = Buffer.concat([cipher.update('made elsewhere', 'utf8'), cipher.final()])
    const token = Buffer.concat([header, iv, body, cipher.getAuthTag()]).toString('base64url')
    const sealer = Sealer.fromKeyring(keyring, 'cookie-store', 'sid', { sodium })
    expect(sealer.open(token, 4096)).toEqual({ plaintext: 'made elsewhere' })
    // the AES key is not the ChaCha20 key: the purposes are apart
    const [aesKey] = keyring.deriveKeys('cookie-store')
    expect(aesKey!.equals(key!)).toBe(false)
  })

  it('refuses a changed byte, a changed version, another cookie name and an unknown key', () => {
    const keyring = new Keyring([SECRET])
    for (const opener of [
      Sealer.fromKeyring(keyring, 'cookie-store', 'sid', { sodium }),
      Sealer.fromKeyring(keyring, 'cookie-store', 'sid'),
    ]) {
      const sealer = Sealer.fromKeyring(keyring, 'cookie-store', 'sid', { sodium })
      const token = sealer.seal('x'.repeat(100))
      expect(opener.open(token, 4096)).toEqual({ plaintext: 'x'.repeat(100) })
      const bytes = Buffer.from(token, 'base64url')
      for (const at of [20, bytes.length - 1]) {
        const changed = Buffer.from(bytes)
        changed[at]! ^= 1
        expect(opener.open(changed.toString('base64url'), 4096)).toEqual({
          rejected: 'bad-signature',
        })
      }
      // the version is associated data: relabelled, neither cipher accepts it
      const relabelled = Buffer.from(bytes)
      relabelled[0] = 1
      expect(opener.open(relabelled.toString('base64url'), 4096)).toEqual({
        rejected: 'bad-signature',
      })
      const aes = Buffer.from(
        Sealer.fromKeyring(keyring, 'cookie-store', 'sid').seal('y'),
        'base64url',
      )
      aes[0] = CHACHA_VERSION
      expect(opener.open(aes.toString('base64url'), 4096)).toEqual({ rejected: 'bad-signature' })
      const other = Sealer.fromKeyring(keyring, 'cookie-store', 'other', { sodium })
      expect(other.open(token, 4096)).toEqual({ rejected: 'bad-signature' })
      const stranger = Sealer.fromKeyring(
        new Keyring(['another secret, 32 characters long!']),
        'cookie-store',
        'sid',
        { sodium },
      )
      expect(stranger.open(token, 4096)).toEqual({ rejected: 'bad-signature' })
    }
  })

  it('opens what an older secret sealed after a rotation, and seals with the newest', () => {
    const old = 'the old secret, at least 32 characters'
    const before = bindForTest(cookieStore({ sodium }), [old])
    const token = sealed(before)
    const after = bindForTest(cookieStore({ sodium }), [SECRET, old])
    expect(fieldsOf(after.open(`sid=${token}`, NOW))).toEqual(new Map([['a', '1']]))
    const fresh = sealed(after)
    expect(
      fieldsOf(bindForTest(cookieStore({ sodium }), [SECRET]).open(`sid=${fresh}`, NOW)),
    ).toEqual(new Map([['a', '1']]))
    expect(bindForTest(cookieStore({ sodium }), [old]).open(`sid=${fresh}`, NOW)).toMatchObject({
      rejected: 'bad-signature',
    })
  })

  it('seals values larger than its working buffer, and a value of every size opens', () => {
    const sealer = Sealer.fromKeyring(new Keyring([SECRET]), 'cookie-store', 'sid', { sodium })
    for (const size of [0, 1, 1000, 3038, 3039, 3040, 3072, 3073, 9000, 40_000]) {
      const text = 'é'.repeat(size >> 1) + 'a'.repeat(size & 1)
      expect(sealer.open(sealer.seal(text), 1e6)).toEqual({ plaintext: text })
    }
  })

  it('says what is wrong when sodium is not the sodium-native module', () => {
    for (const bad of [{}, { crypto_aead_chacha20poly1305_ietf_encrypt: () => 0 }, null]) {
      // at once, where the store is made
      expect(() => cookieStore({ sodium: bad as unknown as SodiumAead })).toThrow(
        /\[store:cookie\] sodium must be the sodium-native module/,
      )
      expect(
        () => new Sealer([{ key: Buffer.alloc(32), id: 1 }], 'sid', { sodium: bad as never }),
      ).toThrow(SessionConfigError)
    }
    // and the real module is accepted
    expect(
      () => new SessionManager({ secret: SECRET, store: cookieStore({ sodium }) }),
    ).not.toThrow()
  })

  it('refuses, where the store is made, a module with the right names and other behaviour', async () => {
    // libsodium-wrappers: the same names, `(message, ad, nsec, nonce, key)`, the ciphertext
    // returned; passed for sodium-native, every commit failed (or, with a module that writes
    // nothing, every cookie was sealed from stale bytes and never opened again)
    const wrappers = {
      crypto_aead_chacha20poly1305_ietf_encrypt: (
        message: Uint8Array,
        _ad: unknown,
        _n: unknown,
        nonce: unknown,
      ) => {
        if (nonce === null) throw new TypeError('unsupported input type for public_nonce')
        return new Uint8Array(message.length + 16)
      },
      crypto_aead_chacha20poly1305_ietf_decrypt: () => new Uint8Array(0),
    }
    // sodium-native's calls, except that a forged value is "opened" (a -1, no throw)
    const lenient: SodiumAead = {
      crypto_aead_chacha20poly1305_ietf_encrypt: (...args) =>
        sodium.crypto_aead_chacha20poly1305_ietf_encrypt(...args),
      crypto_aead_chacha20poly1305_ietf_decrypt: (...args) => {
        try {
          return sodium.crypto_aead_chacha20poly1305_ietf_decrypt(...args)
        } catch {
          return -1
        }
      },
    }
    for (const bad of [wrappers, lenient]) {
      expect(() => cookieStore({ sodium: bad as unknown as SodiumAead })).toThrow(
        /\[store:cookie\] sodium must be the sodium-native module/,
      )
      expect(
        () =>
          new Sealer([{ key: Buffer.alloc(32), id: 1, chacha: Buffer.alloc(32) }], 'sid', {
            sodium: bad as unknown as SodiumAead,
          }),
      ).toThrow(SessionConfigError)
    }
    expect(() => new Sealer([{ key: Buffer.alloc(32), id: 1 }], 'sid', { sodium })).toThrow(
      /ChaCha20-Poly1305 key/,
    )
  })
})
