/**
 * The cryptography the performance targets' floors are made of, run `N` times in a loop, for
 * `bench/instructions.ts --targets` to count under callgrind: it runs this twice, with `N` and
 * `2N`, and the difference of the totals divided by `N` is one operation's instructions, with
 * the process's start and warm-up taken out.
 *
 * node --import tsx bench/primitives.ts <floor|open|seal|sodium-open|sodium-seal> N
 *
 * - `floor`: the server stores' spread-route work ({@link floorWork}: a cookie's HMAC, its id's
 *   SHA-256 and a record read), on cookies rotating through {@link SPREAD}.
 * - `open`, `seal`: the cookie store's AES-256-GCM (node:crypto, through Tessera's `Sealer`)
 *   of the micro-benchmarks' 200-byte session.
 * - `sodium-open`, `sodium-seal`: the same through libsodium's ChaCha20-Poly1305 (the
 *   `Sealer` given `sodium-native`, as `cookieStore({ sodium })` makes it).
 * @module
 */
import { strangerCookie } from './build.js'
import { floorWork, SPREAD } from './server.js'
import { fromTessera, PAYLOAD, SECRET } from './tessera.js'

const [op, count] = process.argv.slice(2)
const N = Number(count)
if (!Number.isInteger(N) || N < 0)
  throw new Error('usage: primitives.ts <floor|open|seal|sodium-open|sodium-seal> N')

const { Keyring } = await fromTessera<typeof import('../src/core/keyring.js')>('core/keyring.js')
const { Sealer } = await fromTessera<typeof import('../src/core/seal.js')>('core/seal.js')
const sealer = Sealer.fromKeyring(new Keyring([SECRET]), 'bench', 'sid')
const plaintext = JSON.stringify(PAYLOAD)
const token = sealer.seal(plaintext)
const sodium = ((await import('sodium-native' as string)) as { default: unknown }).default
const sodiumSealer = Sealer.fromKeyring(new Keyring([SECRET]), 'bench', 'sid', {
  sodium: sodium as never,
})
const sodiumToken = sodiumSealer.seal(plaintext)
const work = await floorWork()
const cookies = Array.from({ length: SPREAD }, strangerCookie)

let k = 0
const ops: Record<string, () => unknown> = {
  floor: () => work(cookies[k++ % SPREAD]),
  open: () => sealer.open(token, 4096),
  seal: () => sealer.seal(plaintext),
  'sodium-open': () => sodiumSealer.open(sodiumToken, 4096),
  'sodium-seal': () => sodiumSealer.seal(plaintext),
}
const run = ops[op ?? '']
if (run === undefined)
  throw new Error(`unknown operation ${op}: floor, open, seal, sodium-open or sodium-seal`)
// warm: V8 has optimized the loop and every path by then
for (let i = 0; i < 2 * SPREAD; i++) run()
for (let i = 0; i < N; i++) run()
