import { describe, expect, it } from 'vitest'
import { RecentMap, randomTextSlot } from './recent.js'

describe('RecentMap', () => {
  it('keeps the last size to 2 × size entries, and a use moves an old one up', () => {
    const m = new RecentMap<number, string>(2)
    for (const k of [1, 2, 3, 4]) m.set(k, `v${k}`) // generations: [3, 4] and [1, 2]
    expect(m.get(1)).toBe('v1') // moves up: the newer generation was full, so [1] and [3, 4]
    m.set(5, 'v5') // [1, 5] and [3, 4]
    m.set(6, 'v6') // [6] and [1, 5]: 3 and 4 are gone
    expect([1, 2, 3, 4, 5, 6].map((k) => m.get(k))).toEqual([
      'v1',
      undefined,
      undefined,
      undefined,
      'v5',
      'v6',
    ])
  })

  it('admits a key the second time it is asked about, and every key without a slot function', () => {
    const m = new RecentMap<string, number>(4, randomTextSlot(0))
    expect(m.admits('abcdefgh')).toBe(false) // marked
    expect(m.admits('abcdefgh')).toBe(true)
    expect(m.admits('zyxwvuts')).toBe(false)
    expect(new RecentMap<string, number>(4).admits('abcdefgh')).toBe(true)
  })

  it('mark() lets a key in at its first asking, and keeps nothing', () => {
    const m = new RecentMap<string, number>(4, randomTextSlot(0))
    m.mark('abcdefgh')
    expect(m.get('abcdefgh')).toBeUndefined()
    expect(m.admits('abcdefgh')).toBe(true)
    expect(m.admits('zyxwvuts')).toBe(false)
  })

  it('forgets its marks after `size` first askings', () => {
    const m = new RecentMap<string, number>(3, randomTextSlot(0))
    expect(m.admits('AAAAxx')).toBe(false)
    expect(m.admits('BBBBxx')).toBe(false)
    expect(m.admits('CCCCxx')).toBe(false) // the third mark: all are forgotten
    expect(m.admits('AAAAxx')).toBe(false)
    expect(m.admits('AAAAxx')).toBe(true)
  })

  it('reads the random characters at the offset given', () => {
    const slot = randomTextSlot(2)
    expect(slot('xxABCD')).toBe(slot('yyABCD'))
    expect(slot('xxABCD')).not.toBe(slot('xxABCE'))
  })
})
