import { parse } from '@lukeed/ms'
import { SessionConfigError } from './errors.js'

/** Milliseconds, or a duration string such as `'30m'`, `'12h'`, `'400d'`. */
export type Duration = number | string

/** Turns a {@link Duration} into milliseconds; `what` names the option in the error. */
export function toMs(value: Duration, what: string): number {
  const ms =
    typeof value === 'number' ? value : typeof value === 'string' ? parse(value) : undefined
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    throw new SessionConfigError(
      `${what} must be a positive number of milliseconds or a duration such as '30m'; got ${describe(value)}`,
    )
  }
  return ms
}

/** A value as the error shows it: JSON where it has one, else its type (`undefined`, a BigInt). */
function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? typeof value
  } catch {
    return typeof value
  }
}
