/**
 * Session options from a YAML file and the environment, so one build runs in every place it is
 * deployed: the file (`tessera.yaml`) holds what is the same everywhere, `TESSERA_*` environment
 * variables what differs, and `${VAR}` in the file pulls secrets in from the environment so they
 * never sit in it. Every mistake (a typo in a key, a bad value, a missing variable) is a
 * `SessionConfigError` at startup naming the file or variable, the key, and what to change.
 *
 * @example
 * ```yaml
 * # tessera.yaml
 * secrets: ${SESSION_SECRETS}          # comma-separated, newest first
 * store: "redis://${REDIS_HOST:-127.0.0.1}:6379?prefix=app:"   # quoted: it ends in ':'
 * cookie: { name: __Host-sid, sameSite: lax }
 * idleTimeout: 30m
 * ```
 * ```ts
 * import { createSessionsFromConfig } from 'tessera/config'
 * const { sessions, close } = await createSessionsFromConfig<{ count: number }>()
 * process.on('SIGTERM', () => close())
 * ```
 * @module
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { LineCounter, parseDocument } from 'yaml'
import { interpolate, unset } from './config/interpolate.js'
import { alike, nearest } from './config/nearest.js'
import {
  boolean,
  cookieString,
  duration,
  fail,
  kindOf,
  oneOf,
  type Parse,
  secret,
  secrets,
  secureFlag,
  shown,
  storeUrl,
  withoutPrefix,
} from './config/values.js'
import { type CookieOptions, resolveCookie } from './core/cookies.js'
import { SessionConfigError, SessionError } from './core/errors.js'
import { DEFAULT_TIMES, type SessionsOptions } from './core/manager.js'
import type { SessionData } from './core/session.js'
import { createSessions, type Sessions } from './index.js'
import { type OpenedStore, storeFromUrl } from './stores/from-url.js'

/**
 * The options a config file and the environment can give: those of `createSessions` that are
 * plain values, with the store named by a URL. Durations are in milliseconds (the file may say
 * `'30m'`); a `secret` given alone comes as `secrets: [secret]`. Only what was set is present,
 * so `createSessions`'s defaults apply to the rest. Every key but `store` can be spread into
 * `createSessions` as it is.
 *
 * @example
 * ```ts
 * const { store, ...options } = await loadConfig()
 * const sessions = createSessions({ ...options, store: myStore })
 * ```
 */
export interface SessionsConfig {
  /** Secrets, newest first (from `secrets` or `secret`). */
  secrets?: readonly string[]
  /**
   * Where sessions live, as a URL for `storeFromUrl` (`tessera/stores/from-url`):
   * `memory:`, `cookie:`, `file:./var/sessions`, `sqlite:./sessions.db`,
   * `redis://host:6379?prefix=app:`, `postgres://user@host/db`, `mysql://...`,
   * `memcached://host:11211`.
   * @default undefined (createSessions's default, a memory store)
   */
  store?: string
  /** The session cookie. */
  cookie?: CookieOptions
  /** In milliseconds. @default 1_800_000 (30 minutes) */
  idleTimeout?: number
  /** In milliseconds. @default 43_200_000 (12 hours) */
  absoluteTimeout?: number
  /** In milliseconds; `0` touches on every request. @default 60_000 (1 minute) */
  touchAfter?: number
  /** A codec with the app's own classes can only be given in code. @default 'json' */
  codec?: 'json' | 'rich'
  /** @default 'reset' */
  onInvalidData?: 'reset' | 'error'
  /** @default false */
  trustProxy?: boolean
}

