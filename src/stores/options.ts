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

/**
 * The longest interval a Node timer keeps (2^31 - 1 ms, about 24.8 days): a longer one fires
 * after 1 ms instead, with only a warning. Every store's sweep or prune interval is checked
 * against it.
 */
export const MAX_TIMER_MS = 2_147_483_647
