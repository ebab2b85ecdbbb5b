/**
 * What every adapter checks of its arguments when the app is built, so a mistake fails at
 * startup with a sentence instead of a `TypeError` in the first request (an `onError` that is
 * not a function would fail inside a request's error path, as an unhandled rejection).
 * @module
 */
import { SessionConfigError } from '../core/errors.js'

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
  // by its methods, not instanceof: two copies of Tessera in one app make two classes
  const m = sessions as { load?: unknown; commit?: unknown } | null | undefined
  if (typeof m?.load !== 'function' || typeof m.commit !== 'function') {
    throw new SessionConfigError(
      `[${adapter}] give the sessions createSessions() made; got ${sessions === null ? 'null' : typeof sessions}`,
    )
  }
  if (typeof options !== 'object' || options === null) {
    throw new SessionConfigError(`[${adapter}] the options are an object`)
  }
  const { onError, trustProxy } = options as { onError?: unknown; trustProxy?: unknown }
  if (onError !== undefined && typeof onError !== 'function') {
    throw new SessionConfigError(`[${adapter}] onError must be a function`)
  }
  if (trustProxy !== undefined && typeof trustProxy !== 'boolean') {
    throw new SessionConfigError(`[${adapter}] trustProxy must be true or false`)
  }
  if (nameOption !== undefined) {
    const name = (options as Record<string, unknown>)[nameOption]
    if (name !== undefined && (typeof name !== 'string' || name === '')) {
      throw new SessionConfigError(`[${adapter}] ${nameOption} must be a non-empty string`)
    }
  }
}