/** Where {@link loadConfig} reads from. */
export interface LoadConfigOptions {
  /**
   * The YAML file, relative to `cwd`; `false` reads no file (the environment only). A file
   * named here or in `TESSERA_CONFIG` must exist; the default one may be absent.
   * @default env.TESSERA_CONFIG, else 'tessera.yaml'
   */
  file?: string | false
  /**
   * The environment: `TESSERA_*` variables and those `${VAR}` in the file names. Read, never
   * changed. An empty variable counts as unset.
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>>
  /** The directory a relative `file` is found from. @default process.cwd() */
  cwd?: string
  /**
   * Read only these keys (`'cookie'` for every `cookie.*` key): the others are neither
   * interpolated nor checked, so a tool that needs only the store (`['store']`, as the
   * `tessera` command reads it) runs without the app's secrets in its environment. A key the
   * config does not have, in the file or as a mistyped `TESSERA_*` variable, is still an error.
   * @default every key
   * @example
   * ```ts
   * const { store } = await loadConfig({ only: ['store'] })
   * ```
   */
  only?: readonly string[]
}

/** One key of the config, and the environment variable that sets it. */
export interface ConfigKey {
  /** Its path in the YAML file: `idleTimeout`, `cookie.sameSite`. */
  readonly key: string
  /** The environment variable that overrides it: `TESSERA_COOKIE_SAME_SITE`. */
  readonly env: string
}

/** The environment variable that names the config file. */
const CONFIG_ENV = 'TESSERA_CONFIG'
const DEFAULT_FILE = 'tessera.yaml'

interface Field {
  readonly key: string
  readonly env: string
  /** Checks the value and gives it as the config holds it; secrets' checks never show them. */
  readonly parse: Parse
}

/** `cookie.sameSite` -> `TESSERA_COOKIE_SAME_SITE` */
const envName = (key: string): string =>
  `TESSERA_${key
    .replace('.', '_')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toUpperCase()}`

const field = (key: string, parse: Parse): Field => ({ key, env: envName(key), parse })

/** Every key, in the order of the docs. */
const FIELDS: readonly Field[] = [
  field('secret', secret),
  field('secrets', secrets),
  field('store', storeUrl),
  field('idleTimeout', duration(false)),
  field('absoluteTimeout', duration(false)),
  field('touchAfter', duration(true)),
  field('codec', oneOf(['json', 'rich'])),
  field('onInvalidData', oneOf(['reset', 'error'])),
  field('trustProxy', boolean),
  field('cookie.name', cookieString('name')),
  field('cookie.path', cookieString('path')),
  field('cookie.domain', cookieString('domain')),
  field('cookie.sameSite', oneOf(['lax', 'strict', 'none'])),
  field('cookie.secure', secureFlag),
  field('cookie.httpOnly', boolean),
  field('cookie.partitioned', boolean),
  field('cookie.priority', oneOf(['low', 'medium', 'high'])),
]

/**
 * Every key a config file can hold and the environment variable that overrides it, in the
 * order of the docs. (`TESSERA_CONFIG` names the file itself.)
 */
export const CONFIG_KEYS: readonly ConfigKey[] = FIELDS.map(({ key, env }) => ({ key, env }))

const TOP_KEYS = ['secret', 'secrets', 'store', 'cookie', ...FIELDS.map((f) => f.key)].filter(
  (k, i, all) => !k.includes('.') && all.indexOf(k) === i,
)
const COOKIE_KEYS = FIELDS.filter((f) => f.key.startsWith('cookie.')).map((f) => f.key.slice(7))
/** Options of createSessions that only code can give. */
const CODE_ONLY = new Map([
  ['schema', 'a schema'],
  ['clock', 'a clock'],
])

/** Rejects a key the config does not have, with the one it most likely meant. */
function unknownKey(file: string, key: string, section: 'top' | 'cookie'): never {
  const top = section === 'top'
  const label = `${file}: ${top ? key : `cookie.${key}`}`
  const code = top ? CODE_ONLY.get(key) : undefined
  if (code !== undefined)
    fail(
      label,
      `cannot be set in a config file: ${code} is code; pass it to createSessions, or in the overrides of createSessionsFromConfig`,
    )
  const here = top ? TOP_KEYS : COOKIE_KEYS
  const there = top ? COOKIE_KEYS : TOP_KEYS
  const full = (k: string, inCookie: boolean) => (inCookie ? `cookie.${k}` : k)
  const mine = alike(key, here)
  if (mine !== undefined) fail(label, `is not a known key; did you mean ${full(mine, !top)}?`)
  // a cookie option at the top level (secure:), or an option under cookie: (cookie.idleTimeout)
  const moved = alike(key, there)
  const hint = top ? 'cookie options go under cookie:' : 'only cookie options go under cookie:'
  if (moved !== undefined)
    fail(label, `is not a known key; did you mean ${full(moved, top)}? (${hint})`)
  const close = nearest(key, here)
  if (close !== undefined) fail(label, `is not a known key; did you mean ${full(close, !top)}?`)
  const far = nearest(key, there)
  if (far !== undefined)
    fail(label, `is not a known key; did you mean ${full(far, top)}? (${hint})`)
  fail(label, `is not a known key; the keys are ${here.map((k) => full(k, !top)).join(', ')}`)
}

