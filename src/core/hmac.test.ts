import { createHmac, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { hmacSha256 } from './hmac.js'
import { newSessionId } from './ids.js'

const reference = (key: Uint8Array, text: string) =>
  createHmac('sha256', key).update(text).digest('base64url')

describe('hmacSha256', () => {
  it("gives createHmac's answer for keys and texts of many lengths", () => {
    // keys shorter than, as long as and longer than a block; texts up to past the kept buffer
    for (const keyLength of [1, 32, 63, 64, 65, 200]) {
      const key = randomBytes(keyLength)
      const mac = hmacSha256(key)
      for (const textLength of [0, 1, 43, 55, 56, 64, 119, 255, 256, 257, 1000]) {
        const text = randomBytes(textLength).toString('base64url').slice(0, textLength)
        expect(mac(text), `key ${keyLength} bytes, text ${textLength}`).toBe(reference(key, text))
      }
    }
  })

  it('hashes the UTF-8 bytes of any text, lone surrogates as createHmac does', () => {
    const key = randomBytes(32)
    const mac = hmacSha256(key)
    for (const text of [
      'é',
      '日本語',
      '🙂'.repeat(64),
      '\ud800x',
      'x\udfff',
      'ü'.repeat(256),
      '€'.repeat(300),
    ])
      expect(mac(text), JSON.stringify(text.slice(0, 8))).toBe(reference(key, text))
  })

  it('answers each call for its own text, whatever the calls before it wrote', () => {
    const key = randomBytes(32)
    const mac = hmacSha256(key)
    const ids = Array.from({ length: 50 }, newSessionId)
    const first = ids.map(mac)
    // a long text, then a short one, through the same kept buffer
    expect(mac('z'.repeat(200))).toBe(reference(key, 'z'.repeat(200)))
    expect(mac('z')).toBe(reference(key, 'z'))
    expect(ids.map(mac)).toEqual(first)
    expect(first).toEqual(ids.map((id) => reference(key, id)))
  })
})
