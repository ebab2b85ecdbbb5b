/**
 * Property tests: generated input, many cases a run, against the promises the design makes
 * about bad input (a malformed or forged cookie is "no session" and reaches no store, a
 * changed sealed token never opens, a stored value that does not decode is a typed error) and
 * about round trips (what a session holds comes back as it was, in one cookie or several).
 *
 * fast-check prints the seed and the shrunk case of a failure; see test/helpers/property.ts for
 * replaying one (`FC_SEED`), trying more cases (`FC_RUNS`) and the fixed seed in CI.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { parseCookie } from 'cookie'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify as toYaml } from 'yaml'
import { main } from '../src/cli/main.js'
import { CONFIG_KEYS, loadConfig } from '../src/config.js'
import { richCodec } from '../src/core/codec.js'
import { csrf } from '../src/csrf.js'
import {
  createSessions,
  SessionConfigError,
  SessionCookieTooLargeError,
  SessionImmutableError,
  SessionSerializeError,
} from '../src/index.js'
import { safeReturnTo } from '../src/oidc/return-to.js'
import { COOKIE_SIZE_LIMIT, cookieStore } from '../src/stores/cookie.js'
import { storeFromUrl } from '../src/stores/from-url.js'
import { memoryStore } from '../src/stores/memory.js'
import { applyToJar, headerOf } from './helpers/cookie-jar.js'
import { SECRET } from './helpers/http.js'
import { fc, optionValue, runs } from './helpers/property.js'
import { countingStore, fakeClock } from './helpers/stores.js'

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const base64urlText = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: min, maxLength: max })

/** Text a `Cookie` header could hold, and some it should not: Latin-1, any Unicode, cookie syntax. */
const headerText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: fc.constantFrom(...`${BASE64URL}=;., \t"%\\`), maxLength: 300 }),
  // cookie-shaped: a name Tessera reads (sid, its chunks), a value shaped like its tokens
  fc
    .array(
      fc.tuple(
        fc.constantFrom('sid', 'sid.0', 'sid.1', 'sid.2', 'sid.10', 'other', ' sid', 'SID'),
        fc.oneof(
          base64urlText(0, 200),
          fc.tuple(base64urlText(43, 43), base64urlText(43, 43)).map(([a, b]) => `${a}.${b}`),
          fc
            .tuple(fc.integer({ min: -1, max: 12 }), base64urlText(0, 100))
            .map(([n, rest]) => `${n}.${rest}`),
          fc.string({ maxLength: 50 }),
        ),
      ),
      { maxLength: 5 },
    )
    .map((pairs) => pairs.map(([name, value]) => `${name}=${value}`).join('; ')),
)

/** One edit of a text: a character replaced, inserted or removed, or the text cut short. */
type Edit = { at: number; kind: 'replace' | 'insert' | 'remove' | 'cut'; char: string }
const edit = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('replace', 'insert', 'remove', 'cut'),
  char: fc.oneof(
    fc.constantFrom(...BASE64URL),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  ),
}) as fc.Arbitrary<Edit>

function applyEdit(text: string, { at, kind, char }: Edit, from = 0, to = text.length): string {
  const i = from + (at % Math.max(1, to - from))
  switch (kind) {
    case 'replace':
      return text.slice(0, i) + char + text.slice(i + 1)
    case 'insert':
      return text.slice(0, i) + char + text.slice(i)
    case 'remove':
      return text.slice(0, i) + text.slice(i + 1)
    case 'cut':
      return text.slice(0, i)
  }
}

/** Session keys as an app would choose them: no `$`, no control characters, not `__proto__`. */
const sessionKey = fc.string({ minLength: 1, maxLength: 20 }).filter(
  (k) =>
    !k.startsWith('$') &&
    !['__proto__', 'constructor', 'prototype'].includes(k) &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the keys the session refuses
    !/[\u0000-\u001f\u007f]/.test(k),
)

/** Object keys the codecs refuse, wherever they are: they could reach a prototype. */
const DANGEROUS = new Set(['__proto__', 'constructor', 'prototype'])
const hasDangerousKey = (value: unknown): boolean =>
  typeof value === 'object' &&
  value !== null &&
  Object.entries(value).some(([k, v]) => DANGEROUS.has(k) || hasDangerousKey(v))