/** Where a key's value came from. */
interface Origin {
  /** For a message about this key: `tessera.yaml: idleTimeout`, `environment variable ...`. */
  readonly label: string
  /** For a message about several keys: the file's name, or the variable's. */
  readonly source: string
}

/** What {@link read} found: the config, where each key came from, the file it read. */
interface Loaded {
  readonly config: SessionsConfig
  readonly origins: ReadonlyMap<string, Origin>
  /** The file read or looked for (as named), or undefined with `file: false`. */
  readonly file: string | undefined
}

type Env = NonNullable<LoadConfigOptions['env']>

/** Whether a key (`idleTimeout`, `cookie.name`) is to be read. */
type Wanted = (key: string) => boolean

/** The keys `only` names, as a test; every key without it. */
function wantedKeys(only: readonly string[] | undefined): Wanted {
  if (only === undefined) return () => true
  const names = new Set(only.map(storedKey))
  for (const name of names)
    if (name !== 'cookie' && !FIELDS.some((f) => storedKey(f.key) === name))
      fail(
        'loadConfig:',
        `only names ${JSON.stringify(name)}, which is not a key; the keys are ${TOP_KEYS.join(', ')} and cookie.*`,
      )
  return (key) => names.has(storedKey(key)) || (key.startsWith('cookie.') && names.has('cookie'))
}

/** Reads and checks the file and the environment; see {@link loadConfig}. */
async function read(options: LoadConfigOptions): Promise<Loaded> {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const wanted = wantedKeys(options.only)
  const given = options.file ?? (env[CONFIG_ENV] || undefined)
  const file = given === false ? undefined : (given ?? DEFAULT_FILE)
  const values = new Map<string, unknown>()
  const origins = new Map<string, Origin>()

  if (file !== undefined) {
    const doc = await readYaml(resolve(cwd, file), file, given !== undefined, options)
    if (doc !== absent) fromFile(doc, file, env, wanted, values, origins)
  }
  fromEnv(env, wanted, values, origins)
  return { config: assemble(values, origins, wanted), origins, file }
}

/** The default file is not there. */
const absent = Symbol('absent')

/** The file's top-level value, or {@link absent} when the default file does not exist. */
async function readYaml(
  path: string,
  file: string,
  explicit: boolean,
  options: LoadConfigOptions,
): Promise<unknown> {
  let source: string
  try {
    source = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && !explicit) return absent
    const by = options.file !== undefined ? 'the file option' : CONFIG_ENV
    throw new SessionConfigError(
      code === 'ENOENT'
        ? `[config] ${file}: no such file (named by ${by}); create it, or correct the path`
        : `[config] ${file}: cannot read the file (${code ?? (err as Error).message})`,
      { cause: err },
    )
  }
  const lines = new LineCounter()
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false })
  // the parser's own messages only: its pretty ones quote the line, which may hold a secret
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem !== undefined) {
    const { line, col } = lines.linePos(problem.pos[0])
    const where = `[config] ${file}: line ${line}, column ${col}:`
    // the parser's own message tells to call another of its functions
    if (problem.code === 'MULTIPLE_DOCS')
      throw new SessionConfigError(
        `${where} a second document starts here; the file must hold one document: remove the "---" or "..." before it`,
      )
    // `store: memory:` is a mapping in a mapping to YAML: the value's last `:` must be quoted
    const hint =
      problem.code === 'BLOCK_AS_IMPLICIT_KEY'
        ? `; a value ending in ":" must be quoted, as in store: "memory:" or store: "redis://host:6379?prefix=app:"`
        : (SOURCE_HINTS[problem.code] ?? '')
    throw new SessionConfigError(
      `${where} ${withoutSource(problem.message)} (not valid YAML${hint})`,
    )
  }
  try {
    return doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    // an alias that names no anchor: `secret: *abc...` (the message ends with the name)
    const message = withoutSource((err as Error).message)
    throw new SessionConfigError(
      `[config] ${file}: ${message} (not valid YAML${err instanceof ReferenceError ? '; a value that starts with "*" must be quoted' : ''})`,
      { cause: err },
    )
  }
}

