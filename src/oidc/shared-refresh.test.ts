import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { fc, runs } from '../../test/helpers/property.js'
import { SessionStoreError } from '../core/errors.js'
import type { SessionStore } from '../core/store.js'
import { memoryStore } from '../stores/memory.js'
import { OidcError } from './errors.js'
import type { TokenSet } from './fields.js'
import { sharedRefresh, sharedSpend } from './shared-refresh.js'

const tokens = (accessToken: string): TokenSet => ({
  claims: { sub: 'u1', iss: 'https://idp.example' },
  idToken: 'id',
  accessToken,
  tokenType: 'bearer',
  refreshToken: `refresh-after-${accessToken}`,
})

/** Tokens are due again 60 s after they were made (none of these tests waits so long). */
const freshFor = () => 60_000

/** Two instances' sharing over one store. */
const twoInstances = (store: SessionStore, waitMs = 5000) => {
  const one = sharedRefresh(store, 'idp client', { keepMs: 60_000, waitMs, freshFor })!
  const two = sharedRefresh(store, 'idp client', { keepMs: 60_000, waitMs, freshFor })!
  return [one, two] as const
}

describe('sharedRefresh', () => {
  it('is not there for a store without add', () => {
    const { add: _, ...withoutAdd } = memoryStore({ sweepInterval: 0 })
    expect(
      sharedRefresh(withoutAdd, 'idp client', { keepMs: 60_000, waitMs: 1000, freshFor }),
    ).toBeUndefined()
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
    const err = await sharedRefresh(broken, 'idp client', {
      keepMs: 60_000,
      waitMs: 1000,
      freshFor,
    })!('rt', async () => {
      spent++
      return tokens('x')
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SessionStoreError)
    expect(err).toMatchObject({ store: 'memory', operation: 'add' })
    expect(spent).toBe(0)
  })

  it('hands out tokens only until they are due again, then refreshes anew', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const share = (fresh: number) =>
      sharedRefresh(store, 'idp client', { keepMs: 60_000, waitMs: 1000, freshFor: () => fresh })!
    // a provider that does not rotate: the same refresh token comes back with every refresh
    expect(await share(3000)('rt', async () => tokens('first'))).toEqual(tokens('first'))
    expect(await share(3000)('rt', async () => tokens('second'))).toEqual(tokens('first'))
    // tokens due at once stay for a moment, so instances waiting on them still take them
    expect(await share(-5000)('rt2', async () => tokens('due'))).toEqual(tokens('due'))
    expect(await share(-5000)('rt2', async () => tokens('again'))).toEqual(tokens('due'))
    await sleep(2100)
    expect(await share(3000)('rt2', async () => tokens('again'))).toEqual(tokens('again'))
  })

  it('keeps the claim out of every session list: no user, and marked as no session', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    await sharedRefresh(store, 'idp client', { keepMs: 60_000, waitMs: 1000, freshFor })!(
      'rt',
      async () => tokens('new'),
    )
    const claims = []
    for await (const stored of store.scan()) claims.push(stored)
    expect(claims).toHaveLength(1)
    expect(claims[0]!.key).toMatch(/^[0-9a-f]{64}$/)
    expect(claims[0]!.meta.userId).toBeUndefined()
  })
})

describe('sharedSpend of authorization codes', () => {
  const twoCallbacks = (store: SessionStore) => {
    const share = () =>
      sharedSpend(store, 'idp client', { spent: 'code', keepMs: 60_000, waitMs: 5000 })!
    return [share(), share()] as const
  }

  it('exchanges a code once, and hands its tokens to the others', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const [one, two] = twoCallbacks(store)
    let spent = 0
    const exchange = async () => {
      spent++
      await sleep(50)
      return tokens('login')
    }
    const [a, b] = await Promise.all([one('code', exchange), two('code', exchange)])
    expect(a).toEqual(tokens('login'))
    expect(b).toEqual(tokens('login'))
    expect(spent).toBe(1)
    // not the claim of a refresh token that happens to be spelled the same
    expect(
      await sharedRefresh(store, 'idp client', { keepMs: 60_000, waitMs: 1000, freshFor })!(
        'code',
        async () => tokens('refreshed'),
      ),
    ).toEqual(tokens('refreshed'))
  })

  it("gives the others the exchange's failure as theirs, without sending the code again", async () => {
    const [one, two] = twoCallbacks(memoryStore({ sweepInterval: 0 }))
    const failing = one('code', async () => {
      await sleep(50)
      throw new OidcError('provider-error', 'the provider did not complete the login', {
        error: 'invalid_grant',
      })
    })
    await sleep(5)
    let spent = 0
    const waiting = two('code', async () => {
      spent++
      return tokens('second')
    }).catch((e: unknown) => e)
    await expect(failing).rejects.toMatchObject({ reason: 'provider-error' })
    const err = await waiting
    expect(err).toBeInstanceOf(OidcError)
    expect(err).toMatchObject({
      reason: 'provider-error',
      error: 'invalid_grant',
      message: expect.stringContaining('another instance'),
    })
    expect(spent).toBe(0)
    // and so does a callback that comes later, while the claim is kept
    await expect(two('code', async () => tokens('third'))).rejects.toMatchObject({
      error: 'invalid_grant',
    })
  })

  it('lets another instance try after a failure that is not an OidcError', async () => {
    const [one, two] = twoCallbacks(memoryStore({ sweepInterval: 0 }))
    const failing = one('code', async () => {
      await sleep(50)
      throw new Error('out of memory')
    })
    await sleep(5)
    const waiting = two('code', async () => tokens('second'))
    await expect(failing).rejects.toThrow('out of memory')
    expect(await waiting).toEqual(tokens('second'))
  })
})

describe('sharedRefresh, any schedule', () => {
  it('never spends a refresh token twice: every instance gets the one refresh, or an error', async () => {
    const schedule = fc.record({
      // when each instance finds the token due, ms
      starts: fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 2, maxLength: 5 }),
      // how long each attempt at the provider takes, and whether it fails (out of reach)
      attempts: fc.array(fc.record({ ms: fc.integer({ min: 0, max: 30 }), fails: fc.boolean() }), {
        minLength: 1,
        maxLength: 6,
      }),
    })
    await fc.assert(
      fc.asyncProperty(schedule, async ({ starts, attempts }) => {
        const store = memoryStore({ sweepInterval: 0 })
        let spent = 0
        let tried = 0
        /** The provider: a refresh token spent once is refused after (and the grant revoked). */
        const provider = async (): Promise<TokenSet> => {
          const attempt = attempts[tried++ % attempts.length]!
          await sleep(attempt.ms)
          if (attempt.fails) throw new Error('provider out of reach')
          spent++
          return tokens(`spend-${spent}`)
        }
        const results = await Promise.all(
          starts.map(async (at) => {
            const share = sharedRefresh(store, 'idp client', {
              keepMs: 60_000,
              waitMs: 2000,
              freshFor,
            })!
            await sleep(at)
            return share('rt', provider).catch((err: unknown) => err as Error)
          }),
        )
        expect(spent).toBeLessThanOrEqual(1)
        for (const result of results) {
          if (result instanceof Error) expect(result.message).toBe('provider out of reach')
          else expect(result).toEqual(tokens('spend-1'))
        }
        // with a provider that always answers, every instance gets the one refresh
        if (attempts.every((a) => !a.fails))
          expect(results).toEqual(starts.map(() => tokens('spend-1')))
      }),
      { numRuns: runs(40) },
    )
  })
})