/**
 * JSON values as JSON gives them back (no -0, which JSON writes as 0), without the keys the
 * codecs refuse (their own tests cover those).
 */
const jsonValue = fc
  .jsonValue({ maxDepth: 4 })
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown)
  .filter((v) => !hasDangerousKey(v))

describe('a server store: cookies that are not ours', () => {
  const setup = async () => {
    const counted = countingStore(memoryStore({ sweepInterval: 0 }))
    const sessions = createSessions<Record<string, unknown>>({
      secret: SECRET,
      store: counted.store,
    })
    const s = await sessions.load(undefined)
    s.set('n', 1)
    const [line] = await sessions.commit(s)
    const value = line!.slice('sid='.length, line!.indexOf(';'))
    counted.calls.length = 0
    return { sessions, counted, value, idHash: s.idHash }
  }

  it('any Cookie header without our signed cookie is no session, and no store call', async () => {
    const { sessions, counted } = await setup()
    await fc.assert(
      fc.asyncProperty(headerText, async (header) => {
        counted.calls.length = 0
        const s = await sessions.load(header)
        expect(s.isNew).toBe(true)
        expect(s.get('n')).toBeUndefined()
        expect(counted.calls).toEqual([])
      }),
    )
  })

  it('an edited cookie is the session only when its value is unchanged; else no store call', async () => {
    const { sessions, counted, value, idHash } = await setup()
    const header = `a=1; sid=${value}; b=2`
    const start = header.indexOf(value)
    await fc.assert(
      fc.asyncProperty(edit, fc.boolean(), async (e, insideValue) => {
        const edited = insideValue
          ? applyEdit(header, e, start, start + value.length)
          : applyEdit(header, e)
        counted.calls.length = 0
        const s = await sessions.load(edited)
        if (s.isNew) expect(counted.calls).toEqual([])
        else {
          expect(s.idHash).toBe(idHash)
          expect(s.get('n')).toBe(1)
          // the signed value reached the server as it was made: the edit was elsewhere (or was
          // a space or tab beside the name, which cookie parsers trim: `sid\t=...` is `sid`)
          expect(parseCookie(edited, { decode: (v) => v }).sid).toBe(value)
        }
      }),
    )
  })

  it('a stored value that does not decode is a SessionSerializeError, the others as stored', async () => {
    const store = memoryStore({ sweepInterval: 0 })
    const sessions = createSessions<Record<string, unknown>>({ secret: SECRET, store })
    const s = await sessions.load(undefined)
    s.set('v', 0)
    const cookies = await sessions.commit(s)
    const header = cookies[0]!.split(';')[0]!
    const record = (await store.get(s.idHash))!
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          jsonValue.map((v) => JSON.stringify(v)),
        ),
        async (text) => {
          await store.set(s.idHash, { ...record, fields: { ...record.fields, v: text } })
          const loaded = await sessions.load(header)
          expect(loaded.isNew).toBe(false)
          let expected: unknown
          try {
            expected = JSON.parse(text)
          } catch {
            expect(() => loaded.get('v')).toThrow(SessionSerializeError)
            return
          }
          // the keys that could reach a prototype are refused, as any other bad value
          if (hasDangerousKey(expected))
            expect(() => loaded.get('v')).toThrow(SessionSerializeError)
          else expect(loaded.get('v')).toEqual(expected)
        },
      ),
    )
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})

