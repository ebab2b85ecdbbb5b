/**
 * Threat: a leaked or aging secret must be replaced without logging everyone out. New secrets
 * go first; cookies sealed with an older one still open, and the next write reseals them with
 * the newest. The key id in the cookie picks the one key to try.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Keyring } from '../../src/core/keyring.js'
import { Sealer } from '../../src/core/seal.js'
import { createSessions } from '../../src/index.js'
import { cookieStore } from '../../src/stores/cookie.js'
import { type AppData, appRoutes } from '../helpers/app.js'
import { ADAPTERS, Client, OTHER_SECRET, type Running, SECRET, serve } from '../helpers/http.js'

const THIRD_SECRET = 'third-secret-0123456789abcdefghijklmnopqrstuvwxyz'

describe.each(ADAPTERS)('cookie store: key rotation (%s)', (adapter) => {
  const running: Running[] = []
  afterEach(async () => {
    for (const r of running.splice(0)) await r.close()
  })
  const start = async (secrets: string[]) => {
    const r = await serve(
      adapter,
      createSessions<AppData>({ secrets, store: cookieStore() }),
      appRoutes,
    )
    running.push(r)
    return r
  }

  it('old cookies open after a new secret is added, and are resealed with the newest', async () => {
    const before = await start([SECRET])
    const client = new Client(before.url)
    await client.get('/count')
    const oldCookie = client.cookie()!

    const after = await start([OTHER_SECRET, SECRET])
    const rotated = new Client(after.url)
    rotated.jar.set('sid', oldCookie)
    expect((await rotated.get('/count')).body).toMatchObject({ count: 2, isNew: false })
    const resealed = rotated.cookie()!
    expect(resealed).not.toBe(oldCookie)

    // resealed with the newest key: a server with only the new secret opens it ...
    const onlyNew = new Client((await start([OTHER_SECRET])).url)
    onlyNew.jar.set('sid', resealed)
    expect((await onlyNew.get('/read')).body).toMatchObject({ count: 2, isNew: false })
    // ... one with only the retired secret does not, nor does it open the old cookie's successor
    const onlyOld = new Client((await start([SECRET])).url)
    onlyOld.jar.set('sid', resealed)
    expect((await onlyOld.get('/read')).body).toMatchObject({ count: null, isNew: true })
    // and once the old secret is retired, the old cookie is refused
    const retired = new Client((await start([OTHER_SECRET])).url)
    retired.jar.set('sid', oldCookie)
    expect((await retired.get('/read')).body).toMatchObject({ count: null, isNew: true })
  })
})

describe('cookie store: key ids', () => {
  const keyring = new Keyring([THIRD_SECRET, OTHER_SECRET, SECRET])
  const all = Sealer.fromKeyring(keyring, 'cookie-store', 'sid')
  const sealers = [THIRD_SECRET, OTHER_SECRET, SECRET].map((s) =>
    Sealer.fromKeyring(new Keyring([s]), 'cookie-store', 'sid'),
  )
  const keyId = (token: string) => Buffer.from(token, 'base64url').readUInt32BE(1)

  it('every key of the ring opens its own cookies; each cookie names its key', () => {
    const tokens = sealers.map((s) => s.seal('payload'))
    expect(new Set(tokens.map(keyId)).size).toBe(3)
    for (const token of tokens) expect(all.open(token, 4096)).toEqual({ plaintext: 'payload' })
  })

  it('the key id picks exactly one key: a cookie relabelled with another key id fails', () => {
    const [newest, , oldest] = sealers.map((s) => s.seal('payload'))
    const bytes = Buffer.from(oldest!, 'base64url')
    bytes.writeUInt32BE(keyId(newest!), 1)
    // the oldest key is in the ring, but only the newest key is tried
    expect(all.open(bytes.toString('base64url'), 4096)).toEqual({ rejected: 'bad-signature' })
    bytes.writeUInt32BE(0xdeadbeef, 1)
    expect(all.open(bytes.toString('base64url'), 4096)).toEqual({ rejected: 'bad-signature' })
  })
})
