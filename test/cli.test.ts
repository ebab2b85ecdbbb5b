import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { main } from '../src/cli/main.js'
import { hashSessionId } from '../src/core/ids.js'
import type { SessionStore } from '../src/core/store.js'
import { csrf } from '../src/csrf.js'
import { createSessions } from '../src/index.js'
import { storeFromUrl } from '../src/stores/from-url.js'
import { SECRET } from './helpers/http.js'
import { memcachedService } from './helpers/memcached.js'
import { MYSQL_URL, POSTGRES_URL, REDIS_URL, service } from './helpers/services.js'

const run = promisify(execFile)
const tag = `${process.pid}_${randomBytes(3).toString('hex')}`
const dir = await mkdtemp(join(tmpdir(), 'tessera-cli-'))
const redis = await service('redis', REDIS_URL)
const postgres = await service('postgres', POSTGRES_URL)
const mysql = await service('mysql', MYSQL_URL)
const memcached = await memcachedService()
const cleanups: (() => Promise<unknown>)[] = []

const table = `tessera_cli_${tag}`
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup().catch(() => {})
  // the tables the SQL cases created
  if (postgres.available) {
    const { default: pg } = await import('pg')
    const client = new pg.Client({ connectionString: POSTGRES_URL })
    await client.connect()
    await client.query(`DROP TABLE IF EXISTS "${table}"`)
    await client.end()
  }
  if (mysql.available) {
    const { createConnection } = await import('mysql2/promise')
    const conn = await createConnection(MYSQL_URL)
    await conn.query(`DROP TABLE IF EXISTS \`${table}\``)
    await conn.end()
  }
  await memcached.stop()
  await rm(dir, { recursive: true, force: true })
})

/** `url` with `params` added to its query. */
function withParams(url: string, params: Record<string, string>): string {
  const query = new URLSearchParams(params).toString()
  return `${url}${url.includes('?') ? '&' : '?'}${query}`
}

/** Runs the command in this process; its output, split in lines, and its exit code. */
async function tessera(argv: string[], env: Record<string, string> = {}, now?: () => number) {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out: string[] = []
  const err: string[] = []
  stdout.on('data', (c) => out.push(String(c)))
  stderr.on('data', (c) => err.push(String(c)))
  const io = now === undefined ? { stdout, stderr, env } : { stdout, stderr, env, now }
  const code = await main(argv, io)
  const lines = (chunks: string[]) => chunks.join('').split('\n').filter(Boolean)
  return { code, out: lines(out), err: err.join('') }
}

/** An empty store at `url`, as the app makes it on its first request. */
async function created(url: string) {
  const { store, close } = await storeFromUrl(url)
  await (store as SessionStore).count?.()
  await close()
}

/** Drops what a test left in a store, through the store itself. */
async function emptied(url: string) {
  const { store, close } = await storeFromUrl(url)
  const s = store as SessionStore
  if (s.scan) for await (const { key } of s.scan()) await s.destroy(key)
  await close()
}

interface Seeded {
  /** Cookie values (`id.signature`), by name. */
  cookies: Record<'ada1' | 'ada2' | 'bob' | 'anon', string>
  keys: Record<'ada1' | 'ada2' | 'bob' | 'anon' | 'expired', string>
  csrfSecretText: string
  /** A CSRF token of ada's first session, made when it was created. */
  csrfToken: string
}

const T0 = Date.parse('2026-12-01T10:00:00Z')
const MINUTE = 60_000

/**
 * Four live sessions made through the session manager at known times (ada twice, bob, one
 * anonymous), and one expired record written straight into the store.
 */
