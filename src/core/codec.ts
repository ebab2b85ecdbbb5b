import { parse as devalueParse, stringify as devalueStringify } from 'devalue'
import { SessionConfigError } from './errors.js'

/**
 * Turns one top-level session value into text and back. Stores keep the text as it is and
 * merge fields without decoding them. `encode` throws (a plain `Error` whose message says
 * why) for a value it cannot keep; the session wraps that into a `SessionSerializeError`
 * naming the key.
 */
export interface Codec {
  readonly name: string
  encode(value: unknown): string
  decode(text: string): unknown
}

/** A class the rich codec rebuilds with its prototype (the counterpart of Go's `gob.Register`). */
export interface RegisteredType<T = unknown> {
  /** Is this value one of mine? */
  test(value: unknown): value is T
  /** Plain data to store (itself encoded by the codec, so it may hold Dates, Maps, ...). */
  encode(value: T): unknown
  /** Rebuild the value from what `encode` returned. */
  decode(data: never): T
}

/** Options of {@link richCodec}. */
export interface RichCodecOptions {
  /**
   * Classes rebuilt from their own enumerable fields, by name:
   * `{ Money }` stores a `Money` as its fields and revives it with `Money.prototype`.
   * Its constructor is not called. Only instances of the class itself: a subclass is registered
   * on its own. A class that extends a built-in type (`Map`, `Date`, `URL`, ...) keeps no
   * fields to rebuild it from and goes in `types`; a name is given once, and none is a
   * built-in type's (`Date`, `Map`, `URL`, ...).
   */
  classes?: Record<string, abstract new (...args: never[]) => unknown>
  /** Types with their own encoding, by name. */
  types?: Record<string, RegisteredType>
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

type AnyClass = abstract new (...args: never[]) => unknown

/** The typed arrays the rich codec keeps (`Float16Array` where the runtime has it). */
const TYPED_ARRAYS: readonly AnyClass[] = (
  [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
  ] as AnyClass[]
).concat((globalThis as { Float16Array?: AnyClass }).Float16Array ?? [])
/** The class every typed array extends. */
const TypedArray = Object.getPrototypeOf(Int8Array) as AnyClass

/** The tags devalue writes for the types it keeps itself (and `Temporal.*`). */
const BUILT_IN_NAMES = new Set([
  'Date',
  'Set',
  'Map',
  'RegExp',
  'Object',
  'BigInt',
  'null',
  'ArrayBuffer',
  'DataView',
  'URL',
  'URLSearchParams',
  'Float16Array',
  ...TYPED_ARRAYS.map((type) => type.name),
])

/** The built-in types the rich codec keeps, whose subclasses it would turn into them. */
const BUILT_INS: readonly AnyClass[] = [
  Array,
  Date,
  Map,
  Set,
  RegExp,
  URL,
  URLSearchParams,
  ArrayBuffer,
  DataView,
  TypedArray,
]
const BUILT_IN_PROTOTYPES = new Set<unknown>([
  Object.prototype,
  null,
  ...[...BUILT_INS, ...TYPED_ARRAYS].map((type) => type.prototype),
])
/** The reducer of {@link refuseBuiltInSubclass}; it never reduces, so its name is never written. */
const SUBCLASS_CHECK = ' built-in subclass'

/**
 * A reducer that throws for an instance of a subclass of a built-in type the codec keeps
 * (`class Link extends URL`), which devalue would write as the base type: it would come back
 * without its class. Anything else it leaves to the next reducer.
 */
function refuseBuiltInSubclass(value: unknown): false {
  if (typeof value !== 'object' || value === null) return false
  const proto: unknown = Object.getPrototypeOf(value)
  if (BUILT_IN_PROTOTYPES.has(proto)) return false
  const base = BUILT_INS.find((type) => value instanceof type)
  if (base === undefined) return false
  const kind = (proto as { constructor?: { name?: string } }).constructor?.name || 'object'
  const baseName = base === TypedArray ? 'typed array' : base.name
  throw new Error(
    `a ${kind} is a subclass of ${baseName}, which would come back as a plain ${baseName}; give it an encoding of its own with richCodec({ types })`,
  )
}

/**
 * Throws if any object inside `value` has an own `__proto__`, `constructor` or `prototype` key.
 * Each object is visited once, so a circular value, or one that holds the same object many
 * times (which the rich codec keeps), costs its number of objects, not its number of paths.
 */
function rejectDangerousKeys(value: unknown): void {
  if (typeof value !== 'object' || value === null) return
  const seen = new Set<object>([value])
  const pending: object[] = [value]
  const visit = (item: unknown) => {
    if (typeof item === 'object' && item !== null && !seen.has(item)) {
      seen.add(item)
      pending.push(item)
    }
  }
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (Array.isArray(next)) {
      for (const item of next) visit(item)
    } else if (next instanceof Map) {
      for (const [k, v] of next) {
        visit(k)
        visit(v)
      }
    } else if (next instanceof Set) {
      for (const v of next) visit(v)
    } else if (!ArrayBuffer.isView(next)) {
      for (const key of Object.keys(next)) {
        if (FORBIDDEN_KEYS.has(key)) throw new Error(`object key "${key}" is not allowed`)
        visit((next as Record<string, unknown>)[key])
      }
    }
  }
}

