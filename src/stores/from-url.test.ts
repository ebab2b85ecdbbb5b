import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionConfigError } from '../core/errors.js'
import type { SessionStore } from '../core/store.js'
import { maskUrl, storeFromUrl } from './from-url.js'

const dir = await mkdtemp(join(tmpdir(), 'tessera-from-url-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

/** The message `storeFromUrl` fails with (a SessionConfigError). */
async function refusal(...args: Parameters<typeof storeFromUrl>): Promise<string> {
  const err = await storeFromUrl(...args).then(
    async (opened) => {
      await opened.close()
      return undefined
    },
    (e: unknown) => e,
  )
  expect(err, args[0]).toBeInstanceOf(SessionConfigError)
  return (err as Error).message
}

describe('maskUrl', () => {
  it('hides a password holding /, ?, # or @ whole: up to the last @', () => {
    for (const password of ['ab/cd+ef==', 'sec?ret', 'sec#ret', 'sec@ret', 'a/b?c#d@e'])
      expect(maskUrl(`postgres://app:${password}@db.internal:5432/app?sslmode=require`)).toBe(
        'postgres://app:***@db.internal:5432/app?sslmode=require',
      )
    expect(maskUrl('redis://:ab/cd@127.0.0.1:6379/0?prefix=app:')).toBe(
      'redis://:***@127.0.0.1:6379/0?prefix=app:',
    )
    // nothing to hide
    expect(maskUrl('redis://127.0.0.1:6379/0?prefix=app:')).toBe(
      'redis://127.0.0.1:6379/0?prefix=app:',
    )
    expect(maskUrl('postgres://app@db/app')).toBe('postgres://app@db/app')
    expect(maskUrl('file:///var/a@b/sessions')).toBe('file:///var/a@b/sessions')
  })

  it('hides the password of a memcached server after one with a user and none', () => {
    expect(maskUrl('memcached://x@h1:11211,u:p4ss@h2:11211')).not.toContain('p4ss')
    expect(maskUrl('memcached://u:p4ss@h1:11211,h2:11211')).toBe(
      'memcached://u:***@h1:11211,h2:11211',
    )
    expect(maskUrl('memcached://x@h1:11211,h2:11211')).toBe('memcached://x@h1:11211,h2:11211')
  })

  it('hides a password in a URL without the // after its scheme, or without a scheme', async () => {
    expect(maskUrl('admin:hunter2@127.0.0.1:6379')).toBe('admin:***@127.0.0.1:6379')
    expect(maskUrl('redis:admin:hunter2@127.0.0.1:6379')).toBe('redis:***@127.0.0.1:6379')
    expect(maskUrl('memory:')).toBe('memory:')
    for (const url of ['admin:hunter2@127.0.0.1:6379', 'redis:admin:hunter2@127.0.0.1:6379']) {
      const err = await storeFromUrl(url).catch((e: unknown) => e)
      expect(err, url).toBeInstanceOf(SessionConfigError)
      expect((err as Error).message, url).not.toContain('hunter2')
    }
  })
})

describe('storeFromUrl: a raw ? in a password', () => {
  it('is refused before its tail is read as a parameter, which a message would quote', async () => {
    for (const url of [
      'redis://:ab?cd&scanCount=x9tail@127.0.0.1',
      'postgres://app:ab?cd&createTable=x9tail@127.0.0.1/app',
      'memcached://u:ab?cd&prefix=x9tail@127.0.0.1:11211',
    ]) {
      const err = await storeFromUrl(url).catch((e: unknown) => e)
      expect(err, url).toBeInstanceOf(SessionConfigError)
      expect(String((err as Error).message), url).not.toContain('x9tail')
      expect(String((err as Error).message), url).toContain('percent-encode')
    }
  })
})

describe('storeFromUrl: server URLs', () => {
  it('refuses a password with raw /, ?, # or @, saying to percent-encode it', async () => {
    for (const url of [
      'postgres://app:ab/cd+ef==@127.0.0.1:5432/app',
      'postgres://app:sec?ret@127.0.0.1:5432/app',
      'mysql://app:sec#ret@127.0.0.1:3306/app',
      'mysql://app:sec@ret@127.0.0.1:3306/app',
      'redis://:123/x@127.0.0.1:6379/0',
    ]) {
      const text = await refusal(url)
      expect(text, url).toContain('percent-encode the password (/ as %2F')
      expect(text, url).toMatch(/store URL "(postgres|mysql|redis):\/\/(app)?:\*\*\*@127\.0\.0\.1/)
      expect(text, url).not.toMatch(/ret|ab\/cd|123/)
    }
  })

  it('refuses a password of digits then a raw ? or #, which parses as a port', async () => {
    for (const url of [
      'redis://user:1234?x@127.0.0.1:6379/0',
      'redis://:12#34@127.0.0.1:6379',
      'redis://user:12#34@127.0.0.1:6379',
      'redis://:5678#@127.0.0.1:6379',
      'postgres://app:4321?@127.0.0.1:5432/app',
      'mysql://app:8765#x@127.0.0.1:3306/app?timeout=100',
    ]) {
      const text = await refusal(url)
      expect(text, url).toContain('percent-encode the password (/ as %2F')
      expect(text, url).toMatch(
        /store URL "(postgres|mysql|redis):\/\/(user|app)?:\*\*\*@127\.0\.0\.1/,
      )
      expect(text, url).not.toMatch(/1234|12#|5678|4321|8765/)
    }
    // read the same way, so refused the same way: an @ in the query after host:port
    expect(await refusal('redis://127.0.0.1:6379?prefix=a@b:')).toContain(
      'the password holds a raw /, ? or # (or the query a raw @); percent-encode',
    )
    // which, encoded, opens
    const encoded = 'postgres://127.0.0.1:5432/app?application_name=a%40b'
    const opened = await storeFromUrl(encoded)
    expect(opened.url).toBe(encoded)
    await opened.close()
  })

  it('refuses a URL that does not parse as a SessionConfigError, not a TypeError', async () => {
    for (const url of [
      'mysql://bad:url:x',
      'postgres://[bad',
      'rediss://host:port',
      'redis://[::1',
    ])
      expect(await refusal(url)).toBe(
        `[tessera] store URL "${url}": is not a valid URL (scheme://user:password@host:port/database)`,
      )
  })
})

describe('storeFromUrl: memcached:// servers, checked as the other servers are', () => {
  it('refuses a port that is not one, a server without a host, a path, a parameter memjs would drop', async () => {
    const form = 'memcached://[user:password@]host[:port][,host2[:port],...]'
    for (const [url, problem] of [
      ['memcached://127.0.0.1:99999', `the server is not a valid host:port (${form})`],
      ['memcached://127.0.0.1:port', `the server is not a valid host:port (${form})`],
      ['memcached://127.0.0.1:11211,', `server 2 of 2 has no host (${form})`],
      ['memcached://:11211', `the server is not a valid host:port (${form})`],
      [
        'memcached://127.0.0.1:11211/0',
        `Memcached has no database or path; give only its servers: ${form}`,
      ],
      [
        'memcached://127.0.0.1:11211#x',
        `Memcached has no database or path; give only its servers: ${form}`,
      ],
      [
        'memcached://127.0.0.1:11211?prefix=app:&timeout=5',
        'unknown parameter "timeout" (the memcached store takes prefix, casRetries)',
      ],
    ] as const)
      expect(await refusal(url)).toBe(`[tessera] store URL "${url}": ${problem}`)
  })

  it('refuses a password with a raw /, ?, # or @, saying to percent-encode it, and never shows it', async () => {
    for (const url of [
      'memcached://app:ab/cd@127.0.0.1:11211',
      'memcached://app:1234?x@127.0.0.1:11211',
      'memcached://app:5678#x@127.0.0.1:11211',
      'memcached://app:sec@ret@127.0.0.1:11211',
      'memcached://app:sec?ret@127.0.0.1:11211',
      'memcached://127.0.0.1:11211,app:sec@ret@127.0.0.1:11212',
      'memcached://app:s3cret@127.0.0.1:port',
    ]) {
      const text = await refusal(url)
      expect(text, url).toContain('percent-encode the password (/ as %2F')
      expect(text, url).toMatch(/store URL "memcached:\/\/(app|127\.0\.0\.1):\*\*\*@127\.0\.0\.1:/)
      expect(text, url).not.toMatch(/ab\/cd|1234|5678|sec|s3cret/)
    }
  })

  it('opens several servers, an IPv6 one, with a trailing /, and masks the password', async () => {
    const opened = await storeFromUrl(
      'memcached://app:s%40cret@127.0.0.1:11211,[::1]:11212/?prefix=app:',
    )
    expect(opened.store.name).toBe('memcached')
    expect(opened.url).toBe('memcached://app:***@127.0.0.1:11211,[::1]:11212/?prefix=app:')
    await opened.close()
  })
})

describe('storeFromUrl: create: false', () => {
  it('opens a file: or sqlite: store only where it exists, creating nothing', async () => {
    const typo = join(dir, 'no', 'such', 'sessions')
    expect(await refusal(`file:${typo}`, { create: false })).toBe(
      `[tessera] store URL "file:${typo}": there is no directory ${typo}; check the path`,
    )
    const db = join(dir, 'typo.db')
    expect(await refusal(`sqlite:${db}?createTable=true`, { create: false })).toBe(
      `[tessera] store URL "sqlite:${db}?createTable=true": there is no database file ${db}; check the path`,
    )
    expect(existsSync(join(dir, 'no'))).toBe(false)
    expect(existsSync(db)).toBe(false)
  })

  it('opens what exists, without creating its table', async () => {
    const files = join(dir, 'files')
    await mkdir(files)
    const file = await storeFromUrl(`file:${files}`, { create: false })
    expect(await (file.store as SessionStore).count?.()).toBe(0)
    await file.close()

    const db = join(dir, 'sessions.db')
    await (await storeFromUrl(`sqlite:${db}`)).close() // an empty database
    const sqlite = await storeFromUrl(`sqlite:${db}?createTable=true`, { create: false })
    await expect((sqlite.store as SessionStore).count?.()).rejects.toThrow('no such table')
    await sqlite.close()
  })
})
