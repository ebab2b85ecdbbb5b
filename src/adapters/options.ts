/**
 * What every adapter checks of its arguments when the app is built, so a mistake fails at
 * startup with a sentence instead of a `TypeError` in the first request (an `onError` that is
 * not a function would fail inside a request's error path, as an unhandled rejection).
 * @module
 */
import { SessionConfigError } from '../core/errors.js'
import { checkKinds, checkManager, checkObject } from '../core/options.js'

/** The option naming the request property or context variable the session goes in. */
type NameOption = 'property' | 'name'

/**
 * Throws a `SessionConfigError` unless `sessions` is a manager from `createSessions()` and
 * `options` is an object whose `onError` is a function, `trustProxy` a boolean and `nameOption`
 * (when given) a non-empty string.
 */
export function checkAdapter(
  adapter: string,
  sessions: unknown,
  options: unknown,
  nameOption?: NameOption,
): void {
  checkManager(sessions, `[${adapter}] give the sessions createSessions() made`)
  checkObject(options, `[${adapter}] the options are an object`)
  checkKinds(
    options,
    { onError: 'function', trustProxy: 'boolean' },
    (name) => `[${adapter}] ${name}`,
  )
  if (nameOption !== undefined) {
    const name = (options as Record<string, unknown>)[nameOption]
    if (name !== undefined && (typeof name !== 'string' || name === '')) {
      throw new SessionConfigError(`[${adapter}] ${nameOption} must be a non-empty string`)
    }
  }
}
