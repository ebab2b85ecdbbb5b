/**
 * One benchmark server, started by `bench/run.ts` in its own process:
 * `node --import tsx bench/server.ts <variant> <port>`; prints `ready` when listening.
 *
 * Every variant serves the same two routes:
 * - `GET /write`: read the counter, add one, store it; answers the new count.
 * - `GET /read`: read the counter, change nothing; answers it (0 when absent).
 *
 * The Tessera variants run the real code from `src/`. Where a framework adapter exists in
 * `src/adapters/` it is used; otherwise the framework is glued to the core API
 * (`sessions.load()` / `sessions.commit()`) the way an adapter would be.
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hash,
  randomBytes,
  randomFillSync,
} from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import type { Session, SessionStore, Sessions } from '../src/index.js'
import { expressServer } from '../test/helpers/express-server.js'
import { fromTessera, hasSource, SECRET } from './tessera.js'

type Core = typeof import('../src/index.js')
type NodeAdapter = typeof import('../src/adapters/node.js')
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
const REDIS_PREFIX = process.env.BENCH_REDIS_PREFIX ?? 'tessera-bench:'

type Data = { count: number }
type Handler = (port: number) => Promise<void>

const send = (res: ServerResponse, body: string) => {
  res.setHeader('content-type', 'text/plain')
  res.end(body)
}
const count = (v: unknown) => (typeof v === 'number' ? v : 0)

// biome-ignore lint/suspicious/noExplicitAny: modules other engineers are writing now
const importSource = (rel: string) => fromTessera<any>(rel)

/**
 * Which store a Tessera variant uses; `redis` is on node-redis, the client connect-redis uses,
 * with its defaults, and `redis-untimed` on node-redis without its per-command timeout.
 */
type StoreKind = 'memory' | 'cookie' | 'cookie-sodium' | 'redis' | 'redis-untimed' | 'ioredis'

/**
 * A connected node-redis client. `untimed`: `commandOptions: { timeout: 0 }`, without the
 * 5-second timeout node-redis 6 gives every command by default, whose `AbortSignal.timeout()`
 * per command costs more CPU than the command (see docs/stores/redis.md).
 */
async function nodeRedis(untimed = false) {
  const { createClient } = await import('redis')
  const client = createClient({
    url: REDIS_URL,
    ...(untimed ? { commandOptions: { timeout: 0 } } : {}),
  })
  await client.connect()
  return client
}

async function tesseraStore(kind: StoreKind): Promise<SessionStore> {
  if (kind === 'memory') {
    const { memoryStore } =
      await fromTessera<typeof import('../src/stores/memory.js')>('stores/memory.js')
    return memoryStore()
  }
  if (kind === 'cookie' || kind === 'cookie-sodium') {
    const { cookieStore } = await importSource('stores/cookie.js')
    if (kind === 'cookie') return cookieStore()
    // libsodium, as the option documents: the module itself
    const sodium = ((await import('sodium-native' as string)) as { default: unknown }).default
    return cookieStore({ sodium } as Parameters<typeof cookieStore>[0])
  }
  const { redisStore } = await importSource('stores/redis.js')
  if (kind === 'ioredis') {
    const { Redis } = await import('ioredis')
    return redisStore({ client: new Redis(REDIS_URL), prefix: `${REDIS_PREFIX}t:` })
  }
  return redisStore({
    client: await nodeRedis(kind === 'redis-untimed'),
    prefix: `${REDIS_PREFIX}t:`,
  })
}

/**
 * With `BENCH_FROZEN_CLOCK` set (by `bench/instructions.ts`), Tessera's clock stands still at
 * the server's start. Under callgrind a server runs 10 to 100 times slower, so a minute passes
 * within one rotation through the spread sessions and `touchAfter` (one minute) would rewrite
 * every session a `/read` finds; in the timed run, whose rotation takes under two seconds and
 * whose servers live under a minute, no `/read` does. Only Tessera's clock stops; the tool
 * logs every counted `/read` that sets a cookie, whoever's it is.
 */
const startedAt = Date.now()
const clock = process.env.BENCH_FROZEN_CLOCK === undefined ? undefined : () => startedAt

