/**
 * A store from a URL: for `tessera/config` and the `tessera` command, where a store is named in
 * text rather than built in code. The URL names the store, where its server is, and the
 * store's options as query parameters; the driver the store needs is loaded from the app's
 * own dependencies, and closed by {@link OpenedStore.close}.
 *
 * | URL | store | driver |
 * | --- | --- | --- |
 * | `memory:` | memory | none |
 * | `cookie:` | cookie | none |
 * | `file:./var/sessions` | file | none |
 * | `sqlite:./sessions.db` | sqlite | `better-sqlite3` |
 * | `redis://host:6379/0`, `rediss://` | redis | `ioredis`, else `redis` |
 * | `postgres://user@host/db`, `postgresql://` | postgres | `pg` |
 * | `mysql://user@host/db`, `mariadb://` | mysql | `mysql2` |
 * | `memcached://host:11211` | memcached | `memjs` |
 *
 * Parameters the store knows are taken out of the URL (`?prefix=app:`, `?table=sessions`,
 * `?createTable=true`); any other is left for the driver (`?sslmode=require`). For Redis,
 * `?driver=ioredis` or `?driver=redis` picks the driver when the app has both. A password
 * must be percent-encoded (`/` as `%2F`, `@` as `%40`, ...): a server URL that does not parse
 * is refused at once.
 *
 * @example
 * ```ts
 * import { storeFromUrl } from 'tessera/stores/from-url'
 * const { store, close } = await storeFromUrl('redis://127.0.0.1:6379?prefix=app:')
 * const sessions = createSessions({ secret, store })
 * process.on('SIGTERM', () => close())
 * ```
 * @module
 */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { SessionConfigError, SessionStoreError } from '../core/errors.js'
import type { ClientSideStore, SessionStore } from '../core/store.js'

/** A store opened from a URL, and what closes it. */
export interface OpenedStore {
  readonly store: SessionStore | ClientSideStore
  /** The URL, with any password replaced by `***`: safe to print. */
  readonly url: string
  /** Closes the store, then the client the URL opened. Idempotent. */
  close(): Promise<void>
}

/**
 * Options of {@link storeFromUrl}.
 *
 * @example
 * ```ts
 * // an admin tool: a mistyped path is an error, not a new empty store
 * const { store } = await storeFromUrl('sqlite:./sessions.db', { create: false })
 * ```
 */
export interface StoreFromUrlOptions {
  /**
   * Whether opening may create the store: a `file:` directory, a `sqlite:` database file, the
   * table `?createTable=true` asks for. With `false` only a store that exists opens (a
   * missing directory or database file is a `SessionConfigError` naming the path) and
   * `?createTable` is ignored: for tools that read or clean up the app's store.
   * @default true
   */
  create?: boolean
}

/** Every scheme {@link storeFromUrl} takes. */
export const STORE_SCHEMES = [
  'memory',
  'cookie',
  'file',
  'sqlite',
  'redis',
  'rediss',
  'postgres',
  'postgresql',
  'mysql',
  'mariadb',
  'memcached',
] as const

type Param = 'string' | 'integer' | 'boolean'

/** The query parameters each store takes, and their types. */
const PARAMS: Record<string, Record<string, Param>> = {
  memory: { maxSessions: 'integer', sweepInterval: 'integer' },
  cookie: { maxChunks: 'integer', clockSkew: 'integer' },
  file: { fsync: 'boolean', sweepInterval: 'integer', lockTimeout: 'integer' },
  sqlite: { table: 'string', createTable: 'boolean', pruneInterval: 'integer' },
  redis: { prefix: 'string', scanCount: 'integer', timeout: 'integer', driver: 'string' },
  postgres: {
    table: 'string',
    createTable: 'boolean',
    pruneInterval: 'integer',
    timeout: 'integer',
  },
  mysql: { table: 'string', createTable: 'boolean', pruneInterval: 'integer', timeout: 'integer' },
  memcached: { prefix: 'string', casRetries: 'integer' },
}

