import { parseCookie } from 'cookie'
import { describe, expect, it } from 'vitest'
import { resolveCookie } from './cookies.js'
import { SessionConfigError } from './errors.js'

describe('resolveCookie', () => {
  it('has safe defaults', () => {
    const c = resolveCookie()
    expect(c.serialize('v', false)).toBe('sid=v; Path=/; HttpOnly; SameSite=Lax')
    expect(c.serialize('v', true)).toBe('sid=v; Path=/; HttpOnly; Secure; SameSite=Lax')
  })

  it('writes Max-Age in seconds, capped at 400 days', () => {
    const c = resolveCookie()
    expect(c.serialize('v', false, 90_500)).toContain('Max-Age=90')
    expect(c.serialize('v', false, 10 * 365 * 86_400_000)).toContain(`Max-Age=${400 * 86_400}`)
  })

  it('clears with Max-Age=0 and an expiry in the past', () => {
    expect(resolveCookie().clear(false)).toMatch(
      /^sid=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970/,
    )
  })

  it('enforces the __Host- prefix rules', () => {
    expect(resolveCookie({ name: '__Host-sid' }).serialize('v', false)).toContain('Secure')
    expect(() => resolveCookie({ name: '__Host-sid', domain: 'example.com' })).toThrow(
      /must not have a Domain/,
    )
    expect(() => resolveCookie({ name: '__Host-sid', path: '/app' })).toThrow(/Path=\//)
    expect(() => resolveCookie({ name: '__Host-sid', secure: false })).toThrow(/must be Secure/)
    expect(() => resolveCookie({ name: '__Secure-sid', secure: false })).toThrow(SessionConfigError)
  })

  it('refuses bad names, paths, domains and insecure SameSite=None', () => {
    expect(() => resolveCookie({ name: 'a b' })).toThrow(/not a valid cookie name/)
    expect(() => resolveCookie({ name: 'a;b' })).toThrow(SessionConfigError)
    expect(() => resolveCookie({ path: 'x' })).toThrow(/path/)
    expect(() => resolveCookie({ path: '/a;b' })).toThrow(/path/)
    expect(() => resolveCookie({ domain: 'ex ample.com' })).toThrow(/domain/)
    // a label over 63 characters: refused here, not by the serializer at the first cookie
    expect(() => resolveCookie({ domain: `${'a'.repeat(64)}.example.com` })).toThrow(
      SessionConfigError,
    )
    expect(
      resolveCookie({ domain: `${'a'.repeat(63)}.example.com` }).serialize('v', true),
    ).toContain(`Domain=${'a'.repeat(63)}.example.com`)
    expect(() => resolveCookie({ sameSite: 'none', secure: false })).toThrow(/SameSite=None/)
    expect(() => resolveCookie({ partitioned: true, secure: false })).toThrow(/partitioned/)
  })

  it('makes SameSite=None and Partitioned cookies Secure even on a plain-HTTP request', () => {
    // browsers drop either without Secure: with 'auto' on HTTP no session would ever stick
    for (const options of [{ sameSite: 'none' as const }, { partitioned: true }]) {
      const c = resolveCookie(options)
      expect(c.serialize('v', false)).toMatch(/; Secure/)
      expect(c.clear(false)).toMatch(/; Secure/)
    }
    expect(resolveCookie().serialize('v', false)).not.toMatch(/Secure/)
  })

  it('reads its cookie among others and ignores look-alikes', () => {
    const c = resolveCookie()
    expect(c.read('a=1; sid=abc.def; b=2')).toBe('abc.def')
    expect(c.read('xsid=1; sidx=2')).toBeUndefined()
    expect(c.read(undefined)).toBeUndefined()
    expect(c.read('')).toBeUndefined()
  })

  it('reads a header holding only its cookie as parseCookie does', () => {
    const c = resolveCookie()
    for (const header of [
      'sid=abc.def',
      'sid=',
      'sid= abc',
      'sid=abc\t',
      'sid=a b',
      'sid="abc"',
      'sid=a%20b',
      'sid=a=b',
      'sid=\u00e9',
      'sidx=1',
      ' sid=abc',
    ]) {
      expect(c.read(header), header).toBe(parseCookie(header, { decode: (s) => s }).sid)
    }
  })
})

describe('resolveCookie: prefixes, as browsers match them (RFC 6265bis 5.7: case-insensitively)', () => {
  it('applies the __Host- rules to a name that has the prefix in another case', () => {
    for (const name of ['__host-sid', '__HOST-sid']) {
      // 'auto' on a plain-HTTP request would send no Secure, and the browser would drop it
      expect(resolveCookie({ name }).serialize('v', false)).toMatch(/; Secure/)
      expect(() => resolveCookie({ name, domain: 'example.com' })).toThrow(/must not have a Domain/)
      expect(() => resolveCookie({ name, path: '/app' })).toThrow(/Path=\//)
      expect(() => resolveCookie({ name, secure: false })).toThrow(/must be Secure/)
    }
  })

  it('applies the __Secure- rules to a name that has the prefix in another case', () => {
    expect(resolveCookie({ name: '__secure-sid' }).serialize('v', false)).toMatch(/; Secure/)
    expect(() => resolveCookie({ name: '__SECURE-sid', secure: false })).toThrow(/must be Secure/)
    // no prefix: nothing forced
    expect(resolveCookie({ name: '_host-sid' }).serialize('v', false)).not.toMatch(/Secure/)
  })
})
