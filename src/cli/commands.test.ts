import { describe, expect, it } from 'vitest'
import { hashSessionId, newSessionId } from '../core/ids.js'
import type { SessionRecord, SessionStore } from '../core/store.js'
import { CommandError, list, migrate, type Output, prune, serverStore } from './commands.js'

const NOW = Date.parse('2026-12-01T10:00:00Z')
const record = (): SessionRecord => ({
  fields: { n: '1' },
  meta: {
    createdAt: NOW,
    lastSeenAt: NOW,
    idleExpiresAt: NOW + 60_000,
    absoluteExpiresAt: NOW + 60_000,
  },
})

/** A store of `n` sessions that counts how many its scan has handed out. */
function source(n: number) {
  const keys = Array.from({ length: n }, () => hashSessionId(newSessionId()))
  const state = { scanned: 0 }
  const store = {
    name: 'sqlite',
    get: async () => record(),
    set: async () => {},
    patch: async () => true,
    touch: async () => {},
    destroy: async () => {},
    async *scan() {
      for (const key of keys) {
        state.scanned++
        yield { key, meta: record().meta }
      }
    },
  } as SessionStore
  return { store, state }
}

const lines = () => {
  const out: string[] = []
  return { out, output: { line: (text: string) => void out.push(text) } as Output }
}

describe('migrate', () => {
  it('handles every failing copy: no new copy after the first failure, which it throws', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const from = source(1000)
      let writes = 0
      // the target fails at once, as a SQL store without its table does
      const to = serverStore(
        {
          ...from.store,
          name: 'postgres',
          set: async () => {
            writes++
            throw new Error('relation "sessions" does not exist')
          },
        } as SessionStore,
        'migrate into',
      )
      const { out, output } = lines()
      const err = await migrate(from.store, to, output, { now: NOW, concurrency: 4 }).catch(
        (e: unknown) => e,
      )
      expect((err as Error).message).toBe(
        '[tessera] [store:postgres] set failed: relation "sessions" does not exist',
      )
      expect(out).toEqual([])
      // the copies under way when the first failed, and no more
      expect(writes).toBeLessThanOrEqual(8)
      expect(from.state.scanned).toBeLessThanOrEqual(8)
      await new Promise((r) => setTimeout(r, 10))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})

describe('list', () => {
  it('waits for a slow reader before reading more of the store', async () => {
    const from = source(100)
    let release = () => {}
    let written = 0
    const output: Output = {
      line: () => {
        written++
        return new Promise<void>((resolve) => {
          release = resolve
        })
      },
    }
    const listing = list(from.store, output, { json: true, now: NOW })
    await new Promise((r) => setTimeout(r, 10))
    expect([written, from.state.scanned]).toEqual([1, 1])
    release()
    await new Promise((r) => setTimeout(r, 10))
    expect([written, from.state.scanned]).toEqual([2, 2])
    // a reader that has gone stops the listing, and the scan
    output.line = () => {
      throw new Error('gone')
    }
    release()
    await expect(listing).rejects.toThrow('gone')
    expect(from.state.scanned).toBe(3)
  })
})

describe('a store without a capability', () => {
  it('gives the reason that capability lacks', async () => {
    const { scan: _, ...withoutScan } = source(0).store
    const memcached = serverStore({ ...withoutScan, name: 'memcached' } as SessionStore, 'prune')
    await expect(prune(memcached, lines().output)).rejects.toThrow(
      new CommandError('the memcached store cannot prune: Memcached expires sessions by itself'),
    )
    await expect(list(memcached, lines().output, { json: true, now: NOW })).rejects.toThrow(
      'the memcached store cannot list every session: Memcached cannot list its keys',
    )
  })
})
