import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { expect, it } from 'vitest'

it('the node adapter leaves the response object with fast properties (no V8 dictionary mode)', () => {
  const root = resolve(import.meta.dirname, '..')
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--import', 'tsx', 'test/fixtures/fast-properties.ts'],
    { cwd: root, encoding: 'utf8' },
  )
  expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ fast: true })
})

it('every session meta a request meets has one hidden class, opened or served from a cache', () => {
  // two shapes of one object keep the code that reads them polymorphic, and V8 deoptimizes it
  // whenever the mix changes: a spread copy of the cookie store's cached meta did that
  const root = resolve(import.meta.dirname, '..')
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--import', 'tsx', 'test/fixtures/meta-shapes.ts'],
    { cwd: root, encoding: 'utf8' },
  )
  expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({
    memory: true,
    cookie: true,
    sodium: true,
  })
})