describe('the cookie store', () => {
  const setup = (maxChunks = 3) =>
    createSessions<Record<string, unknown>>({ secret: SECRET, store: cookieStore({ maxChunks }) })

  it('a sealed token with any edit inside it never opens', async () => {
    const sessions = setup()
    const s = await sessions.load(undefined)
    s.set('n', 1)
    const [line] = await sessions.commit(s)
    const token = line!.slice('sid='.length, line!.indexOf(';'))
    expect((await sessions.load(`sid=${token}`)).get('n')).toBe(1)
    await fc.assert(
      fc.asyncProperty(edit, async (e) => {
        const edited = applyEdit(token, e)
        // whitespace around a cookie's value is not part of it (RFC 6265): the same token
        fc.pre(edited.trim() !== token)
        const loaded = await sessions.load(`sid=${edited}`)
        expect(loaded.isNew).toBe(true)
        expect(loaded.get('n')).toBeUndefined()
      }),
    )
  })

  it('a token with any digit written as a character whose low byte is that digit never opens', async () => {
    // Node's base64 decoder reads a character's low byte alone: `Ŕ` (U+0155) decoded as `U`,
    // so such a token opened as the original. The property above found it once in many runs.
    const sessions = setup()
    const s = await sessions.load(undefined)
    s.set('n', 1)
    const [line] = await sessions.commit(s)
    const token = line!.slice('sid='.length, line!.indexOf(';'))
    for (let i = 0; i < token.length; i++) {
      const wide = String.fromCharCode(token.charCodeAt(i) + 0x100 * (1 + (i % 255)))
      const edited = token.slice(0, i) + wide + token.slice(i + 1)
      expect((await sessions.load(`sid=${edited}`)).isNew, `digit ${i} as ${wide}`).toBe(true)
    }
    expect((await sessions.load(`sid=${token}`)).get('n')).toBe(1)
  })

  it('any Cookie header without a token it sealed is no session', async () => {
    const sessions = setup()
    await fc.assert(
      fc.asyncProperty(headerText, async (header) => {
        const s = await sessions.load(header)
        expect(s.isNew).toBe(true)
        expect(s.get('n')).toBeUndefined()
      }),
    )
  })

  it('each write of a session of any size comes back as written, or is refused as too large', async () => {
    // a browser's jar across several writes: chunks an earlier, larger session used must go
    const write = fc.record({
      data: fc.dictionary(sessionKey, jsonValue, { maxKeys: 5 }),
      blob: fc.nat({ max: 14_000 }),
    })
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(write, { minLength: 1, maxLength: 4 }),
        async (maxChunks, writes) => {
          const sessions = setup(maxChunks)
          const jar = new Map<string, string>()
          let expected: Record<string, unknown> | undefined
          for (const { data, blob } of writes) {
            const s = await sessions.load(headerOf(jar))
            s.clear()
            for (const [k, v] of Object.entries(data)) s.set(k, v)
            s.set('blob', 'x'.repeat(blob))
            let lines: string[]
            try {
              lines = await sessions.commit(s)
            } catch (err) {
              expect(err).toBeInstanceOf(SessionCookieTooLargeError)
              continue
            }
            for (const l of lines)
              expect(Buffer.byteLength(l)).toBeLessThanOrEqual(COOKIE_SIZE_LIMIT)
            applyToJar(jar, lines)
            expected = { ...data, blob: 'x'.repeat(blob) }
          }
          const loaded = await sessions.load(headerOf(jar))
          if (expected === undefined) expect(loaded.isNew).toBe(true)
          else
            expect(Object.fromEntries(loaded.keys().map((k) => [k, loaded.get(k)]))).toEqual(
              expected,
            )
        },
      ),
      { numRuns: runs(60) },
    )
  })
})

describe('the rich codec', () => {
  const codec = richCodec()
  const rich: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      jsonValue,
      fc.date({ noInvalidDate: true }),
      fc.bigInt(),
      fc.double(),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(sessionKey, tie('value'), { maxKeys: 4 }),
      fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((e) => new Map(e)),
      fc.array(tie('value'), { maxLength: 3 }).map((e) => new Set(e)),
    ),
  })).value

  it('gives back what it was given', () => {
    fc.assert(
      fc.property(rich, (value) => {
        expect(codec.decode(codec.encode(value))).toEqual(value)
      }),
    )
  })

  it('any text either decodes or throws an Error, and pollutes no prototype', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.string({
            unit: fc.constantFrom(...'[]{}",:0123456789-._proto"constructor'),
            maxLength: 80,
          }),
        ),
        (text) => {
          try {
            codec.decode(text)
          } catch (err) {
            expect(err).toBeInstanceOf(Error)
          }
          expect(({} as Record<string, unknown>).polluted).toBeUndefined()
        },
      ),
    )
  })
})

