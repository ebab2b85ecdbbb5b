import { describe, expect, it } from 'vitest'
import { jsonCodec, richCodec } from './codec.js'

class Money {
  constructor(
    public amount: number,
    public currency: string,
  ) {}
  label() {
    return `${this.amount} ${this.currency}`
  }
}

describe('jsonCodec', () => {
  it('round-trips plain data', () => {
    const value = { a: [1, 'two', null, true, { b: 1.5 }], c: '' }
    expect(jsonCodec.decode(jsonCodec.encode(value))).toEqual(value)
  })

  it.each([
    ['a Date', new Date(), /Date.*rich types/],
    ['a Map', new Map(), /Map/],
    ['a class instance', new Money(1, 'EUR'), /Money/],
    ['undefined', undefined, /delete\(\)/],
    ['a function', () => 1, /function/],
    ['a bigint', 1n, /bigint/],
    ['NaN', Number.NaN, /NaN/],
    ['Infinity nested', { a: [Number.POSITIVE_INFINITY] }, /value\.a\[0\] is Infinity/],
    [
      'undefined deep inside',
      { a: { b: [1, { c: undefined }] } },
      /^value\.a\.b\[1\]\.c is undefined \(use delete\(\)/,
    ],
    ['a Date in an array', [0, new Date()], /^value\[1\] is a Date, which JSON would not keep/],
  ])('refuses %s, saying why', (_what, value, message) => {
    expect(() => jsonCodec.encode(value)).toThrow(message)
  })

  it('refuses cycles', () => {
    const a: Record<string, unknown> = {}
    a.self = a
    expect(() => jsonCodec.encode(a)).toThrow(/circular/)
  })

  it('refuses prototype-polluting keys when decoding', () => {
    expect(() => jsonCodec.decode('{"__proto__":{"admin":true}}')).toThrow(/__proto__/)
    expect(() => jsonCodec.decode('{"a":{"constructor":{"prototype":{"x":1}}}}')).toThrow(
      /constructor/,
    )
    // JSON can spell a key with escapes; the check cannot be passed that way
    expect(() => jsonCodec.decode('{"\\u005f_proto__":{"admin":true}}')).toThrow(/__proto__/)
    expect(() => jsonCodec.decode('{"a":{"\\u0063onstructor":1}}')).toThrow(/constructor/)
    expect(jsonCodec.decode('{"a":"caf\\u00e9"}')).toEqual({ a: 'café' })
    expect(({} as Record<string, unknown>).admin).toBeUndefined()
  })
})

describe('richCodec', () => {
  const codec = richCodec({ classes: { Money } })

  it('round-trips Date, Map, Set, BigInt, URL, typed arrays and registered classes', () => {
    const value = {
      when: new Date('2026-01-02T03:04:05Z'),
      map: new Map<string, unknown>([['k', new Set([1, 2])]]),
      big: 12345678901234567890n,
      url: new URL('https://example.com/a?b=c'),
      bytes: new Uint8Array([1, 2, 3]),
      price: new Money(10, 'EUR'),
    }
    const back = codec.decode(codec.encode(value)) as typeof value
    expect(back).toEqual(value)
    expect(back.when).toBeInstanceOf(Date)
    expect(back.price).toBeInstanceOf(Money)
    expect(back.price.label()).toBe('10 EUR')
  })

  it('takes custom types with their own encoding', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const c = richCodec({
      types: {
        Point: {
          test: (v): v is Point => v instanceof Point,
          encode: (p: Point) => [p.x, p.y],
          decode: ([x, y]: [number, number]) => new Point(x, y),
        },
      },
    })
    const back = c.decode(c.encode({ p: new Point(1, 2) })) as { p: Point }
    expect(back.p).toBeInstanceOf(Point)
    expect(back.p.y).toBe(2)
  })

  it('refuses an unregistered class, saying how to register it', () => {
    class Unknown {
      x = 1
    }
    expect(() => codec.encode(new Unknown())).toThrow(/register its class/)
  })

  it('refuses prototype-polluting keys when encoding, so that no value is kept that no get() could read', () => {
    expect(() => codec.encode({ a: { constructor: 'Acme Ltd' } })).toThrow(/constructor/)
    expect(() => codec.encode(new Map([['k', { prototype: 1 }]]))).toThrow(/prototype/)
    // a word inside a value is no key
    expect(codec.decode(codec.encode({ note: 'the constructor of __proto__' }))).toEqual({
      note: 'the constructor of __proto__',
    })
  })

  it('refuses prototype-polluting keys when decoding, also spelled with JSON escapes', () => {
    expect(() => codec.decode('[{"a":1},{"constructor":2},1]')).toThrow(/constructor/)
    expect(() => codec.decode('[{"a":1},{"\\u0063onstructor":2},1]')).toThrow(/constructor/)
    expect(() => codec.decode('[{"\\u005f_proto__":1},{"admin":2},true]')).toThrow()
  })
})
