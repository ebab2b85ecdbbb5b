import { describe, expect, it } from 'vitest'
import { jsonCodec, richCodec } from './codec.js'
import { SessionConfigError } from './errors.js'

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

describe('richCodec: edge values', () => {
  const codec = richCodec()

  it('keeps a circular value whose text holds a "<" or a word like constructor', () => {
    // devalue writes "<" as \u003C, which makes decode (and encode) walk the value for keys
    const value: Record<string, unknown> = { note: '<b>the constructor</b>' }
    value.self = value
    const back = codec.decode(codec.encode(value)) as typeof value
    expect(back.self).toBe(back)
    expect(back.note).toBe('<b>the constructor</b>')
  })

  it('walks a value of many repeated references once per object, not once per path', () => {
    // 25 levels of [x, x]: 2^25 paths through 26 objects, in a text of 200 bytes (hostile
    // text of this shape, a few levels more, would hold a load for hours)
    let value: unknown = { note: '<' }
    for (let i = 0; i < 25; i++) value = [value, value]
    const started = performance.now()
    const back = codec.decode(codec.encode(value)) as unknown[]
    expect(performance.now() - started).toBeLessThan(500)
    expect(back[0]).toBe(back[1])
  })

  it('keeps -0, negative and huge BigInts, and invalid Dates', () => {
    const value = [-0, -5n, -(2n ** 200n), new Date(Number.NaN)]
    const back = codec.decode(codec.encode(value)) as typeof value
    expect(Object.is(back[0], -0)).toBe(true)
    expect(back[1]).toBe(-5n)
    expect(back[2]).toBe(-(2n ** 200n))
    expect(Number.isNaN((back[3] as Date).getTime())).toBe(true)
  })

  it('keeps a plain object or array that looks like a tagged value as plain data', () => {
    const value = { $t: 'Date', v: 1, list: ['Date', '2026-01-01'], map: ['Map', 1, 2] }
    expect(codec.decode(codec.encode(value))).toEqual(value)
  })

  it('revives a registered subclass as itself, not as the base class registered before it', () => {
    class Animal {
      name = 'rex'
    }
    class Dog extends Animal {
      bark() {
        return 'woof'
      }
    }
    const c = richCodec({ classes: { Animal, Dog } })
    const back = c.decode(c.encode({ pet: new Dog(), other: new Animal() })) as {
      pet: Dog
      other: Animal
    }
    expect(back.pet).toBeInstanceOf(Dog)
    expect(back.pet.bark()).toBe('woof')
    expect(back.other).toBeInstanceOf(Animal)
    expect(back.other).not.toBeInstanceOf(Dog)
  })

  it('refuses an unregistered subclass of a registered class, as any unregistered class', () => {
    class Animal {
      name = 'rex'
    }
    class Cat extends Animal {}
    const c = richCodec({ classes: { Animal } })
    expect(() => c.encode(new Cat())).toThrow(/register/)
  })

  it('refuses a subclass of URL, Map, Date or Array that would come back as its base class', () => {
    class Link extends URL {}
    class Registry extends Map<string, number> {}
    class Day extends Date {}
    class List extends Array<number> {}
    for (const value of [
      new Link('https://example.com/'),
      new Registry([['a', 1]]),
      new Day(0),
      List.from([1]),
    ]) {
      expect(() => codec.encode({ nested: [value] }), value.constructor.name).toThrow(
        new RegExp(`${value.constructor.name}.*richCodec\\(\\{ types \\}\\)`),
      )
    }
    // the base classes themselves, and a registered subclass, are kept
    class Link2 extends URL {}
    const c = richCodec({
      types: {
        Link2: {
          test: (v): v is Link2 => v instanceof Link2,
          encode: (v: Link2) => v.href,
          decode: (href: string) => new Link2(href),
        },
      },
    })
    expect(c.decode(c.encode(new Link2('https://example.com/')))).toBeInstanceOf(Link2)
    expect(codec.decode(codec.encode(new URL('https://example.com/')))).toBeInstanceOf(URL)
  })

  it('refuses a name given twice, or one of the built-in types, when the codec is made', () => {
    class Point {
      x = 1
    }
    const type = {
      test: (v: unknown): v is Point => v instanceof Point,
      encode: (p: Point) => p.x,
      decode: () => new Point(),
    }
    expect(() => richCodec({ classes: { Point }, types: { Point: type } })).toThrow(/Point.*both/)
    expect(() => richCodec({ classes: { Date: Point } })).toThrow(/"Date".*built-in/)
    expect(() => richCodec({ types: { Map: type } })).toThrow(/"Map".*built-in/)
    // a Map's entries are no fields: it would come back as an empty object with Map's methods
    class Registry extends Map<string, number> {}
    expect(() => richCodec({ classes: { Registry } })).toThrow(/Registry.*extends Map.*types/)
    expect(() => richCodec({ classes: { Date: Point } })).toThrow(SessionConfigError)
  })
})