describe('CSRF', () => {
  it('a token other than the one given never verifies, and nothing throws but CsrfError', async () => {
    const protect = csrf()
    const sessions = createSessions<Record<string, unknown>>({ secret: SECRET })
    const s = await sessions.load(undefined)
    const good = protect.token(s)
    const request = (token: unknown) => ({
      method: 'POST',
      headers: { host: 'example.com', origin: 'https://example.com' },
      token,
    })
    expect(protect.check(s, request(good))).toBeUndefined()
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          edit.map((e) => applyEdit(good, e)),
          fc.string({ maxLength: 200 }),
          fc.anything(),
        ),
        async (token) => {
          fc.pre(token !== good)
          expect(protect.check(s, request(token))).toBeDefined()
        },
      ),
    )
  })
})

describe('configuration', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-properties-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  /** Resolves or throws a SessionConfigError: never another error. */
  const onlyConfigErrors = async (run: () => Promise<unknown>) => {
    try {
      await run()
    } catch (err) {
      if (!(err instanceof SessionConfigError)) throw err
    }
  }

  const keys = CONFIG_KEYS.map((k) => k.key)
  const yamlValue = fc.oneof(
    jsonValue,
    fc.string({ maxLength: 30 }),
    fc.constantFrom('30m', '1h', '-5s', '0', 'lax', 'true'),
  )

  it('a YAML file of any keys and values loads or is a SessionConfigError', async () => {
    const file = join(dir, 'tessera.yaml')
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc
            .dictionary(
              fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 10 })),
              yamlValue,
              { maxKeys: 6 },
            )
            .map((o) => toYaml(o)),
          fc.string({ maxLength: 200 }),
        ),
        async (text) => {
          writeFileSync(file, text)
          await onlyConfigErrors(() => loadConfig({ file: 'tessera.yaml', cwd: dir, env: {} }))
        },
      ),
    )
  })

  it('TESSERA_* variables of any text load or are a SessionConfigError', async () => {
    const envs = CONFIG_KEYS.map((k) => k.env)
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom(...envs),
          fc.oneof(
            fc.string({ maxLength: 40 }),
            yamlValue.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))),
          ),
        ),
        async (env) => {
          await onlyConfigErrors(() => loadConfig({ file: false, env }))
        },
      ),
    )
  })

  it('a memory: or cookie: store URL with any query opens or is a SessionConfigError', async () => {
    const param = fc.tuple(
      fc.oneof(
        fc.constantFrom(
          'maxSessions',
          'sweepInterval',
          'maxChunks',
          'clockSkew',
          'prefix',
          'timeout',
        ),
        fc.string({ maxLength: 8 }),
      ),
      fc.oneof(
        fc.string({ maxLength: 12 }),
        fc.integer().map(String),
        fc.constantFrom('', '0', '1e3', 'NaN', '-1', 'true'),
      ),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('memory:', 'cookie:', 'MEMORY:', 'memory://x'),
        fc.array(param, { maxLength: 4 }),
        async (scheme, params) => {
          const query = params
            .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
            .join('&')
          await onlyConfigErrors(async () => {
            const opened = await storeFromUrl(`${scheme}?${query}`)
            await opened.close()
          })
        },
      ),
    )
  })
})

