/**
 * The threat: signed out right after signing in. A browser sends a request with its session
 * cookie (a poll, a parallel fetch, another tab) just before a login's answer gives it the
 * new cookie, and the server loads that request after the login moved the session to a new
 * id. Finding no session under the old id, it used to start a new one and send its cookie, or
 * a clearing one, and either replaced the login's cookie in the browser. Now the move leaves a
 * marker under the old key for a minute (`MOVED_MARKER_MS`): such a request gets an empty
 * session that keeps nothing and sends no cookie. On every server store.
 */
import { describe, expect, it } from 'vitest'
import { createSessions, MOVED_MARKER_MS, type SessionStore } from '../src/index.js'
import { everyStore } from './helpers/every-store.js'
import { SECRET } from './helpers/http.js'
import { fakeClock } from './helpers/stores.js'

const STORES = await everyStore('signed_out')

/** The `name=value` a browser sends back for a commit's cookies (the last one it kept). */
const cookieOf = (setCookies: readonly string[], jar: string | undefined) => {
  const last = setCookies.at(-1)
  if (last === undefined) return jar
  const pair = last.split(';')[0]!
  return pair.endsWith('=') ? undefined : pair
}

function setup(store: SessionStore) {
  const clock = fakeClock(Date.now())
  const sessions = createSessions<{ cart?: string; user?: string; late?: string }>({
    secret: SECRET,
    store,
    clock: clock.now,
  })
  const rejected: string[] = []
  sessions.on('rejected', (e) => rejected.push(e.reason))
  /** A new stored session holding `cart`: the cookie the browser sends back. */
  const stored = async (cart: string) => {
    const visit = await sessions.load(undefined)
    visit.set('cart', cart)
    return cookieOf(await sessions.commit(visit), undefined)!
  }
  return { sessions, clock, rejected, stored }
}

describe.each(Object.keys(STORES))('signed out right after signing in (%s)', (name) => {
  const { available, create } = STORES[name]!

  it.runIf(available)(
    'a request that set out before a login and loads after it sends no cookie',
    async () => {
      const { sessions, rejected, stored } = setup(create())
      const user = `ada-${name}-${Date.now()}`
      const before = await stored('book')

      // the login: a new id, bound to the user
      const login = await sessions.load(before)
      login.setUser(user)
      login.set('user', user)
      const after = cookieOf(await sessions.commit(login), before)!
      expect(after).not.toBe(before)

      // requests sent with the old cookie, loaded after the login's commit
      const writes = await sessions.load(before)
      expect(writes.isNew).toBe(true)
      expect(writes.get('cart')).toBeUndefined()
      writes.set('late', 'x')
      expect(await sessions.commit(writes)).toEqual([])
      const reads = await sessions.load(before)
      expect(await sessions.commit(reads)).toEqual([])
      expect(rejected).toEqual(['moved', 'moved'])

      // the browser kept the login's cookie: signed in, the cart carried over, nothing else
      const next = await sessions.load(after)
      expect(next.userId).toBe(user)
      expect(next.toJSON()).toEqual({ cart: 'book', user })
      // the marker is no session of the user's
      expect((await sessions.listByUser(user)).map((s) => s.idHash)).toEqual([next.idHash])
    },
  )

  it.runIf(available)(
    'a second login sent before the first one’s answer still signs in, as the second',
    async () => {
      const { sessions, rejected, stored } = setup(create())
      const before = await stored('book')
      const first = await sessions.load(before)
      first.setUser(`ada-${name}`)
      await sessions.commit(first)
      // the second form, sent with the old cookie, loaded after the first login moved it
      const second = await sessions.load(before)
      second.setUser(`bob-${name}`)
      second.set('user', 'bob')
      const cookie = cookieOf(await sessions.commit(second), undefined)
      expect(cookie).toBeDefined()
      const next = await sessions.load(cookie)
      expect(next.userId).toBe(`bob-${name}`)
      expect(next.toJSON()).toEqual({ user: 'bob' })
      expect(rejected).toEqual(['moved'])
    },
  )

  it.runIf(available)(
    'after a minute the old cookie is an unknown one again: a new session, or a clearing cookie',
    async () => {
      const { sessions, clock, rejected, stored } = setup(create())
      const before = await stored('book')
      const login = await sessions.load(before)
      login.regenerate()
      await sessions.commit(login)

      clock.advance(MOVED_MARKER_MS)
      const empty = await sessions.load(before)
      const cleared = await sessions.commit(empty)
      expect(cleared).toHaveLength(1)
      expect(cleared[0]).toMatch(/^sid=;/)
      const writes = await sessions.load(before)
      writes.set('late', 'x')
      const fresh = cookieOf(await sessions.commit(writes), before)
      expect(fresh).toBeDefined()
      expect(fresh).not.toBe(before)
      expect(rejected).toEqual(['unknown', 'unknown'])
    },
  )

  it.runIf(available)(
    'a logout, or a move that leaves nothing to store, leaves no marker',
    async () => {
      const { sessions, rejected, stored } = setup(create())
      const first = await stored('book')
      const emptied = await sessions.load(first)
      emptied.regenerate()
      emptied.clear()
      const cleared = await sessions.commit(emptied)
      expect(cleared[0]).toMatch(/^sid=;/)
      await sessions.commit(await sessions.load(first))

      const second = await stored('pen')
      const logout = await sessions.load(second)
      logout.destroy()
      await sessions.commit(logout)
      const late = await sessions.load(second)
      late.set('late', 'x')
      // a new anonymous session: the browser was signed out anyway
      expect(cookieOf(await sessions.commit(late), second)).not.toBe(second)
      expect(rejected).toEqual(['unknown', 'unknown'])
    },
  )
})
