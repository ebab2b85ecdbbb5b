import { parse } from '@lukeed/ms'
import { SessionConfigError } from './errors.js'
import { describeValue } from './options.js'

/** Milliseconds, or a duration string such as `'30m'`, `'12h'`, `'400d'`. */
export type Duration = number | string

/** Turns a {@link Duration} into milliseconds; `what` names the option in the error. */
export function toMs(value: Duration, what: string): number {
  const ms =
    typeof value === 'number' ? value : typeof value === 'string' ? parse(value) : undefined
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    throw new SessionConfigError(
      `${what} must be a positive number of milliseconds or a duration such as '30m'; got ${describeValue(value)}`,
    )
  }
  return ms
}
