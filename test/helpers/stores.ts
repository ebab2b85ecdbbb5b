import type { SessionStore } from '../../src/core/store.js'

type Op = 'get' | 'set' | 'patch' | 'touch' | 'destroy'
const OPS: readonly Op[] = ['get', 'set', 'patch', 'touch', 'destroy']

/** Wraps a store and records every call with its key. */
export function countingStore(inner: SessionStore) {
  const calls: { op: Op; key: string }[] = []
  const store: SessionStore = { ...inner, name: inner.name }
  for (const op of OPS) {
    const fn = inner[op] as (...args: unknown[]) => Promise<unknown>
    ;(store as unknown as Record<Op, unknown>)[op] = (key: string, ...rest: unknown[]) => {
      calls.push({ op, key })
      return fn.call(inner, key, ...rest)
    }
  }
  // the synchronous methods are calls like the others
  const { getNow, patchNow, touchNow } = inner
  if (getNow !== undefined) {
    store.getNow = (key) => {
      calls.push({ op: 'get', key })
      return getNow.call(inner, key)
    }
  }
  if (patchNow !== undefined) {
    store.patchNow = (key, patch, meta) => {
      calls.push({ op: 'patch', key })
      return patchNow.call(inner, key, patch, meta)
    }
  }
  if (touchNow !== undefined) {
    store.touchNow = (key, meta) => {
      calls.push({ op: 'touch', key })
      touchNow.call(inner, key, meta)
    }
  }
  return {
    store,
    calls,
    count: (op?: Op) => calls.filter((c) => op === undefined || c.op === op).length,
    writes: () => calls.filter((c) => c.op !== 'get').length,
    reset: () => {
      calls.length = 0
    },
  }
}

/** A store whose every call fails, as a server that went away. */
export function failingStore(inner: SessionStore, failing: (op: Op) => boolean = () => true) {
  const store: SessionStore = { ...inner, name: 'flaky' }
  for (const op of OPS) {
    const fn = inner[op] as (...args: unknown[]) => Promise<unknown>
    ;(store as unknown as Record<Op, unknown>)[op] = async (...args: unknown[]) => {
      if (failing(op)) throw new Error('connect ECONNREFUSED 127.0.0.1:6379')
      return fn.apply(inner, args)
    }
  }
  const { getNow, patchNow, touchNow } = inner
  if (getNow !== undefined) {
    store.getNow = (key) => {
      if (failing('get')) throw new Error('connect ECONNREFUSED 127.0.0.1:6379')
      return getNow.call(inner, key)
    }
  }
  if (patchNow !== undefined) {
    store.patchNow = (key, patch, meta) => {
      if (failing('patch')) throw new Error('connect ECONNREFUSED 127.0.0.1:6379')
      return patchNow.call(inner, key, patch, meta)
    }
  }
  if (touchNow !== undefined) {
    store.touchNow = (key, meta) => {
      if (failing('touch')) throw new Error('connect ECONNREFUSED 127.0.0.1:6379')
      touchNow.call(inner, key, meta)
    }
  }
  return store
}

/** A store whose writes take `ms` longer. */
export function slowWritesStore(inner: SessionStore, ms: number): SessionStore {
  // a store that makes writes wait cannot write at once
  const { patchNow: _p, touchNow: _t, ...rest } = inner
  const store: SessionStore = { ...rest, name: inner.name }
  for (const op of ['set', 'patch', 'touch', 'destroy'] as const) {
    const fn = inner[op] as (...args: unknown[]) => Promise<unknown>
    ;(store as unknown as Record<string, unknown>)[op] = async (...args: unknown[]) => {
      await new Promise((r) => setTimeout(r, ms))
      return fn.apply(inner, args)
    }
  }
  return store
}

/** A clock tests move by hand. */
export function fakeClock(start = Date.UTC(2026, 0, 1)) {
  let now = start
  return {
    now: () => now,
    advance(ms: number) {
      now += ms
    },
  }
}
