/* biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests write ${VAR} in YAML and in the messages about it */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest'
import {
  CONFIG_KEYS,
  createSessionsFromConfig,
  type LoadConfigOptions,
  loadConfig,
  type SessionsConfig,
} from '../src/config.js'
import {
  createSessions,
  SessionConfigError,
  SessionStoreError,
  type SessionsOptions,
} from '../src/index.js'
import { REDIS_URL, service } from './helpers/services.js'

/** 43 characters: what `tessera keygen` prints. */
const SECRET = 'config-test-secret-0123456789abcdef-0123456'
const OLDER = 'config-test-older--0123456789abcdef-0123456'
const SHORT = 'hunter2-is-too-short'

let dir: string
let n = 0

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-config-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A fresh directory holding `tessera.yaml` with `yaml` (none when undefined). */
async function project(yaml?: string, name = 'tessera.yaml'): Promise<string> {
  const cwd = join(dir, `p${++n}`)
  await mkdir(cwd)
  if (yaml !== undefined) await writeFile(join(cwd, name), yaml)
  return cwd
}

/** loadConfig over a project holding `yaml`, with `env` as the whole environment. */
async function load(
  yaml: string | undefined,
  env: Record<string, string | undefined> = {},
  options: LoadConfigOptions = {},
): Promise<SessionsConfig> {
  return loadConfig({ cwd: await project(yaml), env, ...options })
}

/** The SessionConfigError a load fails with. */
async function failure(
  yaml: string | undefined,
  env: Record<string, string | undefined> = {},
  options: LoadConfigOptions = {},
): Promise<SessionConfigError> {
  const err = await load(yaml, env, options).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(SessionConfigError)
  expect((err as SessionConfigError).code).toBe('ERR_SESSION_CONFIG')
  return err as SessionConfigError
}

const message = async (
  yaml: string | undefined,
  env: Record<string, string | undefined> = {},
  options: LoadConfigOptions = {},
) => (await failure(yaml, env, options)).message