async function tessera(kind: StoreKind): Promise<Sessions<Data>> {
  const { createSessions } = await fromTessera<Core>('index.js')
  return createSessions<Data>({
    secret: SECRET,
    store: await tesseraStore(kind),
    ...(clock === undefined ? {} : { clock }),
  })
}

// ---------------------------------------------------------------- node:http

const nodeBare: Handler = async (port) => {
  createServer((req, res) => {
    if (req.url === '/write' || req.url === '/read') send(res, '0')
    else res.writeHead(404).end()
  }).listen(port)
}

/** Busy-waits `ns` nanoseconds of CPU: work of a known in-process cost, with no session. */
const spin = (ns: number) => {
  const end = process.hrtime.bigint() + BigInt(ns)
  while (process.hrtime.bigint() < end);
}
/** How much in-process work a calibration variant does per request (`BENCH_SPIN_NS`). */
export const SPIN_NS = Number(process.env.BENCH_SPIN_NS ?? 1500)

/**
 * Calibration: bare node:http plus {@link SPIN_NS} of busy work per request. Its added CPU
 * over HTTP, against that in-process cost, shows how much any in-process work is magnified
 * once it also lowers throughput (fewer responses per kernel wake-up).
 */
const nodeSpin: Handler = async (port) => {
  createServer((req, res) => {
    if (req.url === '/write' || req.url === '/read') {
      spin(SPIN_NS)
      send(res, '0')
    } else res.writeHead(404).end()
  }).listen(port)
}

/** Sessions in the spread scenarios. */
export const SPREAD = 10_000

/**
 * Calibration: the work no cache can spare a signed, hashed-at-rest server session on a
 * cookie it has not seen lately, with no session library around it: the HMAC-SHA256 of the
 * cookie's id (Tessera's own, two one-shot `crypto.hash` calls, the fastest node:crypto
 * offers), the SHA-256 of the id (the at-rest key), and a read of that key's record from a
 * `Map` of up to {@link SPREAD} records, made on first sight, so that once the spread has gone
 * round every read finds one. The variant receives cookies of Tessera's shape that no server
 * signed (as every calibration variant does) and answers 0 whatever the signature: it
 * measures the work of a valid cookie, not a refusal. Its added CPU on the spread routes is the
 * floor of the server-store targets there, the cost of the cache misses included.
 */
export async function floorWork(): Promise<(cookieHeader: string | undefined) => void> {
  const { hmacSha256 } = await fromTessera<typeof import('../src/core/hmac.js')>('core/hmac.js')
  const mac = hmacSha256(randomBytes(32))
  const records = new Map<string, { count: number }>()
  return (cookieHeader) => {
    const at = cookieHeader?.indexOf('sid=') ?? -1
    if (at < 0) return
    const id = cookieHeader!.slice(at + 4, at + 47)
    const valid = mac(id) === cookieHeader!.slice(at + 48, at + 91)
    const key = hash('sha256', id, 'hex')
    const record = records.get(key)
    if (record === undefined && records.size < SPREAD) records.set(key, { count: 0 })
    // what a library would go on with; the answer stays 0, as every calibration variant's
    if (valid && record !== undefined) record.count++
  }
}

const nodeFloor: Handler = async (port) => {
  const work = await floorWork()
  createServer((req, res) => {
    if (req.url === '/write' || req.url === '/read') {
      work(req.headers.cookie)
      send(res, '0')
    } else res.writeHead(404).end()
  }).listen(port)
}

const nodeTessera =
  (kind: 'memory' | 'cookie' | 'cookie-sodium'): Handler =>
  async (port) => {
    const sessions = await tessera(kind)
    const { withSession } = await fromTessera<NodeAdapter>('adapters/node.js')
    createServer(
      withSession(sessions, (req, res, session) => {
        if (req.url === '/write') {
          const n = count(session.get('count')) + 1
          session.set('count', n)
          send(res, String(n))
        } else if (req.url === '/read') send(res, String(count(session.get('count'))))
        else res.writeHead(404).end()
      }),
    ).listen(port)
  }

