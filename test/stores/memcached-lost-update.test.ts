import { randomBytes } from 'node:crypto'
import { Client } from 'memjs'
import { afterAll, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { memcachedStore } from '../../src/stores/memcached.js'
import { SECRET } from '../helpers/http.js'
import { memcachedService } from '../helpers/memcached.js'

const memcached = await memcachedService()
const CONNECTIONS = 50

describe.skipIf(!memcached.available)('lost update over separate Memcached connections', () => {
  const prefix = `tessera-test-${process.pid}-${randomBytes(4).toString('hex')}:`
  const clients: Client[] = []
  afterAll(async () => {
    for (const client of clients) client.close()
    await memcached.stop()
  })

  it(`${CONNECTIONS} overlapping commits, each changing its own key: all persist`, async () => {
    // one manager and one connection each, as 50 app instances behind a load balancer
    const apps = Array.from({ length: CONNECTIONS }, () => {
      const client = Client.create(memcached.url, { retries: 1, logger: { log: () => {} } })
      clients.push(client)
      return createSessions({ secret: SECRET, store: memcachedStore({ client, prefix }) })
    })
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
    after.destroy()
    await apps[0]!.commit(after)
  })
})
