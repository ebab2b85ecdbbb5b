/**
 * The server docs/adapters/express.md ("Serving Express") recommends, shared by the adapter
 * tests and the benchmark (`BENCH_EXPRESS_SERVER=constructed`): requests and responses made
 * with the app's own prototypes, so that Express's `Object.setPrototypeOf` on each of them
 * has nothing to change.
 */
import { createServer, IncomingMessage, type Server, ServerResponse } from 'node:http'
import type { Express } from 'express'

export function expressServer(app: Express): Server {
  function Request(this: IncomingMessage, ...args: unknown[]) {
    Reflect.apply(IncomingMessage, this, args)
  }
  Request.prototype = app.request
  function Response(this: ServerResponse, ...args: unknown[]) {
    Reflect.apply(ServerResponse, this, args)
  }
  Response.prototype = app.response
  return createServer(
    {
      IncomingMessage: Request as unknown as typeof IncomingMessage,
      ServerResponse: Response as unknown as typeof ServerResponse,
    },
    app,
  )
}
