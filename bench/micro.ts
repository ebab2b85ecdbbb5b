/**
 * Micro-benchmarks of the hot-path primitives, next to what the alternatives use.
 * Run by `bench/run.ts` (`node --import tsx bench/micro.ts [--quick]`); prints one JSON array.
 * Each task runs its operation {@link BATCH} times per sample, so figures are per operation.
 * @module
 */
import { Bench } from 'tinybench'
import { fromTessera, hasSource, PAYLOAD, SECRET } from './tessera.js'

const { createSessions, jsonCodec, Keyring } =
  await fromTessera<typeof import('../src/index.js')>('index.js')
const { hashSessionId, newSessionId } =
  await fromTessera<typeof import('../src/core/ids.js')>('core/ids.js')

const BATCH = 100
const quick = process.argv.includes('--quick')
const bench = new Bench({ time: quick ? 200 : 1000, warmup: true })
const notes: Record<string, string> = {}

const add = (name: string, fn: () => unknown | Promise<unknown>, isAsync = false) => {
  if (isAsync) {
    bench.add(name, async () => {
      for (let i = 0; i < BATCH; i++) await fn()
    })
  } else {
    bench.add(name, () => {
      for (let i = 0; i < BATCH; i++) fn()
    })
  }
}

// ------------------------------------------------------------------ Tessera
const keyring = new Keyring([SECRET])
// signed by another instance, so the verifier's cache has never seen them
const ids = Array.from({ length: 50_000 }, () => newSessionId())
const signer = new Keyring([SECRET])
const signed = ids.map((id) => signer.sign(id))
let k = 0
add('tessera: cookie sign', () => {
  signer.sign(ids[k++ % ids.length]!)
})
add('tessera: cookie verify, session not seen lately (HMAC, constant-time compare)', () => {
  keyring.verify(signed[k++ % signed.length]!)
})
add('tessera: session id hash (SHA-256, the at-rest key), id not seen lately', () => {
  hashSessionId(ids[k++ % ids.length]!)
})
const hotValue = keyring.sign(ids[0]!)
add('tessera: cookie verify, hot session (verified-value cache hit)', () => {
  keyring.verify(hotValue)
})
add('tessera: new session id (32 CSPRNG bytes) + SHA-256 hash', () => {
  hashSessionId(newSessionId())
})
add('tessera: json codec encode + decode, a number', () => {
  jsonCodec.decode(jsonCodec.encode(42))
})
add('tessera: json codec encode + decode, 200-byte object', () => {
  jsonCodec.decode(jsonCodec.encode(PAYLOAD))
})

const sessions = createSessions<{ count: number }>({ secret: SECRET })
const seed = await sessions.load(undefined)
seed.set('count', 1)
const [setCookie] = await sessions.commit(seed)
const cookieHeader = setCookie!.split(';')[0]!
add(
  'tessera: load + read + commit (memory store, hot session, no HTTP)',
  async () => {
    const s = await sessions.load(cookieHeader)
    s.get('count')
    await sessions.commit(s)
  },
  true,
)
add(
  'tessera: load + write + commit (memory store, hot session, no HTTP)',
  async () => {
    const s = await sessions.load(cookieHeader)
    s.set('count', (s.get('count') ?? 0) + 1)
    await sessions.commit(s)
  },
  true,
)

if (hasSource('stores/cookie.js')) {
  // biome-ignore lint/suspicious/noExplicitAny: a store another engineer is writing now
  const { cookieStore } = await fromTessera<any>('stores/cookie.js')
  const cs = createSessions({ secret: SECRET, store: cookieStore() })
  const first = await cs.load(undefined)
  for (const [key, value] of Object.entries(PAYLOAD)) first.set(key, value)
  const sealed = (await cs.commit(first)).map((c) => c.split(';')[0]).join('; ')
  add(
    'tessera cookie store: seal + open a 200-byte session (load + write + commit)',
    async () => {
      const s = await cs.load(sealed)
      s.set('count', 43)
      await cs.commit(s)
    },
    true,
  )
} else {
  notes.cookieStore = 'src/stores/cookie.ts absent: the cookie store was not measured'
}

