/** What every store's factory checks first. */
import { SessionConfigError } from '../core/errors.js'

/**
 * Throws a `SessionConfigError` unless a store's `options` are an object: JavaScript callers
 * can pass `null` or a string where the types ask for `{ ... }`, which would otherwise fail
 * with a `TypeError` on the first option read.
 */
export function checkStoreOptions(store: string, options: unknown): void {
  if (typeof options === 'object' && options !== null) return
  throw new SessionConfigError(
    `[store:${store}] the options are an object: ${store}Store({ ... }); got ${options === null ? 'null' : typeof options}`,
  )
}
