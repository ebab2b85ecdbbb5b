import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import { expect, it } from 'vitest'

/** The last line a fixture printed, as JSON: run with V8's natives (`%HasFastProperties`, ...). */
function runFixture(name: string): unknown {
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--import', 'tsx', `test/fixtures/${name}`],
    { cwd: resolve(import.meta.dirname, '..'), encoding: 'utf8' },
  )
  return JSON.parse(out.trim().split('\n').at(-1)!)
}

it('the node adapter leaves the response object with fast properties (no V8 dictionary mode)', () => {
  expect(runFixture('fast-properties.ts')).toEqual({ fast: true })
})

it('every session meta a request meets has one hidden class, opened or served from a cache', () => {
  // two shapes of one object keep the code that reads them polymorphic, and V8 deoptimizes it
  // whenever the mix changes: a spread copy of the cookie store's cached meta did that
  expect(runFixture('meta-shapes.ts')).toEqual({ memory: true, cookie: true, sodium: true })
})
