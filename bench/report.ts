/**
 * Turns the figures of one `bench/run.ts` run into `bench/RESULTS.md`.
 * @module
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { floorOf, judge, SCENARIOS, type Scenario, TARGETS } from './targets.js'

interface WrkResult {
  requests: number
  p50_us: number
  p99_us: number
  errors: number
  rps: number
  serverCpuUsPerReq: number
  wrkCpuPct: number
  redisCpuUsPerReq?: number
}
interface Run {
  variant: string
  round: number
  readSetsCookie: boolean
  results: Partial<Record<Scenario, WrkResult>>
  loadavg: number
}
interface Variant {
  name: string
  framework: string
  label: string
  config: string
}
interface Data {
  started: string
  finished: string
  quick: boolean
  rounds: number
  duration: number
  connections: number
  spread: number
  scaleBig: number
  /** Busy work per request of the `:spin` calibration variants, in ns. */
  spinNs?: number
  loadavgStart: number[]
  loadavgEnd: number[]
  machine: Record<string, string | number>
  tessera?: string
  adapters: Record<string, string>
  /** How the Express variants were served (`BENCH_EXPRESS_SERVER`); absent in older runs. */
  expressServer?: string
  variants: Variant[]
  skipped: { variant: string; why: string }[]
  runs: Run[]
  failures: { variant: string; error: string }[]
  micro?:
    | {
        results: { name: string; mean_us: number | null; ops_per_s: number | null }[]
        notes: Record<string, string>
      }
    | unknown
  heap: unknown[]
  scale: Record<string, unknown>
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const version = (pkg: string) => {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version
  } catch {
    return '?'
  }
}
/**
 * The middle value (the mean of the middle two for an even count; NaN when any is NaN): with
 * three rounds or more, one disturbed round does not move the figure.
 */