/**
 * What to add to the message of a parser's problem that quoted text of the file: a value that
 * starts with `!`, `*`, `|` or `%` is read as YAML syntax, and that value may be a secret.
 */
const SOURCE_HINTS: Readonly<Record<string, string>> = {
  TAG_RESOLVE_FAILED: '; a value that starts with "!" must be quoted',
  BAD_DIRECTIVE: '; a line that starts with "%" is a directive',
  BAD_DQ_ESCAPE: '; in double quotes a backslash is written \\\\, or use single quotes',
}

/**
 * The start of the parser's messages that go on with text of the file (a tag, an alias, a
 * directive, an escape, a block scalar header): only that start is shown.
 */
const QUOTES_SOURCE =
  /^(Unresolved tag|Could not resolve tag|Not a valid tag|Verbatim tags aren't resolved|A tag has no suffix|Unknown directive|Unsupported YAML version|Invalid escape sequence|Block scalar header includes extra characters|Unresolved alias \(the anchor must be set before the alias\)|Ordered maps must not include duplicate keys)/

/** A parser's message without the text of the file it may quote (see {@link QUOTES_SOURCE}). */
function withoutSource(message: string): string {
  // "The !abc tag has no suffix"
  const text = /^The .* tag has no suffix/s.test(message) ? 'A tag has no suffix' : message
  return QUOTES_SOURCE.exec(text)?.[1] ?? text
}

/** A plain mapping: not a list, binary data, or the `Map` and `Set` of `!!omap` and `!!set`. */
const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype

/** `secret` and `secrets` are one setting. */
const storedKey = (key: string): string => (key === 'secret' ? 'secrets' : key)

function fromFile(
  doc: unknown,
  file: string,
  env: Env,
  wanted: Wanted,
  values: Map<string, unknown>,
  origins: Map<string, Origin>,
): void {
  // an empty file, or one of comments only
  if (doc === null || doc === undefined) return
  if (!isMapping(doc))
    fail(
      `${file}:`,
      // by its kind only: a file that is one line of text may be a secret file named by mistake
      `must be a mapping of keys (secrets:, store:, cookie:, ...); got ${kindOf(doc)}`,
    )
  for (const key of Object.keys(doc)) if (!TOP_KEYS.includes(key)) unknownKey(file, key, 'top')
  const cookie = doc.cookie ?? {}
  if (!isMapping(cookie))
    fail(`${file}: cookie`, `must be a mapping (cookie: { name: sid, ... }); got ${shown(cookie)}`)
  for (const key of Object.keys(cookie))
    if (!COOKIE_KEYS.includes(key)) unknownKey(file, key, 'cookie')
  if (wanted('secrets') && doc.secret != null && doc.secrets != null)
    fail(`${file}:`, 'gives both secret and secrets; keep one (secrets: [newest, older])')
  for (const f of FIELDS) {
    if (!wanted(f.key)) continue
    const name = f.key.startsWith('cookie.') ? f.key.slice(7) : undefined
    let value = name === undefined ? doc[f.key] : cookie[name]
    // `key:` with nothing after it (its value commented out, say) is unset
    if (value === undefined || value === null) continue
    const label = `${file}: ${f.key}`
    // the environment replaces this value: it is checked all the same, but may use a variable
    // that only the deployments without the override set
    const replaced = f.key.startsWith('secret')
      ? Boolean(env.TESSERA_SECRET || env.TESSERA_SECRETS)
      : Boolean(env[f.env])
    let text = false
    if (typeof value === 'string') ({ value, text } = interpolate(value, env, label, replaced))
    else if (Array.isArray(value))
      value = value.map((v: unknown, i) =>
        typeof v === 'string' ? interpolate(v, env, `${label}[${i}]`, replaced).value : v,
      )
    if (value === unset || (Array.isArray(value) && value.includes(unset))) continue
    values.set(storedKey(f.key), f.parse({ value, text, label }))
    origins.set(storedKey(f.key), { label, source: file })
  }
}

function fromEnv(
  env: Env,
  wanted: Wanted,
  values: Map<string, unknown>,
  origins: Map<string, Origin>,
): void {
  const known = [CONFIG_ENV, ...FIELDS.map((f) => f.env)]
  const prefix = 'TESSERA_'
  // a TESSERA_ variable close to one Tessera reads is a typo; any other is left alone
  for (const name of Object.keys(env)) {
    if (!name.startsWith(prefix) || known.includes(name) || !env[name]) continue
    const guess = nearest(
      name.slice(prefix.length),
      known.map((k) => k.slice(prefix.length)),
    )
    if (guess !== undefined)
      fail(
        `environment variable ${name}`,
        `is not one Tessera reads; did you mean ${prefix}${guess}?`,
      )
  }
  if (wanted('secrets') && env.TESSERA_SECRET && env.TESSERA_SECRETS)
    fail(
      'environment variables TESSERA_SECRET and TESSERA_SECRETS',
      'are both set; keep one (TESSERA_SECRETS=newest,older)',
    )
  for (const f of FIELDS) {
    const value = env[f.env]
    if (value === undefined || value === '' || !wanted(f.key)) continue
    const label = `environment variable ${f.env}`
    values.set(storedKey(f.key), f.parse({ value, text: true, label }))
    origins.set(storedKey(f.key), { label, source: f.env })
  }
}

/** Where the given keys came from, for a message about them together. */
function sourcesOf(origins: ReadonlyMap<string, Origin>, keys: (key: string) => boolean): string {
  const sources = [...origins].filter(([key]) => keys(key)).map(([, o]) => o.source)
  return [...new Set(sources)].join(' and ')
}

/** The config from the checked values, after the checks that involve several keys. */
function assemble(
  values: ReadonlyMap<string, unknown>,
  origins: ReadonlyMap<string, Origin>,
  wanted: Wanted,
): SessionsConfig {
  const config: Record<string, unknown> = {}
  const cookie: Record<string, unknown> = {}
  for (const [key, value] of values) {
    if (key.startsWith('cookie.')) cookie[key.slice(7)] = value
    else config[key] = value
  }
  if (Object.keys(cookie).length > 0) {
    try {
      resolveCookie(cookie as CookieOptions)
    } catch (err) {
      if (!(err instanceof SessionError)) throw err
      fail(`${sourcesOf(origins, (k) => k.startsWith('cookie.'))}:`, withoutPrefix(err))
    }
    config.cookie = cookie
  }
  const idle = (config.idleTimeout as number | undefined) ?? DEFAULT_TIMES.idleTimeout
  const touch = (config.touchAfter as number | undefined) ?? DEFAULT_TIMES.touchAfter
  if (touch >= idle && wanted('touchAfter') && wanted('idleTimeout')) {
    const byDefault = (key: string) => (origins.has(key) ? '' : ', the default')
    fail(
      `${sourcesOf(origins, (k) => k === 'touchAfter' || k === 'idleTimeout')}:`,
      `touchAfter (${touch} ms${byDefault('touchAfter')}) must be shorter than idleTimeout (${idle} ms${byDefault('idleTimeout')}), or active sessions would expire; lower touchAfter or raise idleTimeout`,
    )
  }
  return config as SessionsConfig
}

/**
 * Reads the session options from a YAML file and `TESSERA_*` environment variables (which win
 * over the file), with `${VAR}` in the file's values replaced from the environment. Every key
 * is checked; a mistake is a `SessionConfigError` naming the file or variable and the key.
 * Nothing is opened: the store stays a URL (see {@link createSessionsFromConfig}).
 *
 * @example
 * ```ts
 * import { createSessions } from 'tessera'
 * import { loadConfig } from 'tessera/config'
 * import { redisStore } from 'tessera/stores/redis'
 *
 * const { store: _url, ...options } = await loadConfig({ file: 'config/sessions.yaml' })
 * const sessions = createSessions({ ...options, store: redisStore({ client }) })
 * ```
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<SessionsConfig> {
  return (await read(options)).config
}

/** Options of {@link createSessionsFromConfig}. */
export interface CreateSessionsFromConfigOptions<Data extends SessionData = SessionData>
  extends Omit<LoadConfigOptions, 'only'> {
  /**
   * Options that only code can give (`schema`, `clock`, a `codec` with the app's classes), or
   * that must win over the file and the environment. A `secret` or `secrets` here replaces the
   * configured ones; `cookie` is merged key by key over the configured cookie.
   * @default {}
   */
  overrides?: Omit<SessionsOptions<Data>, 'store'>
}

/** What {@link createSessionsFromConfig} made. */
export interface SessionsFromConfig<Data extends SessionData = SessionData> {
  /** The session manager, as `createSessions` makes it. */
  readonly sessions: Sessions<Data>
  /** The store's URL with any password masked, safe to log; `memory:` when none was set. */
  readonly store: string
  /** Closes the store and the client its URL opened. Idempotent. */
  close(): Promise<void>
}

/**
 * {@link loadConfig}, then the store its URL names (`tessera/stores/from-url`; a memory store
 * when none is set), then `createSessions`. A secret is required, from the file, the
 * environment or `overrides`. Call `close()` at shutdown.
 *
 * @example
 * ```ts
 * import { createSessionsFromConfig } from 'tessera/config'
 * import { sessionMiddleware } from 'tessera/express'
 *
 * const { sessions, store, close } = await createSessionsFromConfig<{ userId?: string }>()
 * console.log(`sessions in ${store}`)
 * app.use(sessionMiddleware(sessions))
 * process.on('SIGTERM', () => void close())
 * ```
 */
export async function createSessionsFromConfig<Data extends SessionData = SessionData>(
  options: CreateSessionsFromConfigOptions<Data> = {},
): Promise<SessionsFromConfig<Data>> {
  const { overrides = {}, ...where } = options
  const { config, origins, file } = await read(where)
  const { store: url, secrets, ...rest } = config
  const ownSecret = overrides.secret !== undefined || overrides.secrets !== undefined
  if (!ownSecret && secrets === undefined) {
    throw new SessionConfigError(
      `[config] no secret: set TESSERA_SECRET in the environment (TESSERA_SECRETS=newest,older to rotate)${file === undefined ? '' : `, or secrets: \${SESSION_SECRET} in ${file}`}; make one with \`npx tessera keygen\``,
    )
  }
  let opened: OpenedStore | undefined
  if (url !== undefined) {
    try {
      opened = await storeFromUrl(url)
    } catch (err) {
      if (!(err instanceof SessionConfigError)) throw err
      throw new SessionConfigError(
        `[config] ${origins.get('store')?.label}: ${withoutPrefix(err)}`,
        {
          cause: err,
        },
      )
    }
  }
  const cookie =
    rest.cookie === undefined || overrides.cookie === undefined
      ? (overrides.cookie ?? rest.cookie)
      : { ...rest.cookie, ...overrides.cookie }
  let sessions: Sessions<Data>
  try {
    sessions = createSessions<Data>({
      ...rest,
      ...(ownSecret || secrets === undefined ? {} : { secrets }),
      ...overrides,
      ...(cookie === undefined ? {} : { cookie }),
      ...(opened === undefined ? {} : { store: opened.store }),
    })
  } catch (err) {
    await opened?.close()
    throw err
  }
  let closing: Promise<void> | undefined
  return {
    sessions,
    store: opened?.url ?? 'memory:',
    close: () => {
      closing ??= opened === undefined ? sessions.close() : opened.close()
      return closing
    },
  }
}
