/** The manager's client-side path: load and commit with the cookie store, events, limits. */
import { describe, expect, it } from 'vitest'
import type { StandardSchemaV1 } from '../../src/core/standard-schema.js'
import { createSessions, SessionConfigError, SessionStoreError } from '../../src/index.js'
import { type CookieStoreOptions, cookieStore } from '../../src/stores/cookie.js'
import { applyToJar, headerOf } from '../helpers/cookie-jar.js'
import { SECRET } from '../helpers/http.js'
import { fakeClock } from '../helpers/stores.js'

const MIN = 60_000

function setup(
  options: CookieStoreOptions = {},
  extra: { schema?: StandardSchemaV1<unknown, Record<string, unknown>> } = {},
) {
  const clock = fakeClock()
  const sessions = createSessions<Record<string, unknown>>({
    secret: SECRET,
    store: cookieStore(options),
    clock: clock.now,
    idleTimeout: 30 * MIN,
    absoluteTimeout: 120 * MIN,
    touchAfter: MIN,
    ...(extra.schema ? { schema: extra.schema } : {}),
  })
  const events: [string, unknown][] = []
  for (const name of ['created', 'regenerated', 'destroyed', 'expired', 'rejected', 'invalid'])
    sessions.on(name as 'created', (e) => events.push([name, e]))
  const jar = new Map<string, string>()
  /** One request: load from the jar, run `fn`, commit, apply the cookies. */
  const request = async (
    fn: (s: Awaited<ReturnType<typeof sessions.load>>) => unknown = () => {},
  ) => {
    const session = await sessions.load(headerOf(jar))
    await fn(session)
    const cookies = await sessions.commit(session)
    applyToJar(jar, cookies)
    return { session, cookies }
  }
  return { clock, sessions, events, jar, request }
}

