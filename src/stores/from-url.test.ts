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
