/**
 * Internal to `tessera/config`: `${VAR}` and `${VAR:-default}` in the file's values, replaced
 * from the environment.
 * @module
 */
import { fail } from './values.js'

const VARIABLE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s

/** A `${VAR}` whose variable is not set, in a value the environment replaces anyway. */
export const unset = Symbol('unset')

/**
 * `text` with every `${VAR}` replaced from `env` (`${VAR:-default}` when VAR is unset or
 * empty; `$${` for a literal `${`). Nothing of the text but variable names goes in a message.
 * With `replaced` (the environment overrides this key), an unset variable is no error: the
 * value is not used, and is {@link unset}.
 */
export function interpolate(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  label: string,
  replaced: boolean,
): { value: string | typeof unset; text: boolean } {
  if (!text.includes('${')) return { value: text, text: false }
  let out = ''
  let used = false
  let i = 0
  for (;;) {
    const at = text.indexOf('${', i)
    if (at === -1) break
    if (at > 0 && text[at - 1] === '$') {
      out += text.slice(i, at - 1) + '${'
      i = at + 2
      continue
    }
    const end = text.indexOf('}', at + 2)
    const match = end === -1 ? null : VARIABLE.exec(text.slice(at + 2, end))
    if (match === null)
      fail(
        label,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the message shows the syntax
        'holds a "${" that is not a variable: write ${NAME} or ${NAME:-default} (NAME of letters, digits and _), or $${ for a literal "${"',
      )
    const [, name, fallback] = match as unknown as [string, string, string | undefined]
    let value = env[name]
    if (value === undefined || (fallback !== undefined && value === '')) {
      if (fallback === undefined && replaced) return { value: unset, text: true }
      if (fallback === undefined)
        fail(
          label,
          `uses \${${name}}, which is not set in the environment; set ${name}, or give a default with \${${name}:-default}`,
        )
      value = fallback
    }
    out += text.slice(i, at) + value
    used = true
    i = end + 1
  }
  return { value: out + text.slice(i), text: used }
}
