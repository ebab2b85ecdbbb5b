import { describe, expect, it } from 'vitest'
import { SessionManager } from '../src/core/manager.js'
import { memoryStore } from '../src/stores/memory.js'

const secret = 'x'.repeat(32)

describe('event listeners', () => {
  it('an async listener that fails is its own failure: no unhandled rejection, the request goes on', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const m = new SessionManager({ secret, store: memoryStore({ sweepInterval: 0 }) })
      const seen: string[] = []
      // a log sink that is down: Node ends the process on an unhandled rejection
      m.on('created', async () => {
        throw new Error('log sink down')
      })
      m.on('created', () => seen.push('metrics'))
      const s = await m.load(undefined)
      s.set('a', 1)
      expect(await m.commit(s)).toHaveLength(1)
      expect(seen).toEqual(['metrics'])
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
