import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { afterAll, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { type RedisClientLike, redisStore } from '../../src/stores/redis.js'
import { SECRET } from '../helpers/http.js'
import { REDIS_URL, service } from '../helpers/services.js'

const redis = await service('redis', REDIS_URL)
const CONNECTIONS = 50

const clients = {
  ioredis: async () => {
    const client = new Redis(REDIS_URL)
    return { client: client as RedisClientLike, close: () => client.quit() }
  },
  'node-redis': async () => {
    const client = await createClient({ url: REDIS_URL }).connect()
    return { client: client as RedisClientLike, close: () => client.close() }
  },
}

describe.skipIf(!redis.available).each(Object.keys(clients) as (keyof typeof clients)[])(
  'lost update over separate Redis connections (%s)',
  (kind) => {
    const prefix = `tessera-test-${process.pid}-${randomBytes(4).toString('hex')}:`
    const closers: (() => Promise<unknown>)[] = []
    afterAll(async () => {
      const admin = new Redis(REDIS_URL)
      let cursor = '0'
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        if (keys.length > 0) await admin.del(...keys)
        cursor = next
      } while (cursor !== '0')
      await admin.quit()
      await Promise.all(closers.map((close) => close()))
    })

    it(`${CONNECTIONS} overlapping commits, each changing its own key: all persist`, async () => {
      // one manager per connection, as 50 app instances behind a load balancer
      const apps = await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          const { client, close } = await clients[kind]()
          closers.push(close)
          return createSessions({ secret: SECRET, store: redisStore({ client, prefix }) })
        }),
      )
      const first = await apps[0]!.load(undefined)
      first.set('base', 0)
      const cookie = (await apps[0]!.commit(first))[0]!.split(';')[0]!

      // every instance loads the same session before any commits
      const sessions = await Promise.all(apps.map((app) => app.load(cookie)))
      sessions.forEach((session, i) => {
        session.set(`k${i}`, i)
      })
      await Promise.all(sessions.map((session, i) => apps[i]!.commit(session)))

      const after = await apps[0]!.load(cookie)
      expect(after.get('base')).toBe(0)
      for (let i = 0; i < CONNECTIONS; i++) expect(after.get(`k${i}`)).toBe(i)
      expect(Object.keys(after.toJSON())).toHaveLength(CONNECTIONS + 1)
    })
  },
)
