/**
 * Threat: a request value (a key, a user id) becomes a path, so `../../etc/passwd` reads or
 * writes outside the store; or session files are readable by other users of the machine.
 * File names come only from store keys (64 hex characters, checked) and hashes of user ids.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionStoreError } from '../../src/core/errors.js'
import { fileStore } from '../../src/stores/file.js'
import { meta, newKey } from '../conformance/store-suite.js'

const root = mkdtempSync(join(tmpdir(), 'tessera-file-paths-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Every path under `dir`, relative to it. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true })
  return entries.map((e) => relative(dir, join(dir, e))).sort()
}

const hex = newKey()
const BAD_KEYS = {
  traversal: '../../etc/passwd',
  'traversal padded to 64': `../../${'a'.repeat(58)}`,
  absolute: '/etc/passwd',
  'absolute padded to 64': `/${'a'.repeat(63)}`,
  'NUL byte': `${hex.slice(0, 63)}\0`,
  'NUL then traversal': `${hex.slice(0, 32)}\0/../../${hex.slice(0, 24)}`,
  uppercase: hex.toUpperCase(),
  'too short': hex.slice(0, 63),
  'too long': `${hex}0`,
  'with .json': `${hex.slice(0, 59)}.json`,
  empty: '',
  'a lone dot-dot': '..',
} as const

describe('path safety', () => {
  // the store in a subdirectory, so anything written beside it would show in `root`
  const directory = join(root, 'app', 'sessions')
  const store = fileStore({ directory, sweepInterval: 0 })
  const record = { fields: { a: '1' }, meta: meta() }
  const patch = { clear: false, set: { a: '2' }, delete: [] }

  for (const [label, key] of Object.entries(BAD_KEYS)) {
    it(`refuses a key that is not a store key: ${label}`, async () => {
      const before = await tree(root)
      const calls = [
        store.get(key),
        store.set(key, record),
        store.patch(key, patch, meta()),
        store.touch(key, meta()),
        store.destroy(key),
        store.destroyByUser('u', key),
      ]
      for (const call of calls) {
        const error = await call.then(
          () => undefined,
          (e: unknown) => e,
        )
        expect(error).toBeInstanceOf(SessionStoreError)
        expect((error as SessionStoreError).code).toBe('ERR_SESSION_STORE')
        expect((error as SessionStoreError).message).toMatch(/not a store key/)
        if (key.length > 3) expect((error as SessionStoreError).message).not.toContain(key)
      }
      expect(await tree(root)).toEqual(before)
    })
  }

  it('maps any user id, even a path, to a hashed directory inside the store', async () => {
    const key = newKey()
    const userId = '../../../../tmp/evil\0/..'
    await store.set(key, { fields: {}, meta: meta({ userId }) })
    expect((await store.listByUser(userId)).map((s) => s.key)).toEqual([key])
    const files = await tree(root)
    expect(files.every((f) => f.startsWith('app'))).toBe(true)
    const users = await readdir(join(directory, 'users'))
    expect(users).toHaveLength(1)
    expect(users[0]).toMatch(/^[0-9a-f]{64}$/)
    expect(await store.destroyByUser(userId)).toBe(1)
  })

  it('creates the directory and everything in it for the owner only', async () => {
    const key = newKey()
    await store.set(key, { fields: { secret: '"s"' }, meta: meta({ userId: 'u-modes' }) })
    const mode = async (path: string) => (await stat(path)).mode & 0o777
    expect(await mode(directory)).toBe(0o700)
    for (const sub of ['sessions', 'locks', 'users'])
      expect(await mode(join(directory, sub))).toBe(0o700)
    expect(await mode(join(directory, 'sessions', `${key}.json`))).toBe(0o600)
    const userDir = join(directory, 'users', createHash('sha256').update('u-modes').digest('hex'))
    expect(await mode(userDir)).toBe(0o700)
    expect(await mode(join(userDir, key))).toBe(0o600)
    // a rewrite keeps the mode (the temporary file it is renamed from is created 0o600)
    await store.patch(
      key,
      { clear: false, set: { b: '1' }, delete: [] },
      meta({ userId: 'u-modes' }),
    )
    expect(await mode(join(directory, 'sessions', `${key}.json`))).toBe(0o600)
  })
})
