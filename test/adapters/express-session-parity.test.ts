/**
 * `tessera/express-session` against express-session itself: the same generated handlers, run
 * request after request on an app with each, must see the same session. A handler sets,
 * deletes and reads keys, mutates objects in place (also ones taken before a `save`,
 * `regenerate` or `reload`), and calls `save`, `regenerate`, `reload`, `destroy` and `touch`
 * with their callbacks. What it reads, which callbacks fail, and what the next request finds
 * must match express-session (`resave: false, saveUninitialized: false`, as its docs advise).
 * Requests come one at a time: overlapping ones differ on purpose (express-session loses one's
 * change, see lost-update.test.ts). One difference is by design, and left out: see `present`.
 */
import { createServer } from 'node:http'
import express from 'express'
import expressSession from 'express-session'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sessionMiddleware } from '../../src/adapters/express-session.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { Client, listen, type Running, SECRET } from '../helpers/http.js'
import { fc, runs } from '../helpers/property.js'

const KEYS = ['a', 'b', 'userId'] as const
type Key = (typeof KEYS)[number]

type Op =
  | { op: 'set'; key: Key; value: unknown }
  | { op: 'unset'; key: Key } // `req.session.key = undefined`
  | { op: 'delete'; key: Key }
  | { op: 'read'; key: Key }
  | { op: 'keys' }
  | { op: 'has'; key: Key }
  | { op: 'mutate'; key: Key; value: number } // push into an array, or set `x` on an object
  | { op: 'take'; key: Key } // keep a reference to the value, for `mutateTaken`
  | { op: 'mutateTaken'; value: number }
  | { op: 'copy'; from: Key; to: Key } // `req.session.to = req.session.from`: one object, two keys
  | { op: 'save' | 'regenerate' | 'reload' | 'destroy' | 'touch' }
  | { op: 'regenerateKeep' } // passport's `keepSessionInfo`: the old data copied into the new

const value = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 6 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('x', 'y'), fc.integer({ min: 0, max: 9 }), { maxKeys: 2 }),
)
const key = fc.constantFrom(...KEYS)
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('set' as const), key, value }), weight: 6 },
  fc.record({ op: fc.constant('unset' as const), key }),
  fc.record({ op: fc.constant('delete' as const), key }),
  { arbitrary: fc.record({ op: fc.constant('read' as const), key }), weight: 3 },
  fc.record({ op: fc.constant('keys' as const) }),
  fc.record({ op: fc.constant('has' as const), key }),
  {
    arbitrary: fc.record({ op: fc.constant('mutate' as const), key, value: fc.nat(9) }),
    weight: 3,
  },
  fc.record({ op: fc.constant('take' as const), key }),
  fc.record({ op: fc.constant('mutateTaken' as const), value: fc.nat(9) }),
  fc.record({ op: fc.constant('copy' as const), from: key, to: key }),
  fc.record({
    op: fc.constantFrom(
      'save' as const,
      'regenerate' as const,
      'regenerateKeep' as const,
      'reload' as const,
    ),
  }),
  fc.record({ op: fc.constantFrom('destroy' as const, 'touch' as const) }),
)
/**
 * One request's steps. A request that regenerates its session ends by setting a key, as a
 * login does, and does not reload after it: see `present` for why an empty regenerated session
 * is left out.
 */
const steps = fc.array(op, { minLength: 1, maxLength: 7 }).map((ops) => {
  const at = ops.findIndex((o) => o.op === 'regenerate' || o.op === 'regenerateKeep')
  if (at === -1) return ops
  const after = ops.slice(at + 1).filter((o) => o.op !== 'reload')
  return [...ops.slice(0, at + 1), ...after, { op: 'set', key: 'userId', value: 'u1' } as Op]
})
/** A few requests, one after another. */
const visits = fc.array(steps, { minLength: 1, maxLength: 4 })

/** `req.session` as both libraries give it, for the steps below. */
type Bag = Record<string, unknown> & {
  save(cb: (err?: unknown) => void): void
  regenerate(cb: (err?: unknown) => void): void
  reload(cb: (err?: unknown) => void): void
  destroy(cb: (err?: unknown) => void): void
  touch(): void
}

/**
 * A data key the session holds. Two differences are on purpose, and left out:
 * - `req.session.key = undefined` deletes the key in Tessera, where express-session keeps it,
 *   valued `undefined`, until the request ends (the next request finds it gone in both);
 * - Tessera never stores an empty session, where express-session stores one given to
 *   `save()` or regenerated: a later `reload` of it fails in Tessera (there is nothing to read
 *   again) and succeeds in express-session. So a request that regenerates ends with data
 *   (`steps`), an empty session is not saved, and `reload` of one is not compared.
 * Key order is not compared either (a store may keep fields in its own order).
 */
