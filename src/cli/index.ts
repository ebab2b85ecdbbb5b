#!/usr/bin/env node
/**
 * The `tessera` command. For now: `tessera keygen` prints a new secret.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'

const HELP = `Usage: tessera <command> [options]

Commands:
  keygen [--bytes N]   print a new random secret (default 32 bytes, base64url)

Options:
  -h, --help           show this help`

export function main(argv: string[]): number {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { help: { type: 'boolean', short: 'h' }, bytes: { type: 'string' } },
  })
  const [command] = positionals
  if (values.help || command === undefined) {
    console.log(HELP)
    return command === undefined && !values.help ? 1 : 0
  }
  if (command === 'keygen') {
    const bytes = Number(values.bytes ?? 32)
    if (!Number.isInteger(bytes) || bytes < 32 || bytes > 1024) {
      console.error('tessera keygen: --bytes must be a whole number from 32 to 1024')
      return 2
    }
    console.log(randomBytes(bytes).toString('base64url'))
    return 0
  }
  console.error(`tessera: unknown command "${command}"\n\n${HELP}`)
  return 2
}

try {
  process.exitCode = main(process.argv.slice(2))
} catch (err) {
  console.error(`tessera: ${(err as Error).message}`)
  process.exitCode = 2
}
