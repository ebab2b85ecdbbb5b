/**
 * The examples as their own processes: `startExample(file)` runs one with its `tessera`
 * imports pointed at src/ and a free port, and waits until it listens. The processes end
 * after each test.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach } from 'vitest'

export const root = resolve(import.meta.dirname, '../..')
const children: ChildProcess[] = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill()
})

export function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => ok(port))
    })
  })
}

/**
 * Runs an example with `tessera` specifiers pointed at src/; resolves with its port once it
 * says it is listening.
 */
export async function startExample(
  file: string,
  env: Record<string, string> = {},
): Promise<number> {
  const source = readFileSync(join(root, file), 'utf8').replace(
    /from 'tessera(\/[a-z/]+)?'/g,
    (_m, sub: string | undefined) => {
      const target =
        sub === undefined
          ? 'index'
          : sub === '/node' || sub === '/fetch'
            ? `adapters${sub}`
            : sub.slice(1)
      return `from '${join(root, 'src', `${target}.ts`)}'`
    },
  )
  const copy = join(mkdtempSync(join(tmpdir(), 'tessera-example-')), 'example.ts')
  writeFileSync(copy, source)
  const port = await freePort()
  const child = spawn(join(root, 'node_modules/.bin/tsx'), [copy], {
    env: { ...process.env, PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let output = ''
  await new Promise<void>((ok, fail) => {
    const onData = (d: Buffer) => {
      output += d
      if (/listening|on http/.test(output)) ok()
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (d: Buffer) => {
      output += d
    })
    child.on('exit', (code) => fail(new Error(`${file} exited with ${code}: ${output}`)))
  })
  return port
}