describe('the tessera command', () => {
  /** A stream that keeps what is written to it. */
  const sink = () => {
    let text = ''
    const stream = new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk)
        done()
      },
    })
    return { stream, text: () => text }
  }
  // stores that open nothing outside the process: a generated `file:` would make directories
  const NETWORK_OR_DISK =
    /^(file|sqlite|redis|rediss|postgres|postgresql|mysql|mariadb|memcached):/i
  const word = fc.oneof(
    fc.constantFrom(
      'count',
      'list',
      'show',
      'revoke',
      'prune',
      'migrate',
      'keygen',
      'help',
      '--store',
      '--to',
      '--user',
      '--limit',
      '--json',
      '--help',
      '--bytes',
      '--',
      '-x',
      'memory:',
      'cookie:',
      'memory:?maxSessions=0',
      'memory:?sweepInterval=x',
      'MEMORY:',
      '0',
      '-1',
      '32',
      '2000',
      `-${'A'.repeat(42)}`,
      'A'.repeat(43),
    ),
    fc
      .string({ maxLength: 12 })
      .filter((w) => !NETWORK_OR_DISK.test(w) && !w.startsWith('--config')),
  )

  it('any arguments end in exit code 0, 1 or 2, with a message and never a stack trace', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(word, { maxLength: 6 }), async (argv) => {
        fc.pre(!argv.includes('--config'))
        const stdout = sink()
        const stderr = sink()
        const code = await main(argv, { stdout: stdout.stream, stderr: stderr.stream, env: {} })
        expect([0, 1, 2]).toContain(code)
        // a failure says why; no command at all prints the help
        if (code !== 0)
          expect(stderr.text() || stdout.text()).toMatch(/^(tessera: |Usage: tessera)/)
        expect(stderr.text()).not.toMatch(/\n\s+at /)
      }),
    )
  })
})

describe('the OIDC return path', () => {
  const ORIGIN = 'https://app.example'
  const piece = fc.oneof(
    fc.constantFrom(
      '/',
      '//',
      '\\',
      '/\\',
      '.',
      '..',
      './',
      '../',
      '@',
      ':',
      '%2f',
      '%2F',
      '%5c',
      '%09',
      '%00',
      '\t',
      ' ',
      '\u3000',
      '\uff0f',
      '\u2215',
      'evil.example',
      'app.example',
      'https:',
      'http:',
      'javascript:',
      'data:',
      '?',
      '#',
      '&',
      'https://app.example',
      'https://evil.example',
      'HTTPS://APP.EXAMPLE',
      'https://app.example@evil.example',
      'https://app.example.evil.example',
    ),
    fc.string({ maxLength: 6 }),
  )

  it('is a path on the app or nothing: never another host, whatever it was given', () => {
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 8 }).map((p) => p.join('')),
        (returnTo) => {
          const path = safeReturnTo(returnTo, ORIGIN)
          if (path === undefined) return
          expect(path.startsWith('/') && !path.startsWith('//')).toBe(true)
          // as a browser resolves a Location header against the page
          expect(new URL(path, ORIGIN).origin).toBe(ORIGIN)
          expect(new URL(path, 'https://other.example').origin).toBe('https://other.example')
        },
      ),
      { numRuns: runs(2000) },
    )
  })
})

describe('expiry, over any timing of requests', () => {
  const MIN = 60_000
  const IDLE = 30 * MIN
  const ABSOLUTE = 120 * MIN
  const TOUCH = 5 * MIN
  // gaps between requests, some near the limits: just under or at the idle timeout, and
  // just under or over the gap a session survives by touches alone (IDLE - TOUCH)
  const gap = fc.oneof(
    fc.integer({ min: 0, max: 40 * MIN }),
    fc.constantFrom(IDLE - 1, IDLE, IDLE + 1, IDLE - TOUCH - 1, IDLE - TOUCH, TOUCH - 1, TOUCH),
  )
  const request = fc.record({ gap, write: fc.boolean() })

  it.each(['memory', 'cookie'] as const)(
    'a %s session lives while every gap is short, and never past a long gap or its absolute timeout',
    async (kind) => {
      await fc.assert(
        fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 12 }), async (requests) => {
          const clock = fakeClock()
          const sessions = createSessions<Record<string, number>>({
            secret: SECRET,
            store:
              kind === 'memory'
                ? memoryStore({ clock: clock.now, sweepInterval: 0 })
                : cookieStore(),
            clock: clock.now,
            idleTimeout: IDLE,
            absoluteTimeout: ABSOLUTE,
            touchAfter: TOUCH,
          })
          const jar = new Map<string, string>()
          const first = await sessions.load(undefined)
          first.set('n', 0)
          applyToJar(jar, await sessions.commit(first))
          const created = clock.now()
          let alive = true // the first session, as the model sees it
          let safe = true // every gap so far short enough for touches alone to keep it
          for (const { gap: ms, write } of requests) {
            clock.advance(ms)
            const s = await sessions.load(headerOf(jar))
            const age = clock.now() - created
            if (alive) {
              if (age >= ABSOLUTE || ms >= IDLE) expect(s.isNew, `age ${age}, gap ${ms}`).toBe(true)
              else if (safe && ms < IDLE - TOUCH)
                expect(s.isNew, `age ${age}, gap ${ms}`).toBe(false)
            }
            if (s.isNew) alive = false
            if (ms >= IDLE - TOUCH) safe = false
            if (!alive) return // a new session: what follows is another one's life
            if (write) s.set('n', (s.get('n') ?? 0) + 1)
            applyToJar(jar, await sessions.commit(s))
          }
        }),
        { numRuns: runs(300) },
      )
    },
  )
})

