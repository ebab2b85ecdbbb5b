import { parse } from '@lukeed/ms'
import { SessionConfigError } from './errors.js'

/** Milliseconds, or a duration string such as `'30m'`, `'12h'`, `'400d'`. */
export type Duration = number | string

/** Turns a {@link Duration} into milliseconds; `what` names the option in the error. */
export function toMs(value: Duration, what: string): number {
  const ms = typeof value === 'number' ? value : parse(value)
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    throw new SessionConfigError(
      `${what} must be a positive number of milliseconds or a duration such as '30m'; got ${JSON.stringify(value)}`,
    )
  }
  return ms
}
