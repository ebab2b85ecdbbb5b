import { parse as devalueParse, stringify as devalueStringify } from 'devalue'

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
   * Its constructor is not called.
   */
  classes?: Record<string, abstract new (...args: never[]) => unknown>
  /** Types with their own encoding, by name. */
  types?: Record<string, RegisteredType>
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** Throws if any object inside `value` has an own `__proto__`, `constructor` or `prototype` key. */
function rejectDangerousKeys(value: unknown, depth = 0): void {
  if (typeof value !== 'object' || value === null) return
  if (depth > 64) throw new Error('value is nested more than 64 levels deep')
  if (Array.isArray(value)) {
    for (const item of value) rejectDangerousKeys(item, depth + 1)
    return
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      rejectDangerousKeys(k, depth + 1)
      rejectDangerousKeys(v, depth + 1)
    }
    return
  }
  if (value instanceof Set) {
    for (const v of value) rejectDangerousKeys(v, depth + 1)
    return
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) throw new Error(`object key "${key}" is not allowed`)
    rejectDangerousKeys((value as Record<string, unknown>)[key], depth + 1)
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
  for (const [name, type] of Object.entries(options.types ?? {})) {
    reducers[name] = (value) => type.test(value) && [type.encode(value)]
    revivers[name] = (value) => type.decode((value as unknown[])[0] as never)
  }
  for (const [name, cls] of Object.entries(options.classes ?? {})) {
    reducers[name] = (value) => value instanceof cls && { ...(value as object) }
    revivers[name] = (fields) => Object.assign(Object.create(cls.prototype), fields)
  }
  return {
    name: 'rich',
    encode(value) {
      if (value === undefined) throw new Error('value is undefined (use delete() to remove a key)')
      let text: string
      try {
        text = devalueStringify(value, reducers)
      } catch (err) {
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
