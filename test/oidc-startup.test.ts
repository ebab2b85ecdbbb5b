/**
 * tessera/oidc refuses, at startup, what cannot work: a cookie store (tokens do not fit a
 * cookie, nor belong in one), a SameSite=Strict session cookie (the callback would never see
 * it), an http: issuer without allowInsecureRequests, and options it would have to ignore. Each
 * refusal is a SessionConfigError saying what to change, made before any request.
 */
import { createServer } from 'node:http'
import { describe, expect, it } from 'vitest'
import { createSessions, SessionConfigError } from '../src/index.js'
import { OidcError, type OidcOptions, oidc } from '../src/oidc/index.js'
import { cookieStore } from '../src/stores/cookie.js'
import { memoryStore } from '../src/stores/memory.js'
import { listen } from './helpers/http.js'

const SECRET = 'oidc-startup-secret-0123456789abcdef-0123456789'
/** No request is ever made to it: every refusal comes before discovery. */
const base = {
  issuer: 'https://idp.invalid',
  clientId: 'app',
  clientSecret: 'secret',
  redirectUri: 'https://app.invalid/callback',
}
const server = () => createSessions({ secret: SECRET, store: memoryStore({ sweepInterval: 0 }) })
const refusal = async (options: Partial<OidcOptions>) =>
  oidc({ sessions: server(), ...base, ...options }).then(
    () => undefined,
    (err: unknown) => err as Error,
  )

describe('oidc startup', () => {
  it('refuses a manager over the cookie store, saying to use a server store', async () => {
    const sessions = createSessions({ secret: SECRET, store: cookieStore() })
    const error = await oidc({ sessions, ...base }).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(SessionConfigError)
    expect((error as SessionConfigError).code).toBe('ERR_SESSION_CONFIG')
    expect((error as Error).message).toMatch(/the cookie store keeps sessions in the browser/)
    expect((error as Error).message).toMatch(/server store, such as memoryStore\(\)/)
  })

  it('takes a manager over a server store', async () => {
    // gets past every check to discovery, which fails: nothing listens there
    const closed = await listen(createServer())
    const issuer = closed.url
    await closed.close()
    const error = await refusal({ issuer, allowInsecureRequests: true })
    expect(error).toBeInstanceOf(OidcError)
    expect(error).toMatchObject({ code: 'ERR_SESSION_OIDC', reason: 'discovery-failed' })
    expect(error?.message).toContain(issuer)
  })

  it('refuses a SameSite=Strict session cookie', async () => {
    const sessions = createSessions({
      secret: SECRET,
      store: memoryStore({ sweepInterval: 0 }),
      cookie: { sameSite: 'strict' },
    })
    await expect(oidc({ sessions, ...base })).rejects.toThrow(/use sameSite: 'lax'/)
  })

  it('refuses an http: issuer unless allowInsecureRequests', async () => {
    const error = await refusal({ issuer: 'http://idp.invalid' })
    expect(error).toBeInstanceOf(SessionConfigError)
    expect(error?.message).toMatch(/allowInsecureRequests: true/)
  })

  it('says what is wrong with the other options', async () => {
    for (const [options, message] of [
      [{ clientId: '' }, /clientId is required/],
      [{ issuer: undefined }, /issuer is required: the provider's issuer URL/],
      [{ issuer: '' }, /issuer is required/],
      [{ redirectUri: undefined }, /redirectUri is required: the callback route's absolute URL/],
      [{ issuer: 'idp.example' }, /issuer "idp.example" is not an absolute URL/],
      [{ redirectUri: 'https://app.invalid/callback?x=1' }, /must have no query or fragment/],
      [{ redirectUri: 'ftp://app.invalid/callback' }, /must be an https: URL/],
      [{ scope: 'profile email' }, /must include "openid"/],
      [{ authorizationParams: { state: 'fixed' } }, /cannot set state/],
      [
        { authorizationParams: { code_challenge_method: 'plain' } },
        /cannot set code_challenge_method/,
      ],
      [{ refreshMargin: '-1s' }, /refreshMargin must be a positive/],
      [
        { clientSecret: undefined, clientAuthentication: 'client_secret_post' },
        /needs a clientSecret/,
      ],
    ] as const) {
      const error = await refusal(options as Partial<OidcOptions>)
      expect(error, JSON.stringify(options)).toBeInstanceOf(SessionConfigError)
      expect(error?.message).toMatch(message)
    }
  })
})
