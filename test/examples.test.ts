/**
 * The README's quick start and the demo run as written: each is started as its own process
 * (with `tessera` imports pointed at the source) and driven over real HTTP.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { root, startExample } from './helpers/example.js'
import { Client } from './helpers/http.js'

/** Runs an example (see `startExample`); its address. */
const run = async (file: string, env: Record<string, string> = {}) =>
  `http://127.0.0.1:${await startExample(file, env)}`

describe('README quick start', () => {
  it('is examples/quickstart.ts, word for word', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    const quickstart = readFileSync(join(root, 'examples/quickstart.ts'), 'utf8')
    expect(readme).toContain(quickstart.trim())
  })

  it('runs as written and counts visits per browser', async () => {
    const url = await run('examples/quickstart.ts', { SESSION_SECRET: 'q'.repeat(43) })
    const alice = new Client(url)
    expect((await alice.get('/')).body).toBe('You have been here 1 time(s)\n')
    expect((await alice.get('/')).body).toBe('You have been here 2 time(s)\n')
    expect((await new Client(url).get('/')).body).toBe('You have been here 1 time(s)\n')
  })

  it('refuses to start without a secret, saying how to make one', async () => {
    const { SESSION_SECRET: _, ...env } = process.env
    const child = spawn(
      join(root, 'node_modules/.bin/tsx'),
      [
        '-e',
        `
      import('${join(root, 'src/index.ts')}').then(({ createSessions }) => createSessions({ secret: process.env.SESSION_SECRET }))`,
      ],
      { env },
    )
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr += d
    })
    const code = await new Promise((ok) => child.on('exit', ok))
    expect(code).not.toBe(0)
    expect(stderr).toMatch(/SessionConfigError.*tessera keygen/s)
  })
})

describe('README options', () => {
  it('type-check as written, under the strictest options users compile with', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    const block = /## Options\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(block).toBeDefined()
    // the names the block takes as given, then the block itself
    const file = join(root, 'test', 'readme-options.ts')
    const source = `import { createSessions } from 'tessera'
import { memoryStore } from 'tessera/stores/memory'
type Data = { count: number }
declare const secret: string
const store = memoryStore()
${block}`
    const { config } = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile)
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root)
    const host = ts.createCompilerHost(options)
    const getSourceFile = host.getSourceFile
    host.getSourceFile = (name, version, ...rest) =>
      name === file
        ? ts.createSourceFile(name, source, version)
        : getSourceFile.call(host, name, version, ...rest)
    const fileExists = host.fileExists
    host.fileExists = (name) => name === file || fileExists.call(host, name)
    const program = ts.createProgram([file], options, host)
    const errors = ts
      .getPreEmitDiagnostics(program, program.getSourceFile(file))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    expect(errors).toEqual([])
  }, 60_000)
})

describe('demo app', () => {
  it('starts with a random secret when SESSION_SECRET is empty, as when it is unset', async () => {
    const url = await run('examples/demo/server.ts', { SESSION_SECRET: '' })
    expect(String((await new Client(url).get('/')).body)).toContain(
      '<strong id="visits">1</strong>',
    )
  })

  it('counts, signs in with a new session id, lists sessions and signs out', async () => {
    const url = await run('examples/demo/server.ts')
    const browser = new Client(url)
    const first = String((await browser.get('/')).body)
    expect(first).toContain('<strong id="visits">1</strong>')
    const tokenIn = (html: string) => /name="_csrf" value="([\w-]+)"/.exec(html)![1]!
    const post = (path: string, body: string) =>
      browser.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      })
    // a form posted without the page's token, or from another site, is refused
    expect((await post('/login', 'user=mallory')).status).toBe(403)
    const crossSite = await browser.request('/login', {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'sec-fetch-site': 'cross-site',
      },
      body: `user=mallory&_csrf=${tokenIn(first)}`,
    })
    expect(crossSite.status).toBe(403)
    const before = browser.cookie()
    const login = await post('/login', `user=ada&_csrf=${tokenIn(first)}`)
    expect(login.status).toBe(303)
    expect(browser.cookie()).not.toBe(before)
    const home = String((await browser.get('/')).body)
    expect(home).toContain('Welcome, ada!')
    expect(home).toContain('<strong id="user">ada</strong>')
    expect(home).toContain('(this one)')
    // the login rotated the secret: the token from before it no longer works
    expect((await post('/logout', `_csrf=${tokenIn(first)}`)).status).toBe(403)
    expect((await post('/logout', `_csrf=${tokenIn(home)}`)).status).toBe(303)
    const after = String((await browser.get('/')).body)
    expect(after).toContain('You are signed out.')
    expect(after).toContain('<strong id="visits">1</strong>')
  })
})