/** node:http with the core API called directly (no adapter): what the adapter itself costs. */
const nodeTesseraCore: Handler = async (port) => {
  const sessions = await tessera('memory')
  createServer(async (req, res) => {
    if (req.url !== '/write' && req.url !== '/read') return void res.writeHead(404).end()
    const session = await sessions.load(req.headers.cookie)
    let body: string
    if (req.url === '/write') {
      const n = count(session.get('count')) + 1
      session.set('count', n)
      body = String(n)
    } else body = String(count(session.get('count')))
    const cookies = await sessions.commit(session)
    if (cookies.length > 0) res.setHeader('set-cookie', cookies)
    send(res, body)
  }).listen(port)
}

const nodeIron: Handler = async (port) => {
  const { getIronSession } = await import('iron-session')
  const options = { password: SECRET, cookieName: 'iron', cookieOptions: { secure: false } }
  createServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/write' && req.url !== '/read') return void res.writeHead(404).end()
    const session = await getIronSession<Data>(req, res, options)
    if (req.url === '/write') {
      session.count = count(session.count) + 1
      await session.save()
      send(res, String(session.count))
    } else send(res, String(count(session.count)))
  }).listen(port)
}

// ---------------------------------------------------------------- Express

type ExpressApp = import('express').Express

async function expressApp() {
  const { default: express } = await import('express')
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  return app
}

/**
 * How the Express variants are served: `app.listen()` (the default, as most apps do), or with
 * `BENCH_EXPRESS_SERVER=constructed` a server whose requests and responses are made with the
 * app's own prototypes (docs/adapters/express.md, "Serving Express"), so that Express's
 * `Object.setPrototypeOf` per request has nothing to change.
 */
export const EXPRESS_SERVER = process.env.BENCH_EXPRESS_SERVER || 'app.listen'
if (EXPRESS_SERVER !== 'app.listen' && EXPRESS_SERVER !== 'constructed') {
  throw new Error(
    `BENCH_EXPRESS_SERVER must be 'app.listen' (the default) or 'constructed', not '${EXPRESS_SERVER}'`,
  )
}

function listenExpress(app: ExpressApp, port: number): void {
  const server = EXPRESS_SERVER === 'constructed' ? expressServer(app) : app
  server.listen(port)
}

/**
 * Express with no session; with `middleware`, the calibration variant: one middleware that
 * only calls `next()`, what any session middleware pays before it does anything.
 */
const expressBare =
  (middleware: boolean): Handler =>
  async (port) => {
    const app = await expressApp()
    if (middleware) app.use((_req, _res, next) => next())
    app.get('/write', (_req, res) => void send(res, '0'))
    app.get('/read', (_req, res) => void send(res, '0'))
    listenExpress(app, port)
  }

/**
 * Calibration: bare Express plus what an Express session middleware does before anything
 * else, as `fastify:hooks` is for Fastify: it puts a value on `req`, and takes over
 * `res.writeHead` so that a cookie can still be set when the headers go out, the way
 * `on-headers` (which express-session uses) does it: the wrapper stays on the response.
 */
const expressHooks: Handler = async (port) => {
  const app = await expressApp()
  const placeholder = {}
  app.use((req, res, next) => {
    ;(req as unknown as { probe: object }).probe = placeholder
    const writeHead = res.writeHead
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
    } as typeof res.writeHead
    next()
  })
  app.get('/write', (_req, res) => void send(res, '0'))
  app.get('/read', (_req, res) => void send(res, '0'))
  listenExpress(app, port)
}

/**
 * Calibration: bare Express plus one Redis command per request through node-redis (a `GET` of
 * one key, in a middleware), the client connect-redis and the Redis targets use: what a
 * command costs the server before any session work. A session `/read` needs one command, a
 * `/write` two (the read and the write). The client arms no per-command timer, as Tessera's
 * store sends its commands: the least a command through it costs.
 */
const expressRedisCommand: Handler = async (port) => {
  const app = await expressApp()
  const client = await nodeRedis(true)
  const key = `${REDIS_PREFIX}calibration`
  app.use((_req, _res, next) => {
    client.get(key).then(() => next(), next)
  })
  app.get('/write', (_req, res) => void send(res, '0'))
  app.get('/read', (_req, res) => void send(res, '0'))
  listenExpress(app, port)
}

