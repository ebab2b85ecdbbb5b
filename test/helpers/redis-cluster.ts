/**
 * Redis servers a test starts and stops itself, on free loopback ports: a three-master Redis
 * Cluster, or one standalone server a test may kill (the "server stopped" cases).
 *
 * ```ts
 * const cluster = await startRedisCluster()   // cluster.nodes: [{ host, port }, ...]
 * afterAll(() => cluster.stop())               // stops every node, removes its directory
 * ```
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { portOpen } from './services.js'

const run = promisify(execFile)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Whether `redis-server` and `redis-cli` are on the PATH. */
export async function redisBinaries(): Promise<boolean> {
  try {
    await run('redis-server', ['--version'])
    await run('redis-cli', ['--version'])
    return true
  } catch {
    return false
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/**
 * `count` consecutive free loopback ports from a random start in [from, to), each with its
 * cluster bus port (port + 10000) free too when `bus`.
 */
export async function freePorts(count: number, bus = false, from = 7100, to = 7900) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = from + Math.floor(Math.random() * (to - from - count))
    const ports = Array.from({ length: count }, (_, i) => start + i)
    let free = true
    for (const port of ports) {
      if (!(await canListen(port)) || (bus && !(await canListen(port + 10_000)))) {
        free = false
        break
      }
    }
    if (free) return ports
  }
  throw new Error(`no ${count} free ports in ${from}-${to}`)
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

function startNode(port: number, dir: string, extra: string[]): ChildProcess {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      dir,
      ...extra,
    ],
    { stdio: 'ignore' },
  )
  child.on('error', () => {})
  return child
}

function stopNode(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(force)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

export interface RunningRedis {
  port: number
  url: string
  /** Freeze the process (SIGSTOP): connections stay open and nothing answers. */
  freeze(): void
  /** Let a frozen process go on (SIGCONT). */
  thaw(): void
  /** Stop the server (again is fine, frozen too) and remove its directory. */
  stop(): Promise<void>
}

/** One standalone Redis on a free loopback port, its data in a temporary directory. */
export async function startRedisServer(): Promise<RunningRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-redis-'))
  const [port] = await freePorts(1)
  const child = startNode(port!, dir, [])
  await waitFor(`redis-server on ${port}`, () => portOpen(`127.0.0.1:${port}`, 200))
  return {
    port: port!,
    url: `redis://127.0.0.1:${port}`,
    freeze: () => child.kill('SIGSTOP'),
    thaw: () => child.kill('SIGCONT'),
    async stop() {
      child.kill('SIGCONT')
      await stopNode(child)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface RunningCluster {
  nodes: { host: string; port: number }[]
  /** Stop every node and remove the cluster's directory. */
  stop(): Promise<void>
}

/** A Redis Cluster of `masters` masters and no replicas, on free loopback ports. */
export async function startRedisCluster(masters = 3): Promise<RunningCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-redis-cluster-'))
  const ports = await freePorts(masters, true)
  const children = ports.map((port) =>
    startNode(port, dir, [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${port}.conf`),
    ]),
  )
  const stop = async () => {
    await Promise.all(children.map(stopNode))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (const port of ports)
      await waitFor(`redis-server on ${port}`, () => portOpen(`127.0.0.1:${port}`, 200))
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    for (const port of ports)
      await waitFor(`cluster_state:ok on ${port}`, async () => {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'])
        return stdout.includes('cluster_state:ok')
      })
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), stop }
}