describe('the session API, against a model', () => {
  type Op =
    | { op: 'set'; key: string; value: unknown; immutable: boolean }
    | { op: 'delete' | 'get' | 'has' | 'flashGet' | 'flashPeek'; key: string }
    | { op: 'flashSet'; key: string; value: unknown }
    | { op: 'clear' | 'flashClear' | 'keys' | 'flashAll' | 'roundTrip' }
  const key = fc.constantFrom('a', 'b', 'c')
  const value = fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constant({ x: [1, 2] }))
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant('set' as const),
        key,
        value,
        immutable: fc.boolean(),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constantFrom(
          'delete' as const,
          'get' as const,
          'has' as const,
          'flashGet' as const,
          'flashPeek' as const,
        ),
        key,
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('flashSet' as const), key, value }) },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constantFrom(
          'clear' as const,
          'flashClear' as const,
          'keys' as const,
          'flashAll' as const,
          'roundTrip' as const,
        ),
      }),
    },
  )

  it.each(['memory', 'cookie'] as const)(
    'gives and keeps what the model says (%s store)',
    async (kind) => {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 25 }), async (ops) => {
          const sessions = createSessions<Record<string, unknown>>({
            secret: SECRET,
            store: kind === 'memory' ? memoryStore({ sweepInterval: 0 }) : cookieStore(),
          })
          const jar = new Map<string, string>()
          let s = await sessions.load(undefined)
          const data = new Map<string, unknown>()
          const immutable = new Set<string>()
          const flash = new Map<string, unknown>()
          for (const o of ops) {
            switch (o.op) {
              case 'set':
                if (immutable.has(o.key)) {
                  expect(() => s.set(o.key, o.value)).toThrow(SessionImmutableError)
                  break
                }
                s.set(o.key, o.value, { immutable: o.immutable })
                data.set(o.key, o.value)
                if (o.immutable) immutable.add(o.key)
                break
              case 'delete':
                s.delete(o.key)
                data.delete(o.key)
                immutable.delete(o.key)
                break
              case 'get':
                expect(s.get(o.key)).toEqual(data.get(o.key))
                break
              case 'has':
                expect(s.has(o.key)).toBe(data.has(o.key))
                break
              case 'flashSet':
                s.flash.set(o.key, o.value)
                flash.set(o.key, o.value)
                break
              case 'flashGet':
                expect(s.flash.get(o.key)).toEqual(flash.get(o.key))
                flash.delete(o.key)
                break
              case 'flashPeek':
                expect(s.flash.peek(o.key)).toEqual(flash.get(o.key))
                expect(s.flash.has(o.key)).toBe(flash.has(o.key))
                break
              case 'flashAll':
                expect(s.flash.all()).toEqual(Object.fromEntries(flash))
                flash.clear()
                break
              case 'flashClear':
                s.flash.clear()
                flash.clear()
                break
              case 'clear':
                s.clear()
                data.clear()
                immutable.clear()
                flash.clear()
                break
              case 'keys':
                expect([...s.keys()].sort()).toEqual([...data.keys()].sort())
                break
              case 'roundTrip':
                applyToJar(jar, await sessions.commit(s))
                s = await sessions.load(headerOf(jar))
                break
            }
          }
          applyToJar(jar, await sessions.commit(s))
          const last = await sessions.load(headerOf(jar))
          expect(Object.fromEntries(last.entries())).toEqual(Object.fromEntries(data))
          expect(last.flash.all()).toEqual(Object.fromEntries(flash))
          for (const k of immutable) expect(() => last.set(k, 0)).toThrow(SessionImmutableError)
        }),
        { numRuns: runs(150) },
      )
    },
  )
})

