import { describe, expect, it } from 'vitest'
import { SessionManager } from '../src/core/manager.js'
import type { Session } from '../src/core/session.js'
import { cookieStore } from '../src/stores/cookie.js'
import { memoryStore } from '../src/stores/memory.js'
import { countingStore, fakeClock } from './helpers/stores.js'

type Data = { count: number; name: string }
type Action = (s: Session<Data>) => void

/**
 * What a request does to a session it loaded with `{ count: 1 }` and a flash message stored.
 * Adapters skip the commit when `needsCommit()` is false, so it must be true exactly when the
 * commit would write to the store or send a cookie.
 */
const actions: Record<string, Action> = {
  nothing: () => {},
  reads: (s) => {
    s.get('count')
    s.has('name')
    s.keys()
    s.flash.peek('notice')
    void s.idHash
  },
  set: (s) => s.set('count', 2),
  'set the same value again': (s) => s.set('count', 1),
  'delete a key': (s) => s.delete('count'),
  'delete a missing key': (s) => s.delete('name'),
  clear: (s) => s.clear(),
  'set a flash message': (s) => s.flash.set('error', 'no'),
  'read a flash message': (s) => s.flash.get('notice'),
  'read a missing flash message': (s) => s.flash.get('error'),
  regenerate: (s) => s.regenerate(),
  destroy: (s) => s.destroy(),
  extend: (s) => s.extend(),
  setUser: (s) => s.setUser('u1'),
  'setUser to no user (none bound)': (s) => s.setUser(undefined),
  setLifetime: (s) => s.setLifetime({ idleTimeout: '1d' }),
}

for (const kind of ['memory', 'cookie'] as const) {
  describe(`needsCommit() answers for commit() (${kind} store)`, () => {
    const clock = fakeClock()
    const counting = countingStore(memoryStore({ sweepInterval: 0, clock: clock.now }))
    const sessions = new SessionManager<Data>({
      secret: 'x'.repeat(32),
      store: kind === 'memory' ? counting.store : cookieStore(),
      clock: clock.now,
    })
    /** Whether committing wrote to the store or sent a cookie. */
    const commitDid = async (s: Session<Data>) => {
      counting.reset()
      const cookies = await sessions.commit(s)
      return cookies.length > 0 || counting.writes() > 0
    }
    const stored = async () => {
      const s = await sessions.load(undefined)
      s.set('count', 1)
      s.flash.set('notice', 'hello')
      const cookie = (await sessions.commit(s)).map((c) => c.split(';')[0]).join('; ')
      return sessions.load(cookie)
    }

    for (const [name, act] of Object.entries(actions)) {
      it(`a stored session, then: ${name}`, async () => {
        const s = await stored()
        act(s)
        const predicted = sessions.needsCommit(s)
        expect(await commitDid(s)).toBe(predicted)
        // committed: nothing more is due
        expect(sessions.needsCommit(s)).toBe(false)
      })
    }

    it('is false for a new session that stays empty, true once it holds data', async () => {
      const s = await sessions.load(undefined)
      s.get('count')
      expect(sessions.needsCommit(s)).toBe(false)
      s.set('name', 'a')
      expect(sessions.needsCommit(s)).toBe(true)
      expect(await commitDid(s)).toBe(true)
    })

    it('is true when a touch is due, with nothing changed', async () => {
      const s = await stored()
      expect(sessions.needsCommit(s)).toBe(false)
      clock.advance(sessions.touchAfter)
      expect(sessions.needsCommit(s)).toBe(true)
      expect(await commitDid(s)).toBe(true)
    })

    it('is true for a request whose cookie is no good (it must be cleared)', async () => {
      const s = await sessions.load(`${sessions.cookie.name}=forged`)
      expect(sessions.needsCommit(s)).toBe(true)
      expect(await commitDid(s)).toBe(true)
    })
  })
}
