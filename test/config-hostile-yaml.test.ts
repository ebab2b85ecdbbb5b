/* biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests write ${VAR} in YAML */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { SessionConfigError } from '../src/index.js'

/** What a person might choose as a secret: it starts with a character YAML reads as syntax. */
const SECRET = 'Correct-Horse-Battery-Staple-0123456789'

let dir: string
let n = 0
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-config-hostile-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The message of the SessionConfigError that loading `yaml` fails with. */
async function message(yaml: string, env: Record<string, string> = {}): Promise<string> {
  const cwd = join(dir, `p${++n}`)
  await mkdir(cwd)
  await writeFile(join(cwd, 'tessera.yaml'), yaml)
  const err = await loadConfig({ cwd, env }).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SessionConfigError)
  return (err as Error).message
}

describe('loadConfig: a secret in a YAML mistake never reaches the message', () => {
  it.each([
    ['a tag', `secret: !${SECRET}\n`],
    ['a tag before a value', `secret: !${SECRET} more\n`],
    ['a verbatim tag', `secret: !<${SECRET}> x\n`],
    ['a core tag', `secret: !!${SECRET} x\n`],
    ['an alias', `secret: *${SECRET}\n`],
    ['a block scalar header', `secret: |${SECRET}\n`],
    ['a directive', `%${SECRET}\n---\nsecret: x\n`],
    ['an escape in double quotes', `secret: "\\U${SECRET}"\n`],
  ])('%s', async (_what, yaml) => {
    const text = await message(yaml)
    expect(text).toMatch(/^\[tessera\] \[config\] tessera\.yaml: /)
    expect(text).not.toContain(SECRET.slice(0, 8))
  })

  it('says how to write a value that starts with "!"', async () => {
    expect(await message('idleTimeout: !duration 30m\n')).toBe(
      '[tessera] [config] tessera.yaml: line 1, column 14: Unresolved tag (not valid YAML; a value that starts with "!" must be quoted)',
    )
  })

  it('a file that holds only text (a secret file named by mistake)', async () => {
    const text = await message(`${SECRET}\n`)
    expect(text).toBe(
      '[tessera] [config] tessera.yaml: must be a mapping of keys (secrets:, store:, cookie:, ...); got a string',
    )
  })
})

describe('loadConfig: a tagged mapping is not read as empty', () => {
  it.each([
    [
      'an ordered map at the top',
      '!!omap [ store: "memory:" ]\n',
      /tessera\.yaml: must be a mapping.*got an ordered map/,
    ],
    ['a set at the top', '!!set { store }\n', /tessera\.yaml: must be a mapping.*got a set/],
    [
      'an ordered map for cookie',
      'cookie: !!omap [ name: x ]\n',
      /tessera\.yaml: cookie must be a mapping.*got an ordered map/,
    ],
    [
      'a set for cookie',
      'cookie: !!set { name }\n',
      /tessera\.yaml: cookie must be a mapping.*got a set/,
    ],
  ])('%s', async (_what, yaml, expected) => {
    expect(await message(yaml)).toMatch(expected)
  })
})