// ------------------------------------------------------------------ the encryption floor
// the cookie store's AES-256-GCM (node:crypto) beside @fastify/secure-session's primitive
// (libsodium's secretbox, called natively): what each pays per seal and per open, whatever
// else the library does
const { Sealer } = await fromTessera<typeof import('../src/core/seal.js')>('core/seal.js')
const sealer = Sealer.fromKeyring(keyring, 'bench', 'sid')
const plaintext = JSON.stringify(PAYLOAD)
const token = sealer.seal(plaintext)
add('node:crypto AES-256-GCM: seal 200 bytes (the cookie store, once per write)', () => {
  sealer.seal(plaintext)
})
add(
  'node:crypto AES-256-GCM: open 200 bytes (the cookie store, on a token not seen lately)',
  () => {
    sealer.open(token, 4096)
  },
)
// no type declarations are published for sodium-native either
type Box = (out: Buffer, input: Buffer, nonce: Buffer, key: Buffer) => unknown
type Sodium = Record<
  'crypto_secretbox_KEYBYTES' | 'crypto_secretbox_NONCEBYTES' | 'crypto_secretbox_MACBYTES',
  number
> & {
  randombytes_buf(b: Buffer): void
  crypto_secretbox_easy: Box
  crypto_secretbox_open_easy: Box
}
const sodium = ((await import('sodium-native' as string)) as { default: Sodium }).default
const boxKey = Buffer.alloc(sodium.crypto_secretbox_KEYBYTES)
sodium.randombytes_buf(boxKey)
const message = Buffer.from(plaintext)
const nonce = Buffer.alloc(sodium.crypto_secretbox_NONCEBYTES)
const box = Buffer.alloc(message.length + sodium.crypto_secretbox_MACBYTES)
add('sodium-native secretbox: seal 200 bytes (@fastify/secure-session, once per write)', () => {
  sodium.randombytes_buf(nonce)
  sodium.crypto_secretbox_easy(box, message, nonce, boxKey)
})
const opened = Buffer.alloc(message.length)
add('sodium-native secretbox: open 200 bytes (@fastify/secure-session, every request)', () => {
  sodium.crypto_secretbox_open_easy(opened, box, nonce, boxKey)
})
// the cookie store with its `sodium` option: ChaCha20-Poly1305 through libsodium
const sodiumSealer = Sealer.fromKeyring(keyring, 'bench', 'sid', { sodium: sodium as never })
const sodiumToken = sodiumSealer.seal(plaintext)
add(
  'libsodium ChaCha20-Poly1305: seal 200 bytes (the cookie store with sodium, once per write)',
  () => {
    sodiumSealer.seal(plaintext)
  },
)
add(
  'libsodium ChaCha20-Poly1305: open 200 bytes (the cookie store with sodium, on a token not seen lately)',
  () => {
    sodiumSealer.open(sodiumToken, 4096)
  },
)

// ------------------------------------------------------------------ the alternatives
const { sealData, unsealData } = await import('iron-session')
const ironSealed = await sealData(PAYLOAD, { password: SECRET })
add(
  'iron-session: sealData + unsealData, 200-byte object',
  async () => {
    await unsealData(await sealData(PAYLOAD, { password: SECRET }), { password: SECRET })
  },
  true,
)
add(
  'iron-session: unsealData only, 200-byte object',
  async () => {
    await unsealData(ironSealed, { password: SECRET })
  },
  true,
)
// no type declarations are published for cookie-signature
type Signature = { sign(v: string, s: string): string; unsign(v: string, s: string): unknown }
const signature = ((await import('cookie-signature' as string)) as { default: Signature }).default
add('cookie-signature: sign + unsign (express-session, @fastify/session)', () => {
  const id = ids[k++ % ids.length]!
  signature.unsign(signature.sign(id, SECRET), SECRET)
})

await bench.run()
const out = bench.tasks.map((task) => {
  const r = task.result as { latency?: { mean: number; p99: number }; state: string }
  return {
    name: task.name,
    state: r.state,
    // ms per sample of BATCH operations -> microseconds per operation
    mean_us: r.latency ? (r.latency.mean * 1000) / BATCH : null,
    p99_us: r.latency ? (r.latency.p99 * 1000) / BATCH : null,
    ops_per_s: r.latency ? Math.round((BATCH * 1000) / r.latency.mean) : null,
  }
})
console.log(JSON.stringify({ results: out, notes }))