/**
 * Whether `text` may spell a dangerous key, so that its value must be walked: the names
 * themselves, or a `\u` escape, with which JSON can spell any of them (`"\u005f_proto__"`).
 */
const mayHoldDangerousKey = (text: string) =>
  text.includes('__proto__') ||
  text.includes('constructor') ||
  text.includes('prototype') ||
  text.includes('\\u')

/**
 * What {@link assertJsonSafe} found: why, and where, as the path's pieces from the value that
 * is wrong up to the top (`[0]`, `.a`). The path is built only on the way out of a failure:
 * made on the way in, it cost a string per array element and object key of every value
 * encoded.
 */
class Unsafe extends Error {
  readonly pieces: string[] = []
}

/** `error`, with `piece` added to its path when it is an {@link Unsafe}. */
function inside(error: unknown, piece: string): unknown {
  if (error instanceof Unsafe) error.pieces.push(piece)
  return error
}

/**
 * Checks that JSON.stringify would keep `value` exactly; throws an {@link Unsafe} whose message
 * is the rest of a sentence that starts with the value's path ("is NaN, which ...").
 */
function assertJsonSafe(value: unknown, seen: Set<object> | undefined, depth: number): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return
    case 'number':
      if (!Number.isFinite(value)) throw new Unsafe(`is ${value}, which JSON cannot hold`)
      return
    case 'object': {
      if (value === null) return
      if (depth > 64) throw new Unsafe('is nested more than 64 levels deep')
      // made at the first object: a value that is a number or a string needs none
      seen ??= new Set()
      if (seen.has(value)) throw new Unsafe('is a circular reference')
      seen.add(value)
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          try {
            assertJsonSafe(value[i], seen, depth + 1)
          } catch (error) {
            throw inside(error, `[${i}]`)
          }
        }
      } else {
        const proto = Object.getPrototypeOf(value)
        if (proto !== Object.prototype && proto !== null) {
          const kind = (proto?.constructor?.name as string | undefined) ?? 'object'
          throw new Unsafe(
            `is a ${kind}, which JSON would not keep; use plain data, or turn on rich types (codec: 'rich') and register the class`,
          )
        }
        for (const key of Object.keys(value)) {
          if (FORBIDDEN_KEYS.has(key)) throw new Error(`object key "${key}" is not allowed`)
          try {
            assertJsonSafe((value as Record<string, unknown>)[key], seen, depth + 1)
          } catch (error) {
            throw inside(error, `.${key}`)
          }
        }
      }
      seen.delete(value)
      return
    }
    default:
      throw new Unsafe(
        `is ${value === undefined ? 'undefined (use delete() to remove a key)' : `a ${typeof value}`}, which JSON cannot hold`,
      )
  }
}

