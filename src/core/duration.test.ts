import { describe, expect, it } from 'vitest'
import { parseDuration, toMs } from './duration.js'
import { SessionConfigError } from './errors.js'

describe('parseDuration', () => {
  it('reads milliseconds and every documented unit', () => {
    expect(parseDuration('500')).toBe(500)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('30m')).toBe(1_800_000)
    expect(parseDuration('1.5h')).toBe(5_400_000)
    expect(parseDuration('2d')).toBe(172_800_000)
    expect(parseDuration('1w')).toBe(604_800_000)
    expect(parseDuration('1y')).toBe(31_557_600_000)
  })

  it('reads zero with any unit it knows, as 0', () => {
    for (const zero of ['0', '0ms', '0s', '0m', '0h', '0d', '0w', '0y', '0.0m', '00s', '0 s'])
      expect(parseDuration(zero), zero).toBe(0)
    for (const text of ['0x', '0sec!', '0.', 'zero', '', 's'])
      expect(parseDuration(text), text).toBeUndefined()
  })

  it('refuses upper-case units rather than guess: 30M is neither minutes nor months', () => {
    for (const text of ['30M', '12H', '1D', '0S', '100MS', '2 Hours'])
      expect(parseDuration(text), text).toBeUndefined()
  })
})

describe('toMs', () => {
  it('refuses zero and upper-case units, listing the units', () => {
    expect(toMs('0.5s', 'idleTimeout')).toBe(500)
    expect(() => toMs('0s', 'idleTimeout')).toThrow(
      `idleTimeout must be a positive number of milliseconds or a duration such as '30m'; got "0s"`,
    )
    expect(() => toMs('30M', 'idleTimeout')).toThrow(SessionConfigError)
    expect(() => toMs('30M', 'idleTimeout')).toThrow(
      `[tessera] idleTimeout must be a positive number of milliseconds or a duration such as '30m' (units ms, s, m, h, d, w, y, in lower case); got "30M"`,
    )
  })
})
