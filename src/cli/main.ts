/**
 * The `tessera` command: secrets, and the sessions a store holds (count, list, show, revoke,
 * prune, migrate to another store). The store is named by a URL (`tessera/stores/from-url`),
 * given with `--store`, in `TESSERA_STORE`, or as `store:` in the app's `tessera.yaml`
 * (`tessera/config`).
 *
 * @example
 * ```sh
 * export TESSERA_STORE='redis://127.0.0.1:6379?prefix=app:'
 * tessera list --user u42
 * tessera revoke --user u42
 * tessera migrate --to 'postgres://app@db/app?createTable=true'
 * ```
 * @module
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import cliProgress from 'cli-progress'
import { loadConfig } from '../config.js'
import { SessionError } from '../core/errors.js'
import { MIN_SECRET_BYTES } from '../core/keyring.js'
import type { SessionStore } from '../core/store.js'
import { type OpenedStore, storeFromUrl } from '../stores/from-url.js'
import {
  CommandError,
  count,
  list,
  migrate,
  type Output,
  prune,
  revoke,
  revokeUser,
  serverStore,
  show,
} from './commands.js'

export const HELP = `Usage: tessera <command> [options]

Commands:
  keygen [--bytes N]         print a new random secret (default 32 bytes, base64url)
  count                      how many sessions the store holds
  list [--user ID]           unexpired sessions: one user's, newest first, or every one
       [--limit N]
  show KEY                   one session's times, user and data (secrets hidden)
  revoke KEY                 end one session (KEY as list prints it, a session id or a
                             cookie's value; after -- when it starts with -)
  revoke --user ID           end every session of a user
  prune                      remove expired sessions now
  migrate --to URL           copy every unexpired session into another store

Options:
  --store URL                the store: redis://host:6379?prefix=app:, postgres://user@host/db,
                             mysql://user@host/db, sqlite:./sessions.db, file:./sessions,
                             memcached://host:11211 (see docs/cli.md). Default: TESSERA_STORE,
                             else store: in the config file
  --config FILE              the app's config file (default: TESSERA_CONFIG, else
                             ./tessera.yaml when there is one; see docs/config.md)
  --json                     one JSON object per line
  -h, --help                 show this help

Exit codes: 0 done, 1 the command failed (no such session, store error), 2 bad usage.`

/** Where the command writes; the process's streams unless a test gives others. */
export interface Io {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  env: Record<string, string | undefined>
  /** The time, in ms since the epoch. */
  now?: () => number
}

const STORE_COMMANDS = new Set(['count', 'list', 'show', 'revoke', 'prune', 'migrate'])

class UsageError extends Error {}

/** The reader of stdout has gone (`tessera list | head`): the command stops, quietly. */
class OutputClosed extends Error {}

/**
 * Writes lines to `stream`: a promise when its buffer is full (resolved once it drains), and
 * OutputClosed once the reader has gone (EPIPE), so a command stops reading its store.
 */
function lineWriter(stream: NodeJS.WritableStream): Output['line'] {
  let failure: NodeJS.ErrnoException | undefined
  // kept once the command is over: a write the pipe refuses reports it a tick later
  stream.on('error', (err: NodeJS.ErrnoException) => {
    failure ??= err
  })
  const closed = () =>
    failure === undefined || failure.code === 'EPIPE' ? new OutputClosed() : failure
  return (text) => {
    if (failure !== undefined || !stream.writable) throw closed()
    if (stream.write(`${text}\n`)) return undefined
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        stream.off('drain', settle)
        stream.off('close', settle)
        stream.off('error', settle)
        if (failure === undefined && stream.writable) resolve()
        else reject(closed())
      }
      stream.on('drain', settle)
      stream.on('close', settle)
      stream.on('error', settle)
    })
  }
}

/**
 * Writes lines to stderr, quietly doing nothing once its reader has gone (`2>&1 | head`, a
 * closed stderr): there is nowhere left to report that, and the exit code still says how the
 * command ended. Without this the pipe's EPIPE would be an unhandled 'error' and a crash.
 */
function errorWriter(stream: NodeJS.WritableStream): (text: string) => void {
  let closed = false
  // also for the progress bar, which writes to the same stream
  stream.on('error', () => {
    closed = true
  })
  return (text) => {
    if (!closed && stream.writable) stream.write(`${text}\n`)
  }
}

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`${name} must be a whole number of 1 or more`)
  return n
}

/** Runs one command; resolves to the exit code. Never throws. */
export async function main(argv: string[], io: Io): Promise<number> {
  const err = errorWriter(io.stderr)
  try {
    return await run(argv, io)
  } catch (error) {
    if (error instanceof OutputClosed) return 0
    if (error instanceof UsageError) {
      err(`tessera: ${error.message}\n\nRun tessera --help for the commands.`)
      return 2
    }
    if (error instanceof CommandError || error instanceof SessionError) {
      err(`tessera: ${error.message}`)
      return error instanceof SessionError && error.code === 'ERR_SESSION_CONFIG' ? 2 : 1
    }
    err(`tessera: ${(error as Error).message ?? String(error)}`)
    return 1
  }
}

