import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { SessionStoreError } from '../core/errors.js'
import type { SessionStore } from '../core/store.js'
import { memoryStore } from '../stores/memory.js'
import { OidcError } from './errors.js'
import type { TokenSet } from './fields.js'
import { sharedRefresh } from './shared-refresh.js'

const tokens = (accessToken: string): TokenSet => ({
  claims: { sub: 'u1', iss: 'https://idp.example' },
  idToken: 'id',
  accessToken,
  tokenType: 'bearer',
  refreshToken: `refresh-after-${accessToken}`,
})

/** Two instances' sharing over one store. */
const twoInstances = (store: SessionStore, waitMs = 5000) => {
  const one = sharedRefresh(store, 'idp client', 60_000, waitMs)!
  const two = sharedRefresh(store, 'idp client', 60_000, waitMs)!
  return [one, two] as const
}

describe('sharedRefresh', () => {
  it('is not there for a store without add', () => {
    const { add: _, ...withoutAdd } = memoryStore({ sweepInterval: 0 })
    expect(sharedRefresh(withoutAdd, 'idp client', 60_000, 1000)).toBeUndefined()
  })

  it('spends a refresh token once, and hands its tokens to the others while they are kept', async () => {
    const [one, two] = twoInstances(memoryStore({ sweepInterval: 0 }))
    let spent = 0
    const refresh = async () => {
      spent++
      await sleep(50)
      return tokens('new')
    }
    const [a, b] = await Promise.all([one('rt', refresh), two('rt', refresh)])
    expect(a).toEqual(tokens('new'))
    expect(b).toEqual(tokens('new'))
    expect(await two('rt', refresh)).toEqual(tokens('new'))
    expect(spent).toBe(1)
    // another refresh token is another claim
    expect(await two('other', async () => tokens('other'))).toEqual(tokens('other'))
  })

  it("lets another instance try when one's refresh fails", async () => {
    const [one, two] = twoInstances(memoryStore({ sweepInterval: 0 }))
    const failing = one('rt', async () => {
      await sleep(50)
      throw new OidcError('refresh-failed', 'the provider could not be reached')
    })
    await sleep(5)
    const waiting = two('rt', async () => tokens('second'))
    await expect(failing).rejects.toThrow('could not be reached')
    expect(await waiting).toEqual(tokens('second'))
  })

  it('gives up waiting for a refresh that does not finish, with refresh-failed', async () => {
    const [one, two] = twoInstances(memoryStore({ sweepInterval: 0 }), 150)
    void one('rt', () => new Promise<TokenSet>(() => {}))
    await sleep(5)
    const err = await two('rt', async () => tokens('never')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OidcError)
    expect(err).toMatchObject({
      reason: 'refresh-failed',
      message: expect.stringContaining('another instance'),
    })
  })

  it('fails with a SessionStoreError when the store does, spending nothing', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const broken: SessionStore = {
      ...store,
      add: async () => {
        throw new Error('connection refused')
      },
    }
    let spent = 0
    const err = await sharedRefresh(broken, 'idp client', 60_000, 1000)!('rt', async () => {
      spent++
      return tokens('x')
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SessionStoreError)
    expect(err).toMatchObject({ store: 'memory', operation: 'add' })
    expect(spent).toBe(0)
  })

  it('keeps the claim out of every session list: no user, and marked as no session', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    await sharedRefresh(store, 'idp client', 60_000, 1000)!('rt', async () => tokens('new'))
    const claims = []
    for await (const stored of store.scan()) claims.push(stored)
    expect(claims).toHaveLength(1)
    expect(claims[0]!.key).toMatch(/^[0-9a-f]{64}$/)
    expect(claims[0]!.meta.userId).toBeUndefined()
  })
})
