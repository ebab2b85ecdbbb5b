import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { canonicalBase64url, ID_BYTES, newSessionId, writeIdBytes } from './ids.js'

describe('canonicalBase64url', () => {
  it('takes what Node encodes, of every length', () => {
    for (let n = 0; n < 40; n++) {
      expect(canonicalBase64url(randomBytes(n).toString('base64url')), `${n} bytes`).toBe(true)
    }
  })

  it('refuses text that decodes to bytes which encode as other text', () => {
    for (const text of [
      'QUJD+w', // standard base64
      'QUJD/w',
      'QUJDR', // a length no bytes have
      'QUJDRB', // spare bits set in the last digit
      'QUJDRE=', // padding
      // a digit as a character whose low byte is that digit: Node decodes `Ŕ` as `U`
      'Q\u0155JD',
      'QUJ\u0144',
      'QUJD\u{1F600}',
    ]) {
      expect(canonicalBase64url(text), JSON.stringify(text)).toBe(false)
    }
    expect(Buffer.from('Q\u0155JD', 'base64url').toString()).toBe('ABC')
  })
})

describe('writeIdBytes', () => {
  it("writes a generated id's 32 bytes, and nothing for an id that would not come back", () => {
    const out = Buffer.alloc(ID_BYTES)
    const id = newSessionId()
    expect(writeIdBytes(out, 0, id)).toBe(true)
    expect(out.toString('base64url')).toBe(id)
    const wide = `${id.slice(0, 10)}${String.fromCharCode(id.charCodeAt(10) + 0x100)}${id.slice(11)}`
    expect(writeIdBytes(out, 0, wide)).toBe(false)
    expect(writeIdBytes(out, 0, id.slice(1))).toBe(false)
  })
})