async function seed(url: string): Promise<Seeded> {
  const opened = await storeFromUrl(url)
  const store = opened.store as SessionStore
  let now = T0
  const sessions = createSessions<{ cart?: number[]; n?: number }>({
    secret: SECRET,
    store,
    clock: () => now,
    idleTimeout: '30d',
    absoluteTimeout: '60d',
  })
  const protect = csrf()
  let csrfToken = ''
  const make = async (
    at: number,
    build: (s: Awaited<ReturnType<typeof sessions.load>>) => void,
  ) => {
    now = at
    const session = await sessions.load(undefined)
    build(session)
    const [cookie] = await sessions.commit(session)
    return decodeURIComponent(cookie!.split(';')[0]!.split('=')[1]!)
  }
  const cookies = {
    ada1: await make(T0, (s) => {
      s.setUser('ada')
      s.set('cart', [1, 2])
      csrfToken = protect.token(s)
    }),
    ada2: await make(T0 + 5 * MINUTE, (s) => {
      s.setUser('ada')
      s.set('n', 1)
    }),
    bob: await make(T0 + 2 * MINUTE, (s) => {
      s.setUser('bob')
      s.set('n', 2)
    }),
    anon: await make(T0 + 3 * MINUTE, (s) => s.set('n', 3)),
  }
  const keyOf = (cookie: string) => hashSessionId(cookie.split('.')[0]!)
  const record = await store.get(keyOf(cookies.ada1))
  const expired = hashSessionId(randomBytes(32).toString('base64url'))
  await store.set(expired, {
    fields: { n: '4' },
    meta: {
      createdAt: T0 - 100 * MINUTE,
      lastSeenAt: T0 - 100 * MINUTE,
      idleExpiresAt: Date.now() + 1000,
      absoluteExpiresAt: Date.now() + 1000,
    },
  })
  await opened.close()
  return {
    cookies,
    keys: {
      ada1: keyOf(cookies.ada1),
      ada2: keyOf(cookies.ada2),
      bob: keyOf(cookies.bob),
      anon: keyOf(cookies.anon),
      expired,
    },
    csrfSecretText: record!.fields.$csrf!,
    csrfToken,
  }
}

/** After the seeded expired record's time is up (it expires a second after `seed`). */
const LATER = () => Date.now() + 5_000

interface Case {
  name: string
  available: boolean
  url: () => string
  /** Whether the store can prune (Redis expires records by itself). */
  prunes: boolean
}

const CASES: Case[] = [
  {
    name: 'redis',
    available: redis.available,
    url: () => withParams(REDIS_URL, { prefix: `tessera-cli-${tag}:` }),
    prunes: false,
  },
  {
    name: 'postgres',
    available: postgres.available,
    url: () => withParams(POSTGRES_URL, { table, createTable: 'true' }),
    prunes: true,
  },
  {
    name: 'mysql',
    available: mysql.available,
    url: () => withParams(MYSQL_URL, { table, createTable: 'true' }),
    prunes: true,
  },
  {
    name: 'sqlite',
    available: true,
    url: () => `sqlite:${join(dir, 'sessions.db')}?createTable=true`,
    prunes: true,
  },
  { name: 'file', available: true, url: () => `file:${join(dir, 'files')}`, prunes: true },
]

