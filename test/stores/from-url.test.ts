import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionConfigError, SessionStoreError } from '../../src/core/errors.js'
import type { SessionStore } from '../../src/core/store.js'
import { createSessions } from '../../src/index.js'
import { maskUrl, storeFromUrl } from '../../src/stores/from-url.js'
import { meta, newKey } from '../conformance/store-suite.js'
import { SECRET } from '../helpers/http.js'
import { memcachedService } from '../helpers/memcached.js'
import { MYSQL_URL, POSTGRES_URL, REDIS_URL, service } from '../helpers/services.js'

const dir = await mkdtemp(join(tmpdir(), 'tessera-url-'))
afterAll(() => rm(dir, { recursive: true, force: true }))
const redis = await service('redis', REDIS_URL)
const mysql = await service('mysql', MYSQL_URL)
const postgres = await service('postgres', POSTGRES_URL)
const memcached = await memcachedService()
afterAll(() => memcached.stop())
const run = promisify(execFile)

/** The message `storeFromUrl(url)` fails with (a SessionConfigError). */
async function refusal(url: string): Promise<string> {
  const err = await storeFromUrl(url).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SessionConfigError)
  return (err as Error).message
}

describe('storeFromUrl', () => {
  it('opens each driverless store with its options from the query', async () => {
    const memory = await storeFromUrl('memory:?maxSessions=2&sweepInterval=0')
    expect(memory.store.name).toBe('memory')
    const sessions = createSessions({ secret: SECRET, store: memory.store })
    // maxSessions=2: a third session evicts the oldest
    for (let i = 0; i < 3; i++) {
      const s = await sessions.load(undefined)
      s.set('i', i)
      await sessions.commit(s)
    }
    expect(await (memory.store as SessionStore).count?.()).toBe(2)
    await memory.close()

    expect((await storeFromUrl('cookie:?maxChunks=2')).store.name).toBe('cookie')

    const files = join(dir, 'a b')
    const file = await storeFromUrl(`file:${files.replaceAll(' ', '%20')}?sweepInterval=0`)
    const key = newKey()
    await (file.store as SessionStore).set(key, { fields: { n: '1' }, meta: meta() })
    expect((await stat(join(files, 'sessions'))).isDirectory()).toBe(true)
    await file.close()

    const sqlite = await storeFromUrl('sqlite::memory:?createTable=true&table=t1')
    await (sqlite.store as SessionStore).set(key, { fields: { n: '1' }, meta: meta() })
    expect((await (sqlite.store as SessionStore).get(key))?.fields).toEqual({ n: '1' })
    await sqlite.close()
    await sqlite.close() // idempotent
  })

  it('refuses unknown schemes and parameters, and malformed values, naming them', async () => {
    expect(await refusal('mongodb://x')).toContain('unknown scheme; use one of memory:, cookie:')
    expect(await refusal('no-scheme-at-all')).toContain('unknown scheme')
    expect(await refusal('memory:?maxSesions=3')).toContain(
      'unknown parameter "maxSesions" (the memory store takes maxSessions, sweepInterval)',
    )
    expect(await refusal('sqlite::memory:?createTable=yes')).toContain(
      '?createTable must be true or false, got "yes"',
    )
    expect(await refusal('redis://127.0.0.1?scanCount=-1')).toContain(
      '?scanCount must be a whole number of 0 or more',
    )
    expect(await refusal('redis://127.0.0.1?timeout=soon')).toContain(
      '?timeout must be a whole number of 0 or more',
    )
    expect(await refusal('file:')).toContain('give the directory: file:./var/sessions')
    expect(await refusal('file:./a%zz')).toContain('malformed %-escape ("./a%zz")')
    expect(await refusal(`sqlite:${join(dir, 'no-such-dir', 'x.db')}`)).toContain(
      'cannot open the database file: Cannot open database because the directory does not exist',
    )
    expect(await refusal('memcached://')).toContain('give the server')
  })

  it('never shows a password', async () => {
    expect(maskUrl('postgres://app:s3cret@db:5432/app')).toBe('postgres://app:***@db:5432/app')
    expect(maskUrl('redis://:s3cret@127.0.0.1:6379')).toBe('redis://:***@127.0.0.1:6379')
    expect(maskUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379')
    expect(maskUrl('//app:s3cret@db/app')).toBe('//app:***@db/app')
    const message = await refusal('redis://:s3cret@127.0.0.1?prefix=a&scanCount=x')
    expect(message).not.toContain('s3cret')
  })

  it.skipIf(!redis.available)('opens Redis with the prefix taken out of the URL', async () => {
    const prefix = `tessera-url-${randomBytes(4).toString('hex')}:`
    const opened = await storeFromUrl(`${REDIS_URL}?prefix=${encodeURIComponent(prefix)}`)
    const store = opened.store as SessionStore
    const key = newKey()
    await store.set(key, { fields: { n: '1' }, meta: meta() })
    const keys: string[] = []
    for await (const s of store.scan!()) keys.push(s.key)
    expect(keys).toEqual([key])

    // the same sessions through node-redis, when asked for
    const viaNodeRedis = await storeFromUrl(
      `${REDIS_URL}?driver=redis&timeout=2000&prefix=${encodeURIComponent(prefix)}`,
    )
    expect((await (viaNodeRedis.store as SessionStore).get(key))?.fields).toEqual({ n: '1' })
    await viaNodeRedis.close()
    await store.destroy(key)
    await opened.close()
  })

  it('fails at once, as a store error, when node-redis cannot make its first connection', async () => {
    const started = Date.now()
    const err = await storeFromUrl('redis://127.0.0.1:1?driver=redis').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SessionStoreError)
    expect(err).toMatchObject({ store: 'redis', operation: 'connect' })
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(await refusal('redis://127.0.0.1?driver=jedis')).toContain(
      '?driver must be ioredis or redis, got "jedis"',
    )
  })

  it('gives memjs the memcached user and password percent-decoded, whatever they hold', async () => {
    // a server that offers SASL PLAIN and records what the client sends
    let received = Buffer.alloc(0)
    const sockets: Socket[] = []
    const server = createServer((socket) => {
      sockets.push(socket)
      socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk])
        // a request to list the mechanisms (magic 0x80, opcode 0x20): a response, no body
        if (chunk[0] === 0x80 && chunk[1] === 0x20)
          socket.write(Buffer.from([0x81, 0x20, ...Array<number>(22).fill(0)]))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    // user "us:er", password "p@ss,w:/%": each character memjs's own string would misread
    const opened = await storeFromUrl(`memcached://us%3Aer:p%40ss%2Cw%3A%2F%25@127.0.0.1:${port}`)
    // the first call connects and authenticates; unanswered, it times out (memjs: ~2 s)
    await (opened.store as SessionStore).get(newKey()).catch(() => undefined)
    await opened.close()
    for (const socket of sockets) socket.destroy()
    server.close()
    // the SASL PLAIN request: "PLAIN", then NUL user NUL password
    expect(received.toString('latin1')).toContain('PLAIN\0us:er\0p@ss,w:/%')
  })

  it('a store that refuses its options closes the client its URL opened, so the process can exit', async () => {
    // each store's own check, after the URL's parameters have passed and the client is open
    const urls = [
      `${REDIS_URL}?scanCount=0`,
      `${REDIS_URL}?driver=redis&scanCount=0`,
      `${POSTGRES_URL}?table=not-a-name`,
      `${MYSQL_URL}?table=not-a-name`,
      `memcached://${memcached.url}?casRetries=0`,
      'sqlite::memory:?table=not-a-name',
    ]
    const script = join(dir, 'refused.mts')
    await writeFile(
      script,
      `import { storeFromUrl } from ${JSON.stringify(join(import.meta.dirname, '../../src/stores/from-url.ts'))}
for (const url of ${JSON.stringify(urls)}) {
  const err = await storeFromUrl(url).then(() => undefined, (e) => e)
  console.log(err?.name)
}
`,
    )
    // with a client left open the script never ends; a timeout kills it
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { timeout: 15_000 })
    expect(stdout.trim().split('\n')).toEqual(urls.map(() => 'SessionConfigError'))
  })

  it.skipIf(!mysql.available || !postgres.available)(
    'opens MariaDB as mariadb:// and PostgreSQL as postgresql://, leaving driver parameters to the driver',
    async () => {
      const table = `tessera_url_${process.pid}_${randomBytes(3).toString('hex')}`
      const mariadb = await storeFromUrl(
        `${MYSQL_URL.replace(/^mysql:/, 'mariadb:')}?table=${table}&createTable=true`,
      )
      const pg = await storeFromUrl(
        `${POSTGRES_URL.replace(/^postgres:/, 'postgresql:')}?table=${table}&createTable=true&application_name=tessera-test`,
      )
      for (const { store } of [mariadb, pg]) {
        const s = store as SessionStore
        const key = newKey()
        await s.set(key, { fields: { n: '1' }, meta: meta() })
        expect((await s.get(key))?.fields).toEqual({ n: '1' })
        await s.destroy(key)
      }
      expect([mariadb.store.name, pg.store.name]).toEqual(['mysql', 'postgres'])
      await mariadb.close()
      await pg.close()
      // the tables are this test's own
      const m = await import('mysql2/promise')
      const conn = await m.createConnection(MYSQL_URL)
      await conn.query(`DROP TABLE IF EXISTS \`${table}\``)
      await conn.end()
      const { default: pgLib } = await import('pg')
      const client = new pgLib.Client({ connectionString: POSTGRES_URL })
      await client.connect()
      await client.query(`DROP TABLE IF EXISTS "${table}"`)
      await client.end()
    },
  )
})