describe('createSessions options', () => {
  // values of every kind, and some near what each option takes
  const anyValue = optionValue(
    '',
    '30m',
    '1h',
    '0',
    '-5s',
    'soon',
    0,
    -1,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    2 ** 31,
    '__Host-sid',
    '__Secure-sid',
    'sid',
    'a b',
    'lax',
    'strict',
    'none',
    'auto',
    'low',
    'high',
    '/',
    '/app',
    'example.com',
    '.example.com',
    'json',
    'rich',
    'reset',
    'error',
    true,
    false,
    null,
    SECRET,
    [SECRET],
    [],
    ['short'],
  )
  const cookie = fc.dictionary(
    fc.constantFrom(
      'name',
      'path',
      'domain',
      'sameSite',
      'secure',
      'httpOnly',
      'partitioned',
      'priority',
    ),
    anyValue,
    { maxKeys: 4 },
  )
  const options = fc.record(
    {
      secret: anyValue,
      secrets: anyValue,
      cookie: fc.oneof(cookie, anyValue),
      idleTimeout: anyValue,
      absoluteTimeout: anyValue,
      touchAfter: anyValue,
      codec: anyValue,
      onInvalidData: anyValue,
      trustProxy: anyValue,
      store: anyValue,
      schema: anyValue,
      clock: anyValue,
    },
    { requiredKeys: [] },
  )

  it('memory and cookie store options of any kind give a store or a SessionConfigError', () => {
    const storeOptions = fc.oneof(
      anyValue,
      fc.record(
        {
          maxSessions: anyValue,
          sweepInterval: anyValue,
          clock: anyValue,
          maxChunks: anyValue,
          clockSkew: anyValue,
          isRevoked: anyValue,
          sodium: anyValue,
        },
        { requiredKeys: [] },
      ),
    )
    fc.assert(
      fc.property(storeOptions, fc.boolean(), (o, memory) => {
        try {
          const store = memory ? memoryStore(o as never) : cookieStore(o as never)
          if ('close' in store) void store.close()
        } catch (err) {
          if (!(err instanceof SessionConfigError)) throw err
        }
      }),
      { numRuns: runs(1000) },
    )
  })

  it('CSRF options of any kind give a checker or a SessionConfigError, and a checker works', async () => {
    const sessions = createSessions<Record<string, unknown>>({ secret: SECRET })
    const csrfOptions = fc.oneof(
      anyValue,
      fc.record(
        {
          header: anyValue,
          safeMethods: fc.oneof(anyValue, fc.array(anyValue, { maxLength: 3 })),
          trustedOrigins: fc.oneof(anyValue, fc.array(anyValue, { maxLength: 3 })),
        },
        { requiredKeys: [] },
      ),
    )
    await fc.assert(
      fc.asyncProperty(csrfOptions, async (o) => {
        let protect: ReturnType<typeof csrf>
        try {
          protect = csrf(o as never)
        } catch (err) {
          if (!(err instanceof SessionConfigError)) throw err
          return
        }
        const s = await sessions.load(undefined)
        const token = protect.token(s)
        const post = { method: 'POST', headers: { 'sec-fetch-site': 'same-origin' }, token }
        expect(protect.check(s, post)).toBeUndefined()
        expect(protect.check(s, { ...post, token: `${token}x` })).toBeDefined()
      }),
      { numRuns: runs(500) },
    )
  })

  it('adapter options of any kind give a handler or a SessionConfigError at once', async () => {
    const sessions = createSessions<Record<string, unknown>>({ secret: SECRET })
    const { withSession } = await import('../src/adapters/node.js')
    const { withSession: withFetch } = await import('../src/adapters/fetch.js')
    const express = await import('../src/adapters/express.js')
    const compat = await import('../src/adapters/express-session.js')
    const hono = await import('../src/adapters/hono.js')
    const koa = await import('../src/adapters/koa.js')
    const build = [
      (m: unknown, o: unknown) => withSession(m as never, () => {}, o as never),
      (m: unknown, o: unknown) => withFetch(m as never, () => new Response(), o as never),
      (m: unknown, o: unknown) => express.sessionMiddleware(m as never, o as never),
      (m: unknown, o: unknown) => compat.sessionMiddleware(m as never, o as never),
      (m: unknown, o: unknown) => hono.sessionMiddleware(m as never, o as never),
      (m: unknown, o: unknown) => koa.sessionMiddleware(m as never, o as never),
    ]
    const adapterOptions = fc.oneof(
      anyValue,
      fc.record(
        { onError: anyValue, trustProxy: anyValue, property: anyValue, name: anyValue },
        { requiredKeys: [] },
      ),
    )
    fc.assert(
      fc.property(
        fc.nat({ max: build.length - 1 }),
        fc.oneof(
          { weight: 4, arbitrary: fc.constant(sessions) },
          { weight: 1, arbitrary: anyValue },
        ),
        adapterOptions,
        (which, manager, o) => {
          try {
            expect(typeof build[which]!(manager, o)).toBe('function')
          } catch (err) {
            if (!(err instanceof SessionConfigError)) throw err
            return
          }
          // built: then nothing that would fail inside a request was let through
          expect(manager).toBe(sessions)
          const { onError, trustProxy } = (o ?? {}) as Record<string, unknown>
          expect(typeof o === 'object' || o === undefined).toBe(true)
          expect(onError === undefined || typeof onError === 'function').toBe(true)
          expect(trustProxy === undefined || typeof trustProxy === 'boolean').toBe(true)
        },
      ),
      { numRuns: runs(1000) },
    )
  })

  it('OIDC options of any kind are refused with a SessionConfigError before any request', async () => {
    const { oidc } = await import('../src/oidc/index.js')
    const { OidcError } = await import('../src/oidc/errors.js')
    const sessions = createSessions<Record<string, unknown>>({ secret: SECRET })
    // a provider address that refuses at once: options that pass the checks fail discovery
    const closed = 'http://127.0.0.1:1/'
    const oidcOptions = fc.record(
      {
        sessions: fc.oneof(
          { weight: 5, arbitrary: fc.constant(sessions) },
          { weight: 1, arbitrary: anyValue },
        ),
        issuer: fc.oneof(fc.constant(closed), anyValue),
        clientId: fc.oneof(fc.constant('app'), anyValue),
        clientSecret: anyValue,
        redirectUri: fc.oneof(fc.constant('http://127.0.0.1:3000/callback'), anyValue),
        postLogoutRedirectUri: anyValue,
        scope: fc.oneof(fc.constant('openid'), anyValue),
        authorizationParams: anyValue,
        refreshMargin: anyValue,
        loginTimeout: anyValue,
        clientAuthentication: anyValue,
        userId: anyValue,
        clock: anyValue,
        allowInsecureRequests: fc.oneof(fc.constant(true), anyValue),
      },
      { requiredKeys: ['sessions', 'issuer', 'clientId', 'redirectUri'] },
    )
    await fc.assert(
      fc.asyncProperty(oidcOptions, async (o) => {
        const err = await oidc(o as never).then(
          () => undefined,
          (e: unknown) => e,
        )
        if (err instanceof OidcError) expect(err.reason).toBe('discovery-failed')
        else expect(err).toBeInstanceOf(SessionConfigError)
      }),
      { numRuns: runs(400) },
    )
  })

  it('any options give a manager or a SessionConfigError, and a manager works', async () => {
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        let sessions: ReturnType<typeof createSessions<Record<string, unknown>>>
        try {
          sessions = createSessions<Record<string, unknown>>(o as never)
        } catch (err) {
          if (!(err instanceof SessionConfigError)) throw err
          return
        }
        const s = await sessions.load(undefined, { secure: true })
        s.set('n', 1)
        const cookies = await sessions.commit(s)
        const header = cookies.map((c) => c.split(';')[0]).join('; ')
        expect((await sessions.load(header, { secure: true })).get('n')).toBe(1)
      }),
      { numRuns: runs(500) },
    )
  })
})