const expressTessera =
  (kind: 'memory' | 'redis' | 'redis-untimed' | 'ioredis'): Handler =>
  async (port) => {
    const app = await expressApp()
    const sessions = await tessera(kind)
    if (hasSource('adapters/express.js')) {
      const mod = await importSource('adapters/express.js')
      app.use(mod.sessionMiddleware(sessions))
    } else {
      // glue over the core, as the adapter does: load, and commit before the headers go out
      const { commitBeforeHeaders } = await fromTessera<NodeAdapter>('adapters/node.js')
      app.use((req, res, next) => {
        sessions.load(req.headers.cookie).then((session) => {
          ;(req as unknown as { session: Session<Data> }).session = session
          commitBeforeHeaders(res, () => sessions.commit(session), next)
          next()
        }, next)
      })
    }
    app.get('/write', (req, res) => {
      const session = (req as unknown as { session: Session<Data> }).session
      const n = count(session.get('count')) + 1
      session.set('count', n)
      send(res, String(n))
    })
    app.get('/read', (req, res) => {
      const session = (req as unknown as { session: Session<Data> }).session
      send(res, String(count(session.get('count'))))
    })
    listenExpress(app, port)
  }

/** express-session, as its README recommends for production, or with its defaults. */
const expressSession =
  (store: 'memory' | 'redis' | 'redis-untimed', config: 'recommended' | 'defaults'): Handler =>
  async (port) => {
    const app = await expressApp()
    const { default: session } = await import('express-session')
    let sessionStore: import('express-session').Store | undefined
    if (store !== 'memory') {
      const { RedisStore } = await import('connect-redis')
      const client = await nodeRedis(store === 'redis-untimed')
      sessionStore = new RedisStore({ client, prefix: `${REDIS_PREFIX}cr:` })
    }
    app.use(
      session({
        secret: SECRET,
        ...(sessionStore ? { store: sessionStore } : {}),
        ...(config === 'recommended'
          ? { resave: false, saveUninitialized: false }
          : // the defaults (resave: true, saveUninitialized: true), spelled out to silence the
            // deprecation warning
            { resave: true, saveUninitialized: true }),
      }),
    )
    app.get('/write', (req, res) => {
      const s = req.session as unknown as Data
      s.count = count(s.count) + 1
      send(res, String(s.count))
    })
    app.get('/read', (req, res) => {
      send(res, String(count((req.session as unknown as Data).count)))
    })
    listenExpress(app, port)
  }

// ---------------------------------------------------------------- Fastify

async function fastifyApp() {
  const { default: Fastify } = await import('fastify')
  return Fastify({ logger: false })
}

const fastifyBare: Handler = async (port) => {
  const app = await fastifyApp()
  app.get('/write', async () => '0')
  app.get('/read', async () => '0')
  await app.listen({ port, host: '127.0.0.1' })
}

/** Calibration: bare Fastify plus {@link SPIN_NS} of busy work per request (see nodeSpin). */
const fastifySpin: Handler = async (port) => {
  const app = await fastifyApp()
  const answer = async () => {
    spin(SPIN_NS)
    return '0'
  }
  app.get('/write', answer)
  app.get('/read', answer)
  await app.listen({ port, host: '127.0.0.1' })
}

/**
 * Calibration: bare Fastify plus what a session plugin registers before it does anything (as
 * Tessera's, @fastify/session and @fastify/secure-session do): a request decoration set in an
 * `onRequest` hook, and an `onSend` hook that passes the payload on, both callback-style.
 * With `setCookie` (`fastify:set-cookie`), the `onSend` hook also sets, on `/write`, the
 * least `Set-Cookie` header a cookie session sends ({@link sealedCookie}): every cookie store
 * pays it on a write, whatever its cryptography.
 */
const fastifyHooks =
  (setCookie: boolean): Handler =>
  async (port) => {
    const app = await fastifyApp()
    const placeholder = {}
    app.decorateRequest('probe', null)
    app.addHook('onRequest', (request, _reply, done) => {
      ;(request as unknown as { probe: object }).probe = placeholder
      done()
    })
    if (setCookie) {
      const cookie = await sealedCookie()
      app.addHook('onSend', (request, reply, payload, done) => {
        if (request.url === '/write') reply.header('set-cookie', cookie)
        done(null, payload)
      })
    } else app.addHook('onSend', (_request, _reply, payload, done) => done(null, payload))
    app.get('/write', async () => '0')
    app.get('/read', async () => '0')
    await app.listen({ port, host: '127.0.0.1' })
  }

