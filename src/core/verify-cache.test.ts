import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { memoryStore } from '../stores/memory.js'
import { HASH_CACHE_SIZE, hashSessionId, newSessionId } from './ids.js'
import { Keyring, VERIFIED_CACHE_SIZE } from './keyring.js'

const A = 'a'.repeat(32)
const B = 'b'.repeat(40)
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Every value that differs from `signed` in one signature character. */
function forgeries(signed: string): string[] {
  const dot = signed.indexOf('.')
  const out: string[] = []
  for (let i = dot + 1; i < signed.length; i++) {
    for (const c of ALPHABET) {
      if (c !== signed[i]) out.push(signed.slice(0, i) + c + signed.slice(i + 1))
    }
  }
  return out
}

describe('the verified-cookie cache', () => {
  it("gives a remembered id's store key with it, and that key is the id's SHA-256", () => {
    const sha = (id: string) => createHash('sha256').update(id).digest('hex')
    const k = new Keyring([A])
    const id = newSessionId()
    const signed = new Keyring([A]).sign(id)
    expect(k.verify(signed)).toEqual({ id, stale: false }) // first sight: not kept, no key
    expect(k.verify(signed)).toEqual({ id, key: sha(id), stale: false }) // kept from the second
    expect(k.verify(signed)).toEqual({ id, key: sha(id), stale: false }) // a hit
    const own = newSessionId()
    expect(k.verify(k.sign(own))).toEqual({ id: own, key: sha(own), stale: false }) // what it signed
  })

  it('never makes a forged signature verify, for an id it has just verified', () => {
    const k = new Keyring([A])
    const signed = new Keyring([A]).sign(newSessionId())
    expect(k.verify(signed)).toHaveProperty('id')
    expect(k.verify(signed)).toHaveProperty('id') // the second time: now cached
    for (const forged of forgeries(signed)) {
      expect(k.verify(forged)).toEqual({ rejected: 'bad-signature' })
    }
    // and the genuine value still verifies after all those misses
    expect(k.verify(signed)).toMatchObject({ id: signed.slice(0, signed.indexOf('.')) })
  })

  it('does not let a value signed with another secret through for a cached id', () => {
    const id = newSessionId()
    const k = new Keyring([A])
    expect(k.verify(k.sign(id))).toMatchObject({ id })
    expect(k.verify(new Keyring([B]).sign(id))).toEqual({ rejected: 'bad-signature' })
  })

  it('keeps each signed value of one id: during a rotation, the old and the new both hit', () => {
    const sha = (id: string) => createHash('sha256').update(id).digest('hex')
    const id = newSessionId()
    const k = new Keyring([B, A])
    const byOld = new Keyring([A]).sign(id)
    const byNew = k.sign(id) // cached as signed
    // first sight of this value: checked in full; the older key signed it
    expect(k.verify(byOld)).toEqual({ id, stale: true })
    expect(k.verify(byOld)).toEqual({ id, key: sha(id), stale: true })
    expect(k.verify(byNew)).toEqual({ id, key: sha(id), stale: false })
    expect(k.verify(byOld)).toEqual({ id, key: sha(id), stale: true })
  })

  it('is per keyring: a value cached by one keyring is checked in full by another', () => {
    const id = newSessionId()
    const old = new Keyring([A])
    const signed = old.sign(id)
    expect(old.verify(signed)).toMatchObject({ id })
    expect(new Keyring([B]).verify(signed)).toEqual({ rejected: 'bad-signature' })
    expect(new Keyring([B, A]).verify(signed)).toMatchObject({ id })
  })

  it('stays bounded and still verifies values it has forgotten', () => {
    const k = new Keyring([A])
    const signer = new Keyring([A])
    const first = signer.sign(newSessionId())
    expect(k.verify(first)).toHaveProperty('id')
    expect(k.verify(first)).toHaveProperty('id')
    for (let i = 0; i < VERIFIED_CACHE_SIZE * 2 + 1; i++) {
      const value = signer.sign(newSessionId())
      k.verify(value)
      k.verify(value)
    }
    expect(k.verify(first)).toMatchObject({ id: first.slice(0, first.indexOf('.')) })
    expect(k.verify(`${first.slice(0, -1)}${first.endsWith('A') ? 'B' : 'A'}`)).toEqual({
      rejected: 'bad-signature',
    })
  })
})

describe('the session id hash cache', () => {
  it('always gives SHA-256 of the id, cached or not', () => {
    const ids = Array.from({ length: HASH_CACHE_SIZE * 2 + 10 }, () => newSessionId())
    for (const id of ids) hashSessionId(id)
    for (const id of [ids[0]!, ids.at(-1)!, ids[HASH_CACHE_SIZE]!]) {
      expect(hashSessionId(id)).toBe(createHash('sha256').update(id).digest('hex'))
    }
  })
})

describe('the memory store keeps field names as data', () => {
  it('stores a "__proto__" field as an own field, through set and patch', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const key = hashSessionId(newSessionId())
    const meta = { createdAt: 1, lastSeenAt: 1, idleExpiresAt: 9e15, absoluteExpiresAt: 9e15 }
    await store.set(key, { fields: JSON.parse('{"__proto__":"1","a":"2"}'), meta })
    expect(Object.entries((await store.get(key))!.fields)).toEqual([
      ['__proto__', '1'],
      ['a', '2'],
    ])
    await store.patch(key, { clear: true, set: JSON.parse('{"__proto__":"3"}'), delete: [] }, meta)
    const record = await store.get(key)
    expect(Object.entries(record!.fields)).toEqual([['__proto__', '3']])
    expect(Object.getPrototypeOf(record!.fields)).toBe(Object.prototype)
    await store.close()
  })
})