/** Plain JSON: strings, finite numbers, booleans, null, arrays and plain objects. The default. */
export const jsonCodec: Codec = {
  name: 'json',
  encode(value) {
    try {
      assertJsonSafe(value, undefined, 0)
    } catch (error) {
      if (!(error instanceof Unsafe)) throw error
      throw new Error(`value${error.pieces.reverse().join('')} ${error.message}`)
    }
    return JSON.stringify(value)
  },
  decode(text) {
    const value: unknown = JSON.parse(text)
    if (mayHoldDangerousKey(text)) rejectDangerousKeys(value)
    return value
  },
}

/**
 * JSON plus Date, Map, Set, BigInt, URL, URLSearchParams, RegExp, typed arrays, repeated and
 * circular references, and the classes and types the app registers. Built on `devalue`.
 *
 * @example
 * ```ts
 * class Money { constructor(public amount: number, public currency: string) {} }
 * createSessions({ secret, codec: richCodec({ classes: { Money } }) })
 * ```
 */
export function richCodec(options: RichCodecOptions = {}): Codec {
  const reducers: Record<string, (value: unknown) => unknown> = {}
  const revivers: Record<string, (value: unknown) => unknown> = {}
  const name = (key: string, kind: string) => {
    if (BUILT_IN_NAMES.has(key) || key.startsWith('Temporal.'))
      throw new SessionConfigError(
        `richCodec ${kind} "${key}" is the name of a built-in type the codec keeps itself; register it under another name`,
      )
    if (Object.hasOwn(reducers, key))
      throw new SessionConfigError(
        `richCodec name "${key}" is given both in classes and in types; keep one, or rename one`,
      )
    return key
  }
  for (const [key, type] of Object.entries(options.types ?? {})) {
    reducers[name(key, 'type')] = (value) => type.test(value) && [type.encode(value)]
    revivers[key] = (value) => type.decode((value as unknown[])[0] as never)
  }
  for (const [key, cls] of Object.entries(options.classes ?? {})) {
    const proto: unknown = cls.prototype
    const base = BUILT_INS.find((type) => proto instanceof type)
    if (base !== undefined)
      throw new SessionConfigError(
        `richCodec class "${key}" extends ${base.name}, whose contents are not fields it could be rebuilt from; register it in types, with an encode and a decode of its own`,
      )
    // its own instances only: an instance of a subclass revived with this prototype would
    // lose its class (the subclass is registered itself, or refused as any unknown class)
    reducers[name(key, 'class')] = (value) =>
      typeof value === 'object' &&
      value !== null &&
      Object.getPrototypeOf(value) === proto && { ...(value as object) }
    revivers[key] = (fields) => Object.assign(Object.create(cls.prototype), fields)
  }
  // last, after the app's own: a subclass of a built-in type would come back as the base type
  reducers[SUBCLASS_CHECK] = refuseBuiltInSubclass
  return {
    name: 'rich',
    encode(value) {
      if (value === undefined) throw new Error('value is undefined (use delete() to remove a key)')
      let text: string
      try {
        text = devalueStringify(value, reducers)
      } catch (err) {
        // a reducer's own error (a type's encode, a built-in's subclass) says what to do
        if ((err as Error).name !== 'DevalueError') throw err
        const path = (err as { path?: string }).path
        throw new Error(
          `${(err as Error).message}${path ? ` at value${path}` : ''}; register its class with richCodec({ classes })`,
        )
      }
      // refused here, as decode would refuse it: a value no later get() could read
      if (mayHoldDangerousKey(text)) rejectDangerousKeys(value)
      return text
    },
    decode(text) {
      const value: unknown = devalueParse(text, revivers)
      if (mayHoldDangerousKey(text)) rejectDangerousKeys(value)
      return value
    },
  }
}