describe('manager with the cookie store', () => {
  it('sends no cookie for a new, unchanged session, and one once data is set', async () => {
    const { request, events, jar } = setup()
    expect((await request()).cookies).toEqual([])
    const { session, cookies } = await request((s) => s.set('count', 1))
    expect(cookies).toHaveLength(1)
    expect(events).toEqual([['created', { idHash: session.idHash }]])
    const next = await request((s) => expect(s.get('count')).toBe(1))
    expect(next.session.isNew).toBe(false)
    expect(next.session.idHash).toBe(session.idHash)
    expect(next.cookies).toEqual([]) // unchanged, touch not due
    expect(jar.size).toBe(1)
  })

  it('reseals an unchanged session once touchAfter has passed, sliding the idle expiry', async () => {
    const { request, clock } = setup()
    await request((s) => s.set('a', 1))
    clock.advance(MIN - 1)
    expect((await request()).cookies).toEqual([])
    clock.advance(1)
    const touched = await request()
    expect(touched.cookies).toHaveLength(1)
    expect(touched.session.expiresAt).toBe(clock.now() + 30 * MIN)
  })

  it('regenerate gives a new idHash and the regenerated event; destroy clears the cookie', async () => {
    const { request, events, jar } = setup()
    const first = (await request((s) => s.set('a', 1))).session.idHash
    events.length = 0
    const { session } = await request((s) => {
      s.regenerate()
      s.setUser('u1')
    })
    expect(session.idHash).not.toBe(first)
    expect(events).toEqual([['regenerated', { idHash: session.idHash, previousIdHash: first }]])
    const loaded = await request((s) => expect(s.userId).toBe('u1'))
    expect(loaded.session.get('a')).toBe(1)
    events.length = 0
    const out = await request((s) => s.destroy())
    expect(out.cookies).toEqual([expect.stringMatching(/^sid=;.*Max-Age=0/)])
    expect(events).toEqual([['destroyed', { idHash: session.idHash }]])
    expect(jar.size).toBe(0)
  })

  it('a refused cookie is reported, cleared, and gives an empty session', async () => {
    const { request, events, jar } = setup()
    jar.set('sid', 'A'.repeat(60))
    const { session, cookies } = await request()
    expect(session.isNew).toBe(true)
    expect(events).toEqual([['rejected', { reason: 'malformed' }]]) // no version marker
    expect(cookies).toEqual([expect.stringMatching(/^sid=;/)])
  })

  it("isRevoked: a cookie sealed before a user's revocation time is refused as unknown", async () => {
    const loggedOutAt = new Map<string, number>()
    const { request, events, clock } = setup({
      isRevoked: ({ userId, issuedAt }) =>
        userId !== undefined && issuedAt < (loggedOutAt.get(userId) ?? 0),
    })
    const { session } = await request((s) => s.setUser('u1'))
    clock.advance(1000)
    loggedOutAt.set('u1', clock.now())
    const after = await request()
    expect(after.session.isNew).toBe(true)
    expect(events.at(-1)).toEqual(['rejected', { reason: 'revoked', idHash: session.idHash }])
    expect(after.cookies).toEqual([expect.stringMatching(/^sid=;/)])
  })

  it('isRevoked: the device that logged everyone out keeps a session by getting a new cookie', async () => {
    const loggedOutAt = new Map<string, number>()
    const { request, clock } = setup({
      isRevoked: async ({ userId, issuedAt }) =>
        userId !== undefined && issuedAt < (loggedOutAt.get(userId) ?? 0),
    })
    await request((s) => s.setUser('u1'))
    clock.advance(1000)
    await request((s) => {
      loggedOutAt.set('u1', clock.now())
      s.regenerate()
    })
    expect((await request()).session.isNew).toBe(false)
  })

  it('isRevoked throwing fails the load like a store error, never a silent fresh session', async () => {
    const { request } = setup({
      isRevoked: () => {
        throw new Error('db down')
      },
    })
    await request((s) => s.set('a', 1))
    await expect(request()).rejects.toBeInstanceOf(SessionStoreError)
  })

  it('loadNow opens a cookie at once, unless isRevoked answers with a promise', async () => {
    const plain = setup()
    await plain.request((s) => s.set('a', 1))
    const opened = plain.sessions.loadNow(headerOf(plain.jar))
    expect(opened).not.toBeInstanceOf(Promise)
    expect((opened as Awaited<typeof opened>).get('a')).toBe(1)
    const revoking = setup({ isRevoked: () => true })
    await revoking.request((s) => s.setUser('u1'))
    const refused = revoking.sessions.loadNow(headerOf(revoking.jar))
    expect(refused).not.toBeInstanceOf(Promise)
    expect((refused as Awaited<typeof refused>).isNew).toBe(true)
    expect(revoking.events.at(-1)).toEqual([
      'rejected',
      expect.objectContaining({ reason: 'revoked' }),
    ])
    const asking = setup({ isRevoked: async () => false })
    await asking.request((s) => s.set('a', 2))
    const waited = asking.sessions.loadNow(headerOf(asking.jar))
    expect(waited).toBeInstanceOf(Promise)
    expect((await waited).get('a')).toBe(2)
    // a thenable of another promise library is waited for as a promise is, never taken as false
    const thenable = {
      // biome-ignore lint/suspicious/noThenProperty: a thenable is what this test is about
      then: (resolve: (r: boolean) => void) => resolve(true),
    }
    const other = setup({ isRevoked: () => thenable as unknown as Promise<boolean> })
    await other.request((s) => s.setUser('u2'))
    const refusedLater = other.sessions.loadNow(headerOf(other.jar))
    expect(refusedLater).toBeInstanceOf(Promise)
    expect((await refusedLater).isNew).toBe(true)
    const failing = setup({ isRevoked: async () => Promise.reject(new Error('db down')) })
    await failing.request((s) => s.set('a', 3))
    await expect(failing.sessions.loadNow(headerOf(failing.jar))).rejects.toBeInstanceOf(
      SessionStoreError,
    )
  })

  it('checks the schema on load, as for a server store', async () => {
    const schema: StandardSchemaV1<unknown, Record<string, unknown>> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (v) =>
          typeof (v as { a?: unknown }).a === 'string'
            ? { issues: [{ message: 'a must be a number' }] }
            : { value: v as Record<string, unknown> },
      },
    }
    const { request, events } = setup({}, { schema })
    await request((s) => s.set('a', 'text'))
    const { session, cookies } = await request()
    expect(session.isNew).toBe(true)
    expect(events.at(-1)?.[0]).toBe('invalid')
    expect(cookies).toEqual([expect.stringMatching(/^sid=;/)])
  })

  it('says plainly what it cannot do: list, revoke by user, revoke by idHash, server reads', async () => {
    const { sessions, request } = setup()
    const { session } = await request((s) => s.set('a', 1))
    await expect(sessions.listByUser('u1')).rejects.toThrow(/cookie store cannot list/)
    await expect(sessions.destroyByUser('u1')).rejects.toThrow(/cookie store cannot revoke/)
    await expect(sessions.destroy(session.idHash)).rejects.toThrow(/isRevoked/)
    await expect(sessions.store.get(session.idHash)).rejects.toBeInstanceOf(SessionConfigError)
    await expect(sessions.close()).resolves.toBeUndefined()
  })

  it("a second commit (save() then the adapter's) writes only what changed since", async () => {
    const { sessions, jar } = setup()
    const session = await sessions.load(headerOf(jar))
    session.set('a', 1)
    const first = await sessions.commit(session)
    expect(first).toHaveLength(1)
    expect(await sessions.commit(session)).toEqual([])
    session.set('b', 2)
    const second = await sessions.commit(session)
    applyToJar(jar, second)
    expect(second).toHaveLength(1)
    const loaded = await sessions.load(headerOf(jar))
    expect(loaded.toJSON()).toEqual({ a: 1, b: 2 })
  })

  it('setLifetime gives a persistent cookie whose Max-Age runs to the absolute expiry', async () => {
    const { request } = setup()
    const { cookies } = await request((s) => {
      s.set('a', 1)
      s.setLifetime({ idleTimeout: '14d', absoluteTimeout: '30d' })
    })
    expect(cookies[0]).toContain(`Max-Age=${30 * 86_400}`)
  })
})
