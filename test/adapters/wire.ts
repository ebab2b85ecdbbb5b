/**
 * A raw HTTP request over loopback that reports what came over the wire, including an answer
 * cut short (`complete: false`), where `fetch` would only throw.
 */
import { request } from 'node:http'
import { afterEach, beforeEach } from 'vitest'

export interface WireResult {
  status?: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** Whether the answer arrived whole; false when the connection was cut. */
  complete: boolean
  /** No answer, whole or cut, within the time allowed (2 s). */
  timedOut: boolean
}

export function wire(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string[]; gap?: number } = {},
): Promise<WireResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let result: Omit<WireResult, 'body' | 'complete' | 'timedOut'> = { headers: {} }
    let timedOut = false
    const done = (complete: boolean) =>
      resolve({ ...result, body: Buffer.concat(chunks).toString(), complete, timedOut })
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false })
    req.setTimeout(2000, () => {
      timedOut = true
      req.destroy()
    })
    req.on('response', (res) => {
      result = { status: res.statusCode!, headers: res.headers }
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => done(true))
      res.on('error', () => done(false))
      res.on('aborted', () => done(false))
    })
    req.on('error', () => done(false))
    // a body sent in pieces, `gap` ms apart: still arriving when the handler answers
    const body = init.body ?? []
    let i = 0
    const next = () => {
      if (i === body.length) req.end()
      else {
        req.write(body[i++])
        setTimeout(next, init.gap ?? 0)
      }
    }
    next()
  })
}

/**
 * The uncaught exceptions of each test in the calling `describe`: in an app's process each
 * would be its end (vitest reports them too, but against no test).
 */
export function uncaughtExceptions(): unknown[] {
  const seen: unknown[] = []
  const record = (error: unknown) => void seen.push(error)
  beforeEach(() => {
    seen.length = 0
    process.on('uncaughtException', record)
  })
  afterEach(() => {
    process.off('uncaughtException', record)
  })
  return seen
}
