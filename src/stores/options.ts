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

/**
 * Throws a `SessionConfigError` for an option given with the wrong kind of value: each of
 * `kinds` names an option and what `typeof` its value must give when it is given at all.
 * Numbers are checked by each store, with their ranges.
 */
export function checkOptionKinds(
  store: string,
  options: object,
  kinds: Readonly<Record<string, 'string' | 'boolean' | 'function'>>,
): void {
  for (const name in kinds) {
    const value = (options as Record<string, unknown>)[name]
    if (value !== undefined && typeof value !== kinds[name]) {
      throw new SessionConfigError(
        `[store:${store}] \`${name}\` must be a ${kinds[name]}; got ${value === null ? 'null' : typeof value}`,
      )
    }
  }
}
