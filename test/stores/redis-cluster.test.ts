import { randomBytes } from 'node:crypto'
import { Cluster } from 'ioredis'
import { createCluster } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisClientLike, redisStore } from '../../src/stores/redis.js'
import { describeStoreConformance, meta, newKey } from '../conformance/store-suite.js'
import { type RunningCluster, redisBinaries, startRedisCluster } from '../helpers/redis-cluster.js'
import { service } from '../helpers/services.js'

const binaries = await service('redis-server and redis-cli (for a test cluster)', 'PATH', () =>
  redisBinaries(),
)
const CAPABILITIES = ['add', 'listByUser', 'destroyByUser', 'count', 'scan'] as const
const testPrefix = () => `tessera-test-${process.pid}-${randomBytes(4).toString('hex')}:`

describe.skipIf(!binaries.available)('redis store on a three-master Redis Cluster', () => {
  let cluster: RunningCluster
  beforeAll(async () => {
    cluster = await startRedisCluster(3)
  })
  afterAll(() => cluster?.stop())

  const clients = {
    'ioredis Cluster': async () => {
      const client = new Cluster(cluster.nodes)
      await new Promise((resolve, reject) => {
        client.once('ready', resolve)
        client.once('error', reject)
      })
      return { client: client as RedisClientLike, close: () => client.quit() }
    },
    'node-redis cluster': async () => {
      const client = await createCluster({
        rootNodes: cluster.nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })),
      }).connect()
      return { client: client as RedisClientLike, close: () => client.close() }
    },
  }

  for (const [kind, make] of Object.entries(clients)) {
    let close: () => Promise<unknown>
    describeStoreConformance(`redis (${kind})`, {
      create: async () => {
        const made = await make()
        close = made.close
        return redisStore({ client: made.client, prefix: testPrefix() })
      },
      // the cluster and its data go away with the test
      cleanup: async () => {
        await close()
      },
      expiry: 'ttl',
      capabilities: CAPABILITIES,
    })
  }

  it('spreads sessions over every master, and count and scan visit them all', async () => {
    const { client, close } = await clients['ioredis Cluster']()
    try {
      const store = redisStore({ client, prefix: testPrefix() })
      const keys = Array.from({ length: 30 }, newKey)
      await Promise.all(keys.map((key) => store.set(key, { fields: {}, meta: meta() })))
      const perNode = await Promise.all(
        (client as Cluster).nodes('master').map((node) => node.dbsize()),
      )
      expect(perNode.filter((n) => n > 0)).toHaveLength(3)
      expect(await store.count()).toBe(30)
      const seen: string[] = []
      for await (const s of store.scan()) seen.push(s.key)
      expect(seen.sort()).toEqual(keys.sort())
    } finally {
      await close()
    }
  })

  it('count and scan on an ioredis Cluster not yet connected see every session', async () => {
    // an admin tool builds its client and counts at once, before the cluster has found its nodes
    const { client: ready, close } = await clients['ioredis Cluster']()
    const prefix = testPrefix()
    const fresh: Cluster[] = []
    const connecting = () => {
      const client = new Cluster(cluster.nodes)
      fresh.push(client)
      return redisStore({ client: client as RedisClientLike, prefix })
    }
    try {
      const store = redisStore({ client: ready, prefix })
      const keys = Array.from({ length: 12 }, newKey)
      await Promise.all(keys.map((key) => store.set(key, { fields: {}, meta: meta() })))
      expect(await connecting().count()).toBe(12)
      const seen: string[] = []
      for await (const s of connecting().scan()) seen.push(s.key)
      expect(seen.sort()).toEqual(keys.sort())
    } finally {
      await Promise.all(fresh.map((client) => client.quit()))
      await close()
    }
  })
})
