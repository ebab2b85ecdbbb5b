/**
 * fast-check as the property tests use it: in CI (`CI=true`) with a fixed seed, so a run there
 * is the same every time; elsewhere each run tries new cases. A failure prints its seed and
 * shrunk case; `FC_SEED=<seed>` replays it, and `FC_RUNS=<n>` tries n cases a property instead
 * of each one's own number.
 *
 * ```ts
 * import { fc, runs } from './helpers/property.js'
 * await fc.assert(fc.asyncProperty(arbitrary, check), { numRuns: runs(60) })
 * ```
 */
import fc from 'fast-check'

/** Cases a property tries: `FC_RUNS` when set, else `n`. */
export const runs = (n: number): number =>
  process.env.FC_RUNS === undefined ? n : Number(process.env.FC_RUNS)

const seed = process.env.FC_SEED ?? (process.env.CI ? '20261203' : undefined)
// 200 cases where a property names no number of its own
fc.configureGlobal({ numRuns: runs(200), ...(seed === undefined ? {} : { seed: Number(seed) }) })

export { fc }

/**
 * Values for an option: of every kind (`fc.anything`), and the ones in `near`, which sit near
 * what the option takes (limits, names, the wrong unit), so checks meet both.
 */
export const optionValue = (...near: unknown[]): fc.Arbitrary<unknown> =>
  fc.oneof(fc.anything({ maxDepth: 1 }), fc.constantFrom(...near))
