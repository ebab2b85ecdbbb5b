/**
 * Real servers on loopback for the adapter-level tests, one per adapter, all answering the
 * same routes through the same `Route` function.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { withSession as withFetchSession } from '../../src/adapters/fetch.js'
import { withSession as withNodeSession } from '../../src/adapters/node.js'
import type { SessionManager } from '../../src/core/manager.js'
import type { Session, SessionData } from '../../src/core/session.js'

export type AdapterName = 'node' | 'fetch'
export const ADAPTERS: readonly AdapterName[] = ['node', 'fetch']

export interface RouteResult {
  status?: number
  body?: unknown
  redirect?: string
}
/** One route table, shared by every adapter. */
export type Route<Data extends SessionData> = (
  session: Session<Data>,
  url: URL,
  method: string,
) => RouteResult | Promise<RouteResult>

export interface Running {
  url: string
  close(): Promise<void>
}

/** Listens on a free loopback port; `close()` also ends kept-alive connections. */
export async function listen(server: Server): Promise<Running> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Serves a fetch handler over node:http (what @hono/node-server and Next.js do). */
export function fetchBridge(handler: (request: Request) => Promise<Response>) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const headers = new Headers()
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers.set(name, value)
      else if (Array.isArray(value)) for (const v of value) headers.append(name, v)
    }
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = chunks.length > 0 ? Buffer.concat(chunks) : null
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method ?? 'GET',
      headers,
      ...(body && req.method !== 'GET' && req.method !== 'HEAD' ? { body } : {}),
    })
    const response = await handler(request)
    const out: [string, string][] = []
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') out.push([name, value])
    })
    for (const cookie of response.headers.getSetCookie()) out.push(['set-cookie', cookie])
    res.writeHead(response.status, out.flat())
    res.end(Buffer.from(await response.arrayBuffer()))
  }
}

export function serve<Data extends SessionData>(
  adapter: AdapterName,
  sessions: SessionManager<Data>,
  route: Route<Data>,
): Promise<Running> {
  if (adapter === 'node') {
    return listen(
      createServer(
        withNodeSession(sessions, async (req, res, session) => {
          const url = new URL(req.url ?? '/', 'http://localhost')
          const result = await route(session, url, req.method ?? 'GET')
          if (result.redirect) {
            res.writeHead(302, { location: result.redirect })
            res.end()
            return
          }
          res.writeHead(result.status ?? 200, { 'content-type': 'application/json' })
          res.end(JSON.stringify(result.body ?? null))
        }),
      ),
    )
  }
  return listen(
    createServer(
      fetchBridge(
        withFetchSession(sessions, async (request, session) => {
          const result = await route(session, new URL(request.url), request.method)
          if (result.redirect) return Response.redirect(new URL(result.redirect, request.url), 302)
          return Response.json(result.body ?? null, { status: result.status ?? 200 })
        }),
      ),
    ),
  )
}

/** A browser-like client with a cookie jar (name -> value) and no redirect following. */
export class Client {
  readonly jar = new Map<string, string>()
  constructor(readonly base: string) {}

  async request(path: string, init: RequestInit = {}) {
    const headers = new Headers(init.headers)
    if (this.jar.size > 0 && !headers.has('cookie')) {
      headers.set('cookie', [...this.jar].map(([n, v]) => `${n}=${v}`).join('; '))
    }
    const response = await fetch(this.base + path, { ...init, headers, redirect: 'manual' })
    const setCookies = response.headers.getSetCookie()
    for (const line of setCookies) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const cleared = value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))
      if (cleared) this.jar.delete(name)
      else this.jar.set(name, value)
    }
    const text = await response.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {}
    return { status: response.status, headers: response.headers, setCookies, body }
  }

  get(path: string, init?: RequestInit) {
    return this.request(path, init)
  }

  /** The session cookie as it stands in the jar. */
  cookie(name = 'sid'): string | undefined {
    return this.jar.get(name)
  }
}

/** A 32-byte-or-longer secret for tests. */
export const SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz'
export const OTHER_SECRET = 'other-secret-0123456789abcdefghijklmnopqrstuvwxyz'

/**
 * A streamed body, as from a file or a database cursor: a row every few milliseconds until it
 * is cancelled, which `producer.cancelled` then tells.
 */
export function cancellableRows(): {
  producer: { cancelled: boolean }
  body: ReadableStream<Uint8Array>
} {
  const producer = { cancelled: false }
  const body = new ReadableStream<Uint8Array>({
    pull: (controller) =>
      new Promise<void>((resolve) =>
        setTimeout(() => {
          if (!producer.cancelled) controller.enqueue(new TextEncoder().encode('row\n'))
          resolve()
        }, 5),
      ),
    cancel: () => {
      producer.cancelled = true
    },
  })
  return { producer, body }
}
