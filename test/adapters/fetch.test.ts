import { createServer } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { describe, expect, it, vi } from 'vitest'
import { withSession } from '../../src/adapters/fetch.js'
import { createSessions } from '../../src/index.js'
import { memoryStore } from '../../src/stores/memory.js'
import { listen, SECRET } from '../helpers/http.js'
import { failingStore } from '../helpers/stores.js'
import { adapterSuite } from './suite.js'

adapterSuite('fetch')

describe('fetch specifics', () => {
  it('a streamed body whose commit failed is cancelled, so its producer is told', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const sessions = createSessions<{ n: number }>({
      secret: SECRET,
      store: failingStore(memoryStore({ sweepInterval: 0 }), (op) => op === 'set'),
    })
    // a file, a database cursor: a row every few milliseconds until it is told to stop
    const producer = { cancelled: false }
    const body = new ReadableStream<Uint8Array>({
      pull: (controller) =>
        new Promise<void>((resolve) =>
          setTimeout(() => {
            if (!producer.cancelled) controller.enqueue(new TextEncoder().encode('row\n'))
            resolve()
          }, 5),
        ),
      cancel: () => {
        producer.cancelled = true
      },
    })
    const running = await listen(
      createServer(
        getRequestListener(
          withSession(sessions, (_request, session) => {
            session.set('n', 1)
            return new Response(body, { headers: { 'content-type': 'text/plain' } })
          }),
        ),
      ),
    )
    try {
      const res = await fetch(`${running.url}/export`)
      expect({ status: res.status, body: await res.text() }).toEqual({
        status: 500,
        body: 'Internal Server Error',
      })
    } finally {
      await running.close()
      vi.restoreAllMocks()
    }
    expect(producer.cancelled).toBe(true)
  })
})