describe.each(CASES)('tessera commands on the $name store', (c) => {
  it.skipIf(!c.available)(
    'counts, lists, shows, revokes, prunes and migrates sessions',
    async () => {
      const url = c.url()
      cleanups.push(() => emptied(url))
      await emptied(url)
      const seeded = await seed(url)
      const env = { TESSERA_STORE: url }

      // count: the five records (the expired one is not removed yet)
      expect(await tessera(['count'], env)).toEqual({ code: 0, out: ['5'], err: '' })
      expect((await tessera(['count', '--json'], env)).out).toEqual(['{"count":5}'])

      // list: one user's sessions, the latest activity first
      const ada = await tessera(['list', '--user', 'ada'], env)
      expect(ada.code).toBe(0)
      expect(ada.out[0]).toMatch(/^KEY\s+USER\s+CREATED\s+LAST SEEN\s+EXPIRES$/)
      expect(ada.out.slice(1).map((l) => l.slice(0, 64))).toEqual([
        seeded.keys.ada2,
        seeded.keys.ada1,
      ])
      expect(ada.out[2]).toContain('ada  ')
      expect(ada.out[2]).toContain('2026-12-01 10:00:00Z')

      // every unexpired session, as JSON lines; the expired one is left out
      const all = await tessera(['list', '--json'], env, LATER)
      const listed = all.out.map((l) => JSON.parse(l) as { key: string; userId?: string })
      expect(listed.map((s) => s.key).sort()).toEqual(
        [seeded.keys.ada1, seeded.keys.ada2, seeded.keys.bob, seeded.keys.anon].sort(),
      )
      expect(listed.find((s) => s.key === seeded.keys.bob)?.userId).toBe('bob')
      expect((await tessera(['list', '--limit', '2'], env)).out).toHaveLength(3)

      // show: by key or by the cookie's value; the CSRF secret's value is never printed
      const shown = await tessera(['show', seeded.keys.ada1], env)
      expect(shown.code).toBe(0)
      expect(shown.out).toContain('user           ada')
      expect(shown.out).toContain('  cart: [1,2]')
      expect(shown.out).toContain(`  $csrf: (hidden, ${seeded.csrfSecretText.length} characters)`)
      expect(shown.out.join('\n')).not.toContain(seeded.csrfSecretText)
      // (after --: one session id in 64 starts with -)
      const byCookie = await tessera(['show', '--json', '--', seeded.cookies.ada1], env)
      expect(JSON.parse(byCookie.out[0]!)).toMatchObject({
        key: seeded.keys.ada1,
        userId: 'ada',
        createdAt: T0,
        fields: { cart: '[1,2]' },
      })

      // revoke one: the session is gone; a second time there is nothing to revoke
      expect((await tessera(['revoke', '--', seeded.cookies.bob], env)).out).toEqual([
        'revoked 1 session',
      ])
      const again = await tessera(['revoke', seeded.keys.bob], env)
      expect(again.code).toBe(1)
      expect(again.err).toContain(`no session with the key ${seeded.keys.bob}`)
      expect((await tessera(['show', seeded.keys.bob], env)).code).toBe(1)

      // revoke a user: both of ada's sessions, nobody else's
      expect((await tessera(['revoke', '--user', 'ada'], env)).out).toEqual([
        'revoked 2 sessions of ada',
      ])
      expect((await tessera(['list', '--user', 'ada'], env)).out).toEqual([])
      expect((await tessera(['show', seeded.keys.anon], env)).code).toBe(0)

      // prune: the expired record goes, the live one stays
      await new Promise((r) => setTimeout(r, 1100))
      const pruned = await tessera(['prune'], env)
      if (c.prunes) {
        expect(pruned).toEqual({ code: 0, out: ['removed 1 expired session'], err: '' })
        expect((await tessera(['count'], env)).out).toEqual(['1'])
      } else {
        expect(pruned.code).toBe(1)
        expect(pruned.err).toContain(
          'the redis store cannot prune: Redis expires sessions by itself',
        )
      }
    },
  )

  it.skipIf(!c.available)(
    'migrates every live session to another store, where its cookie still works',
    async () => {
      const url = c.url()
      cleanups.push(() => emptied(url))
      await emptied(url)
      const seeded = await seed(url)
      await new Promise((r) => setTimeout(r, 1100))
      const target =
        c.name === 'sqlite'
          ? `file:${join(dir, `migrated-${c.name}`)}`
          : `sqlite:${join(dir, `migrated-${c.name}.db`)}?createTable=true`

      const migrated = await tessera(['migrate', '--to', target, '--store', url])
      expect(migrated.err).toBe('')
      expect(migrated.code).toBe(0)
      const into = c.name === 'sqlite' ? 'file' : 'sqlite'
      expect(migrated.out).toEqual(
        c.prunes
          ? [`copied 4 sessions from ${c.name} to ${into} (1 expired, skipped)`]
          : [`copied 4 sessions from ${c.name} to ${into}`],
      )

      // the app, moved to the new store, finds its users signed in with their data
      const opened = await storeFromUrl(target)
      cleanups.push(() => opened.close())
      const sessions = createSessions<{ cart?: number[]; n?: number }>({
        secret: SECRET,
        store: opened.store,
        idleTimeout: '30d',
        absoluteTimeout: '60d',
        clock: () => T0 + 10 * MINUTE,
      })
      const ada = await sessions.load(`sid=${seeded.cookies.ada1}`)
      expect(ada.isNew).toBe(false)
      expect(ada.userId).toBe('ada')
      expect(ada.get('cart')).toEqual([1, 2])
      // its CSRF secret came along: a token from before the move still verifies
      expect(
        csrf().check(ada, { method: 'POST', headers: {}, token: seeded.csrfToken }),
      ).toBeUndefined()
      const bob = await sessions.load(`sid=${seeded.cookies.bob}`)
      expect(bob.get('n')).toBe(2)
      expect((await sessions.listByUser('ada')).length).toBe(2)
    },
  )
})

