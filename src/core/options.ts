/**
 * The checks of an option's kind that Tessera's parts share: JavaScript callers, or a config
 * built by hand, can pass `null`, a string or a number where the types ask for something else,
 * and each check makes that a `SessionConfigError` naming the option at startup instead of a
 * `TypeError` from deep inside, or one in the middle of a request. Internal.
 * @module
 */
import { SessionConfigError } from './errors.js'

/** What `typeof` an option's value must give, when the option is given at all. */
export type OptionKind = 'string' | 'boolean' | 'function' | 'object'

/** `typeof value`, with `null` as itself. */
const kindOf = (value: unknown): string => (value === null ? 'null' : typeof value)

/** A value as an error shows it: JSON where it has one, else its kind (`undefined`, a BigInt). */
export function describeValue(value: unknown): string {
  try {
    return JSON.stringify(value) ?? kindOf(value)
  } catch {
    return kindOf(value)
  }
}

/**
 * Throws unless `value` is undefined or one of `allowed`; `name` names the option
 * (`cookie.sameSite must be 'lax', 'strict' or 'none'; got "loose"`).
 */
export function checkOneOf(value: unknown, allowed: readonly unknown[], name: string): void {
  if (value === undefined || allowed.includes(value)) return
  const shown = allowed.map((v) => (typeof v === 'string' ? `'${v}'` : String(v)))
  throw new SessionConfigError(
    `${name} must be ${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}; got ${describeValue(value)}`,
  )
}

/** Throws unless `options` is an object; `what` starts the sentence that says so. */
export function checkObject(options: unknown, what: string): asserts options is object {
  if (typeof options !== 'object' || options === null)
    throw new SessionConfigError(`${what}; got ${kindOf(options)}`)
}

/**
 * Throws for an option of `options` given with another kind than `kinds` names for it
 * (`null` is no kind); `name` gives the option as the message names it (`cookie.path`).
 */
export function checkKinds(
  options: object,
  kinds: Readonly<Record<string, OptionKind>>,
  name: (option: string) => string,
): void {
  for (const option in kinds) {
    const value = (options as Record<string, unknown>)[option]
    if (value !== undefined && (value === null || typeof value !== kinds[option]))
      throw new SessionConfigError(
        `${name(option)} must be a ${kinds[option]}; got ${kindOf(value)}`,
      )
  }
}

/**
 * Throws unless `sessions` is a manager `createSessions()` made; `what` starts the sentence.
 * Told by its methods, not `instanceof`: two copies of Tessera in one app make two classes.
 */
export function checkManager(sessions: unknown, what: string): void {
  const m = sessions as { load?: unknown; commit?: unknown; cookie?: unknown } | null | undefined
  if (
    typeof m?.load !== 'function' ||
    typeof m.commit !== 'function' ||
    typeof m.cookie !== 'object'
  )
    throw new SessionConfigError(`${what}; got ${kindOf(sessions)}`)
}
