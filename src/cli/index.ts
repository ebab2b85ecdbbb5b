#!/usr/bin/env node
/**
 * The `tessera` executable: runs {@link main} with the process's arguments and streams.
 * @module
 */
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
})
