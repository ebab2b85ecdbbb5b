/**
 * Requests of one browser's session that overlap in any order, against a model, on every
 * server store: generated schedules of loads, changes (`set`, `delete`, `clear`,
 * `regenerate`, `destroy`) and commits of a few requests, after which the session the
 * browser's cookie leads to must hold what the design says (section 4: each commit applies
 * only its own changes; for one key the later commit wins; `clear` removes what was there when
 * it commits).
 *
 * The model is the session's own rule for what counts as a change: setting a key to the value
 * it already has in this request, or deleting a key it does not have, changes nothing, so a
 * commit does not overwrite what another request wrote there meanwhile. A regenerated session
 * (a login) moves to a new id carrying what other requests committed to it meanwhile, with its
 * own changes on top (after a `clear`, its own data only). A request whose session moved or
 * ended meanwhile writes nothing and leaves the browser's cookie alone.
 *
 * A request takes the browser's cookie when it is sent, which may be well before the server
 * loads it: a request sent before a login's answer, and loaded after the login moved the
 * session, finds the session moved. It gets an empty session that writes nothing and sends no
 * cookie, so the login's cookie stays (test/signed-out-after-login.test.ts), unless it logs
 * in itself (`regenerate`, `setUser`): then it is a new session of its own.
 */
import { describe, expect, it } from 'vitest'
import { createSessions } from '../src/index.js'
import { applyToJar, headerOf } from './helpers/cookie-jar.js'
import { everyStore } from './helpers/every-store.js'
import { SECRET } from './helpers/http.js'
import { fc, runs } from './helpers/property.js'

const STORES = await everyStore('interleaved')

type Change =
  | { op: 'set'; key: string; value: number }
  | { op: 'delete'; key: string }
  | { op: 'clear' }
  | { op: 'regenerate' }
  | { op: 'destroy' }
  | { op: 'setUser'; user: string | undefined }
/**
 * One step of a schedule: request `r` is sent (takes the browser's cookie), is loaded, changes
 * its session, or commits.
 */
type Step =
  | { r: number; what: 'send' | 'load' | 'commit' }
  | { r: number; what: 'change'; change: Change }

const KEYS = ['a', 'b', 'c']
const change: fc.Arbitrary<Change> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('set' as const),
      key: fc.constantFrom(...KEYS),
      value: fc.integer({ min: 0, max: 2 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'regenerate' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'destroy' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('setUser' as const),
      user: fc.constantFrom('u1', 'u2', undefined),
    }),
  },
)

/**
 * A schedule of 1 to 3 requests: each is sent, loads, makes 0 to 4 changes and commits, in
 * that order, and the requests' steps interleave in any way.
 */
const schedule: fc.Arbitrary<Step[]> = fc
  .array(fc.array(change, { maxLength: 4 }), { minLength: 1, maxLength: 3 })
  .chain((requests) => {
    const lanes = requests.map((changes, r): Step[] => [
      { r, what: 'send' },
      { r, what: 'load' },
      ...changes.map((c): Step => ({ r, what: 'change', change: c })),
      { r, what: 'commit' },
    ])
    const total = lanes.reduce((n, lane) => n + lane.length, 0)
    // which request takes each next step: a shuffle of the lanes' steps, order kept per lane
    return fc
      .array(fc.nat({ max: requests.length - 1 }), { minLength: total * 2, maxLength: total * 2 })
      .map((picks) => {
        const next = lanes.map(() => 0)
        const steps: Step[] = []
        for (const pick of picks) {
          for (let k = 0; k < lanes.length; k++) {
            const r = (pick + k) % lanes.length
            if (next[r]! < lanes[r]!.length) {
              steps.push(lanes[r]![next[r]!++]!)
              break
            }
          }
        }
        return steps
      })
  })

/** The model of the store: records by generation (a new id is a new generation). */
interface World {
  records: Map<number, Map<string, number>>
  /** Each record's user binding. */
  users: Map<number, string | undefined>
  /** The generation the browser's cookie names, if it has one. */
  jar: number | undefined
  next: number
  /** Generations that moved to a new id (a regenerate that stored its session). */
  moved: Set<number>
}

/** A request's view of the session and what its commit will send. */
interface Pending {
  /** The generation it loaded, or undefined for a new session. */
  base: number | undefined
  /** Whether its request carried a cookie (a new session then clears it if left empty). */
  hadCookie: boolean
  fields: Map<string, number>
  changed: Set<string>
  cleared: boolean
  moved: 'regenerate' | 'destroy' | undefined
  user: string | undefined
  /** Sent with the cookie of a session that had moved by its load: it commits nothing. */
  late: boolean
}

/** The request sent with the cookie of generation `sent`, loaded now. */
function loadInModel(w: World, sent: number | undefined): Pending {
  const record = sent === undefined ? undefined : w.records.get(sent)
  const late = sent !== undefined && record === undefined && w.moved.has(sent)
  return {
    base: record === undefined ? undefined : sent,
    hadCookie: sent !== undefined && !late,
    late,
    fields: new Map(record),
    changed: new Set(),
    cleared: false,
    moved: undefined,
    user: record === undefined ? undefined : w.users.get(sent!),
  }
}