const STORE_OF: Record<(typeof STORE_SCHEMES)[number], string> = {
  memory: 'memory',
  cookie: 'cookie',
  file: 'file',
  sqlite: 'sqlite',
  redis: 'redis',
  rediss: 'redis',
  postgres: 'postgres',
  postgresql: 'postgres',
  mysql: 'mysql',
  mariadb: 'mysql',
  memcached: 'memcached',
}

/**
 * `url` with its password, if any, replaced by `***` (also in a URL missing its scheme): from
 * the `:` after the user to the last `@`, so a password holding a raw `/`, `?`, `#` or `@`
 * (which {@link storeFromUrl} refuses) is hidden whole. Without `//` after the scheme
 * (`app:s3cret@host`, `redis:app:s3cret@host`), from the first `:` to the last `@`.
 *
 * @example
 * ```ts
 * maskUrl('postgres://app:s3cret@db/app') // 'postgres://app:***@db/app'
 * ```
 */
export function maskUrl(url: string): string {
  // the user part may hold an `@` (a memcached server without a password before one with)
  if (/^(?:[a-z][a-z0-9+.-]*:)?\/\//i.test(url))
    return url.replace(/^((?:[a-z][a-z0-9+.-]*:)?\/\/[^:/?#]*?:)[\s\S]*@/i, '$1***@')
  // no `//`: a scheme forgotten (`app:s3cret@host`) or its slashes (`redis:app:s3cret@host`),
  // whose parts cannot be told apart; everything from the first `:` to the last `@` goes
  return url.replace(/^([^:/?#@]*:)[\s\S]*@/, '$1***@')
}

function fail(url: string, problem: string, cause?: unknown): never {
  throw new SessionConfigError(
    `store URL "${maskUrl(url)}": ${problem}`,
    cause === undefined ? undefined : { cause },
  )
}

/** Splits off the store's own parameters and parses them; the rest stay in the URL. */
function takeParams(
  url: string,
  store: string,
): { rest: string; options: Record<string, unknown> } {
  const known = PARAMS[store] ?? {}
  const q = url.indexOf('?')
  if (q === -1) return { rest: url, options: {} }
  const query = new URLSearchParams(url.slice(q + 1))
  const options: Record<string, unknown> = {}
  const kept = new URLSearchParams()
  for (const [name, value] of query) {
    const type = known[name]
    if (type === undefined) {
      kept.append(name, value)
    } else if (type === 'string') {
      options[name] = value
    } else if (type === 'boolean') {
      if (value !== 'true' && value !== 'false')
        fail(url, `?${name} must be true or false, got "${value}"`)
      options[name] = value === 'true'
    } else {
      const n = Number(value)
      if (value === '' || !Number.isSafeInteger(n) || n < 0)
        fail(url, `?${name} must be a whole number of 0 or more, got "${value}"`)
      options[name] = n
    }
  }
  // the stores without a driver take nothing else
  if (['memory', 'cookie', 'file', 'sqlite'].includes(store) && kept.size > 0) {
    const names = Object.keys(known)
    fail(
      url,
      `unknown parameter "${[...kept.keys()][0]}" (the ${store} store takes ${names.join(', ')})`,
    )
  }
  const left = kept.toString()
  return { rest: url.slice(0, q) + (left === '' ? '' : `?${left}`), options }
}

/** The path after `scheme:` (and an optional `//`), percent-decoded. */
function pathOf(url: string, rest: string, scheme: string): string {
  let path = rest.slice(scheme.length + 1)
  if (path.startsWith('//')) path = path.slice(2)
  try {
    return decodeURIComponent(path)
  } catch (err) {
    return fail(url, `the path has a malformed %-escape ("${path}"); write % as %25`, err)
  }
}

/** Encoded, a password can hold any character. */
const ENCODE_PASSWORD =
  'percent-encode the password (/ as %2F, ? as %3F, # as %23, @ as %40, % as %25)'

/** `user:` then an `@` somewhere after it: what {@link maskUrl} hides as a password. */
const looksLikePassword = (url: string) => /^[a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:[\s\S]*@/i.test(url)

/** What is between `scheme://` and the first `/`, `?` or `#`: `user:password@host:port`. */
const authorityOf = (url: string) => /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url)?.[1] ?? ''

/**
 * Refuses what {@link maskUrl} reads as a password but a driver would not: a raw `@` in it
 * (a host of its own), or a raw `/`, `?` or `#` before its `@`, which ends the host there.
 * After digits (`redis://user:1234?x@host`) the password even parses, as a port, with the
 * real host and the rest of the password in the query or fragment. An `@` meant for the
 * query after a `host:port` is read the same way, so it must be `%40` too.
 */
function checkPassword(url: string, { several = false } = {}): void {
  const authority = authorityOf(url)
  if (looksLikePassword(url) && !authority.includes('@'))
    fail(url, `the password holds a raw /, ? or # (or the query a raw @); ${ENCODE_PASSWORD}`)
  // several servers (memcached): one `user:password@` each
  for (const server of several ? authority.split(',') : [authority])
    if (server.indexOf('@') !== server.lastIndexOf('@'))
      fail(url, `the password holds a raw character; ${ENCODE_PASSWORD}`)
}

/**
 * Refuses a server's URL that the driver would misread: one `new URL()` cannot parse (the
 * driver would throw a bare TypeError, or fail every call), and a password holding a raw `/`,
 * `?`, `#` or `@` (read as the end of the host, or a host of its own).
 */
function checkServerUrl(url: string, rest: string): void {
  // (in `url`: a `?` in the password has made the rest of it a query parameter in `rest`)
  let path: string
  try {
    path = new URL(rest).pathname
  } catch (err) {
    fail(
      url,
      looksLikePassword(url)
        ? `is not a valid URL; ${ENCODE_PASSWORD}`
        : 'is not a valid URL (scheme://user:password@host:port/database)',
      err,
    )
  }
  // (its password was checked by checkPassword, before its parameters were read)
  // a raw `/` in a user name (`user/x@host`) puts its `@` in the path
  if (path.includes('@')) fail(url, `the password holds a raw character; ${ENCODE_PASSWORD}`)
}

/** One server of a `memcached://` URL, as `memjs.Server` takes it. */
interface MemcachedServer {
  host: string
  port: number
  username: string | undefined
  password: string | undefined
}

const MEMCACHED_FORM = 'memcached://[user:password@]host[:port][,host2[:port],...]'

/**
 * The servers a `memcached://` URL names, checked as {@link checkServerUrl} checks a server's
 * URL: each must parse as `[user:password@]host[:port]` (a port that is not a number, or over
 * 65535, is refused rather than read as `parseInt` reads it), with a raw character in a
 * password refused, and no path, fragment or parameter memjs would silently drop. The user and
 * password are percent-decoded, as for the other servers: memjs's own server string would cut
 * a password at `:`, `@` or `,` and send `%40` as it is.
 */
function memcachedServers(url: string, rest: string, scheme: string): MemcachedServer[] {
  // memjs takes nothing from the URL but the servers: any other parameter would be ignored
  const q = rest.indexOf('?')
  if (q !== -1) {
    const [name] = new URLSearchParams(rest.slice(q + 1)).keys()
    const names = Object.keys(PARAMS.memcached ?? {})
    fail(url, `unknown parameter "${name}" (the memcached store takes ${names.join(', ')})`)
  }
  const list = rest.slice(scheme.length + 1).replace(/^\/\//, '')
  const end = list.search(/[/#]/)
  if (end !== -1 && list.slice(end) !== '/')
    fail(url, `Memcached has no database or path; give only its servers: ${MEMCACHED_FORM}`)
  const servers = end === -1 ? list : list.slice(0, end)
  if (servers === '') fail(url, 'give the server: memcached://127.0.0.1:11211')
  const all = servers.split(',')
  return all.map((server, i) => {
    // by its place, not its text: the text may hold a password
    const which = all.length === 1 ? 'the server' : `server ${i + 1} of ${all.length}`
    let parsed: URL
    try {
      parsed = new URL(`memcached://${server}`)
    } catch (err) {
      return fail(
        url,
        looksLikePassword(url)
          ? `${which} is not a valid URL; ${ENCODE_PASSWORD}`
          : `${which} is not a valid host:port (${MEMCACHED_FORM})`,
        err,
      )
    }
    if (parsed.hostname === '') fail(url, `${which} has no host (${MEMCACHED_FORM})`)
    const decoded = (text: string) => {
      try {
        return text === '' ? undefined : decodeURIComponent(text)
      } catch (err) {
        return fail(
          url,
          `${which} has a malformed %-escape in its user or password; write % as %25`,
          err,
        )
      }
    }
    return {
      // `[::1]` is a host name to a URL, `::1` to a socket
      host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: parsed.port === '' ? 11211 : Number(parsed.port),
      username: decoded(parsed.username),
      password: decoded(parsed.password),
    }
  })
}

/** Refuses a `file:` directory or `sqlite:` file that is not there. */
async function mustExist(url: string, path: string, what: 'directory' | 'database file') {
  const found = await stat(path).then(
    (s) => (what === 'directory' ? s.isDirectory() : s.isFile()),
    () => false,
  )
  if (!found) fail(url, `there is no ${what} ${resolve(path)}; check the path`)
}

/**
 * The store `build` makes over a client just opened, which `close` closes. When the store
 * refuses its options (a `SessionConfigError` from its constructor), the client is closed
 * before the error goes on: a connection left open would keep the process from exiting.
 */
async function over(
  close: () => Promise<unknown>,
  build: () => Promise<SessionStore | ClientSideStore>,
): Promise<Opened> {
  try {
    return { store: await build(), client: close }
  } catch (err) {
    await close().catch(() => {})
    throw err
  }
}

/** Loads a driver the app installed, or says which package to install. */
async function load<T>(url: string, name: string, importer: () => Promise<T>): Promise<T> {
  try {
    return await importer()
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
      fail(url, `needs the "${name}" package: npm install ${name}`, err)
    throw err
  }
}

/**
 * Opens the store `url` names, with a client of its own where the store needs one. Throws a
 * `SessionConfigError` for an unknown scheme, an unknown or malformed parameter, a server URL
 * that does not parse or whose password is not percent-encoded, a driver that is not
 * installed, or (with `create: false`) a store that does not exist; a server that does not
 * answer fails at the store's first call, as with a client the app built.
 *
 * @example
 * ```ts
 * const { store, close } = await storeFromUrl('postgres://app@db/app?createTable=true')
 * ```
 */
export async function storeFromUrl(
  url: string,
  { create = true }: StoreFromUrlOptions = {},
): Promise<OpenedStore> {
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(url)
  const scheme = match?.[1]?.toLowerCase() as (typeof STORE_SCHEMES)[number] | undefined
  if (scheme === undefined || !(STORE_SCHEMES as readonly string[]).includes(scheme))
    fail(url, `unknown scheme; use one of ${STORE_SCHEMES.map((s) => `${s}:`).join(', ')}`)
  const kind = STORE_OF[scheme]
  // before the parameters are read: a password's raw `?` makes its tail one, which a message
  // about that parameter's value would quote
  const oneServer = kind === 'redis' || kind === 'postgres' || kind === 'mysql'
  if (oneServer || kind === 'memcached') checkPassword(url, { several: !oneServer })
  const { rest, options } = takeParams(url, kind)
  if (!create) delete options.createTable
  if (oneServer) checkServerUrl(url, rest)
  const opened = await open(url, scheme, kind, rest, options, create)
  let closing: Promise<void> | undefined
  return {
    store: opened.store,
    url: maskUrl(url),
    close: () => {
      closing ??= (async () => {
        await (opened.store as SessionStore).close?.()
        await opened.client?.()
      })()
      return closing
    },
  }
}

interface Opened {
  store: SessionStore | ClientSideStore
  /** Closes the client the URL opened. */
  client?: () => Promise<unknown>
}

async function open(
  url: string,
  scheme: string,
  kind: string,
  rest: string,
  options: Record<string, unknown>,
  create: boolean,
): Promise<Opened> {
  switch (kind) {
    case 'memory': {
      const { memoryStore } = await import('./memory.js')
      return { store: memoryStore(options) }
    }
    case 'cookie': {
      const { cookieStore } = await import('./cookie.js')
      return { store: cookieStore(options) }
    }
    case 'file': {
      const directory = pathOf(url, rest, scheme)
      if (directory === '') fail(url, 'give the directory: file:./var/sessions')
      if (!create) await mustExist(url, directory, 'directory')
      const { fileStore } = await import('./file.js')
      return { store: fileStore({ ...options, directory }) }
    }
    case 'sqlite': {
      const file = pathOf(url, rest, scheme)
      if (file === '')
        fail(url, 'give the database file: sqlite:./sessions.db (or sqlite::memory:)')
      if (!create && file !== ':memory:') await mustExist(url, file, 'database file')
      const { default: Database } = await load(
        url,
        'better-sqlite3',
        () => import('better-sqlite3'),
      )
      const { sqliteStore } = await import('./sqlite.js')
      let db: InstanceType<typeof Database>
      try {
        db = new Database(file, { fileMustExist: !create })
      } catch (err) {
        return fail(url, `cannot open the database file: ${(err as Error).message}`, err)
      }
      return over(
        async () => db.close(),
        async () => sqliteStore({ ...options, db }),
      )
    }
    case 'redis':
      return openRedis(url, rest, options)
    case 'postgres': {
      const pg = await load(url, 'pg', () => import('pg'))
      const { postgresStore } = await import('./postgres.js')
      const pool = new pg.default.Pool({ connectionString: rest })
      return over(
        () => pool.end(),
        async () => postgresStore({ ...options, pool }),
      )
    }
    case 'mysql': {
      const mysql = await load(url, 'mysql2', () => import('mysql2/promise'))
      const { mysqlStore } = await import('./mysql.js')
      const pool = mysql.createPool(`mysql:${rest.slice(scheme.length + 1)}`)
      return over(
        () => pool.end(),
        async () => mysqlStore({ ...options, pool }),
      )
    }
    default: {
      const servers = memcachedServers(url, rest, scheme)
      const { default: memjs } = await load(url, 'memjs', () => import('memjs'))
      const { memcachedStore } = await import('./memcached.js')
      // what `memjs.Client.create('user:password@host:port,...')` makes, from parts decoded
      const client = new memjs.Client(
        servers.map((s) => new memjs.Server(s.host, s.port, s.username, s.password)),
      )
      return over(
        async () => client.close(),
        async () => memcachedStore({ ...options, client }),
      )
    }
  }
}

/** Redis through `ioredis` when the app has it, else `redis` (node-redis), or as `?driver=` says. */
async function openRedis(
  url: string,
  rest: string,
  options: Record<string, unknown>,
): Promise<Opened> {
  const { driver, ...storeOptions } = options
  if (driver !== undefined && driver !== 'ioredis' && driver !== 'redis')
    fail(url, `?driver must be ioredis or redis, got "${String(driver)}"`)
  const { redisStore } = await import('./redis.js')
  const io =
    driver === 'redis'
      ? undefined
      : driver === 'ioredis'
        ? await load(url, 'ioredis', () => import('ioredis'))
        : await import('ioredis').catch(() => undefined)
  if (io !== undefined) {
    // one attempt per command, so a server that is down fails the command instead of waiting
    const client = new io.Redis(rest, { maxRetriesPerRequest: 1 })
    // a lost connection fails the commands, which the store reports; not a second time here
    client.on('error', () => {})
    try {
      return { store: redisStore({ ...storeOptions, client }), client: () => client.quit() }
    } catch (err) {
      // still connecting: `quit` would wait for the connection to send QUIT
      client.disconnect()
      throw err
    }
  }
  const redis = await load(url, driver === 'redis' ? 'redis' : 'ioredis', () => import('redis'))
  // node-redis retries a first connection forever: fail it at once instead, and reconnect
  // (as node-redis does by default) only once it has connected
  let connected = false
  const client = redis.createClient({
    url: rest,
    socket: {
      reconnectStrategy: (retries: number, cause: Error) =>
        connected ? Math.min(2 ** retries * 50, 2000) : cause,
    },
  })
  client.on('error', () => {})
  client.on('ready', () => {
    connected = true
  })
  try {
    await client.connect()
  } catch (err) {
    throw new SessionStoreError('redis', 'connect', (err as Error).message, { cause: err })
  }
  return over(
    () => client.close(),
    async () => redisStore({ ...storeOptions, client }),
  )
}
