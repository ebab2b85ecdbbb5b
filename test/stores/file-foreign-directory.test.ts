/**
 * The file store pointed at a directory that is not its own (the app's root, `/var/lib`, a
 * typo'd parent): refused at startup, naming the path, instead of creating `sessions/`,
 * `locks/` and `users/` among someone else's files. A missing or empty directory is made into
 * a store, and a store made by any earlier version opens as before.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { SessionConfigError } from '../../src/core/errors.js'
import { fileStore } from '../../src/stores/file.js'
import { storeFromUrl } from '../../src/stores/from-url.js'
import { meta, newKey } from '../conformance/store-suite.js'

const root = mkdtempSync(join(tmpdir(), 'tessera-file-foreign-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let n = 0
/** A new directory holding `entries` (a name ending in `/` is a directory). */
const directoryWith = (...entries: string[]) => {
  const dir = join(root, `d${++n}`)
  mkdirSync(dir)
  for (const entry of entries)
    if (entry.endsWith('/')) mkdirSync(join(dir, entry), { recursive: true })
    else writeFileSync(join(dir, entry), 'x')
  return dir
}

/** What `fn` throws. */
const thrown = (fn: () => unknown): unknown => {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

describe('file store: a directory that is not a store', () => {
  it('is refused at startup with a SessionConfigError naming it, and left untouched', () => {
    const dir = directoryWith('package.json', 'src/', 'README.md', 'tsconfig.json')
    const err = thrown(() => fileStore({ directory: dir, sweepInterval: 0 }))
    expect(err).toBeInstanceOf(SessionConfigError)
    expect((err as Error).message).toBe(
      `[tessera] [store:file] ${dir} is not empty and is not a file store (it holds "README.md", "package.json", "src", ... and no sessions/ directory): give the store a directory of its own, missing or empty`,
    )
    expect(readdirSync(dir).sort()).toEqual(['README.md', 'package.json', 'src', 'tsconfig.json'])
  })

  it('is refused through a file: URL too, before anything is created', async () => {
    const dir = directoryWith('notes.txt')
    const err = await storeFromUrl(`file:${dir}`).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SessionConfigError)
    expect((err as Error).message).toContain(`${dir} is not empty and is not a file store`)
    expect(readdirSync(dir)).toEqual(['notes.txt'])
  })

  it('filled after the store was made: its first operation fails with the same error', async () => {
    const dir = join(root, `later-${++n}`)
    const store = fileStore({ directory: dir, sweepInterval: 0 })
    mkdirSync(dir)
    writeFileSync(join(dir, 'data.csv'), 'x')
    await expect(store.get(newKey())).rejects.toBeInstanceOf(SessionConfigError)
    await expect(store.count()).rejects.toThrow(`${dir} is not empty and is not a file store`)
    expect(readdirSync(dir)).toEqual(['data.csv'])
  })

  it('a file where the directory should be is refused too', () => {
    const dir = directoryWith('sessions.txt')
    expect(() => fileStore({ directory: join(dir, 'sessions.txt') })).toThrow(
      `${join(dir, 'sessions.txt')} is a file, not a directory`,
    )
  })
})

describe('file store: a directory that is its own', () => {
  it('a missing, an empty, or a .gitkeep-only directory is made into a store', async () => {
    for (const dir of [
      join(root, `missing-${++n}`, 'sessions'),
      directoryWith(),
      directoryWith('.gitkeep'),
    ]) {
      const store = fileStore({ directory: dir, sweepInterval: 0 })
      const key = newKey()
      await store.set(key, { fields: { a: '1' }, meta: meta() })
      expect((await store.get(key))?.fields).toEqual({ a: '1' })
      expect(
        readdirSync(dir)
          .filter((name) => !name.startsWith('.'))
          .sort(),
      ).toEqual(['locks', 'sessions', 'users'])
    }
  })

  it('a store written by an earlier version opens as before, its sessions and user index kept', async () => {
    // the layout every version has made: sessions/<key>.json, locks/, users/<sha256(user)>/<key>
    const key = newKey()
    const record = { fields: { cart: '[1,2]' }, meta: meta({ userId: 'ada' }) }
    const userDir = createHash('sha256').update('ada').digest('hex')
    const layouts = [
      ['sessions/', 'locks/', 'users/'],
      // one an earlier version opened in a directory that held other files already
      ['sessions/', 'locks/', 'users/', 'package.json', 'src/'],
      // one whose sessions/ was deleted to empty it
      ['locks/', 'users/'],
    ]
    for (const layout of layouts) {
      const dir = directoryWith(
        ...layout,
        ...(layout.includes('sessions/') ? [`users/${userDir}/`] : []),
      )
      if (layout.includes('sessions/')) {
        writeFileSync(join(dir, 'sessions', `${key}.json`), JSON.stringify({ v: 1, ...record }))
        writeFileSync(join(dir, 'users', userDir, key), '')
      }
      const store = fileStore({ directory: dir, sweepInterval: 0 })
      if (layout.includes('sessions/')) {
        expect(await store.get(key)).toEqual(record)
        expect((await store.listByUser('ada')).map((s) => s.key)).toEqual([key])
      } else {
        expect(await store.count()).toBe(0)
      }
      const opened = await storeFromUrl(`file:${dir}`, { create: false })
      await opened.close()
    }
  })
})
