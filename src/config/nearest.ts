/**
 * Internal to `tessera/config`: the known key a mistyped one most likely meant, for "did you
 * mean" in its errors.
 * @module
 */

/** The Levenshtein distance of `a` and `b`. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j]! + 1,
        next[j - 1]! + 1,
        row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
    }
    row = next
  }
  return row[b.length]!
}

const plain = (s: string): string => s.toLowerCase().replace(/[-_.]/g, '')

/** The known name that is `name` but for case, `_` or `-` (`same_site` for `sameSite`). */
export const alike = (name: string, known: readonly string[]): string | undefined =>
  known.find((k) => plain(k) === plain(name))

/** The known name a mistyped `name` most likely meant, if one is close. */
export function nearest(name: string, known: readonly string[]): string | undefined {
  const exact = alike(name, known)
  if (exact !== undefined) return exact
  let best: string | undefined
  let bestDistance = Math.min(3, Math.floor(name.length / 3) + 1)
  for (const k of known) {
    const d = distance(name.toLowerCase(), k.toLowerCase())
    if (d < bestDistance) {
      best = k
      bestDistance = d
    }
  }
  return best
}
