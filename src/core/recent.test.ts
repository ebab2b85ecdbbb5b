import { describe, expect, it } from 'vitest'
import { RecentMap } from './recent.js'

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
})
