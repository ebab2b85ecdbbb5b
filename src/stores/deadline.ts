/**
 * A deadline on a store's calls to its server, shared by the stores that talk to one over the
 * network (Redis, PostgreSQL, MySQL/MariaDB): a call with no answer in time fails, so a
 * request during an outage gets a `SessionStoreError` instead of waiting for the driver.
 * Internal: a store's `timeout` option.
 * @module
 */
import { SessionConfigError } from '../core/errors.js'

/** The default `timeout` of the network stores, in ms. */
export const DEFAULT_TIMEOUT = 5000

/** Wraps a call to the server: the same answer, or a failure once the deadline passes. */
export type Deadline = <T>(work: Promise<T>) => Promise<T>

/** No deadline: the call as it is. */
export const noDeadline: Deadline = (work) => work

interface Waiting {
  deadline: number
  fail: (err: Error) => void
}

/**
 * The deadline of `store`'s calls to `server`, from its `timeout` option: a whole number of ms
 * ({@link DEFAULT_TIMEOUT} when not given, else a `SessionConfigError`), `0` for
 * {@link noDeadline}. Calls wait in a `Set`, in the order they were made, which is the order of
 * their deadlines; one interval timer, running only while calls wait, fails the overdue ones,
 * so it fires up to a quarter of the timeout late. That costs a `Set` entry per call instead
 * of a timer per call. The call itself goes on: a late answer is dropped, and a write that
 * timed out may still be applied. Deadlines are on the monotonic clock (`performance.now()`),
 * so a change of the system clock neither fails calls early nor keeps them waiting.
 */
export function deadline(store: string, server: string, timeout: unknown): Deadline {
  const ms = timeout ?? DEFAULT_TIMEOUT
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > 2 ** 31 - 1)
    throw new SessionConfigError(
      `[store:${store}] \`timeout\` must be a whole number of milliseconds (0 for no deadline)`,
    )
  if (ms === 0) return noDeadline
  const waiting = new Set<Waiting>()
  const period = Math.max(1, Math.ceil(ms / 4))
  let timer: NodeJS.Timeout | undefined
  const sweep = () => {
    const now = performance.now()
    for (const w of waiting) {
      if (w.deadline > now) return
      waiting.delete(w)
      w.fail(
        new Error(`[store:${store}] no reply from ${server} within ${ms} ms (its \`timeout\`)`),
      )
    }
    clearInterval(timer)
    timer = undefined
  }
  return <T>(work: Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      const w: Waiting = { deadline: performance.now() + ms, fail: reject }
      waiting.add(w)
      if (timer === undefined) {
        timer = setInterval(sweep, period)
        timer.unref()
      }
      work.then(
        (value) => {
          waiting.delete(w)
          resolve(value)
        },
        (err: unknown) => {
          waiting.delete(w)
          reject(err)
        },
      )
    })
}