/**
 * The least `Set-Cookie` a cookie session sends on `/write`: the counter alone, `{"count":1}`,
 * sealed (Tessera's `sealedLength`: an AEAD's 33 bytes of format, key id, IV and tag, as
 * base64url, 59 characters; Tessera's token is 139, for the expiry times and id it seals too),
 * under Tessera's default attributes. Random characters, not a seal: the floors count the
 * cryptography apart.
 */
async function sealedCookie(): Promise<string> {
  const { sealedLength } = await fromTessera<typeof import('../src/core/seal.js')>('core/seal.js')
  const length = sealedLength(JSON.stringify({ count: 1 }).length)
  return `sid=${randomBytes(length).toString('base64url').slice(0, length)}; Path=/; HttpOnly; SameSite=Lax`
}

/**
 * Calibration: the least AES-256-GCM cookie session on Fastify, written plainly, to show what
 * the cookie-store targets against @fastify/secure-session leave to a session layer. It keeps
 * the counter and an expiry, `{"count":1,"expires":...}`, sealed as base64url of IV,
 * ciphertext and tag under one key (no key id, no version, no associated data); opens a token
 * not seen lately and remembers the last 1,000 it opened; refuses one that does not open or has
 * expired; on `/write` seals again and sets the cookie, with no `Cache-Control`. No id, no
 * rotation, no idle timeout, no events, no chunks: not a session layer to ship, the least
 * work one does.
 */
const fastifyLeastAes: Handler = async (port) => {
  const app = await fastifyApp()
  const key = createSecretKey(randomBytes(32))
  type Least = { count: number; expires: number; changed: boolean }
  type Opened = { count: number; expires: number }
  const ivs = Buffer.alloc(12 * 512)
  let ivAt = ivs.length
  const seal = (text: string): string => {
    if (ivAt === ivs.length) {
      randomFillSync(ivs)
      ivAt = 0
    }
    const iv = ivs.subarray(ivAt, ivAt + 12)
    ivAt += 12
    const cipher = createCipheriv('aes-256-gcm', key, iv)
    const body = cipher.update(text, 'utf8')
    cipher.final()
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')
  }
  const open = (token: string): Opened | undefined => {
    const bytes = Buffer.from(token, 'base64url')
    if (bytes.length < 29) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12))
      decipher.setAuthTag(bytes.subarray(bytes.length - 16))
      const text = decipher.update(bytes.subarray(12, bytes.length - 16)).toString('utf8')
      decipher.final()
      const data = JSON.parse(text) as Opened
      return typeof data.count === 'number' && typeof data.expires === 'number' ? data : undefined
    } catch {
      return undefined
    }
  }
  const opened = new Map<string, Opened>()
  const fresh = (): Least => ({ count: 0, expires: Date.now() + 86_400_000, changed: false })
  app.decorateRequest('least', null)
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers.cookie
    const at = header === undefined ? -1 : header.indexOf('sid=')
    let session = fresh()
    if (at >= 0) {
      const end = header!.indexOf(';', at)
      const token = header!.slice(at + 4, end < 0 ? undefined : end)
      let data = opened.get(token)
      if (data === undefined) {
        data = open(token)
        if (data !== undefined) {
          if (opened.size >= 1000) opened.clear()
          opened.set(token, data)
        }
      }
      if (data !== undefined && data.expires > Date.now())
        session = { count: data.count, expires: data.expires, changed: false }
    }
    ;(request as unknown as { least: Least }).least = session
    done()
  })
  app.addHook('onSend', (request, reply, payload, done) => {
    const { least } = request as unknown as { least: Least }
    if (least.changed) {
      const token = seal(JSON.stringify({ count: least.count, expires: least.expires }))
      reply.header('set-cookie', `sid=${token}; Path=/; HttpOnly; SameSite=Lax`)
    }
    done(null, payload)
  })
  const least = (request: unknown) => (request as { least: Least }).least
  app.get('/write', async (request) => {
    const s = least(request)
    s.count++
    s.changed = true
    return String(s.count)
  })
  app.get('/read', async (request) => String(least(request).count))
  await app.listen({ port, host: '127.0.0.1' })
}

