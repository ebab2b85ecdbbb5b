/** What every store's factory checks first. */
import { checkKinds, checkObject, type OptionKind } from '../core/options.js'

/**
 * Throws a `SessionConfigError` unless a store's `options` are an object whose text, flag and
 * function options (`kinds`) are of their kind. Numbers are checked by each store, with their
 * ranges.
 */
export function checkStoreOptions(
  store: string,
  options: unknown,
  kinds: Readonly<Record<string, OptionKind>> = {},
): void {
  checkObject(options, `[store:${store}] the options are an object: ${store}Store({ ... })`)
  checkKinds(options, kinds, (name) => `[store:${store}] \`${name}\``)
}