function applyToModel(p: Pending, c: Change): void {
  if (c.op === 'set') {
    if (p.fields.get(c.key) === c.value) return
    p.fields.set(c.key, c.value)
    p.changed.add(c.key)
  } else if (c.op === 'delete') {
    if (!p.fields.delete(c.key)) return
    p.changed.add(c.key)
  } else if (c.op === 'clear') {
    // a session that was stored is cleared even when this request sees it empty
    if (p.fields.size === 0 && p.base === undefined) return
    p.fields.clear()
    p.changed.clear()
    p.cleared = true
  } else if (c.op === 'regenerate') {
    // a late request that logs in itself is a new session of its own
    p.late = false
    if (p.base !== undefined && p.moved === undefined) p.moved = 'regenerate'
  } else if (c.op === 'setUser') {
    // a change of binding moves a stored session to a new id, as a regenerate
    if (p.user === c.user) return
    p.late = false
    if (p.base !== undefined && p.moved === undefined) p.moved = 'regenerate'
    p.user = c.user
  } else {
    // an empty, fresh session from here on
    if (p.base !== undefined) p.moved = 'destroy'
    p.fields.clear()
    p.changed.clear()
    p.user = undefined
  }
}

/**
 * A new record of `fields` bound to `user` and a cookie for it, or, when it holds neither, a
 * clearing cookie.
 */
function storeNew(
  w: World,
  fields: Map<string, number>,
  user: string | undefined,
  clears: boolean,
): void {
  if (fields.size > 0 || user !== undefined) {
    w.records.set(w.next, fields)
    w.users.set(w.next, user)
    w.jar = w.next++
  } else if (clears) w.jar = undefined
}

function commitToModel(w: World, p: Pending): void {
  if (p.late) return
  if (p.base === undefined) {
    storeNew(w, p.fields, p.user, p.hadCookie)
    return
  }
  const record = w.records.get(p.base)
  if (p.moved !== undefined) {
    // the old record goes; the session's data moves to a new id
    w.records.delete(p.base)
    let fields = p.fields
    if (p.moved === 'regenerate' && !p.cleared && record !== undefined) {
      fields = new Map(record)
      for (const key of p.changed) {
        const value = p.fields.get(key)
        if (value === undefined) fields.delete(key)
        else fields.set(key, value)
      }
    }
    const before = w.jar
    storeNew(w, fields, p.user, true)
    if (p.moved === 'regenerate' && w.jar !== before && w.jar !== undefined) w.moved.add(p.base)
    return
  }
  if (!p.cleared && p.changed.size === 0) return
  // moved or ended by another request meanwhile: nothing written, the cookie left alone
  if (record === undefined) return
  if (p.cleared) record.clear()
  for (const key of p.changed) {
    const value = p.fields.get(key)
    if (value === undefined) record.delete(key)
    else record.set(key, value)
  }
}

describe.each(Object.keys(STORES))('overlapping requests of one session (%s)', (name) => {
  const { available, create } = STORES[name]!
  it.runIf(available)(
    'end with what the commits changed, in the order they committed',
    async () => {
      const sessions = createSessions<Record<string, number>>({ secret: SECRET, store: create() })
      await fc.assert(
        fc.asyncProperty(schedule, async (steps) => {
          // a stored session to start from: a = 0, b = 1
          const jar = new Map<string, string>()
          const first = await sessions.load(undefined)
          first.set('a', 0)
          first.set('b', 1)
          applyToJar(jar, await sessions.commit(first))
          const world: World = {
            records: new Map([
              [
                0,
                new Map([
                  ['a', 0],
                  ['b', 1],
                ]),
              ],
            ]),
            users: new Map([[0, undefined]]),
            jar: 0,
            next: 1,
            moved: new Set(),
          }
          const open = new Map<number, Awaited<ReturnType<typeof sessions.load>>>()
          const pending = new Map<number, Pending>()
          /** The cookie each request was sent with, as the browser and as the model see it. */
          const sent = new Map<number, { header: string; generation: number | undefined }>()
          for (const step of steps) {
            if (step.what === 'send') {
              sent.set(step.r, { header: headerOf(jar), generation: world.jar })
            } else if (step.what === 'load') {
              const { header, generation } = sent.get(step.r)!
              open.set(step.r, await sessions.load(header))
              pending.set(step.r, loadInModel(world, generation))
            } else if (step.what === 'change') {
              const session = open.get(step.r)!
              const c = step.change
              if (c.op === 'set') session.set(c.key, c.value)
              else if (c.op === 'delete') session.delete(c.key)
              else if (c.op === 'setUser') session.setUser(c.user)
              else session[c.op]()
              applyToModel(pending.get(step.r)!, c)
            } else {
              applyToJar(jar, await sessions.commit(open.get(step.r)!))
              commitToModel(world, pending.get(step.r)!)
            }
          }
          const after = await sessions.load(headerOf(jar))
          const got = Object.fromEntries(after.keys().map((k) => [k, after.get(k)]))
          const expected = world.jar === undefined ? undefined : world.records.get(world.jar)
          expect(got).toEqual(Object.fromEntries(expected ?? []))
          const user = world.jar === undefined ? undefined : world.users.get(world.jar)
          expect(after.userId).toBe(user)
          if (user !== undefined && typeof sessions.store.listByUser === 'function') {
            // the store's user index agrees: the session is listed under its user
            const listed = (await sessions.listByUser(user)).map((x) => x.idHash)
            expect(listed).toContain(after.idHash)
          }
          if (!after.isNew) await sessions.destroy(after.idHash)
        }),

        { numRuns: runs(40) },
      )
    },
  )
})