/** Calibration: bare Fastify plus the floor's work in the route (see {@link floorWork}). */
const fastifyFloor: Handler = async (port) => {
  const app = await fastifyApp()
  const work = await floorWork()
  const answer = async (request: { headers: IncomingMessage['headers'] }) => {
    work(request.headers.cookie)
    return '0'
  }
  app.get('/write', answer)
  app.get('/read', answer)
  await app.listen({ port, host: '127.0.0.1' })
}

const fastifyTessera =
  (kind: 'memory' | 'cookie' | 'cookie-sodium'): Handler =>
  async (port) => {
    const app = await fastifyApp()
    const sessions = await tessera(kind)
    type Req = { tessera: Session<Data> }
    if (hasSource('adapters/fastify.js')) {
      const mod = await importSource('adapters/fastify.js')
      await app.register(mod.sessionPlugin ?? mod.default, { sessions })
    } else {
      // glue over the core, as @fastify/session does: load on request, commit on send
      app.decorateRequest('session', null as never)
      app.addHook('onRequest', async (req) => {
        ;(req as unknown as { session: Session<Data> }).session = await sessions.load(
          req.headers.cookie,
        )
      })
      app.addHook('onSend', async (req, reply) => {
        const cookies = await sessions.commit(
          (req as unknown as { session: Session<Data> }).session,
        )
        if (cookies.length > 0) reply.header('set-cookie', cookies)
      })
    }
    const session = (req: unknown) => (req as { session: Req['tessera'] }).session
    app.get('/write', async (req) => {
      const n = count(session(req).get('count')) + 1
      session(req).set('count', n)
      return String(n)
    })
    app.get('/read', async (req) => String(count(session(req).get('count'))))
    await app.listen({ port, host: '127.0.0.1' })
  }

const fastifySession =
  (config: 'recommended' | 'defaults'): Handler =>
  async (port) => {
    const app = await fastifyApp()
    const { default: cookie } = await import('@fastify/cookie')
    const { default: session } = await import('@fastify/session')
    await app.register(cookie)
    await app.register(session, {
      secret: SECRET,
      cookie: { secure: false },
      ...(config === 'recommended' ? { saveUninitialized: false } : {}),
    })
    app.get('/write', async (req) => {
      const s = req.session as unknown as {
        get(k: string): unknown
        set(k: string, v: unknown): void
      }
      const n = count(s.get('count')) + 1
      s.set('count', n)
      return String(n)
    })
    app.get('/read', async (req) => {
      const s = req.session as unknown as { get(k: string): unknown }
      return String(count(s.get('count')))
    })
    await app.listen({ port, host: '127.0.0.1' })
  }

const fastifySecureSession: Handler = async (port) => {
  const app = await fastifyApp()
  const { default: secureSession } = await import('@fastify/secure-session')
  // a pregenerated 32-byte key, as its README recommends (not secret+salt)
  const key = Buffer.from(SECRET.slice(0, 32))
  await app.register(secureSession, { key, cookie: { path: '/', httpOnly: true } })
  type S = { get(k: string): unknown; set(k: string, v: unknown): void }
  app.get('/write', async (req) => {
    const s = (req as unknown as { session: S }).session
    const n = count(s.get('count')) + 1
    s.set('count', n)
    return String(n)
  })
  app.get('/read', async (req) => {
    return String(count((req as unknown as { session: S }).session.get('count')))
  })
  await app.listen({ port, host: '127.0.0.1' })
}

// ---------------------------------------------------------------- Hono

async function honoApp() {
  const { Hono } = await import('hono')
  return new Hono<{ Variables: { session: Session<Data> } }>()
}

async function honoListen(fetch: (request: Request) => Response | Promise<Response>, port: number) {
  const { serve } = await import('@hono/node-server')
  serve({ fetch, port, hostname: '127.0.0.1' })
}

const honoBare: Handler = async (port) => {
  const app = await honoApp()
  app.get('/write', (c) => c.text('0'))
  app.get('/read', (c) => c.text('0'))
  await honoListen(app.fetch, port)
}

