import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { postgresStore } from '../../src/stores/postgres.js'
import { SECRET } from '../helpers/http.js'
import { POSTGRES_URL, service } from '../helpers/services.js'

const { available } = await service('postgres', POSTGRES_URL)
const table = `tessera_test_${process.pid}_${randomBytes(3).toString('hex')}_lost`
const pool = available ? new pg.Pool({ connectionString: POSTGRES_URL, max: 10 }) : undefined

afterAll(async () => {
  if (!pool) return
  await pool.query(`DROP TABLE IF EXISTS "${table}"`)
  await pool.end()
})

describe.runIf(available)('lost update (postgres)', () => {
  it('50 overlapping commits of one session over 10 connections, each its own key: all persist', async () => {
    const store = postgresStore({ pool: pool!, table, createTable: true, pruneInterval: 0 })
    const sessions = createSessions({ secret: SECRET, store })
    const first = await sessions.load(undefined)
    first.set('base', 0)
    const cookie = (await sessions.commit(first))[0]!.split(';')[0]!

    // every request loads the same state before any of them commits
    const loaded = await Promise.all(Array.from({ length: 50 }, () => sessions.load(cookie)))
    for (const [i, session] of loaded.entries()) session.set(`k${i}`, i)
    await Promise.all(loaded.map((session) => sessions.commit(session)))
    expect(pool!.totalCount).toBeGreaterThan(1) // the commits really ran on several connections

    const after = await sessions.load(cookie)
    expect(after.get('base')).toBe(0)
    for (let i = 0; i < 50; i++) expect(after.get(`k${i}`)).toBe(i)
    expect(after.keys()).toHaveLength(51)
    await store.close()
  })
})