describe.skipIf(!memcached.available)('tessera commands on the memcached store', () => {
  it('lists and revokes by user, and says why it cannot count, list all or migrate', async () => {
    const url = `memcached://${memcached.url}?prefix=tessera-cli-${tag}:`
    const seeded = await seed(url)
    const env = { TESSERA_STORE: url }
    const ada = await tessera(['list', '--user', 'ada', '--json'], env)
    expect(ada.out.map((l) => (JSON.parse(l) as { key: string }).key)).toEqual([
      seeded.keys.ada2,
      seeded.keys.ada1,
    ])
    expect((await tessera(['show', seeded.keys.bob], env)).out).toContain('user           bob')
    expect((await tessera(['revoke', '--user', 'ada'], env)).out).toEqual([
      'revoked 2 sessions of ada',
    ])
    for (const argv of [['count'], ['list'], ['migrate', '--to', 'file:./never']]) {
      const refused = await tessera(argv, env)
      expect(refused.code).toBe(1)
      expect(refused.err).toMatch(/the memcached store cannot .*: Memcached cannot list its keys/)
    }
    // each capability with its own reason
    expect(await tessera(['prune'], env)).toEqual({
      code: 1,
      out: [],
      err: 'tessera: the memcached store cannot prune: Memcached expires sessions by itself\n',
    })
  })
})

describe('tessera list and the marker a login leaves', () => {
  it('counts the marker for its minute, and lists only the session', async () => {
    const url = `sqlite:${join(dir, 'markers.db')}?createTable=true`
    const opened = await storeFromUrl(url)
    const sessions = createSessions<{ n: number }>({
      secret: SECRET,
      store: opened.store as SessionStore,
    })
    const visit = await sessions.load(undefined)
    visit.set('n', 1)
    const [cookie] = await sessions.commit(visit)
    const login = await sessions.load(cookie!.split(';')[0])
    login.setUser('ada')
    await sessions.commit(login)
    await opened.close()

    const env = { TESSERA_STORE: url }
    expect((await tessera(['count'], env)).out).toEqual(['2'])
    const listed = (await tessera(['list', '--json'], env)).out.map(
      (l) => JSON.parse(l) as { key: string; userId?: string },
    )
    expect(listed).toHaveLength(1)
    expect(listed[0]?.userId).toBe('ada')
  })
})

