import { describe, expect, it } from 'vitest'
import { SessionConfigError } from './errors.js'
import { newSessionId } from './ids.js'
import { Keyring } from './keyring.js'

const A = 'a'.repeat(32)
const B = 'b'.repeat(40)

describe('Keyring', () => {
  it('refuses no secret or a short one, saying how to make one', () => {
    expect(() => new Keyring([])).toThrow(SessionConfigError)
    expect(() => new Keyring([])).toThrow(/tessera keygen/)
    expect(() => new Keyring(['short'])).toThrow(/5 bytes.*at least 32/)
    expect(() => new Keyring([A, 'short'])).toThrow(/secret #2/)
  })

  it('signs with the newest key and verifies with any, saying when an older one signed', () => {
    const id = newSessionId()
    const old = new Keyring([A])
    const rotated = new Keyring([B, A])
    expect(rotated.verify(old.sign(id))).toEqual({ id, stale: true })
    expect(new Keyring([B]).verify(rotated.sign(id))).toEqual({ id, stale: false })
    expect(new Keyring([A]).verify(rotated.sign(id))).toEqual({ rejected: 'bad-signature' })
  })

  it('checks length and alphabet before any crypto', () => {
    const k = new Keyring([A])
    const signed = k.sign(newSessionId())
    expect(k.verify(signed.slice(1))).toEqual({ rejected: 'malformed' })
    expect(k.verify(`${signed.slice(0, -1)}=`)).toEqual({ rejected: 'malformed' })
    expect(k.verify(signed.replace('.', '!'))).toEqual({ rejected: 'malformed' })
    // not ASCII, though the low seven bits are a base64url character's ('A', 'z', '-')
    for (const code of [0xc1, 0x141, 0xfa, 0x17a, 0xad, 0xff2d]) {
      for (const at of [0, 20, 42, 44, 86]) {
        const odd = signed.slice(0, at) + String.fromCharCode(code) + signed.slice(at + 1)
        expect(k.verify(odd)).toEqual({ rejected: 'malformed' })
      }
    }
  })

  it('refuses every change to the last signature character, spare bits included', () => {
    const k = new Keyring([A])
    const signed = k.sign(newSessionId())
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    for (const c of alphabet) {
      const forged = signed.slice(0, -1) + c
      if (forged !== signed) expect(k.verify(forged)).toEqual({ rejected: 'bad-signature' })
    }
  })

  it('derives separate keys per purpose and per secret', () => {
    const k = new Keyring([A, B])
    const [enc1, enc2] = k.deriveKeys('cookie-store')
    const [sig1] = k.deriveKeys('cookie-signature')
    expect(enc1).toHaveLength(32)
    expect(enc1!.equals(enc2!)).toBe(false)
    expect(enc1!.equals(sig1!)).toBe(false)
  })
})
