import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { RecentMap, slotOf } from './recent.js'

describe('RecentMap', () => {
  it('keeps the last size to 2 × size entries, and a use moves an old one up', () => {
    for (const m of [new RecentMap<string>(2), new RecentMap<string>(2, 0)]) {
      for (const k of ['1', '2', '3', '4']) m.set(k.repeat(4), `v${k}`) // [3, 4] and [1, 2]
      expect(m.get('1111')).toBe('v1') // moves up: the newer generation was full, so [1] and [3, 4]
      m.set('5555', 'v5') // [1, 5] and [3, 4]
      m.set('6666', 'v6') // [6] and [1, 5]: 3 and 4 are gone
      expect(['1', '2', '3', '4', '5', '6'].map((k) => m.get(k.repeat(4)))).toEqual([
        'v1',
        undefined,
        undefined,
        undefined,
        'v5',
        'v6',
      ])
    }
  })

  it('admits a key the second time it is asked about, and every key without randomFrom', () => {
    const m = new RecentMap<number>(4, 0)
    expect(m.admits('abcdefgh')).toBe(false) // marked
    expect(m.admits('abcdefgh')).toBe(true)
    expect(m.admits('zyxwvuts')).toBe(false)
    expect(new RecentMap<number>(4).admits('abcdefgh')).toBe(true)
  })

  it('mark() lets a key in at its first asking, and keeps nothing', () => {
    const m = new RecentMap<number>(4, 0)
    m.mark('abcdefgh')
    expect(m.get('abcdefgh')).toBeUndefined()
    expect(m.admits('abcdefgh')).toBe(true)
    expect(m.admits('zyxwvuts')).toBe(false)
  })

  it('forgets its marks after `size` first askings', () => {
    const m = new RecentMap<number>(3, 0)
    expect(m.admits('AAAAxx')).toBe(false)
    expect(m.admits('BBBBxx')).toBe(false)
    expect(m.admits('CCCCxx')).toBe(false) // the third mark: all are forgotten
    expect(m.admits('AAAAxx')).toBe(false)
    expect(m.admits('AAAAxx')).toBe(true)
  })

  it('finds the same entries with the tables of bits as without them', () => {
    // random keys, many reused: every get must answer as the maps alone would
    const keys = Array.from({ length: 300 }, () => randomBytes(12).toString('base64url'))
    const filtered = new RecentMap<number>(64, 0)
    const plain = new RecentMap<number>(64)
    let hits = 0
    for (let i = 0; i < 20_000; i++) {
      const key = keys[Math.floor(Math.random() * (i % 2 === 0 ? 300 : 80))]!
      const found = filtered.get(key)
      expect(found).toBe(plain.get(key))
      if (found !== undefined) hits++
      else if (i % 3 !== 0) {
        filtered.set(key, i)
        plain.set(key, i)
      }
    }
    expect(hits).toBeGreaterThan(1000)
  })

  it('reads the random characters at the offset given', () => {
    expect(slotOf('xxABCD', 2)).toBe(slotOf('yyABCD', 2))
    expect(slotOf('xxABCD', 2)).not.toBe(slotOf('xxABCE', 2))
  })

  it('spreads random keys evenly over the slots', () => {
    // 8192 keys thrown at random into 65,536 slots fill about 7,700 of them
    const used = new Set<number>()
    for (let i = 0; i < 8192; i++) used.add(slotOf(randomBytes(32).toString('base64url'), 0))
    expect(used.size).toBeGreaterThan(7550)
  })
})