export function median(xs: number[]): number {
  if (xs.length === 0 || xs.some(Number.isNaN)) return Number.NaN
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a')
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a')
const ms = (us: number) => (Number.isFinite(us) ? (us / 1000).toFixed(2) : 'n/a')

/** Per variant and scenario: figures averaged over rounds, and the added CPU per round. */
function aggregate(data: Data) {
  const out = new Map<
    string,
    Partial<
      Record<
        Scenario,
        {
          rps: number
          p50: number
          p99: number
          cpu: number
          added: number
          addedMin: number
          addedMax: number
          wrk: number
          errors: number
          redis: number
          rounds: number
        }
      >
    >
  >()
  for (const v of data.variants) {
    const mine = data.runs.filter((r) => r.variant === v.name)
    const per: typeof out extends Map<string, infer T> ? T : never = {}
    for (const s of SCENARIOS) {
      const rs = mine.map((r) => r.results[s]).filter((x): x is WrkResult => x !== undefined)
      if (rs.length === 0) continue
      const added = mine
        .map((r) => {
          const base = data.runs.find(
            (b) => b.variant === `${v.framework}:none` && b.round === r.round,
          )
          const x = r.results[s]
          const y = base?.results[s]
          return x && y ? x.serverCpuUsPerReq - y.serverCpuUsPerReq : Number.NaN
        })
        .filter(Number.isFinite)
      per[s] = {
        rps: median(rs.map((r) => r.rps)),
        p50: median(rs.map((r) => r.p50_us)),
        p99: median(rs.map((r) => r.p99_us)),
        cpu: median(rs.map((r) => r.serverCpuUsPerReq)),
        added: median(added),
        addedMin: Math.min(...added),
        addedMax: Math.max(...added),
        wrk: Math.max(...rs.map((r) => r.wrkCpuPct)),
        errors: rs.reduce((a, r) => a + r.errors, 0),
        redis: median(rs.map((r) => r.redisCpuUsPerReq ?? Number.NaN)),
        rounds: rs.length,
      }
    }
    out.set(v.name, per)
  }
  return out
}

/** A micro-benchmark's µs per operation in this run, by the start of its name. */
function microUs(data: Data, prefix: string): number | undefined {
  const micro = data.micro as { results: { name: string; mean_us: number | null }[] } | undefined
  return micro?.results.find((r) => r.name.startsWith(prefix))?.mean_us ?? undefined
}

/**
 * What Tessera's own code costs (in-process, no HTTP) next to what the same code adds over
 * HTTP without an adapter and with it, and what the spread routes pay on a cache miss.
 */
function floorSentence(agg: ReturnType<typeof aggregate>, data: Data): string {
  const find = (prefix: string) => microUs(data, prefix)
  const inProcess = find('tessera: load + read + commit')
  const core = agg.get('node:tessera-memory-core')
  const adapter = agg.get('node:tessera-memory')
  const cold = find('tessera: cookie verify, session not seen lately')
  const hashOnly = find('tessera: session id hash')
  // runs from before the hash was measured alone timed it with a new id
  const hashed = hashOnly ?? find('tessera: new session id')
  if (!inProcess || !core?.['read-hot'] || !adapter?.['read-hot']) return ''
  return (
    `Tessera's own work for a \`/read\` (load + read + commit, memory store, measured in-process) is ${inProcess.toFixed(1)} µs; over HTTP the same calls made straight from a node:http handler add ${f1(core['read-hot'].added)} µs of server CPU per request, and through the node adapter ${f1(adapter['read-hot'].added)} µs. ` +
    (adapter['read-spread']
      ? `On the spread routes (${f1(adapter['read-spread'].added)} µs through the adapter) each of the 10,000 sessions comes back after more requests than the caches of verified cookies and id hashes span (4,096 to 8,192), so most requests (59% once the keyring's cache has settled: its doorkeeper admits the values that come back within a rotation) pay the HMAC${cold ? ` (${cold.toFixed(2)} µs in-process)` : ''} and the SHA-256${hashed ? ` (${hashOnly ? '' : 'with a new id, '}${hashed.toFixed(2)} µs)` : ''} and reads a record that is no longer in the CPU's caches. `
      : '') +
    'The hot-path changes behind these figures, with before and after, are listed in docs/benchmark.md. ' +
    calibrationSentence(agg, inProcess, data.spinNs)
  )
}

/**
 * The cookie-store target against its floor: what node:crypto's AES-256-GCM alone costs next
 * to the budget the target leaves, from the micro-benchmarks of the same run.
 */
function encryptionSentence(agg: ReturnType<typeof aggregate>, data: Data): string {
  const find = (prefix: string) => microUs(data, prefix)
  const seal = find('node:crypto AES-256-GCM: seal')
  const open = find('node:crypto AES-256-GCM: open')
  const boxSeal = find('sodium-native secretbox: seal')
  const boxOpen = find('sodium-native secretbox: open')
  const other = agg.get('fastify:secure-session')
  const read = other?.['read-spread']
  const write = other?.['write-spread']
  if (!seal || !open || !boxSeal || !boxOpen || !read || !write) return ''
  return (
    `The cookie store encrypts with node:crypto's AES-256-GCM: ${seal.toFixed(1)} µs to seal and ${open.toFixed(1)} µs to open 200 bytes in-process, where libsodium's secretbox, which @fastify/secure-session calls natively, takes ${boxSeal.toFixed(1)} and ${boxOpen.toFixed(1)} µs. ` +
    `On the spread routes every request opens a token the store has not seen lately: 0.7 of @fastify/secure-session's added CPU leaves ${f1(0.7 * read.added)} µs for a \`/read\`, of which the open alone takes ${open.toFixed(1)}, and ${f1(0.7 * write.added)} µs for a \`/write\`, of which open + seal take ${(open + seal).toFixed(1)}. `
  )
}

type Floors = Partial<Record<Scenario, number>>

/**
 * The cryptography each scenario cannot skip, in-process µs from the micro-benchmarks: for a
 * server store, the HMAC of a cookie not seen lately and the SHA-256 of its id (spread routes;
 * a run from before the hash was measured on its own counts the HMAC only); for the cookie store,
 * the AES-256-GCM open of a token not seen lately (spread routes) and the seal (`/write`), and
 * with its `sodium` option the same through libsodium's ChaCha20-Poly1305. Hot reads have none: a cache may know the session.
 */
function cryptoFloors(data: Data): { server: Floors; cookie: Floors; sodium: Floors } {
  const find = (prefix: string) => microUs(data, prefix)
  const verify = find('tessera: cookie verify, session not seen lately')
  const sha = find('tessera: session id hash')
  const hmac = verify === undefined ? undefined : verify + (sha ?? 0)
  const seal = find('node:crypto AES-256-GCM: seal')
  const open = find('node:crypto AES-256-GCM: open')
  const sodiumSeal = find('libsodium ChaCha20-Poly1305: seal')
  const sodiumOpen = find('libsodium ChaCha20-Poly1305: open')
  return {
    server: hmac === undefined ? {} : { 'read-spread': hmac, 'write-spread': hmac },
    cookie:
      seal === undefined || open === undefined
        ? {}
        : { 'read-spread': open, 'write-hot': seal, 'write-spread': open + seal },
    sodium:
      sodiumSeal === undefined || sodiumOpen === undefined
        ? {}
        : {
            'read-spread': sodiumOpen,
            'write-hot': sodiumSeal,
            'write-spread': sodiumOpen + sodiumSeal,
          },
  }
}

/** An added figure below this many µs is within the noise of one run. */
const RESOLVED_US = 1

/** What an empty Express middleware adds, next to the budget express-session's figure leaves. */
function middlewareSentence(agg: ReturnType<typeof aggregate>): string {
  const empty = agg.get('express:middleware')?.['read-hot']
  const hooks = agg.get('express:hooks')?.['read-hot']
  const other = agg.get('express:express-session')?.['read-hot']
  const ours = agg.get('express:tessera-memory')?.['read-hot']
  const node = agg.get('node:tessera-memory')?.['read-hot']
  if (!empty || !other || !ours) return ''
  const budget = `a budget of ${f1(0.05 * other.added)} µs (one twentieth of express-session's ${f1(other.added)})`
  const range = (x: { added: number; addedMin: number; addedMax: number }) =>
    `${f1(x.added)} µs (${f1(x.addedMin)}…${f1(x.addedMax)})`
  const hooked = hooks
    ? `; one that also puts a value on \`req\` and wraps \`res.writeHead\`, which a session middleware must do to set its cookie, adds ${range(hooks)}`
    : ''
  // on 60 to 70 µs requests, one run may not resolve a few µs
  return empty.added >= RESOLVED_US || (hooks?.added ?? 0) >= RESOLVED_US
    ? `On Express, one empty middleware adds ${range(empty)} to bare Express on read-hot${hooked}, against ${f1(ours.added)} µs for Tessera and ${budget}: every session middleware pays that before doing anything. `
    : `On Express, one empty middleware adds nothing this run resolves to bare Express on read-hot (${range(empty)}, on requests of ${f1(agg.get('express:none')?.['read-hot']?.cpu ?? Number.NaN)} µs${hooked}), so the router's cost per middleware does not explain Tessera's ${f1(ours.added)} µs there, against ${budget}${node ? ` and ${f1(node.added)} µs through the node adapter` : ''}. `
}

/** Redis's own CPU per request with each client: mostly how the client writes commands. */
function redisClientSentence(agg: ReturnType<typeof aggregate>): string {
  const node = agg.get('express:tessera-redis')?.['read-hot']
  const io = agg.get('express:tessera-ioredis')?.['read-hot']
  const other = agg.get('express:express-session-redis')?.['read-hot']
  if (!node || !io || !other) return ''
  return `Redis's own CPU per request depends mostly on the client: on read-hot, one \`HGETALL\` a request costs Redis ${f1(io.redis)} µs with ioredis (each command its own write, unless \`enableAutoPipelining\` is set) and ${f1(node.redis)} µs with node-redis (commands of one tick written together), against ${f1(other.redis)} µs for connect-redis's \`GET\` on node-redis; so the Redis targets compare Tessera on node-redis, the client connect-redis uses. `
}

/**
 * What a known amount of busy work shows as over HTTP (the `:spin` variants): work that lowers
 * throughput also costs the kernel more per response, so added CPU over HTTP exceeds the work.
 */
function calibrationSentence(
  agg: ReturnType<typeof aggregate>,
  inProcess: number,
  spinNs: number | undefined,
): string {
  if (spinNs === undefined) return ''
  const us = spinNs / 1000
  const spins = (['node', 'fastify'] as const)
    .map((f) => [f, agg.get(`${f}:spin`)?.['read-hot']] as const)
    .filter(([, x]) => x !== undefined)
  if (spins.length === 0) return ''
  const shown = spins.map(([f, x]) => `${f1(x!.added)} µs on ${f}`).join(' and ')
  const target = agg.get('fastify:fastify-session')?.['read-hot']
  return (
    `Calibration: ${us} µs of busy work per request, and nothing else, shows as ${shown} of added CPU over HTTP (work that lowers throughput also leaves the kernel fewer responses per wake-up)` +
    (target
      ? `; one tenth of @fastify/session's added figure, the memory-store target, is ${f1(target.added / 10)} µs, against Tessera's ${inProcess.toFixed(1)} µs of in-process work for a whole load + read + commit. `
      : '. ')
  )
}

/**
 * `--compare REF`: each Tessera variant's server CPU per request in this tree and at REF, and
 * what each adds to the same framework's no-session variant of the same round (medians over
 * rounds, ranges in brackets). Plain text for the terminal.
 */
export function compareTable(runs: readonly Run[], ref: string): string {
  const cpu = (run: Run | undefined, s: Scenario) =>
    run?.results[s]?.serverCpuUsPerReq ?? Number.NaN
  const span = (xs: number[]) => {
    const ok = xs.filter(Number.isFinite)
    return ok.length > 1 ? ` (${f1(Math.min(...ok))}…${f1(Math.max(...ok))})` : ''
  }
  const names = [...new Set(runs.map((r) => r.variant.split('@')[0]!))].filter((n) =>
    n.includes(':tessera'),
  )
  const lines = [
    `server CPU µs per request, this tree against ${ref}: medians over rounds (range); added = minus the framework's no-session variant of the same round`,
  ]
  for (const s of SCENARIOS) {
    lines.push('', `${s}:`)
    for (const name of names) {
      const bare = `${name.split(':')[0]}:none`
      const figures = (variant: string) => {
        const own = runs.filter((r) => r.variant === variant)
        const total = own.map((r) => cpu(r, s))
        const added = own.map(
          (r) =>
            cpu(r, s) -
            cpu(
              runs.find((b) => b.variant === bare && b.round === r.round),
              s,
            ),
        )
        return `${f1(median(total))}${span(total)}, added ${f1(median(added))}${span(added)}`
      }
      lines.push(`  ${name.padEnd(28)} this tree ${figures(name)}`)
      lines.push(`  ${''.padEnd(28)} ${ref.padEnd(9)} ${figures(`${name}@${ref}`)}`)
    }
  }
  return lines.join('\n')
}

export function report(data: Data): string {
  const agg = aggregate(data)
  const lines: string[] = []
  const push = (...l: string[]) => lines.push(...l)
  // the run itself keeps both cores busy, so only the load before it says whether others were
  const busy = data.loadavgStart[0]! >= 1
  push(
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` (\`node --import tsx bench/run.ts${data.quick ? ' --quick' : ''}\`) on ${data.started}, finished ${data.finished}.${data.quick ? ' **Quick mode: short runs, one round, fewer variants; for development only.**' : ''}`,
    '',
    '## Machine and versions',
    '',
    `- CPU: ${data.machine.cpu}, ${data.machine.cores} cores; ${data.machine.memGb} GB; Linux ${data.machine.kernel}`,
    `- Node ${data.machine.node}; ${data.machine.wrk}; Redis: ${data.machine.redis}`,
    `- Load average (1 min) at start ${f2(data.loadavgStart[0]!)}, at end ${f2(data.loadavgEnd[0]!)} (the run's own server and wrk count for about 2)${busy ? ' — **the machine was shared with other work during the run: throughput and latency figures are lower and noisier than on an idle machine; CPU per request is the robust figure**' : ''}`,
    `- express ${version('express')}, express-session ${version('express-session')}, connect-redis ${version('connect-redis')}, redis (node-redis) ${version('redis')}, ioredis ${version('ioredis')}`,
    `- fastify ${version('fastify')}, @fastify/session ${version('@fastify/session')}, @fastify/cookie ${version('@fastify/cookie')}, @fastify/secure-session ${version('@fastify/secure-session')}`,
    `- hono ${version('hono')}, @hono/node-server ${version('@hono/node-server')}, hono-sessions ${version('hono-sessions')}; iron-session ${version('iron-session')}; cookie-signature ${version('cookie-signature')}; tinybench ${version('tinybench')}`,
    `- Tessera code: ${data.tessera ?? 'src/'}`,
    `- Tessera glue: ${Object.entries(data.adapters)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ')}`,
    `- Express variants served by: ${data.expressServer === 'constructed' ? '**a server whose requests and responses are made with the app\'s own prototypes** (`BENCH_EXPRESS_SERVER=constructed`; docs/adapters/express.md, "Serving Express"), not `app.listen()`: Express\'s figures are not those of a default app' : '`app.listen()`'}`,
    '',
    '## Method',
    '',
    `Each variant is a separate server process (\`node --import tsx bench/server.ts <variant> <port>\`, running Tessera from \`src/\`) pinned to core 0 with \`taskset\`; \`wrk\` (one thread, ${data.connections} keep-alive connections, \`bench/wrk.lua\`) runs pinned to core 1. Every variant serves the same routes: \`/write\` reads a counter, adds one and stores it; \`/read\` reads it and changes nothing. Before measuring, each route is checked for the right answer with a real session cookie. Sessions are made beforehand through \`/write\`: one **hot** session (every request carries the same cookie) and a **spread** of ${data.spread.toLocaleString('en')} sessions (requests rotate through them). Each scenario runs ${data.duration} s after a warm-up; ${data.rounds} round(s), every variant in a fresh process each round, the order reversed every other round. Figures are medians over rounds.`,
    '',
    "**Server CPU µs/req** is the server process's user+sys time (from `/proc/<pid>/stat`) over the measured window, divided by the requests served. **Added** is that figure minus the same framework's no-session figure from the same round: the cost of the session library alone (the range over rounds in brackets when more than one). **wrk CPU** is the load generator's user+sys over wall time (from `time`): near 100% would mean the client, not the server, was the limit. Redis CPU, where shown, is the Redis server's own CPU per request, not included in the server figure.",
    '',
  )

  for (const s of SCENARIOS) {
    push(
      `## ${s}: \`${s.startsWith('read') ? '/read' : '/write'}\`, ${s.endsWith('hot') ? 'one hot session' : `${data.spread.toLocaleString('en')} sessions`}`,
      '',
      '| framework | session | config | req/s | vs bare | p50 ms | p99 ms | server CPU µs/req | added µs/req | Redis µs/req | wrk CPU | errors |',
      '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    )
    for (const v of data.variants) {
      const x = agg.get(v.name)?.[s]
      if (!x) continue
      const base = agg.get(`${v.framework}:none`)?.[s]
      const bare = v.name.endsWith(':none')
      const range = x.rounds > 1 && !bare ? ` (${f1(x.addedMin)}…${f1(x.addedMax)})` : ''
      push(
        `| ${v.framework} | ${v.label} | ${v.config} | ${Math.round(x.rps).toLocaleString('en')} | ${base ? `${((x.rps / base.rps) * 100).toFixed(0)}%` : ''} | ${ms(x.p50)} | ${ms(x.p99)} | ${f1(x.cpu)} | ${bare ? '-' : `${f1(x.added)}${range}`} | ${Number.isFinite(x.redis) ? f1(x.redis) : ''} | ${x.wrk.toFixed(0)}% | ${x.errors} |`,
      )
    }
    push('')
  }
  const readCookie = data.variants.filter((v) =>
    data.runs.some((r) => r.variant === v.name && r.readSetsCookie),
  )
  if (readCookie.length > 0)
    push(
      `Variants that send a \`Set-Cookie\` on \`/read\` (nothing changed): ${readCookie.map((v) => `${v.name}`).join(', ')}.`,
      '',
    )

  // ---------------------------------------------------------------- targets
  push(
    '## Targets',
    '',
    "Ratios of the session's added server CPU per request, same framework, same run.",
    '',
  )
  push(
    '| target | scenario | Tessera added µs | other added µs | ratio | limit | budget µs | floor µs | result |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  )
  const verdicts: { met: boolean; what: string }[] = []
  const floors = cryptoFloors(data)
  // a calibration's figure counts in a floor when this run resolves it
  const resolved = (variant: string, s: Scenario) => {
    const added = agg.get(variant)?.[s]?.added
    return added !== undefined && added >= RESOLVED_US ? added : undefined
  }
  for (const target of TARGETS) {
    const { what, ours, theirs, limit, redisCpu } = target
    for (const s of SCENARIOS) {
      const a = agg.get(ours)?.[s]
      const b = agg.get(theirs)?.[s]
      if (!a || !b) {
        push(
          `| ${what} | ${s} | | | | ≤ ${f2(limit)} | | | not measured (${!a ? ours : theirs} absent) |`,
        )
        continue
      }
      const ta = a.added + (redisCpu && Number.isFinite(a.redis) ? a.redis : 0)
      const tb = b.added + (redisCpu && Number.isFinite(b.redis) ? b.redis : 0)
      const least = floorOf(target, s, floors, resolved)
      const { ratio, met, budget, result } = judge(ta, tb, limit, least)
      verdicts.push({ met, what: `${what} ${s}` })
      push(
        `| ${what} | ${s} | ${f1(ta)} | ${f1(tb)} | ${f2(ratio)} | ≤ ${f2(limit)} | ${f1(budget)} | ${least === undefined ? '' : f1(least)} | ${result} |`,
      )
    }
  }
  for (const [s, limit] of [
    ['read-hot', 0.8],
    ['read-spread', 0.8],
    ['write-hot', 0.7],
    ['write-spread', 0.7],
  ] as const) {
    const a = agg.get('node:tessera-memory')?.[s]
    const b = agg.get('node:none')?.[s]
    if (!a || !b) continue
    const ratio = a.rps / b.rps
    const saturated = Math.max(a.wrk, b.wrk) >= 90
    const met = ratio >= limit && !saturated
    // on the spread routes: the share of the baseline's req/s that the floor's work alone leaves
    const floorRps = s.endsWith('spread') ? agg.get('node:floor')?.[s]?.rps : undefined
    const ceiling = floorRps === undefined ? undefined : floorRps / b.rps
    const below = !met && ceiling !== undefined && ceiling < limit
    verdicts.push({ met, what: `throughput ${s}` })
    push(
      `| throughput node:http + memory vs bare (req/s) | ${s} | ${Math.round(a.rps)} req/s | ${Math.round(b.rps)} req/s | ${f2(ratio)} | ≥ ${f2(limit)} | | ${ceiling === undefined ? '' : `${f2(ceiling)} of bare`} | ${met ? 'met' : below ? '**missed**: the floor alone is below the limit' : '**missed**'}${saturated ? ' (load generator saturated)' : ''} |`,
    )
  }
  push(
    '',
    "**Budget** is the limit times the other library's added CPU: what Tessera may add. **Floor** is what the cryptography every such request must do costs in-process, from this run's micro-benchmarks: on the spread routes, where no cache can know the session, the HMAC of a cookie value not seen lately and the SHA-256 of its id (server stores; the other libraries compute the same HMAC) or the AES-256-GCM open of the cookie store's token (ChaCha20-Poly1305 through libsodium for its `sodium` variant), and on `/write` the cookie store's seal. On the Express targets the floor adds what a middleware that puts a value on `req` and takes over `res.writeHead`, as `on-headers` (express-session's header hook) does, so a cookie can be set when the headers go out (the `express:hooks` variant), adds to bare Express in the same run, and on the Fastify targets what two empty hooks (`onRequest` setting a request decoration, `onSend` passing the payload on: the `fastify:hooks` variant) add to bare Fastify: every session middleware or plugin pays it before doing anything (on the cookie-store targets, the `fastify:set-cookie` variant instead: the same hooks, and on `/write` the least `Set-Cookie` header a cookie session sends, the counter alone sealed, 59 characters of base64url, which every cookie store pays whatever its cryptography). On the Redis targets it adds, instead, what one `GET` through node-redis adds to bare Express (the `express:redis-command` variant, the middleware and the client's cost together, the client without its per-command timer, as Tessera's store sends), once on `/read` and twice on `/write`: a session read needs one command and a write two, whatever the library. On the spread routes of the Fastify memory-store target the floor is measured over HTTP instead: what the `fastify:floor` variant (bare Fastify whose route computes a cookie's HMAC, its id's SHA-256 and reads that id's record from a `Map` of 10,000, with no session library) adds to bare Fastify, cache misses and all, when the run resolves it; on the throughput targets' spread routes the floor column is `node:floor`'s req/s (the same work on node:http) as a share of the baseline's. Where the floor is above the budget (or below the throughput limit), no session library built that way meets the target.",
    '',
    "The same targets (all but the throughput ones) are also judged by the instructions each server executes per request, and for the one counting Redis's own CPU, its Redis server's too, which do not move with the machine's load: `npm run bench:instructions -- --targets` writes them to `bench/INSTRUCTIONS.md`.",
  )
  push('')

  // ---------------------------------------------------------------- micro
  const micro = data.micro as
    | {
        results: { name: string; mean_us: number | null; ops_per_s: number | null }[]
        notes: Record<string, string>
      }
    | undefined
  if (micro) {
    push(
      '## Micro-benchmarks (tinybench, one process pinned to core 0)',
      '',
      '| operation | µs/op | ops/s |',
      '| --- | ---: | ---: |',
    )
    for (const r of micro.results)
      push(
        `| ${r.name} | ${r.mean_us === null ? 'error' : r.mean_us.toFixed(2)} | ${r.ops_per_s?.toLocaleString('en') ?? ''} |`,
      )
    for (const note of Object.values(micro.notes)) push('', `_${note}_`)
    push('')
  }
  const heap = data.heap as {
    which: string
    sessions: number
    heap_mb: number
    bytes_per_session: number
  }[]
  if (heap.length > 0) {
    push(
      '## Memory: heap per 100,000 sessions',
      '',
      '| store | heap MB | bytes/session |',
      '| --- | ---: | ---: |',
    )
    for (const h of heap)
      push(
        `| ${h.which === 'tessera' ? 'Tessera memory store (one `count` field)' : 'express-session MemoryStore (same data)'} | ${f1(h.heap_mb)} | ${h.bytes_per_session} |`,
      )
    push('')
  }
  const scaleNames = Object.keys(data.scale)
  if (scaleNames.length > 0) {
    push(
      `## Redis: \`/read\` latency with few and many sessions stored`,
      '',
      '| variant | sessions stored | req/s | p50 ms | p99 ms |',
      '| --- | ---: | ---: | ---: | ---: |',
    )
    for (const name of scaleNames) {
      for (const row of data.scale[name] as {
        stored: number
        p50_us: number
        p99_us: number
        rps: number
      }[])
        push(
          `| ${name} | ${row.stored.toLocaleString('en')} | ${Math.round(row.rps).toLocaleString('en')} | ${ms(row.p50_us)} | ${ms(row.p99_us)} |`,
        )
    }
    push(
      '',
      'Filler sessions are copies (`DUMP`/`RESTORE`) of a real session record under the same key prefix; all are deleted afterwards.',
      '',
    )
  }
  if (data.skipped.length > 0 || data.failures.length > 0) {
    push('## Not measured', '')
    for (const s of data.skipped) push(`- ${s.variant}: ${s.why}`)
    for (const f of data.failures) push(`- ${f.variant}: failed: ${f.error}`)
    push('')
  }

  // ---------------------------------------------------------------- reading
  const met = verdicts.filter((v) => v.met).length
  const missed = verdicts.filter((v) => !v.met).map((v) => v.what)
  const nodeRead = agg.get('node:tessera-memory')?.['read-hot']
  const nodeBare = agg.get('node:none')?.['read-hot']
  push(
    '## Reading',
    '',
    `${met} of ${verdicts.length} measured targets met${missed.length > 0 && missed.length <= 6 ? `; missed: ${missed.join(', ')}` : ''}. ` +
      (nodeRead && nodeBare
        ? `On bare node:http, a request that reads a hot Tessera session costs ${f1(nodeRead.added)} µs of server CPU more than one with no session (${f1(nodeBare.cpu)} µs), so throughput is ${((nodeRead.rps / nodeBare.rps) * 100).toFixed(0)}% of the baseline's. `
        : '') +
      floorSentence(agg, data) +
      encryptionSentence(agg, data) +
      middlewareSentence(agg) +
      redisClientSentence(agg) +
      'The added figures are differences of two measurements of a few tens of microseconds each, so a difference under about 1 µs is within the noise of one run (see the ranges over rounds); the ratios against libraries that add tens of microseconds are the meaningful ones. ' +
      (busy
        ? 'Other work shared the machine during this run, which lowers req/s and widens p99 more than it moves CPU per request. '
        : '') +
      (data.skipped.length
        ? `Not measured: ${data.skipped.map((s) => s.variant).join(', ')}.`
        : ''),
    '',
  )
  return `${lines.join('\n')}\n`
}