describe('loadConfig: reading', () => {
  it('maps every key of the file, durations to milliseconds', async () => {
    const config = await load(`
secrets: [${SECRET}, ${OLDER}]
store: 'redis://127.0.0.1:6379?prefix=app:'
idleTimeout: 20m
absoluteTimeout: 8h
touchAfter: 30000
codec: rich
onInvalidData: error
trustProxy: true
cookie:
  name: app_sid
  path: /app
  domain: example.com
  sameSite: strict
  secure: true
  httpOnly: false
  partitioned: true
  priority: high
`)
    expect(config).toEqual({
      secrets: [SECRET, OLDER],
      store: 'redis://127.0.0.1:6379?prefix=app:',
      idleTimeout: 20 * 60_000,
      absoluteTimeout: 8 * 3_600_000,
      touchAfter: 30_000,
      codec: 'rich',
      onInvalidData: 'error',
      trustProxy: true,
      cookie: {
        name: 'app_sid',
        path: '/app',
        domain: 'example.com',
        sameSite: 'strict',
        secure: true,
        httpOnly: false,
        partitioned: true,
        priority: 'high',
      },
    })
  })

  it('gives a lone secret as secrets, and only the keys that were set', async () => {
    expect(await load(`secret: ${SECRET}\ncookie:\n  secure: auto\n`)).toEqual({
      secrets: [SECRET],
      cookie: { secure: 'auto' },
    })
    // an empty file, comments only, and keys left without a value
    expect(await load('')).toEqual({})
    expect(await load('# nothing yet\n')).toEqual({})
    expect(await load('cookie:\nidleTimeout:\n')).toEqual({})
    expect(await load('touchAfter: 0\n')).toEqual({ touchAfter: 0 })
  })

  it('maps every environment variable', async () => {
    const env = {
      TESSERA_SECRETS: ` ${SECRET} , ${OLDER}`,
      TESSERA_STORE: 'memory:',
      TESSERA_IDLE_TIMEOUT: '900000',
      TESSERA_ABSOLUTE_TIMEOUT: '2h',
      TESSERA_TOUCH_AFTER: '0',
      TESSERA_CODEC: 'json',
      TESSERA_ON_INVALID_DATA: 'reset',
      TESSERA_TRUST_PROXY: '1',
      TESSERA_COOKIE_NAME: '__Secure-sid',
      TESSERA_COOKIE_PATH: '/',
      TESSERA_COOKIE_DOMAIN: 'app.example.com',
      TESSERA_COOKIE_SAME_SITE: 'none',
      TESSERA_COOKIE_SECURE: 'TRUE',
      TESSERA_COOKIE_HTTP_ONLY: 'false',
      TESSERA_COOKIE_PARTITIONED: '0',
      TESSERA_COOKIE_PRIORITY: 'low',
    }
    expect(await load(undefined, env)).toEqual({
      secrets: [SECRET, OLDER],
      store: 'memory:',
      idleTimeout: 900_000,
      absoluteTimeout: 7_200_000,
      touchAfter: 0,
      codec: 'json',
      onInvalidData: 'reset',
      trustProxy: true,
      cookie: {
        name: '__Secure-sid',
        path: '/',
        domain: 'app.example.com',
        sameSite: 'none',
        secure: true,
        httpOnly: false,
        partitioned: false,
        priority: 'low',
      },
    })
    // the table of keys names each of these variables, and no other
    expect(CONFIG_KEYS.map((k) => k.env).sort()).toEqual(
      [...Object.keys(env), 'TESSERA_SECRET'].sort(),
    )
    expect(
      await load(undefined, { TESSERA_SECRET: SECRET, TESSERA_COOKIE_SECURE: 'auto' }),
    ).toEqual({ secrets: [SECRET], cookie: { secure: 'auto' } })
  })

  it('lets the environment win over the file, key by key', async () => {
    const yaml = `secrets: [${OLDER}]\nstore: 'memory:'\nidleTimeout: 1h\ncookie: { name: a, sameSite: strict }\n`
    const config = await load(yaml, {
      TESSERA_SECRET: SECRET,
      TESSERA_IDLE_TIMEOUT: '45m',
      TESSERA_COOKIE_NAME: 'b',
      // an empty variable is unset
      TESSERA_STORE: '',
      // others are not Tessera's
      PATH: '/bin',
      TESSERA_DIR: '/tmp/bench',
    })
    expect(config).toEqual({
      secrets: [SECRET],
      store: 'memory:',
      idleTimeout: 45 * 60_000,
      cookie: { name: 'b', sameSite: 'strict' },
    })
  })

  it('checks a value the environment replaces, but lets its ${VAR} be unset', async () => {
    const yaml = 'secrets: ${SESSION_SECRETS}\nstore: "redis://:${REDIS_PASSWORD}@db:6379"\n'
    expect(await load(yaml, { TESSERA_SECRET: SECRET, TESSERA_STORE: 'memory:' })).toEqual({
      secrets: [SECRET],
      store: 'memory:',
    })
    // not replaced: the variable must be set
    expect(await message(yaml, { TESSERA_SECRET: SECRET })).toContain(
      'tessera.yaml: store uses ${REDIS_PASSWORD}, which is not set',
    )
    // replaced, but wrong in the file: still a mistake
    expect(await message('idleTimeout: soon\n', { TESSERA_IDLE_TIMEOUT: '30m' })).toContain(
      'tessera.yaml: idleTimeout must be a positive number',
    )
  })

  it('reads the file TESSERA_CONFIG or the file option names, from cwd', async () => {
    const cwd = await project(`store: file:./a\n`)
    await mkdir(join(cwd, 'config'))
    await writeFile(join(cwd, 'config', 'sessions.yaml'), 'store: file:./b\n')
    await writeFile(join(cwd, 'other.yaml'), 'store: file:./c\n')
    expect(await loadConfig({ cwd, env: {} })).toEqual({ store: 'file:./a' })
    const env = { TESSERA_CONFIG: 'config/sessions.yaml' }
    expect(await loadConfig({ cwd, env })).toEqual({ store: 'file:./b' })
    expect(await loadConfig({ cwd, env, file: 'other.yaml' })).toEqual({ store: 'file:./c' })
    expect(await loadConfig({ cwd, env, file: join(cwd, 'other.yaml') })).toEqual({
      store: 'file:./c',
    })
    // no file at all: the environment only
    expect(await loadConfig({ cwd, env: { TESSERA_STORE: 'memory:' }, file: false })).toEqual({
      store: 'memory:',
    })
  })

  it('takes a missing default file for an empty one, and fails on a named one', async () => {
    expect(await load(undefined, { TESSERA_STORE: 'cookie:' })).toEqual({ store: 'cookie:' })
    expect(await message(undefined, {}, { file: 'conf/tessera.yaml' })).toBe(
      '[tessera] [config] conf/tessera.yaml: no such file (named by the file option); create it, or correct the path',
    )
    expect(await message(undefined, { TESSERA_CONFIG: 'prod.yaml' })).toBe(
      '[tessera] [config] prod.yaml: no such file (named by TESSERA_CONFIG); create it, or correct the path',
    )
    const cwd = await project()
    await mkdir(join(cwd, 'tessera.yaml'))
    const err = await loadConfig({ cwd, env: {} }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(SessionConfigError)
    expect((err as Error).message).toBe(
      '[tessera] [config] tessera.yaml: cannot read the file (EISDIR)',
    )
  })

  it('reads only the keys `only` names, still refusing keys the config does not have', async () => {
    // the app's file, in the shell of an admin who has none of its secrets
    const yaml = `secrets: \${SESSION_SECRETS}\nstore: "redis://:\${REDIS_PASSWORD:-}@db:6379"\nidleTimeout: 1m\ntouchAfter: 5m\n`
    const env = { TESSERA_SECRET: SHORT, TESSERA_COOKIE_SAME_SITE: 'loose' }
    expect(await load(yaml, env, { only: ['store'] })).toEqual({ store: 'redis://:@db:6379' })
    expect(await load(yaml, { TESSERA_STORE: 'memory:' }, { only: ['store'] })).toEqual({
      store: 'memory:',
    })
    // 'cookie' is every cookie key; 'secret' and 'secrets' are one setting
    expect(
      await load(
        'secret: ${S}\ncookie: { name: a, path: /b }\n',
        { S: SECRET },
        {
          only: ['cookie', 'secret'],
        },
      ),
    ).toEqual({ secrets: [SECRET], cookie: { name: 'a', path: '/b' } })
    expect(await message(`${yaml}stor: x\n`, env, { only: ['store'] })).toContain(
      'tessera.yaml: stor is not a known key; did you mean store?',
    )
    expect(await message(undefined, { TESSERA_STOR: 'memory:' }, { only: ['store'] })).toContain(
      'did you mean TESSERA_STORE?',
    )
    // the store itself is checked
    expect(await message('store: 6379\n', {}, { only: ['store'] })).toContain(
      'store must be a store URL',
    )
    expect(await message(undefined, {}, { only: ['stores'] })).toBe(
      '[tessera] [config] loadConfig: only names "stores", which is not a key; the keys are secret, secrets, store, cookie, idleTimeout, absoluteTimeout, touchAfter, codec, onInvalidData, trustProxy and cookie.*',
    )
  })

  it('never reads process.env when an environment is given, and never changes it', async () => {
    const before = { ...process.env }
    const config = await load('store: ${TESSERA_TEST_NOT_SET:-memory:}\n', {})
    expect(config).toEqual({ store: 'memory:' })
    expect(process.env).toEqual(before)
  })
})

describe('loadConfig: ${VAR} in the file', () => {
  it('replaces variables, with defaults, in text and in lists', async () => {
    const yaml = `
secrets: ["\${NEW}", "\${OLD}"]
store: "redis://:\${REDIS_PASSWORD}@\${REDIS_HOST:-127.0.0.1}:\${REDIS_PORT:-6379}?prefix=\${APP}:"
cookie:
  name: \${COOKIE:-sid}
  domain: \${DOMAIN:-example.com}
`
    const config = await load(yaml, {
      NEW: SECRET,
      OLD: OLDER,
      REDIS_PASSWORD: 'pw',
      REDIS_PORT: '6380',
      APP: 'shop',
      // empty: the default applies
      DOMAIN: '',
    })
    expect(config).toEqual({
      secrets: [SECRET, OLDER],
      store: 'redis://:pw@127.0.0.1:6380?prefix=shop:',
      cookie: { name: 'sid', domain: 'example.com' },
    })
  })

  it('splits one variable of comma-separated secrets', async () => {
    expect(
      await load('secrets: ${SESSION_SECRETS}\n', { SESSION_SECRETS: `${SECRET},${OLDER}` }),
    ).toEqual({ secrets: [SECRET, OLDER] })
  })

  it('reads a variable as the environment would: booleans, numbers, durations', async () => {
    const yaml =
      'trustProxy: ${PROXY}\nidleTimeout: ${IDLE}\ncookie:\n  secure: ${SECURE}\n  httpOnly: ${HTTP_ONLY}\n'
    expect(
      await load(yaml, { PROXY: 'true', IDLE: '600000', SECURE: 'false', HTTP_ONLY: '1' }),
    ).toEqual({ trustProxy: true, idleTimeout: 600_000, cookie: { secure: false, httpOnly: true } })
  })

  it('keeps $${ as a literal ${, and a lone $ as it is', async () => {
    expect(await load('cookie:\n  path: /a$b$${x}\n')).toEqual({ cookie: { path: '/a$b${x}' } })
  })

  it('fails on a variable that is not set, naming it and the key', async () => {
    expect(await message('secret: ${SESSION_SECRET}\n', { OTHER: 'x' })).toBe(
      '[tessera] [config] tessera.yaml: secret uses ${SESSION_SECRET}, which is not set in the environment; set SESSION_SECRET, or give a default with ${SESSION_SECRET:-default}',
    )
    expect(await message(`secrets: [${SECRET}, "\${OLD}"]\n`)).toBe(
      '[tessera] [config] tessera.yaml: secrets[1] uses ${OLD}, which is not set in the environment; set OLD, or give a default with ${OLD:-default}',
    )
  })

  it('fails on a malformed ${...} without quoting the value', async () => {
    const expected =
      '[tessera] [config] tessera.yaml: secret holds a "${" that is not a variable: write ${NAME} or ${NAME:-default} (NAME of letters, digits and _), or $${ for a literal "${"'
    expect(await message('secret: "abc${not a name}xyz"\n')).toBe(expected)
    expect(await message('secret: "abc${UNCLOSED"\n')).toBe(expected)
    expect(await message('secret: "${}"\n')).toBe(expected)
  })
})

describe('loadConfig: every mistake names the file or variable and the key', () => {
  it('values out of a set', async () => {
    expect(await message('cookie:\n  sameSite: loose\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.sameSite must be one of lax, strict, none; got "loose"',
    )
    expect(await message(undefined, { TESSERA_COOKIE_SAME_SITE: 'Lax' })).toBe(
      '[tessera] [config] environment variable TESSERA_COOKIE_SAME_SITE must be one of lax, strict, none; got "Lax"',
    )
    expect(await message('cookie: { priority: urgent }\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.priority must be one of low, medium, high; got "urgent"',
    )
    expect(await message('codec: devalue\n')).toBe(
      '[tessera] [config] tessera.yaml: codec must be one of json, rich; got "devalue"',
    )
    expect(await message(undefined, { TESSERA_ON_INVALID_DATA: 'ignore' })).toBe(
      '[tessera] [config] environment variable TESSERA_ON_INVALID_DATA must be one of reset, error; got "ignore"',
    )
  })

  it('booleans: YAML true/false in the file, true/false/1/0 in the environment', async () => {
    expect(await message('trustProxy: yes\n')).toBe(
      '[tessera] [config] tessera.yaml: trustProxy must be true or false; got "yes"',
    )
    // quoted, it is text: a mistake to point out, not to guess at
    expect(await message('cookie:\n  httpOnly: "true"\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.httpOnly must be true or false; got "true"',
    )
    expect(await message(undefined, { TESSERA_COOKIE_PARTITIONED: 'on' })).toBe(
      '[tessera] [config] environment variable TESSERA_COOKIE_PARTITIONED must be true or false (or 1 or 0); got "on"',
    )
    expect(await message('cookie:\n  secure: always\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.secure must be true, false or auto; got "always"',
    )
    expect(await message(undefined, { TESSERA_COOKIE_SECURE: 'yes' })).toBe(
      '[tessera] [config] environment variable TESSERA_COOKIE_SECURE must be true, false or auto; got "yes"',
    )
  })

  it('durations', async () => {
    expect(await message('idleTimeout: soon\n')).toBe(
      `[tessera] [config] tessera.yaml: idleTimeout must be a positive number of milliseconds or a duration such as '30m', '12h', '90s'; got "soon"`,
    )
    expect(await message('absoluteTimeout: -5\n')).toBe(
      `[tessera] [config] tessera.yaml: absoluteTimeout must be a positive number of milliseconds or a duration such as '30m', '12h', '90s'; got -5`,
    )
    expect(await message('idleTimeout: 0\n')).toContain('idleTimeout must be a positive number')
    expect(await message('idleTimeout: [30m]\n')).toContain('; got a list')
    expect(await message(undefined, { TESSERA_TOUCH_AFTER: '1 minute later' })).toBe(
      `[tessera] [config] environment variable TESSERA_TOUCH_AFTER must be a number of milliseconds (0 or more) or a duration such as '30m', '12h', '90s'; got "1 minute later"`,
    )
  })

  it('durations: zero with any unit, and only lower-case units', async () => {
    // 0 written with a unit is 0, as 0 is
    for (const zero of ['0', '0s', '0m', '0ms', '0.0h', '0 d'])
      expect(await load(`touchAfter: ${zero}\n`), zero).toEqual({ touchAfter: 0 })
    expect(await load(undefined, { TESSERA_TOUCH_AFTER: '0s' })).toEqual({ touchAfter: 0 })
    expect(await message('idleTimeout: 0m\n')).toContain('idleTimeout must be a positive number')
    // '30M' is not 30 minutes (nor 30 months): the units are lower case
    expect(await message('idleTimeout: 30M\n')).toBe(
      `[tessera] [config] tessera.yaml: idleTimeout must be a positive number of milliseconds or a duration such as '30m', '12h', '90s' (units ms, s, m, h, d, w, y, in lower case); got "30M"`,
    )
    expect(await message(undefined, { TESSERA_ABSOLUTE_TIMEOUT: '12H' })).toContain(
      '(units ms, s, m, h, d, w, y, in lower case); got "12H"',
    )
  })

  it('touchAfter must be shorter than idleTimeout, defaults included', async () => {
    expect(await message('idleTimeout: 1m\ntouchAfter: 2m\n')).toBe(
      '[tessera] [config] tessera.yaml: touchAfter (120000 ms) must be shorter than idleTimeout (60000 ms), or active sessions would expire; lower touchAfter or raise idleTimeout',
    )
    expect(await message('touchAfter: 2m\n', { TESSERA_IDLE_TIMEOUT: '90s' })).toBe(
      '[tessera] [config] tessera.yaml and TESSERA_IDLE_TIMEOUT: touchAfter (120000 ms) must be shorter than idleTimeout (90000 ms), or active sessions would expire; lower touchAfter or raise idleTimeout',
    )
    expect(await message('idleTimeout: 30s\n')).toBe(
      '[tessera] [config] tessera.yaml: touchAfter (60000 ms, the default) must be shorter than idleTimeout (30000 ms), or active sessions would expire; lower touchAfter or raise idleTimeout',
    )
    // the same rule createSessions has
    expect(() => createSessions({ secret: SECRET, idleTimeout: '30s' })).toThrow(SessionConfigError)
  })

  it('cookie names, paths and domains, as createSessions checks them', async () => {
    expect(await message('cookie:\n  name: my sid\n')).toBe(
      `[tessera] [config] tessera.yaml: cookie.name is not valid: cookie.name "my sid" is not a valid cookie name (RFC 6265 4.1.1: letters, digits and !#$%&'*+-.^_\`|~ only)`,
    )
    expect(await message(undefined, { TESSERA_COOKIE_PATH: 'app' })).toBe(
      '[tessera] [config] environment variable TESSERA_COOKIE_PATH is not valid: cookie.path "app" must start with "/" and hold no ";", space or control character',
    )
    expect(await message('cookie:\n  domain: "not a domain"\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.domain is not valid: cookie.domain "not a domain" is not a domain name',
    )
    expect(await message('cookie:\n  name: 42\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.name must be text; got 42',
    )
  })

  it('cookie rules over several keys, naming where each came from', async () => {
    expect(await message('cookie:\n  name: __Host-sid\n  domain: example.com\n')).toBe(
      '[tessera] [config] tessera.yaml: a "__Host-" cookie must not have a Domain (RFC 6265bis 4.1.3.2); remove cookie.domain or rename the cookie',
    )
    expect(await message('cookie:\n  secure: false\n', { TESSERA_COOKIE_SAME_SITE: 'none' })).toBe(
      "[tessera] [config] tessera.yaml and TESSERA_COOKIE_SAME_SITE: cookie.sameSite 'none' requires a Secure cookie; browsers drop SameSite=None cookies without Secure",
    )
    expect(
      await message(undefined, {
        TESSERA_COOKIE_PARTITIONED: 'true',
        TESSERA_COOKIE_SECURE: 'false',
      }),
    ).toBe(
      '[tessera] [config] TESSERA_COOKIE_SECURE and TESSERA_COOKIE_PARTITIONED: cookie.partitioned requires a Secure cookie (CHIPS)',
    )
  })

  it('unknown keys, with the key most likely meant', async () => {
    expect(await message('idleTimout: 30m\n')).toBe(
      '[tessera] [config] tessera.yaml: idleTimout is not a known key; did you mean idleTimeout?',
    )
    expect(await message('idle_timeout: 30m\n')).toBe(
      '[tessera] [config] tessera.yaml: idle_timeout is not a known key; did you mean idleTimeout?',
    )
    expect(await message('cookie:\n  samesite: lax\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.samesite is not a known key; did you mean cookie.sameSite?',
    )
    expect(await message('cookie:\n  secrue: true\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.secrue is not a known key; did you mean cookie.secure?',
    )
    // in the wrong section
    expect(await message('secure: true\n')).toBe(
      '[tessera] [config] tessera.yaml: secure is not a known key; did you mean cookie.secure? (cookie options go under cookie:)',
    )
    expect(await message('cookie:\n  idleTimeout: 30m\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.idleTimeout is not a known key; did you mean idleTimeout? (only cookie options go under cookie:)',
    )
    // nothing close: the list of keys
    expect(await message('resave: false\n')).toBe(
      '[tessera] [config] tessera.yaml: resave is not a known key; the keys are secret, secrets, store, cookie, idleTimeout, absoluteTimeout, touchAfter, codec, onInvalidData, trustProxy',
    )
    expect(await message('cookie:\n  maxAge: 1000\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie.maxAge is not a known key; the keys are cookie.name, cookie.path, cookie.domain, cookie.sameSite, cookie.secure, cookie.httpOnly, cookie.partitioned, cookie.priority',
    )
    // what only code can give
    expect(await message('schema: { type: object }\n')).toBe(
      '[tessera] [config] tessera.yaml: schema cannot be set in a config file: a schema is code; pass it to createSessions, or in the overrides of createSessionsFromConfig',
    )
    // no way around the check through the prototype
    expect(await message('__proto__: { idleTimeout: 1 }\n')).toContain(
      'tessera.yaml: __proto__ is not a known key',
    )
  })

  it('environment variables close to one Tessera reads', async () => {
    expect(await message(undefined, { TESSERA_COOKIE_SAMESITE: 'lax' })).toBe(
      '[tessera] [config] environment variable TESSERA_COOKIE_SAMESITE is not one Tessera reads; did you mean TESSERA_COOKIE_SAME_SITE?',
    )
    expect(await message(undefined, { TESSERA_IDLE_TIMOUT_: '30m' })).toBe(
      '[tessera] [config] environment variable TESSERA_IDLE_TIMOUT_ is not one Tessera reads; did you mean TESSERA_IDLE_TIMEOUT?',
    )
    expect(await message(undefined, { TESSERA_STOR: 'memory:' })).toContain(
      'did you mean TESSERA_STORE?',
    )
    // unrelated, or empty: left alone
    expect(await load(undefined, { TESSERA_DIR: '/x', TESSERA_COOKIE_SAMESITE: '' })).toEqual({})
  })

  it('the shape of the file', async () => {
    expect(await message('- secrets\n- store\n')).toBe(
      '[tessera] [config] tessera.yaml: must be a mapping of keys (secrets:, store:, cookie:, ...); got a list',
    )
    expect(await message('cookie: sid\n')).toBe(
      '[tessera] [config] tessera.yaml: cookie must be a mapping (cookie: { name: sid, ... }); got "sid"',
    )
    expect(await message("store: 'memory:'\nstore: 'cookie:'\n")).toBe(
      '[tessera] [config] tessera.yaml: line 2, column 1: Map keys must be unique (not valid YAML)',
    )
    // YAML's trap: a value ending in ":" opens a mapping
    expect(await message('idleTimeout: 30m\nstore: memory:\n')).toBe(
      '[tessera] [config] tessera.yaml: line 2, column 8: Nested mappings are not allowed in compact mappings (not valid YAML; a value ending in ":" must be quoted, as in store: "memory:" or store: "redis://host:6379?prefix=app:")',
    )
    expect(await message('idleTimeout: !duration 30m\n')).toBe(
      '[tessera] [config] tessera.yaml: line 1, column 14: Unresolved tag (not valid YAML; a value that starts with "!" must be quoted)',
    )
    expect(await message('store: *nowhere\n')).toContain('tessera.yaml: Unresolved alias')
  })

  it('a file of several YAML documents', async () => {
    expect(await message("store: 'memory:'\n---\nidleTimeout: 5m\n")).toBe(
      '[tessera] [config] tessera.yaml: line 2, column 1: a second document starts here; the file must hold one document: remove the "---" or "..." before it',
    )
    // one document between markers is one document
    expect(await load("---\nstore: 'memory:'\n...\n")).toEqual({ store: 'memory:' })
  })

  it('a YAML syntax error does not quote the line (it may hold a secret)', async () => {
    const text = await message(`secret: "${SECRET}\n`)
    expect(text).toBe(
      '[tessera] [config] tessera.yaml: line 2, column 1: Missing closing "quote (not valid YAML)',
    )
    expect(text).not.toContain(SECRET.slice(0, 12))
  })

  it('the store URL', async () => {
    expect(await message('store: 6379\n')).toBe(
      '[tessera] [config] tessera.yaml: store must be a store URL such as memory: or redis://127.0.0.1:6379; got 6379',
    )
    const text = await message(undefined, { TESSERA_STORE: '//admin:hunter2@127.0.0.1:6379' })
    expect(text).toBe(
      '[tessera] [config] environment variable TESSERA_STORE must be a store URL starting with its scheme (memory:, file:, sqlite:, redis://, postgres://, ...); got "//admin:***@127.0.0.1:6379"',
    )
    expect(text).not.toContain('hunter2')
  })
})

describe('loadConfig: secrets', () => {
  it('fails on a short secret as createSessions does, without its value', async () => {
    const file = await message(`secret: ${SHORT}\n`)
    expect(file).toBe(
      '[tessera] [config] tessera.yaml: secret is 20 bytes; at least 32 random bytes are needed: make one with `npx tessera keygen`',
    )
    const env = await message(undefined, { TESSERA_SECRETS: `${SECRET},${SHORT}` })
    expect(env).toBe(
      '[tessera] [config] environment variable TESSERA_SECRETS (#2) is 20 bytes; at least 32 random bytes are needed: make one with `npx tessera keygen`',
    )
    const list = await message(`secrets:\n  - ${SECRET}\n  - ${SHORT}\n`)
    expect(list).toContain('tessera.yaml: secrets[1] is 20 bytes')
    const interpolated = await message('secret: ${S}\n', { S: SHORT })
    expect(interpolated).toContain('tessera.yaml: secret is 20 bytes')
    for (const text of [file, env, list, interpolated]) expect(text).not.toContain(SHORT)
    expect(() => createSessions({ secret: SHORT })).toThrow(/is 20 bytes; at least 32/)
  })

  it('counts bytes as the keyring does: 31 fails, 32 passes, in both', async () => {
    const e31 = 'é'.repeat(15) + 'x' // 31 bytes, 16 characters
    const e32 = 'é'.repeat(16) // 32 bytes
    expect(await message('secret: ${S}\n', { S: e31 })).toContain('secret is 31 bytes')
    expect(() => createSessions({ secret: e31 })).toThrow(SessionConfigError)
    expect(await load('secret: ${S}\n', { S: e32 })).toEqual({ secrets: [e32] })
    expect(() => createSessions({ secret: e32 })).not.toThrow()
  })

  it('one of secret or secrets, in the file and in the environment', async () => {
    expect(await message(`secret: ${SECRET}\nsecrets: [${OLDER}]\n`)).toBe(
      '[tessera] [config] tessera.yaml: gives both secret and secrets; keep one (secrets: [newest, older])',
    )
    expect(await message(undefined, { TESSERA_SECRET: SECRET, TESSERA_SECRETS: OLDER })).toBe(
      '[tessera] [config] environment variables TESSERA_SECRET and TESSERA_SECRETS are both set; keep one (TESSERA_SECRETS=newest,older)',
    )
    expect(await message('secrets: []\n')).toBe(
      '[tessera] [config] tessera.yaml: secrets is empty; give at least one secret (`npx tessera keygen` makes one)',
    )
    expect(await message('secrets: { a: 1 }\n')).toBe(
      '[tessera] [config] tessera.yaml: secrets must be a list of secrets, newest first, or comma-separated text; got a mapping',
    )
    expect(await message(`secrets: [${SECRET}, 12345]\n`)).toBe(
      '[tessera] [config] tessera.yaml: secrets[1] must be text; got a number',
    )
    expect(await message(`secret: [${SECRET}]\n`)).toBe(
      '[tessera] [config] tessera.yaml: secret must be text; got a list',
    )
  })
})

describe('loadConfig: types', () => {
  it('spreads into createSessions once the store URL is taken out', async () => {
    type Data = { count: number }
    const { store, ...options } = await load(`secret: ${SECRET}\nidleTimeout: 10m\n`)
    expect(store).toBeUndefined()
    expectTypeOf(options).toExtend<SessionsOptions<Data>>()
    expectTypeOf<SessionsConfig['idleTimeout']>().toEqualTypeOf<number | undefined>()
    expectTypeOf<SessionsConfig['store']>().toEqualTypeOf<string | undefined>()
    const sessions = createSessions<Data>({ ...options })
    expect(sessions.idleTimeout).toBe(600_000)
    await sessions.close()
  })
})

describe('docs/config.md', () => {
  it('lists every key and every environment variable', async () => {
    const doc = await readFile(new URL('../docs/config.md', import.meta.url), 'utf8')
    for (const { key, env } of CONFIG_KEYS) {
      expect(doc, key).toContain(`\`${key}\``)
      expect(doc, env).toContain(`\`${env}\``)
    }
    expect(doc).toContain('`TESSERA_CONFIG`')
  })
})

/** A session written through one manager and read through a fresh one built from the same config. */
async function roundTrip(options: Parameters<typeof createSessionsFromConfig>[0]) {
  type Data = { count: number }
  const first = await createSessionsFromConfig<Data>(options)
  const session = await first.sessions.load(undefined)
  session.set('count', 41)
  const [setCookie] = await first.sessions.commit(session)
  expect(setCookie).toMatch(/^sid=/)
  const cookie = setCookie!.split(';')[0]!
  const again = await first.sessions.load(cookie)
  expect(again.isNew).toBe(false)
  expect(again.get('count')).toBe(41)
  again.set('count', 42)
  await first.sessions.commit(again)
  return { first, cookie, idHash: again.idHash }
}

describe('createSessionsFromConfig', () => {
  it('with no store: a memory store, committing and loading a session', async () => {
    const { first, cookie } = await roundTrip({
      cwd: await project(),
      env: { TESSERA_SECRET: SECRET },
    })
    expect(first.store).toBe('memory:')
    expect((await first.sessions.load(cookie)).get('count')).toBe(42)
    await first.close()
    await first.close()
  })

  it('with file: a second instance from the same config reads the session from disk', async () => {
    const sessionsDir = join(dir, `sessions-${++n}`)
    const cwd = await project(
      `secrets: \${SESSION_SECRETS}\nstore: file:${sessionsDir}\nidleTimeout: 10m\ncookie:\n  sameSite: strict\n`,
    )
    const env = { SESSION_SECRETS: `${SECRET},${OLDER}` }
    const { first, cookie } = await roundTrip({ cwd, env })
    expect(first.store).toBe(`file:${sessionsDir}`)
    expect(first.sessions.idleTimeout).toBe(600_000)
    expect(first.sessions.cookie.serialize('v', false)).toContain('SameSite=Strict')
    expect((await readdir(sessionsDir)).length).toBeGreaterThan(0)
    const second = await createSessionsFromConfig<{ count: number }>({ cwd, env })
    expect((await second.sessions.load(cookie)).get('count')).toBe(42)
    await first.close()
    await second.close()
  })

  it('takes code-only options and a secret from overrides', async () => {
    // the memory store checks expiry by the real clock too: move only forward from it
    let offset = 0
    const made = await createSessionsFromConfig<{ count: number }>({
      cwd: await project('idleTimeout: 5m\ncookie:\n  name: app_sid\n  sameSite: strict\n'),
      // the configured secret is replaced, not added (no "secret and secrets" conflict)
      env: { TESSERA_SECRETS: OLDER },
      overrides: {
        secret: SECRET,
        clock: () => Date.now() + offset,
        cookie: { sameSite: 'none', secure: true },
      },
    })
    const session = await made.sessions.load(undefined)
    session.set('count', 1)
    const setCookie = (await made.sessions.commit(session))[0]!
    // the cookie options are merged: the file's name, the override's sameSite
    expect(setCookie).toMatch(/^app_sid=.*; SameSite=None/)
    expect(setCookie).toContain('; Secure')
    const cookie = setCookie.split(';')[0]!
    offset += 4 * 60_000
    expect((await made.sessions.load(cookie)).get('count')).toBe(1)
    offset += 6 * 60_000
    expect((await made.sessions.load(cookie)).isNew).toBe(true)
    // signed with the override's secret: a manager of the configured one does not know it
    const other = createSessions({ secret: OLDER, store: made.sessions.store })
    expect((await other.load(cookie)).isNew).toBe(true)
    await made.close()
  })

  it('needs a secret, and says where to put one', async () => {
    const err = await createSessionsFromConfig({ cwd: await project(), env: {} }).catch(
      (e: Error) => e,
    )
    expect(err).toBeInstanceOf(SessionConfigError)
    expect((err as Error).message).toBe(
      '[tessera] [config] no secret: set TESSERA_SECRET in the environment (TESSERA_SECRETS=newest,older to rotate), or secrets: ${SESSION_SECRET} in tessera.yaml; make one with `npx tessera keygen`',
    )
  })

  it('names the key a store URL came from when the store cannot be opened, password masked', async () => {
    const err = await createSessionsFromConfig({
      cwd: await project(`secret: ${SECRET}\nstore: mongodb://app:hunter2@db/app\n`),
      env: {},
    }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(SessionConfigError)
    const text = (err as Error).message
    expect(text).toMatch(
      /^\[tessera\] \[config\] tessera\.yaml: store: store URL "mongodb:\/\/app:\*\*\*@db\/app": unknown scheme/,
    )
    expect(text).not.toContain('hunter2')
    const env = await createSessionsFromConfig({
      cwd: await project(),
      env: { TESSERA_SECRET: SECRET, TESSERA_STORE: 'memory:?maxSession=5' },
    }).catch((e: Error) => e)
    expect((env as Error).message).toMatch(
      /^\[tessera\] \[config\] environment variable TESSERA_STORE: store URL "memory:\?maxSession=5": unknown parameter "maxSession"/,
    )
  })

  it('refuses a server URL that does not parse, or whose password is not percent-encoded', async () => {
    const refusal = async (url: string) => {
      const err = await createSessionsFromConfig({
        cwd: await project(),
        env: { TESSERA_SECRET: SECRET, TESSERA_STORE: url },
      }).then(
        async (made) => {
          await made.close()
          return undefined
        },
        (e: unknown) => e,
      )
      expect(err, url).toBeInstanceOf(SessionConfigError)
      return (err as Error).message
    }
    // a generated password often holds / or +; as ${REDIS_PASSWORD} puts it in the URL
    for (const [url, password] of [
      ['postgres://app:Zm9v/YmFy+cQ==@127.0.0.1:5432/test', 'Zm9v/YmFy+cQ=='],
      ['redis://:rd1s/9xq@127.0.0.1:6379/0', 'rd1s/9xq'],
      ['mysql://app:s3c?r3t@127.0.0.1:3306/test', 's3c?r3t'],
      ['mysql://app:s3c#r3t@127.0.0.1:3306/test', 's3c#r3t'],
      ['postgres://app:s3c@r3t@127.0.0.1:5432/test', 's3c@r3t'],
    ]) {
      const text = await refusal(url!)
      expect(text).toMatch(
        /^\[tessera\] \[config\] environment variable TESSERA_STORE: store URL ".*:\/\/(app)?:\*\*\*@127\.0\.0\.1:\d+\/\w+": .*percent-encode the password \(\/ as %2F, \? as %3F, # as %23, @ as %40, % as %25\)$/,
      )
      for (const part of password!.split(/[/?#@]/)) expect(text).not.toContain(part)
    }
    // a malformed URL is a configuration mistake, not a TypeError or a store failing later
    for (const url of ['mysql://bad:url:x', 'postgres://[bad', 'rediss://host:port'])
      expect(await refusal(url)).toContain(`store URL "${url}": is not a valid URL`)
  })
})

const redis = await service('redis', REDIS_URL)

describe.skipIf(!redis.available)('createSessionsFromConfig with redis', () => {
  it('opens the store its URL names, shares sessions between instances, and closes the client', async () => {
    const prefix = `tessera-config-test-${randomBytes(6).toString('hex')}:`
    const cwd = await project(`secret: \${SECRET}\nstore: "\${REDIS_URL}?prefix=${prefix}"\n`)
    const env = { SECRET, REDIS_URL }
    const { first, cookie, idHash } = await roundTrip({ cwd, env })
    expect(first.store).toBe(`${REDIS_URL}?prefix=${prefix}`)
    expect(first.sessions.store.name).toBe('redis')

    const second = await createSessionsFromConfig<{ count: number }>({ cwd, env })
    const loaded = await second.sessions.load(cookie)
    expect(loaded.get('count')).toBe(42)
    expect(loaded.idHash).toBe(idHash)
    loaded.destroy()
    await second.sessions.commit(loaded)
    expect((await first.sessions.load(cookie)).isNew).toBe(true)

    await first.close()
    await second.close()
    await second.close()
    // the client is closed: the store can no longer be reached
    await expect(second.sessions.load(cookie)).rejects.toBeInstanceOf(SessionStoreError)
  })
})
