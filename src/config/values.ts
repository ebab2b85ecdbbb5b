/**
 * Internal to `tessera/config`: the checks of each kind of config value, made the same way
 * for a value from the file and from the environment, each failing with a
 * `SessionConfigError` that names where the value came from and what to change.
 * @module
 */
import { type CookieOptions, resolveCookie } from '../core/cookies.js'
import { parseDuration, unitsHint } from '../core/duration.js'
import { SessionConfigError, SessionError } from '../core/errors.js'
import { MIN_SECRET_BYTES } from '../core/keyring.js'
import { maskUrl } from '../stores/from-url.js'

/** A value to check, and how to name it in an error. */
export interface Input {
  readonly value: unknown
  /**
   * The value is text from the environment (a `TESSERA_*` variable, or a file value that used
   * `${VAR}`): `'true'` is then a boolean and `'1800000'` a number.
   */
  readonly text: boolean
  /** `tessera.yaml: cookie.sameSite`, or `environment variable TESSERA_COOKIE_SAME_SITE`. */
  readonly label: string
}

export type Parse = (input: Input) => unknown

export function fail(label: string, problem: string): never {
  throw new SessionConfigError(`[config] ${label} ${problem}`)
}

/** A value as an error shows it: strings quoted, lists and mappings by their kind. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'object' && value !== null) return kindOf(value)
  return String(value)
}

/** What a value is, without the value: for secrets. */
export function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  if (value instanceof Uint8Array) return 'binary data'
  // what YAML's !!omap and !!set give
  if (value instanceof Map) return 'an ordered map (!!omap)'
  if (value instanceof Set) return 'a set (!!set)'
  if (value === null) return 'null'
  if (typeof value === 'object') return 'a mapping'
  return `a ${typeof value}`
}

export const oneOf =
  <T extends string>(values: readonly T[]): Parse =>
  ({ value, label }) => {
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value))
      fail(label, `must be one of ${values.join(', ')}; got ${shown(value)}`)
    return value
  }

const TRUE = ['true', '1']
const FALSE = ['false', '0']

function asBoolean({ value, text }: Input): boolean | undefined {
  if (typeof value === 'boolean') return value
  if (text && typeof value === 'string') {
    const v = value.toLowerCase()
    if (TRUE.includes(v)) return true
    if (FALSE.includes(v)) return false
  }
  return undefined
}

export const boolean: Parse = (input) => {
  const b = asBoolean(input)
  if (b === undefined)
    fail(
      input.label,
      `must be true or false${input.text ? ' (or 1 or 0)' : ''}; got ${shown(input.value)}`,
    )
  return b
}

export const secureFlag: Parse = (input) => {
  if (input.value === 'auto') return 'auto'
  const b = asBoolean(input)
  if (b === undefined) fail(input.label, `must be true, false or auto; got ${shown(input.value)}`)
  return b
}

export const duration =
  (zero: boolean): Parse =>
  ({ value, label }) => {
    let ms: number | undefined
    if (typeof value === 'number') ms = value
    else if (typeof value === 'string')
      ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) : parseDuration(value)
    if (ms === 0 && zero) return 0
    if (ms === undefined || !Number.isFinite(ms) || ms <= 0)
      fail(
        label,
        `must be a ${zero ? 'number of milliseconds (0 or more)' : 'positive number of milliseconds'} or a duration such as '30m', '12h', '90s'${unitsHint(value)}; got ${shown(value)}`,
      )
    return ms
  }

/** A string that `resolveCookie` checks on its own (name, path, domain). */
export const cookieString =
  (name: 'name' | 'path' | 'domain'): Parse =>
  ({ value, label }) => {
    if (typeof value !== 'string' || value === '') fail(label, `must be text; got ${shown(value)}`)
    try {
      resolveCookie({ [name]: value } as CookieOptions)
    } catch (err) {
      if (!(err instanceof SessionError)) throw err
      fail(label, `is not valid: ${withoutPrefix(err)}`)
    }
    return value
  }

export const storeUrl: Parse = ({ value, label }) => {
  if (typeof value !== 'string' || value.trim() === '')
    fail(
      label,
      `must be a store URL such as memory: or redis://127.0.0.1:6379; got ${shown(value)}`,
    )
  if (!/^[a-z][a-z0-9+.-]*:/i.test(value))
    fail(
      label,
      `must be a store URL starting with its scheme (memory:, file:, sqlite:, redis://, postgres://, ...); got ${JSON.stringify(maskUrl(value))}`,
    )
  return value
}

/** One secret's check, as the keyring makes it, without its value. */
function checkSecret(secret: unknown, label: string): string {
  if (typeof secret !== 'string') fail(label, `must be text; got ${kindOf(secret)}`)
  const bytes = Buffer.byteLength(secret)
  if (bytes < MIN_SECRET_BYTES)
    fail(
      label,
      `is ${bytes} bytes; at least ${MIN_SECRET_BYTES} random bytes are needed: make one with \`npx tessera keygen\``,
    )
  return secret
}

export const secret: Parse = ({ value, label }) => [checkSecret(value, label)]

/** A list of secrets, or one text of comma-separated secrets (newest first). */
export const secrets: Parse = ({ value, label }) => {
  if (typeof value === 'string') {
    const list = value.split(',').map((s) => s.trim())
    return list.map((s, i) => checkSecret(s, list.length === 1 ? label : `${label} (#${i + 1})`))
  }
  if (!Array.isArray(value))
    fail(
      label,
      `must be a list of secrets, newest first, or comma-separated text; got ${kindOf(value)}`,
    )
  if (value.length === 0)
    fail(label, 'is empty; give at least one secret (`npx tessera keygen` makes one)')
  return value.map((s: unknown, i) => checkSecret(s, `${label}[${i}]`))
}

/** A problem's message without the `[tessera] ` every SessionError starts with. */
export function withoutPrefix(err: Error): string {
  return err.message.replace(/^\[tessera\] /, '')
}