describe('tessera command line', () => {
  const bin = ['--import', 'tsx', 'src/cli/index.ts']
  const exec = async (argv: string[], env: Record<string, string> = {}) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [...bin, ...argv], {
        env: { ...process.env, TESSERA_STORE: '', ...env },
      })
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string }
      return { code: e.code, stdout: e.stdout, stderr: e.stderr }
    }
  }

  it('runs as a program: help, keygen, a store command, and exit codes', async () => {
    const help = await exec(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('migrate --to URL')
    const secret = await exec(['keygen'])
    expect(secret.stdout.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const url = `sqlite:${join(dir, 'bin.db')}?createTable=true`
    await created(url)
    const counted = await exec(['count'], { TESSERA_STORE: url })
    expect(counted).toEqual({ code: 0, stdout: '0\n', stderr: '' })
    const usage = await exec(['count'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('which store? Give --store URL')
  })

  it('refuses bad usage with exit code 2 and a sentence that says what to change', async () => {
    const cases: [string[], string][] = [
      [[], 'Usage: tessera <command>'],
      [['frobnicate'], 'unknown command "frobnicate"'],
      [['count', '--nope'], "Unknown option '--nope'"],
      [['show'], 'show takes one session key'],
      [['count', 'extra'], 'count takes no argument "extra"'],
      [['prune', '--user', 'u1'], '--user goes with list and revoke, not prune'],
      [['migrate'], 'migrate needs --to URL'],
      [['list', '--limit', '0'], '--limit must be a whole number of 1 or more'],
      [['keygen', '--bytes', '16'], '--bytes must be a whole number from 32 to 1024'],
      [['keygen', '64'], 'keygen takes no argument "64"'],
      [['count', '--store', 'mysql://bad:url:x'], '"mysql://bad:url:x": is not a valid URL'],
      [['count', '--store', 'postgres://[bad'], '"postgres://[bad": is not a valid URL'],
      [
        ['count', '--store', 'redis://:rd1s/9xq@127.0.0.1:6379/0'],
        '"redis://:***@127.0.0.1:6379/0": the password holds a raw /, ? or #',
      ],
      [['count', '--store', 'nope://x'], 'unknown scheme'],
      [['count', '--store', 'sqlite:./x.db?tabel=t'], 'unknown parameter "tabel"'],
      [
        ['show', `-${'a'.repeat(42)}.sig`],
        `A session id starting with "-" goes after "--": tessera show -- -${'a'.repeat(42)}.sig`,
      ],
    ]
    for (const [argv, message] of cases) {
      const result = await tessera(argv)
      expect(result.code, argv.join(' ')).toBe(2)
      expect(result.err + result.out.join('\n'), argv.join(' ')).toContain(message)
    }
  })

  it("finds the store in the app's config file, or in TESSERA_STORE over it", async () => {
    const file = join(dir, 'tessera.yaml')
    const url = `sqlite:${join(dir, 'config.db')}?createTable=true`
    await created(url)
    await writeFile(file, `store: "${url}"\n`)
    const fromFile = await tessera(['count', '--config', file])
    expect(fromFile).toEqual({ code: 0, out: ['0'], err: '' })
    expect((await tessera(['count'], { TESSERA_CONFIG: file })).out).toEqual(['0'])
    // the environment wins over the file, as in the app
    const overridden = await tessera(['count'], { TESSERA_CONFIG: file, TESSERA_STORE: 'memory:' })
    expect(overridden.err).toContain('the memory store lives inside one app process')
    // a mistake in the file is a usage error naming it
    await writeFile(file, 'stor: "memory:"\n')
    const typo = await tessera(['count', '--config', file])
    expect(typo.code).toBe(2)
    expect(typo.err).toContain('stor')
    expect(typo.err).toContain('store')
    const both = await tessera(['count', '--config', file, '--store', 'memory:'])
    expect(both.err).toContain('give --store or --config, not both')
  })

  it("reads only the store from the app's config, not the secrets it needs no more than they", async () => {
    // the app's file, in an admin's shell without SESSION_SECRETS, with a short TESSERA_SECRET
    const file = join(dir, 'app.yaml')
    const url = `sqlite:${join(dir, 'app.db')}?createTable=true`
    await created(url)
    await writeFile(
      file,
      `secrets: \${SESSION_SECRETS}\nstore: "${url}"\nidleTimeout: 1m\ntouchAfter: 5m\n`,
    )
    expect(await tessera(['count', '--config', file], { TESSERA_SECRET: 'short' })).toEqual({
      code: 0,
      out: ['0'],
      err: '',
    })
    // a key the config does not have is still a mistake
    await writeFile(file, `secrets: \${SESSION_SECRETS}\nstore: "${url}"\nidleTimout: 1m\n`)
    const typo = await tessera(['count', '--config', file])
    expect(typo.code).toBe(2)
    expect(typo.err).toContain('idleTimout is not a known key; did you mean idleTimeout?')
  })

  it('opens the store a command names without creating it: a mistyped path is an error', async () => {
    const typo = join(dir, 'no', 'such', 'sesions')
    for (const argv of [['count'], ['list'], ['prune'], ['revoke', '--user', 'u1']]) {
      const file = await tessera([...argv, '--store', `file:${typo}`])
      expect(file.code, argv[0]).toBe(2)
      expect(file.err).toBe(
        `tessera: [tessera] store URL "file:${typo}": there is no directory ${typo}; check the path\n`,
      )
    }
    expect(existsSync(join(dir, 'no'))).toBe(false)
    const db = join(dir, 'typo.db')
    const sqlite = await tessera(['count', '--store', `sqlite:${db}?createTable=true`])
    expect(sqlite).toEqual({
      code: 2,
      out: [],
      err: `tessera: [tessera] store URL "sqlite:${db}?createTable=true": there is no database file ${db}; check the path\n`,
    })
    expect(existsSync(db)).toBe(false)
    // the source of migrate too; its target is made
    const from = await tessera(['migrate', '--store', `file:${typo}`, '--to', `file:${dir}/to`])
    expect(from.err).toContain(`there is no directory ${typo}`)
  })

  it('refuses a file: directory that holds other things and is not a store, creating nothing', async () => {
    const project = join(dir, 'not-a-store')
    await mkdir(join(project, 'src'), { recursive: true })
    await writeFile(join(project, 'package.json'), '{}')
    const source = join(dir, 'empty-store')
    await mkdir(source, { recursive: true })
    for (const argv of [
      ['count', '--store', `file:${project}`],
      ['migrate', '--store', `file:${source}`, '--to', `file:${project}`],
    ]) {
      const result = await tessera(argv)
      expect(result.code, argv[0]).toBe(2)
      expect(result.err).toContain(
        `${project} is not empty and is not a file store (it holds "package.json", "src" and no sessions/ directory)`,
      )
    }
    expect((await readdir(project)).sort()).toEqual(['package.json', 'src'])
  })

  it('says what it cannot do on a client-side or in-process store', async () => {
    for (const [store, message] of [
      ['cookie:', 'the cookie store keeps each session in its browser'],
      ['memory:', 'the memory store lives inside one app process'],
    ]) {
      const result = await tessera(['count', '--store', store!])
      expect(result.code).toBe(1)
      expect(result.err).toContain(message)
    }
    await mkdir(join(dir, 'x'), { recursive: true })
    const bad = await tessera(['show', 'not-a-key', '--store', `file:${join(dir, 'x')}`])
    expect(bad.code).toBe(1)
    expect(bad.err).toContain('"not-a-key" is neither a session\'s key')
    // an id starting with "-", after "--", is looked up like any other
    const dashed = `-${'a'.repeat(42)}`
    const lookedUp = await tessera(['show', '--store', `file:${join(dir, 'x')}`, '--', dashed])
    expect(lookedUp.code).toBe(1)
    expect(lookedUp.err).toContain(`no session with the key ${hashSessionId(dashed)}`)
  })

  it.skipIf(!redis.available)(
    'fails with the store and operation when the server is down, and hides its password',
    async () => {
      const result = await tessera(['count', '--store', 'redis://:hunter2@127.0.0.1:1'])
      expect(result.code).toBe(1)
      expect(result.err).toContain('[store:redis] count failed')
      expect(result.err).not.toContain('hunter2')
    },
  )

  /** `n` live sessions written straight into `store`, one in two of ada. */
  const filled = async (store: SessionStore, n: number) => {
    const now = Date.now()
    const meta = {
      createdAt: now,
      lastSeenAt: now,
      idleExpiresAt: now + 3_600_000,
      absoluteExpiresAt: now + 3_600_000,
    }
    for (let i = 0; i < n; i++)
      await store.set(hashSessionId(randomBytes(32).toString('base64url')), {
        fields: { n: String(i) },
        meta: { ...meta, ...(i % 2 === 0 ? { userId: 'ada' } : {}) },
      })
  }

  /** A SQLite store of `n` sessions, written in one transaction (one each would take seconds). */
  const sqliteOf = async (file: string, n: number) => {
    const { default: Database } = await import('better-sqlite3')
    const { sqliteStore } = await import('../src/stores/sqlite.js')
    const db = new Database(file)
    const store = sqliteStore({ db, createTable: true })
    await store.count()
    db.exec('BEGIN')
    await filled(store, n)
    db.exec('COMMIT')
    db.close()
    return `sqlite:${file}`
  }

  /**
   * Runs the program; with `head`, closes its stdout once that many lines have come; with
   * `closedStderr`, closes its stderr before it starts writing.
   */
  const spawned = (argv: string[], head?: number, closedStderr = false) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, [...bin, ...argv], {
        env: { ...process.env, TESSERA_STORE: '' },
      })
      if (closedStderr) child.stderr.destroy()
      let out = ''
      let err = ''
      child.stdout.on('data', (chunk) => {
        out += chunk
        if (head !== undefined && out.split('\n').length > head) child.stdout.destroy()
      })
      child.stderr.on('data', (chunk) => {
        err += chunk
      })
      child.on('exit', (code) => resolve({ code, out, err }))
    })

  it('migrate into a store that fails every write: one line, exit 1, no stack trace', async () => {
    const from = `file:${join(dir, 'migrate-fails')}`
    const opened = await storeFromUrl(from)
    await filled(opened.store as SessionStore, 100)
    await opened.close()
    // a SQL store without ?createTable=true has no table
    const to = `sqlite:${join(dir, 'migrate-fails.db')}`
    const result = await spawned(['migrate', '--store', from, '--to', to])
    expect(result).toEqual({
      code: 1,
      out: '',
      err: 'tessera: [tessera] [store:sqlite] set failed: no such table: tessera_sessions\n',
    })
  })

  it('tessera list | head: a reader that goes away ends the command quietly', async () => {
    const url = await sqliteOf(join(dir, 'head.db'), 3000)
    for (const argv of [['list'], ['list', '--user', 'ada', '--json']]) {
      const result = await spawned([...argv, '--store', url], 2)
      expect(result.err, argv.join(' ')).toBe('')
      expect(result.code, argv.join(' ')).toBe(0)
    }
  })

  it('a closed stderr (2>&1 | head, 2>&-): the error is lost, not turned into a crash', async () => {
    // each fails with a message on stderr; a crash on its EPIPE would exit 1, not 2
    for (const argv of [['count', '--store', 'mongodb://x'], ['no-such-command']]) {
      const result = await spawned(argv, undefined, true)
      expect(result, argv.join(' ')).toEqual({ code: 2, out: '', err: '' })
    }
    // and a command that succeeds still does
    const keygen = await spawned(['keygen'], undefined, true)
    expect(keygen.code).toBe(0)
    expect(keygen.out).toMatch(/^[A-Za-z0-9_-]{43}\n$/)
  })

  it('writes a long list no faster than its reader takes it, and stops when it goes', async () => {
    const url = await sqliteOf(join(dir, 'slow.db'), 2000)
    // a reader that takes nothing: the list waits once the stream's buffer is full
    const stdout = new PassThrough({ highWaterMark: 4096 })
    const stderr = new PassThrough()
    const code = main(['list', '--json', '--store', url], { stdout, stderr, env: {} })
    const buffered = () => stdout.readableLength + stdout.writableLength
    await new Promise((r) => setTimeout(r, 300))
    // what the stream's buffers hold, not the 2000 lines (some 300 kB)
    expect(buffered()).toBeGreaterThan(4096)
    expect(buffered()).toBeLessThan(16_384)
    // read: it writes more, up to as much again
    const first = String(stdout.read())
    await new Promise((r) => setTimeout(r, 50))
    expect(buffered()).toBeGreaterThan(4096)
    expect(buffered()).toBeLessThan(16_384)
    expect(String(stdout.read())).not.toBe(first)
    // the reader goes away: the command ends, done
    stdout.destroy()
    expect(await code).toBe(0)
  })

  it('draws a progress bar on a terminal while it migrates', async () => {
    const from = `file:${join(dir, 'progress')}`
    await seed(from)
    const stdout = new PassThrough()
    const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 100 })
    let drawn = ''
    stderr.on('data', (c) => {
      drawn += String(c)
    })
    stdout.resume()
    const code = await main(
      ['migrate', '--store', from, '--to', `file:${join(dir, 'progress-to')}`],
      { stdout, stderr, env: {} },
    )
    expect(code).toBe(0)
    expect(drawn).toMatch(/\d+\/5 sessions/)
    expect(drawn).toContain('%')
  })
})
