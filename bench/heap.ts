/**
 * Heap per 100,000 sessions in the memory store, next to express-session's MemoryStore.
 * Run by `bench/run.ts`: `node --expose-gc --import tsx bench/heap.ts <tessera|express-session>`;
 * prints one JSON object.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { fromTessera, SECRET } from './tessera.js'

const { createSessions } = await fromTessera<typeof import('../src/index.js')>('index.js')
const { memoryStore } =
  await fromTessera<typeof import('../src/stores/memory.js')>('stores/memory.js')

const N = 100_000
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')
const settle = () => {
  for (let i = 0; i < 4; i++) gc()
  return process.memoryUsage().heapUsed
}
const which = process.argv[2] ?? 'tessera'
let keep: unknown
const before = settle()
if (which === 'tessera') {
  const store = memoryStore({ maxSessions: N * 2, sweepInterval: 0 })
  const sessions = createSessions<{ count: number }>({ secret: SECRET, store })
  for (let i = 0; i < N; i++) {
    const s = await sessions.load(undefined)
    s.set('count', i)
    await sessions.commit(s)
  }
  keep = store
} else {
  const { default: session } = await import('express-session')
  const store = new session.MemoryStore()
  const cookie = { originalMaxAge: null, expires: null, httpOnly: true, path: '/' }
  for (let i = 0; i < N; i++) {
    store.set(randomBytes(24).toString('base64url'), {
      cookie,
      count: i,
    } as unknown as import('express-session').SessionData)
  }
  keep = store
}
const after = settle()
console.log(
  JSON.stringify({
    which,
    sessions: N,
    heap_mb: (after - before) / 1024 / 1024,
    bytes_per_session: Math.round((after - before) / N),
    kept: keep !== undefined,
  }),
)
