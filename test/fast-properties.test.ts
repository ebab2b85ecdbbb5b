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