const present = (s: Bag, key: string) => key !== 'cookie' && key in s && s[key] !== undefined
const shown = (v: unknown): string => (v === undefined ? 'undefined' : JSON.stringify(v))
const callback = (call: (cb: (err?: unknown) => void) => void) =>
  new Promise<string>((resolve) => call((err) => resolve(err ? 'error' : 'ok')))

/**
 * Runs one request's steps on `req.session`; returns what each step saw, then the session's
 * data as the handler leaves it. Stops after a `destroy` (express-session deletes
 * `req.session` then).
 */
async function run(req: express.Request, steps: readonly Op[]): Promise<string[]> {
  const session = () => (req as unknown as { session: Bag }).session
  const keys = () =>
    Object.keys(session())
      .filter((k) => present(session(), k))
      .sort()
  const data = () => shown(Object.fromEntries(keys().map((k) => [k, session()[k]])))
  const seen: string[] = [`start ${data()}`]
  let taken: unknown
  for (const step of steps) {
    const s = session()
    switch (step.op) {
      case 'set':
        s[step.key] = structuredClone(step.value)
        break
      case 'unset':
        s[step.key] = undefined
        break
      case 'delete':
        delete s[step.key]
        break
      case 'read':
        seen.push(`read ${shown(s[step.key])}`)
        break
      case 'keys':
        seen.push(`keys ${keys().join(',')}`)
        break
      case 'has':
        seen.push(`has ${present(s, step.key)}`)
        break
      case 'mutate':
        mutate(s[step.key], step.value)
        break
      case 'take':
        taken = s[step.key]
        break
      case 'mutateTaken':
        mutate(taken, step.value)
        break
      case 'copy':
        s[step.to] = s[step.from]
        break
      case 'touch':
        s.touch()
        break
      case 'destroy':
        seen.push(`destroy ${await callback((cb) => s.destroy(cb))}`)
        return seen
      case 'regenerateKeep': {
        const previous = s
        const outcome = await callback((cb) => s.regenerate(cb))
        // as passport does it, with utils-merge
        for (const k in previous) session()[k] = previous[k]
        seen.push(`regenerateKeep ${outcome}`)
        break
      }
      case 'save':
        // express-session stores an empty session on `save()`, Tessera stores none: see `present`
        if (keys().length === 0) seen.push('save (empty)')
        else seen.push(`save ${await callback((cb) => s.save(cb))}`)
        break
      case 'reload': {
        const empty = keys().length === 0
        const outcome = await callback((cb) => s.reload(cb))
        seen.push(`reload ${empty ? '(empty)' : outcome}`)
        break
      }
      default:
        seen.push(`${step.op} ${await callback((cb) => s[step.op](cb))}`)
    }
  }
  seen.push(`end ${data()}`)
  return seen
}

function mutate(target: unknown, n: number): void {
  if (Array.isArray(target)) target.push(n)
  else if (typeof target === 'object' && target !== null) (target as Record<string, number>).x = n
}

/** An app whose one route runs the steps in its JSON body on `req.session`. */
async function app(session: express.RequestHandler): Promise<Running> {
  const app = express()
  app.use(session)
  app.use(express.json())
  app.post('/run', (req, res, next) => {
    run(req, req.body as Op[]).then((seen) => res.json(seen), next)
  })
  return listen(createServer(app))
}

describe('tessera/express-session behaves as express-session', () => {
  let theirs: Running
  let ours: Running
  beforeAll(async () => {
    theirs = await app(
      expressSession({
        secret: SECRET,
        resave: false,
        saveUninitialized: false,
        store: new expressSession.MemoryStore(),
      }),
    )
    const sessions = createSessions({ secret: SECRET, store: memoryStore({ sweepInterval: 0 }) })
    ours = await app(sessionMiddleware(sessions) as express.RequestHandler)
  })
  afterAll(async () => {
    await theirs?.close()
    await ours?.close()
  })

  it('on generated handlers, request after request', async () => {
    await fc.assert(
      fc.asyncProperty(visits, async (requests) => {
        const express = new Client(theirs.url)
        const tessera = new Client(ours.url)
        for (const steps of requests) {
          const init = {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(steps),
          }
          const [want, got] = await Promise.all([
            express.request('/run', init),
            tessera.request('/run', init),
          ])
          expect(want.status).toBe(200)
          expect(got.status).toBe(200)
          expect(got.body).toEqual(want.body)
        }
      }),
      { numRuns: runs(150) },
    )
  })
})
