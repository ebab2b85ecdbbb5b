/**
 * Threat: an attacker who holds chunks of two sessions (theirs and a victim's, or two of their
 * own) combines them, hoping the result opens as a session with parts of each. The chunks of
 * one session are one sealed value: any mix fails authentication and is no session.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createSessions } from '../../src/index.js'
import { cookieStore } from '../../src/stores/cookie.js'
import type { AppData } from '../helpers/app.js'
import { cookieRoutes } from '../helpers/cookie-jar.js'
import { ADAPTERS, Client, type Running, SECRET, serve } from '../helpers/http.js'

describe.each(ADAPTERS)('cookie store: chunk mixing (%s)', (adapter) => {
  let server: Running
  afterEach(() => server?.close())

  it('chunks of two sessions combined, reordered or shifted never open', async () => {
    const sessions = createSessions<AppData>({
      secret: SECRET,
      store: cookieStore({ maxChunks: 3 }),
    })
    const reasons: string[] = []
    sessions.on('rejected', (e) => reasons.push(e.reason))
    server = await serve(adapter, sessions, cookieRoutes)
    const [a, b] = [new Client(server.url), new Client(server.url)]
    await a.get('/blob?n=7000')
    await b.get('/blob?n=7001')
    const [a0, a1, a2] = ['sid.0', 'sid.1', 'sid.2'].map((n) => a.jar.get(n)!)
    const [b0, b1, b2] = ['sid.0', 'sid.1', 'sid.2'].map((n) => b.jar.get(n)!)
    // [what, chunks, why it is refused]; a value whose last character is not a final one may
    // fail the cheap canonical-encoding check before it fails authentication
    const either = 'bad-signature|malformed'
    const combos: [string, string[], string][] = [
      ['A0 B1 A2', [a0!, b1!, a2!], 'bad-signature'],
      ['B0 A1 A2', [b0!, a1!, a2!], 'bad-signature'],
      ['A0 A1 B2', [a0!, a1!, b2!], 'bad-signature'],
      ['A0 A2 A1 (reordered)', [a0!, a2!, a1!], either],
      ['A0 with A1 twice', [a0!, a1!, a1!], either],
      ['A1 with one character cut', [a0!, a1!.slice(1), a2!], either],
    ]
    for (const [what, chunks] of combos) {
      const cookie = chunks.map((v, i) => `sid.${i}=${v}`).join('; ')
      const res = await new Client(server.url).get('/blob-size', { headers: { cookie } })
      expect(res.body, what).toEqual({ size: null, isNew: true })
    }
    expect(reasons).toHaveLength(combos.length)
    for (const [i, [what, , why]] of combos.entries())
      expect(reasons[i], what).toMatch(new RegExp(`^(${why})$`))
    // chunk boundaries carry nothing: the same characters split elsewhere are the same value
    const moved = [a0!, a1!.slice(0, -1), a1!.slice(-1) + a2!]
    const cookie = moved.map((v, i) => `sid.${i}=${v}`).join('; ')
    const res = await new Client(server.url).get('/blob-size', { headers: { cookie } })
    expect(res.body).toEqual({ size: 7000, isNew: false })
    // each genuine set opens
    expect((await a.get('/blob-size')).body).toEqual({ size: 7000, isNew: false })
    expect((await b.get('/blob-size')).body).toEqual({ size: 7001, isNew: false })
  })
})
