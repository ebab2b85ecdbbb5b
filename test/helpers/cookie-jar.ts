/**
 * The cookie store seen through the server-store contract, for the conformance suite: each key
 * gets an in-memory "browser" jar, and every operation goes through real sealing and opening.
 * `set` seals the record into Set-Cookie values and applies them to the key's jar; `get` sends
 * the jar as a Cookie header and opens it. Patches are applied here, in-process (the real cookie
 * store cannot merge concurrent writes: two browsers' requests each carry their own cookie).
 */
import { resolveCookie } from '../../src/core/cookies.js'
import { newSessionId } from '../../src/core/ids.js'
import { Keyring } from '../../src/core/keyring.js'
import type { CookiePresence, SessionRecord, SessionStore } from '../../src/core/store.js'
import type { CookieStore } from '../../src/stores/cookie.js'
import { type AppData, appRoutes } from './app.js'
import { type Route, SECRET } from './http.js'

/** Applies `Set-Cookie` values to a jar (name -> value), as a browser would. */
export function applyToJar(jar: Map<string, string>, setCookies: readonly string[]): void {
  for (const line of setCookies) {
    const [pair, ...attributes] = line.split(';')
    const eq = pair!.indexOf('=')
    const name = pair!.slice(0, eq).trim()
    const value = pair!.slice(eq + 1).trim()
    if (value === '' || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) jar.delete(name)
    else jar.set(name, value)
  }
}

/** A jar as a `Cookie` header. */
export const headerOf = (jar: ReadonlyMap<string, string>): string =>
  [...jar].map(([name, value]) => `${name}=${value}`).join('; ')

/** Binds `store` to a keyring of `secrets` and a cookie named `sid`, as a manager would. */
export function bindForTest(store: CookieStore, secrets: readonly string[] = [SECRET]) {
  store.bind({ keyring: new Keyring(secrets), cookie: resolveCookie({ name: 'sid' }) })
  return store
}

/** `store` (bound here) as a `SessionStore` over one jar per key. */
export function cookieJarStore(store: CookieStore): SessionStore & { jars: Map<string, Jar> } {
  bindForTest(store)
  const jars = new Map<string, Jar>()

  const open = (key: string): SessionRecord | undefined => {
    const jar = jars.get(key)
    if (jar === undefined) return undefined
    const opened = store.open(headerOf(jar.cookies), Date.now())
    if (opened === undefined) return undefined
    // the jar only ever holds what the store sealed: a refusal here is a bug
    if ('rejected' in opened)
      throw new Error(`the cookie store refused its own cookie: ${opened.rejected}`)
    return { fields: Object.fromEntries(opened.session.fields), meta: opened.session.meta }
  }
  const write = (key: string, record: SessionRecord) => {
    const jar = jars.get(key) ?? { id: newSessionId(), cookies: new Map(), present: 0 }
    const sealed = store.seal(
      { id: jar.id, fields: new Map(Object.entries(record.fields)), meta: record.meta },
      { secure: false, now: Date.now(), present: jar.present },
    )
    applyToJar(jar.cookies, sealed.cookies)
    jar.present = sealed.present
    jars.set(key, jar)
  }

  return {
    name: store.name,
    jars,
    async get(key) {
      return open(key)
    },
    async set(key, record) {
      write(key, record)
    },
    async patch(key, patch, meta) {
      const record = open(key)
      if (record === undefined) return false
      const fields = patch.clear ? {} : record.fields
      for (const field in patch.set) fields[field] = patch.set[field]!
      for (const field of patch.delete) delete fields[field]
      write(key, { fields, meta })
      return true
    },
    async touch(key, meta) {
      const record = open(key)
      if (record !== undefined) write(key, { fields: record.fields, meta })
    },
    async destroy(key) {
      const jar = jars.get(key)
      if (jar === undefined) return
      applyToJar(jar.cookies, store.clear(false, jar.present))
      if (jar.cookies.size > 0) throw new Error('clear() left cookies behind')
      jars.delete(key)
    },
  }
}

export interface Jar {
  id: string
  cookies: Map<string, string>
  present: CookiePresence
}

/** The shared app routes plus `/blob?n=` (store n bytes) and `/blob-size`, for size tests. */
export const cookieRoutes: Route<AppData> = (session, url, method) => {
  if (url.pathname === '/blob') {
    session.set('blob', 'x'.repeat(Number(url.searchParams.get('n'))))
    return { body: 'ok' }
  }
  if (url.pathname === '/blob-size') {
    const blob = session.get('blob')
    return { body: { size: typeof blob === 'string' ? blob.length : null, isNew: session.isNew } }
  }
  return appRoutes(session, url, method)
}