async function run(argv: string[], io: Io): Promise<number> {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (error) {
    // a session id may start with "-": one in 64 does
    const id = argv.find((a) => /^-[A-Za-z0-9_-]{42}(?:\.[A-Za-z0-9_-]+)?$/.test(a))
    throw new UsageError(
      id === undefined
        ? (error as Error).message
        : `${(error as Error).message}. A session id starting with "-" goes after "--": tessera show -- ${id}`,
    )
  }
  const { positionals, values } = parsed
  const [command, ...rest] = positionals
  const out: Output = {
    line: lineWriter(io.stdout),
    progress: (total) => progressBar(io.stderr, total),
  }
  if (values.help || command === undefined) {
    io.stdout.write(`${HELP}\n`)
    return values.help ? 0 : 2
  }
  if (command === 'keygen') {
    if (rest.length !== 0) throw new UsageError(`keygen takes no argument "${rest[0]}"`)
    const bytes = Number(values.bytes ?? MIN_SECRET_BYTES)
    if (!Number.isInteger(bytes) || bytes < MIN_SECRET_BYTES || bytes > 1024)
      throw new UsageError(`--bytes must be a whole number from ${MIN_SECRET_BYTES} to 1024`)
    out.line(randomBytes(bytes).toString('base64url'))
    return 0
  }
  if (!STORE_COMMANDS.has(command)) throw new UsageError(`unknown command "${command}"`)
  const needsRef = (command === 'show' || command === 'revoke') && values.user === undefined
  if (needsRef ? rest.length !== 1 : rest.length !== 0)
    throw new UsageError(
      needsRef
        ? `${command} takes one session key, as tessera list prints it`
        : `${command} takes no argument "${rest[0]}"`,
    )
  if (values.user !== undefined && command !== 'list' && command !== 'revoke')
    throw new UsageError(`--user goes with list and revoke, not ${command}`)
  if ((values.to !== undefined) !== (command === 'migrate'))
    throw new UsageError(
      command === 'migrate'
        ? 'migrate needs --to URL, the store to copy into'
        : '--to goes with migrate',
    )
  const limit = positiveInteger('--limit', values.limit)
  if (values.config !== undefined && values.store !== undefined)
    throw new UsageError('give --store or --config, not both')
  // --store, else the app's own configuration: TESSERA_STORE over its tessera.yaml, of which
  // only the store is read (the app's secrets need not be in the admin's environment)
  const url =
    values.store ??
    (
      await loadConfig({
        env: io.env,
        only: ['store'],
        ...(values.config === undefined ? {} : { file: values.config }),
      })
    ).store
  if (url === undefined || url === '')
    throw new UsageError(
      'which store? Give --store URL (redis://..., postgres://..., sqlite:./sessions.db, ...), set TESSERA_STORE, or put store: in tessera.yaml',
    )

  const now = (io.now ?? Date.now)()
  const json = values.json === true

  const opened: OpenedStore[] = []
  // only migrate's target may be created: a mistyped path is an error, not a new empty store
  const open = async (u: string, what: string, create = false): Promise<SessionStore> => {
    const o = await storeFromUrl(u, { create })
    opened.push(o)
    return serverStore(o.store, what)
  }
  try {
    const store = await open(url, command)
    switch (command) {
      case 'count':
        await count(store, out, json)
        break
      case 'list':
        await list(store, out, { user: values.user, limit, json, now })
        break
      case 'show':
        await show(store, out, rest[0]!, { json, now })
        break
      case 'revoke':
        if (values.user !== undefined) await revokeUser(store, out, values.user)
        else await revoke(store, out, rest[0]!)
        break
      case 'prune':
        await prune(store, out)
        break
      default: {
        const target = await open(values.to!, 'migrate into', true)
        if (opened[0]!.url === opened[1]!.url)
          throw new UsageError('--to names the store the sessions are in already')
        await migrate(store, target, out, { now })
      }
    }
    return 0
  } finally {
    await Promise.allSettled(opened.map((o) => o.close()))
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      bytes: { type: 'string' },
      store: { type: 'string' },
      config: { type: 'string' },
      to: { type: 'string' },
      user: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    },
  })
}

/** A bar on a terminal; nothing when the output is a file or a pipe. */
function progressBar(stream: NodeJS.WritableStream, total: number | undefined) {
  const bar = new cliProgress.SingleBar({
    stream,
    format:
      total === undefined
        ? '{value} sessions | {duration_formatted}'
        : '[{bar}] {percentage}% | {value}/{total} sessions | eta {eta_formatted}',
    hideCursor: true,
    clearOnComplete: true,
  })
  // a total the store counted before the copy may be passed by new sessions: grow it
  bar.start(total ?? 0, 0)
  let done = 0
  return {
    tick() {
      done++
      if (total !== undefined && done > bar.getTotal()) bar.setTotal(done)
      bar.increment()
    },
    stop: () => bar.stop(),
  }
}
