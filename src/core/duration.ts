import { parse } from '@lukeed/ms'
import { SessionConfigError } from './errors.js'
import { describeValue } from './options.js'

/** Milliseconds, or a duration string such as `'30m'`, `'12h'`, `'400d'`. */
export type Duration = number | string

/** The units a duration string may end in, lower case: `'30m'` is minutes, `'30M'` no unit. */
export const DURATION_UNITS = ['ms', 's', 'm', 'h', 'd', 'w', 'y'] as const

/**
 * The milliseconds of a duration string (`'30m'`, `'1.5h'`, `'0s'`, `'500'`), or undefined
 * when it is not one. Units are lower case: `'30M'` is not read as 30 minutes.
 *
 * @example
 * ```ts
 * parseDuration('90s') // 90_000
 * parseDuration('0m') // 0
 * parseDuration('30M') // undefined
 * ```
 */
export function parseDuration(text: string): number | undefined {
  // @lukeed/ms lower-cases what it reads
  if (/[A-Z]/.test(text)) return undefined
  const ms = parse(text)
  if (ms !== undefined) return ms
  // and gives nothing for zero: 0 with a unit it knows is 0
  const zero = /^-?(?:0+(?:\.0+)?|\.0+)( *[a-z]*)$/.exec(text)
  return zero !== null && parse(`1${zero[1]}`) !== undefined ? 0 : undefined
}

/** What to add to a message about `value`: the units, when it used an upper-case one. */
export function unitsHint(value: unknown): string {
  return typeof value === 'string' && /[A-Z]/.test(value)
    ? ` (units ${DURATION_UNITS.join(', ')}, in lower case)`
    : ''
}

/** Turns a {@link Duration} into milliseconds; `what` names the option in the error. */
export function toMs(value: Duration, what: string): number {
  const ms =
    typeof value === 'number' ? value : typeof value === 'string' ? parseDuration(value) : undefined
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    throw new SessionConfigError(
      `${what} must be a positive number of milliseconds or a duration such as '30m'${unitsHint(value)}; got ${describeValue(value)}`,
    )
  }
  return ms
}