const honoTessera =
  (kind: 'memory' | 'cookie'): Handler =>
  async (port) => {
    const app = await honoApp()
    const sessions = await tessera(kind)
    if (hasSource('adapters/hono.js')) {
      const mod = await importSource('adapters/hono.js')
      app.use(mod.sessionMiddleware(sessions))
    } else {
      app.use(async (c, next) => {
        const session = await sessions.load(c.req.header('cookie'))
        c.set('session', session)
        await next()
        for (const value of await sessions.commit(session))
          c.header('set-cookie', value, { append: true })
      })
    }
    app.get('/write', (c) => {
      const session = c.get('session')
      const n = count(session.get('count')) + 1
      session.set('count', n)
      return c.text(String(n))
    })
    app.get('/read', (c) => c.text(String(count(c.get('session').get('count')))))
    await honoListen(app.fetch, port)
  }

const honoSessions =
  (store: 'memory' | 'cookie'): Handler =>
  async (port) => {
    const { Hono } = await import('hono')
    const { sessionMiddleware, MemoryStore, CookieStore } = await import('hono-sessions')
    type S = { get(k: string): unknown; set(k: string, v: unknown): void }
    const app = new Hono<{ Variables: { session: S } }>()
    app.use(
      sessionMiddleware({
        store: store === 'memory' ? new MemoryStore() : new CookieStore(),
        encryptionKey: SECRET, // required for the cookie store, recommended for the others
        expireAfterSeconds: 1800,
        cookieOptions: { sameSite: 'Lax', path: '/', httpOnly: true },
      }) as never,
    )
    app.get('/write', (c) => {
      const n = count(c.get('session').get('count')) + 1
      c.get('session').set('count', n)
      return c.text(String(n))
    })
    app.get('/read', (c) => c.text(String(count(c.get('session').get('count')))))
    await honoListen(app.fetch, port)
  }

/** Every variant by name: `<framework>:<session>`. */
export const servers: Record<string, Handler> = {
  'node:none': nodeBare,
  'node:spin': nodeSpin,
  'node:floor': nodeFloor,
  'node:tessera-memory': nodeTessera('memory'),
  'node:tessera-cookie': nodeTessera('cookie'),
  'node:tessera-cookie-sodium': nodeTessera('cookie-sodium'),
  'node:iron-session': nodeIron,
  'node:tessera-memory-core': nodeTesseraCore,
  'express:none': expressBare(false),
  'express:middleware': expressBare(true),
  'express:hooks': expressHooks,
  'express:redis-command': expressRedisCommand,
  'express:tessera-memory': expressTessera('memory'),
  'express:tessera-redis': expressTessera('redis'),
  'express:tessera-redis-untimed': expressTessera('redis-untimed'),
  'express:tessera-ioredis': expressTessera('ioredis'),
  'express:express-session': expressSession('memory', 'recommended'),
  'express:express-session-defaults': expressSession('memory', 'defaults'),
  'express:express-session-redis': expressSession('redis', 'recommended'),
  'express:express-session-redis-untimed': expressSession('redis-untimed', 'recommended'),
  'fastify:none': fastifyBare,
  'fastify:spin': fastifySpin,
  'fastify:hooks': fastifyHooks(false),
  'fastify:set-cookie': fastifyHooks(true),
  'fastify:floor': fastifyFloor,
  'fastify:least-aes-session': fastifyLeastAes,
  'fastify:tessera-memory': fastifyTessera('memory'),
  'fastify:tessera-cookie': fastifyTessera('cookie'),
  'fastify:tessera-cookie-sodium': fastifyTessera('cookie-sodium'),
  'fastify:fastify-session': fastifySession('recommended'),
  'fastify:fastify-session-defaults': fastifySession('defaults'),
  'fastify:secure-session': fastifySecureSession,
  'hono:none': honoBare,
  'hono:tessera-memory': honoTessera('memory'),
  'hono:tessera-cookie': honoTessera('cookie'),
  'hono:hono-sessions': honoSessions('memory'),
  'hono:hono-sessions-cookie': honoSessions('cookie'),
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [variant, port] = process.argv.slice(2)
  const start = variant === undefined ? undefined : servers[variant]
  if (start === undefined || port === undefined) {
    console.error(`usage: server.ts <${Object.keys(servers).join('|')}> <port>`)
    process.exit(2)
  }
  // a competitor's warning (MemoryStore "not designed for production") is not an error
  process.removeAllListeners('warning')
  // exit cleanly on a signal, so `--cpu-prof` writes its profile
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(0))
  await start(Number(port))
  console.log('ready')
}
