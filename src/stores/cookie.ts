/**
 * The cookie store: the whole session, encrypted and authenticated (AES-256-GCM), in the
 * browser's cookies. No server, nothing to run, nothing shared between instances but the
 * secrets. The price: it cannot list or revoke sessions by user, cannot merge two concurrent
 * writes of one session, and the session must fit in a few cookies of 4096 bytes. Where any of
 * that matters, use a server store (redis, postgres).
 *
 * @example
 * ```ts
 * import { createSessions } from 'tessera'
 * import { cookieStore } from 'tessera/stores/cookie'
 * const sessions = createSessions({ secret: process.env.SESSION_SECRET, store: cookieStore() })
 * ```
 * @module
 */
import { parseCookie } from 'cookie'
import type { ResolvedCookie } from '../core/cookies.js'
import { SessionConfigError, SessionCookieTooLargeError } from '../core/errors.js'
import { ID_BYTES, writeIdBytes } from '../core/ids.js'
import { RecentMap } from '../core/recent.js'
import { isSodiumAead, NOT_SODIUM, plaintextBuffer, Sealer, type SodiumAead } from '../core/seal.js'
import type {
  ClientSideBinding,
  ClientSideStore,
  CookiePresence,
  OpenedSession,
  OpenResult,
  SealedSessionInfo,
  SessionMeta,
} from '../core/store.js'
import { metaOf } from '../core/store.js'
import { checkStoreOptions } from './options.js'

export type { SodiumAead } from '../core/seal.js'

/**
 * The most bytes one `Set-Cookie` may take, name, value and attributes together: the least a
 * browser must support (RFC 6265 section 6.1).
 */
export const COOKIE_SIZE_LIMIT = 4096
/** Highest `maxChunks` accepted (browsers keep 150 to 180 cookies per site, servers far fewer bytes). */
const MAX_CHUNKS_CAP = 30
/** The fewest value bytes a chunk must have room for, or the cookie attributes are too long. */
const MIN_ROOM = 512
/**
 * Formats of the sealed payload (see `sealPayload`), its first byte. 3 is written; 1 and 2,
 * JSON text (so their first byte is `[`), are still opened, so no session an earlier build
 * sealed is lost.
 */
const BINARY = 3
/** Format 2: a JSON array, the times less the sealing time. */
const RELATIVE = 2
/** Format 1: as 2, with the times as they are. */
const ABSOLUTE = 1
/** Elements before the fields in formats 1 and 2. */
const TEXT_HEAD = 10
/** Format 3's flags, its second byte: which meta the tail holds, and how the head holds times. */
const HAS_USER = 1
const HAS_IDLE_TIMEOUT = 2
const PERSISTENT = 4
const NOT_PERSISTENT = 8
const TIMES_ABSOLUTE = 16
const ID_IN_TAIL = 32
const ALL_FLAGS = 63
/** Bytes of format 3's head before the id: format, flags, `issuedAt`, four times as int32. */
const HEAD_BYTES = 26
/** The same with the four times as float64. */
const HEAD_BYTES_ABSOLUTE = 42

export interface CookieStoreOptions {
  /**
   * The most cookies one session may be split over (`sid`, or `sid.0`, `sid.1`, ...), each at
   * most 4096 bytes with its attributes. Past it, commit fails with
   * `SessionCookieTooLargeError`. Every chunk comes back on every request in one `Cookie`
   * header, and a request over a server's header limit is refused before the app sees it
   * (nginx: 8 KB per header line by default, 400; Node: 16 KB of headers in all, 431), which
   * locks that browser out of the site until its cookies expire. Two chunks make a `Cookie`
   * line over nginx's default: raise this only with those limits raised along the path.
   * @default 1
   */
  maxChunks?: number
  /**
   * How far in the future (ms) a cookie's sealing time may be and still be accepted, for
   * servers whose clocks differ a little. A cookie sealed further ahead (a server with a wrong
   * clock) is refused, since its expiry cannot be trusted either.
   * @default 60_000
   */
  clockSkew?: number
  /**
   * Refuse an authentic, unexpired cookie: return true for sessions the app has revoked, such
   * as those of a user who chose "log out everywhere" after the cookie was sealed (ASVS 5.0
   * 7.4.1). Runs on every load of a session; keep it fast (a cached per-user time). A throw
   * fails the request like a store error.
   * @default undefined (nothing is revoked)
   * @example
   * ```ts
   * const loggedOutAt = new Map<string, number>() // userId -> ms; a database column in real life
   * cookieStore({
   *   isRevoked: ({ userId, issuedAt }) =>
   *     userId !== undefined && issuedAt < (loggedOutAt.get(userId) ?? 0),
   * })
   * // "log out everywhere else": every cookie sealed before now is refused from now on,
   * // and this device gets a new one at commit
   * loggedOutAt.set(user.id, Date.now())
   * session.regenerate()
   * ```
   */
  isRevoked?: (session: SealedSessionInfo) => boolean | Promise<boolean>
  /**
   * libsodium, as the `sodium-native` module (an optional dependency you install): seal
   * sessions with ChaCha20-Poly1305 through it instead of node:crypto's AES-256-GCM. Each
   * seal or open is then one native call, where node:crypto sets up a cipher per message: a
   * write of a small session costs about a third less (see docs/benchmark.md). Cookies sealed
   * either way open either way, so adding or removing it logs nobody out; without libsodium,
   * its cookies open through node:crypto's ChaCha20-Poly1305.
   * @default undefined (AES-256-GCM through node:crypto)
   * @example
   * ```ts
   * import sodium from 'sodium-native'
   * cookieStore({ sodium })
   * ```
   */
  sodium?: SodiumAead
}

/**
 * The cookie store. It has no `listByUser`, `destroyByUser`, `count`, `scan` or `prune`: the
 * sessions are in the browsers, not here.
 */
export interface CookieStore extends ClientSideStore {
  readonly name: 'cookie'
  /** The most cookies one session may take. */
  readonly maxChunks: number
}

interface Bound {
  sealer: Sealer
  cookie: ResolvedCookie
  /** `name.`, the prefix of chunk names. */
  chunkPrefix: string
  /** Attributes of a browser-session cookie (no Max-Age), by Secure. */
  suffix: [insecure: string, secure: string]
  /** Attributes of a clearing cookie, by Secure. */
  clearSuffix: [insecure: string, secure: string]
}

const identity = (s: string) => s

/**
 * The value of cookie `name` in a `Cookie` header (the first, as `parseCookie` would give),
 * without parsing the rest of the header.
 */
function readCookie(header: string, name: string): string | undefined {
  for (let at = header.indexOf(name); at >= 0; at = header.indexOf(name, at + 1)) {
    let before = at - 1
    while (before >= 0 && (header.charCodeAt(before) === 32 || header.charCodeAt(before) === 9))
      before--
    const end = at + name.length
    if ((before < 0 || header.charCodeAt(before) === 59) && header.charCodeAt(end) === 61) {
      const stop = header.indexOf(';', end + 1)
      return header.slice(end + 1, stop < 0 ? header.length : stop).trim()
    }
  }
  return undefined
}

/** The attributes part (`; Path=/; ...`) of a `Set-Cookie` value of the session cookie. */
function attributesOf(cookie: ResolvedCookie, serialized: string): string {
  if (!serialized.startsWith(`${cookie.name}=`)) {
    throw new SessionConfigError('[store:cookie] unexpected Set-Cookie serialization')
  }
  const at = serialized.indexOf(';')
  return at < 0 ? '' : serialized.slice(at)
}
const COUNT = /^[1-9][0-9]?$/

/**
 * An encrypted cookie store. Keys come from the session manager's secrets by HKDF (purpose
 * `cookie-store`, apart from the cookie signature's), derived once when the manager is made.
 *
 * @example
 * ```ts
 * const sessions = createSessions<{ cart: string[] }>({
 *   secrets: [process.env.SESSION_SECRET, process.env.OLD_SESSION_SECRET], // newest first
 *   store: cookieStore({ maxChunks: 2 }),
 *   cookie: { name: '__Host-session' },
 * })
 * ```
 */
export function cookieStore(options: CookieStoreOptions = {}): CookieStore {
  checkStoreOptions('cookie', options, { isRevoked: 'function' })
  const maxChunks = options.maxChunks ?? 1
  if (!Number.isInteger(maxChunks) || maxChunks < 1 || maxChunks > MAX_CHUNKS_CAP) {
    throw new SessionConfigError(
      `[store:cookie] maxChunks must be a whole number from 1 to ${MAX_CHUNKS_CAP}; got ${maxChunks}. A session that needs more belongs in a server store`,
    )
  }
  const clockSkew = options.clockSkew ?? 60_000
  if (!Number.isFinite(clockSkew) || clockSkew < 0) {
    throw new SessionConfigError('[store:cookie] clockSkew must be a number of ms, 0 or more')
  }
  const isRevoked = options.isRevoked
  if (isRevoked !== undefined && typeof isRevoked !== 'function') {
    throw new SessionConfigError('[store:cookie] isRevoked must be a function')
  }
  if (options.sodium !== undefined && !isSodiumAead(options.sodium)) {
    throw new SessionConfigError(`[store:cookie] ${NOT_SODIUM}`)
  }
  // what an attacker can make us read: checked before any decoding
  const maxTokenLength = maxChunks * COOKIE_SIZE_LIMIT
  const countWidth = String(maxChunks).length + 1
  let bound: Bound | undefined

  const use = (): Bound => {
    if (bound === undefined) {
      throw new SessionConfigError(
        '[store:cookie] the cookie store is used through createSessions({ store: cookieStore() })',
      )
    }
    return bound
  }

  /** Room for value bytes in chunk `i` (or the single cookie when `i` is -1). */
  const roomOf = (b: Bound, i: number, suffix: string) =>
    i < 0
      ? COOKIE_SIZE_LIMIT - b.cookie.name.length - 1 - suffix.length
      : COOKIE_SIZE_LIMIT -
        (b.chunkPrefix.length + String(i).length + 1) -
        suffix.length -
        (i === 0 ? countWidth : 0)

  // Sessions opened lately, in two generations (an approximate LRU, as the keyring's
  // verified-signature cache): a session's later reads skip AES-GCM and JSON. An entry is
  // found by its token's random IV (see ivOf) and used only when the whole token is the same
  // text: text equal to an authenticated token is as authentic. The manager still checks
  // expiry and `isRevoked` on every load. It changes what it is given, so a hit hands out a copy.
  const seen = new RecentMap<Remembered>(OPENED_CACHE_SIZE, 0)
  const remember = (token: string, session: OpenedSession) => {
    // chunked sessions are rare and large
    if (token.length <= COOKIE_SIZE_LIMIT)
      seen.set(ivOf(token), { token, session: copyOf(session) })
  }

  const opening = (b: Bound, token: string, present: number, now: number): OpenResult => {
    const iv = ivOf(token)
    const known = seen.get(iv)
    let session: OpenedSession | undefined
    if (known !== undefined && known.token === token) session = copyOf(known.session)
    else {
      const opened = b.sealer.openWith(token, maxTokenLength, decodePayload)
      if (opened === undefined) return { rejected: 'malformed', present }
      if ('rejected' in opened) return { rejected: opened.rejected, present }
      session = opened
      // from its second request on (a token this store sealed: from its first, see seal)
      if (seen.admits(iv)) remember(token, session)
    }
    // sealed in the future beyond the tolerated skew: a server's clock is wrong
    if (session.issuedAt > now + clockSkew || session.meta.createdAt > now + clockSkew) {
      return { rejected: 'malformed', present }
    }
    return { session, present }
  }

  const clearing = (b: Bound, secure: boolean, present: CookiePresence, out: string[]) => {
    const suffix = b.clearSuffix[secure ? 1 : 0]
    if (present & 1) out.push(`${b.cookie.name}=${suffix}`)
    for (let i = 0; i < MAX_CHUNKS_CAP; i++) {
      if (present & (2 << i)) out.push(`${b.chunkPrefix}${i}=${suffix}`)
    }
    return out
  }

  const store: CookieStore = {
    name: 'cookie',
    clientSide: true,
    maxChunks,
    ...(isRevoked === undefined ? {} : { isRevoked }),

    bind({ keyring, cookie }: ClientSideBinding) {
      if (bound !== undefined) {
        throw new SessionConfigError(
          '[store:cookie] this cookie store already belongs to a session manager; give each createSessions() its own cookieStore()',
        )
      }
      const attributes = (serialized: string) => attributesOf(cookie, serialized)
      const b: Bound = {
        sealer: Sealer.fromKeyring(
          keyring,
          'cookie-store',
          cookie.name,
          options.sodium === undefined ? {} : { sodium: options.sodium },
        ),
        cookie,
        chunkPrefix: `${cookie.name}.`,
        suffix: [attributes(cookie.serialize('', false)), attributes(cookie.serialize('', true))],
        clearSuffix: [attributes(cookie.clear(false)), attributes(cookie.clear(true))],
      }
      // the longest attributes: Secure, and a persistent cookie's Max-Age (400 days at most)
      if (roomOf(b, 0, attributes(cookie.serialize('', true, 400 * 86_400_000))) < MIN_ROOM) {
        throw new SessionConfigError(
          `[store:cookie] the cookie's name and attributes leave under ${MIN_ROOM} of its ${COOKIE_SIZE_LIMIT} bytes for the session; shorten cookie.name, cookie.path or cookie.domain`,
        )
      }
      bound = b
    },

    open(header, now): OpenResult | undefined {
      if (!header) return undefined
      const b = use()
      if (!header.includes(b.chunkPrefix)) {
        // the common case, one cookie or none: no need to parse the whole header
        const single = readCookie(header, b.cookie.name)
        return single === undefined ? undefined : opening(b, single, 1, now)
      }
      const jar = parseCookie(header, { decode: identity })
      let present = 0
      const single = jar[b.cookie.name]
      if (single !== undefined) present = 1
      for (const key in jar) {
        if (!key.startsWith(b.chunkPrefix)) continue
        const index = key.slice(b.chunkPrefix.length)
        if (index === '0' || COUNT.test(index)) {
          const i = Number(index)
          if (i < MAX_CHUNKS_CAP) present |= 2 << i
        }
      }
      if (present === 0) return undefined

      let token: string
      if (single !== undefined) {
        token = single
      } else {
        // chunked: `name.0` is `<count>.<first piece>`, `name.1` ... the rest
        const first = jar[`${b.chunkPrefix}0`]
        if (first === undefined) return { rejected: 'malformed', present }
        const dot = first.indexOf('.')
        const countText = first.slice(0, dot)
        if (dot < 0 || !COUNT.test(countText)) return { rejected: 'malformed', present }
        const count = Number(countText)
        if (count < 2 || count > maxChunks || first.length > COOKIE_SIZE_LIMIT)
          return { rejected: 'malformed', present }
        token = first.slice(dot + 1)
        for (let i = 1; i < count; i++) {
          const piece = jar[`${b.chunkPrefix}${i}`]
          // a missing chunk, or one too long for a cookie: no session
          if (piece === undefined || piece.length > COOKIE_SIZE_LIMIT)
            return { rejected: 'malformed', present }
          token += piece
        }
      }
      return opening(b, token, present, now)
    },

    seal({ id, fields, meta }, { secure, now, present }) {
      const b = use()
      const token = sealPayload(b.sealer, id, fields, meta, now)
      // the browser sends it back on its next request, which opens it once and keeps it for
      // the requests after. Keeping it here, at once, copied every sealed session into the
      // cache, most of them only to be dropped unused by a busy server a generation later, by
      // then in the old space: a major collection's work on every write (see docs/benchmark.md)
      seen.mark(ivOf(token))
      // a persistent cookie lives until the absolute expiry, as with a server store
      const suffix =
        meta.persistent === true
          ? attributesOf(b.cookie, b.cookie.serialize('', secure, meta.absoluteExpiresAt - now))
          : b.suffix[secure ? 1 : 0]
      const cookies: string[] = []
      let wrote: number
      if (token.length <= roomOf(b, -1, suffix)) {
        cookies.push(`${b.cookie.name}=${token}${suffix}`)
        wrote = 1
      } else {
        const pieces: string[] = []
        let capacity = 0
        for (let i = 0; i < maxChunks; i++) capacity += roomOf(b, i, suffix)
        if (token.length > capacity) {
          throw new SessionCookieTooLargeError(
            token.length,
            capacity,
            `the cookie store splits a session over at most ${maxChunks} cookies of ${COOKIE_SIZE_LIMIT} bytes (option maxChunks); keep less in the session (ids rather than whole objects), or use a server store such as tessera/stores/redis or tessera/stores/postgres`,
          )
        }
        for (let offset = 0, i = 0; offset < token.length; i++) {
          const room = roomOf(b, i, suffix)
          pieces.push(token.slice(offset, offset + room))
          offset += room
        }
        wrote = 0
        for (let i = 0; i < pieces.length; i++) {
          const value = i === 0 ? `${pieces.length}.${pieces[0]}` : pieces[i]
          cookies.push(`${b.chunkPrefix}${i}=${value}${suffix}`)
          wrote |= 2 << i
        }
      }
      // cookies of an earlier, differently sized session that this one no longer uses
      // (usually none: the same single cookie again)
      const stale = present & ~wrote
      if (stale !== 0) clearing(b, secure, stale, cookies)
      return { cookies, present: wrote }
    },

    clear(secure, present) {
      return clearing(use(), secure, present === 0 ? 1 : present, [])
    },
  }
  return store
}

/**
 * The session sealed as payload format 3: a binary head, then a JSON tail.
 *
 * - byte 0: the format, 3; byte 1: flags (below);
 * - bytes 2 to 9: `issuedAt`, the sealing time, a float64;
 * - `createdAt`, `lastSeenAt`, `idleExpiresAt`, `absoluteExpiresAt`: each less `issuedAt`, an
 *   int32 (4 bytes), or, when one of them would not come back exactly so (flag
 *   `TIMES_ABSOLUTE`: a fractional clock, or a session older than 24 days), each as it is, a
 *   float64;
 * - the id's 32 bytes (its base64url decoded), unless it is not what `newSessionId` makes
 *   (flag `ID_IN_TAIL`);
 * - the tail, UTF-8 JSON: `[id if ID_IN_TAIL, userId if HAS_USER, idleTimeout if
 *   HAS_IDLE_TIMEOUT, field, text, field, text, ...]`; `persistent` is a flag (`PERSISTENT` or
 *   `NOT_PERSISTENT`).
 *
 * Every byte of a token is sealed, sent, checked by Node as a header, sent back and opened on
 * each write of a session not seen lately: the JSON text of formats 1 and 2 took 41 bytes
 * more for a session of one field (the id 43 digits and quotes, the times 13-digit decimals,
 * three `null`s), and `JSON.parse` read each number digit by digit (see docs/benchmark.md).
 * Field texts stay as the codec made them; they are decoded only when the app reads them. The
 * tail is written piece by piece: `JSON.stringify` of an array takes several times as long.
 */
function sealPayload(
  sealer: Sealer,
  id: string,
  fields: ReadonlyMap<string, string>,
  meta: SessionMeta,
  now: number,
): string {
  const { createdAt, lastSeenAt, idleExpiresAt, absoluteExpiresAt, userId, idleTimeout } = meta
  const relative =
    fitsInt32(createdAt, now) &&
    fitsInt32(lastSeenAt, now) &&
    fitsInt32(idleExpiresAt, now) &&
    fitsInt32(absoluteExpiresAt, now)
  // the tail after the id, each element followed by a comma (the last becomes the `]`)
  let rest = ''
  if (userId !== undefined) rest += `${JSON.stringify(userId)},`
  if (idleTimeout !== undefined) rest += `${num(idleTimeout)},`
  for (const [field, value] of fields) rest += `${JSON.stringify(field)},${JSON.stringify(value)},`
  let at = relative ? HEAD_BYTES : HEAD_BYTES_ABSOLUTE
  // room for the id as bytes or as JSON text (six bytes a unit at most), and the brackets
  const plain = plaintextBuffer(at + ID_BYTES + 6 * id.length + 3 * rest.length + 4)
  const rawId = writeIdBytes(plain, at, id)
  plain[0] = BINARY
  plain[1] =
    (relative ? 0 : TIMES_ABSOLUTE) |
    (rawId ? 0 : ID_IN_TAIL) |
    (userId === undefined ? 0 : HAS_USER) |
    (idleTimeout === undefined ? 0 : HAS_IDLE_TIMEOUT) |
    (meta.persistent === undefined ? 0 : meta.persistent ? PERSISTENT : NOT_PERSISTENT)
  plain.writeDoubleLE(now, 2)
  if (relative) {
    writeInt32(plain, 10, createdAt - now)
    writeInt32(plain, 14, lastSeenAt - now)
    writeInt32(plain, 18, idleExpiresAt - now)
    writeInt32(plain, 22, absoluteExpiresAt - now)
  } else {
    plain.writeDoubleLE(createdAt, 10)
    plain.writeDoubleLE(lastSeenAt, 18)
    plain.writeDoubleLE(idleExpiresAt, 26)
    plain.writeDoubleLE(absoluteExpiresAt, 34)
  }
  if (rawId) at += ID_BYTES
  plain[at++] = 0x5b // [
  if (!rawId) at += plain.write(`${JSON.stringify(id)},`, at, 'utf8')
  if (rest !== '') at += plain.write(rest, at, 'utf8')
  // the last comma, or none after a bare `[`
  if (plain[at - 1] === 0x2c) plain[at - 1] = 0x5d
  else plain[at++] = 0x5d
  return sealer.sealBytes(plain, at)
}

/** Whether `t` less `now` is an int32 from which `now` gives `t` back exactly. */
const fitsInt32 = (t: number, now: number): boolean => {
  const d = t - now
  return (d | 0) === d && now + d === t
}

/** Writes the int32 `n` at `at`, little-endian: `writeInt32LE` checks its arguments first. */
function writeInt32(into: Buffer, at: number, n: number): void {
  into[at] = n
  into[at + 1] = n >> 8
  into[at + 2] = n >> 16
  into[at + 3] = n >> 24
}

/** The little-endian int32 at `at`. */
const readInt32 = (from: Buffer, at: number): number =>
  from[at]! | (from[at + 1]! << 8) | (from[at + 2]! << 16) | (from[at + 3]! << 24)

/** A number as JSON writes it: `null` for NaN and the infinities, which JSON cannot hold. */
const num = (n: number): string => (Number.isFinite(n) ? `${n}` : 'null')

/** Opened sessions a cookie store remembers, per generation (see `remember`). */
const OPENED_CACHE_SIZE = 1024

/** A session the cookie store opened lately, and the token that holds it. */
interface Remembered {
  token: string
  session: OpenedSession
}

/**
 * The key of a token in the cache of sessions seen lately: its characters 7 to 22, which
 * encode the random IV (a sealed value starts with 5 header bytes, then 12 of IV). Hashing
 * these 16 characters instead of the whole token (200 and more) saves V8 about 0.2 µs a
 * lookup; the entry's whole token is compared before it is used.
 */
const ivOf = (token: string): string => token.slice(7, 23)

const copyOf = (o: OpenedSession): OpenedSession => ({
  id: o.id,
  fields: new Map(o.fields),
  meta: metaOf(o.meta),
  issuedAt: o.issuedAt,
})

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** A session from the plaintext of a token (see `sealPayload`), or `undefined`. */
function decodePayload(plain: Buffer, n: number): OpenedSession | undefined {
  // authenticated, so made by us; checked all the same, so a bug cannot become a session
  if (n < 1) return undefined
  if (plain[0] !== BINARY) return plain[0] === 0x5b ? decodeText(plain, n) : undefined
  const flags = plain[1]!
  const relative = (flags & TIMES_ABSOLUTE) === 0
  const rawId = (flags & ID_IN_TAIL) === 0
  let at = relative ? HEAD_BYTES : HEAD_BYTES_ABSOLUTE
  if (
    n < at + (rawId ? ID_BYTES : 0) + 2 ||
    (flags & ALL_FLAGS) !== flags ||
    (flags & (PERSISTENT | NOT_PERSISTENT)) === (PERSISTENT | NOT_PERSISTENT)
  ) {
    return undefined
  }
  const issuedAt = plain.readDoubleLE(2)
  let createdAt: number
  let lastSeenAt: number
  let idleExpiresAt: number
  let absoluteExpiresAt: number
  if (relative) {
    createdAt = issuedAt + readInt32(plain, 10)
    lastSeenAt = issuedAt + readInt32(plain, 14)
    idleExpiresAt = issuedAt + readInt32(plain, 18)
    absoluteExpiresAt = issuedAt + readInt32(plain, 22)
  } else {
    createdAt = plain.readDoubleLE(10)
    lastSeenAt = plain.readDoubleLE(18)
    idleExpiresAt = plain.readDoubleLE(26)
    absoluteExpiresAt = plain.readDoubleLE(34)
  }
  let id: unknown
  if (rawId) {
    id = plain.toString('base64url', at, at + ID_BYTES)
    at += ID_BYTES
  }
  let p: unknown
  try {
    p = JSON.parse(plain.toString('utf8', at, n))
  } catch {
    return undefined
  }
  if (!Array.isArray(p)) return undefined
  let i = 0
  if (!rawId) id = p[i++]
  const userId = flags & HAS_USER ? p[i++] : undefined
  const idleTimeout = flags & HAS_IDLE_TIMEOUT ? p[i++] : undefined
  if (
    typeof id !== 'string' ||
    (flags & HAS_USER && typeof userId !== 'string') ||
    (flags & HAS_IDLE_TIMEOUT && !isTime(idleTimeout))
  ) {
    return undefined
  }
  const persistent = flags & PERSISTENT ? true : flags & NOT_PERSISTENT ? false : undefined
  return sessionOf(
    id,
    issuedAt,
    createdAt,
    lastSeenAt,
    idleExpiresAt,
    absoluteExpiresAt,
    userId as string | undefined,
    idleTimeout as number | undefined,
    persistent,
    p,
    i,
  )
}

/** A session from a payload of format 1 or 2, an earlier build's: one JSON array. */
function decodeText(plain: Buffer, n: number): OpenedSession | undefined {
  let p: unknown
  try {
    p = JSON.parse(plain.toString('utf8', 0, n))
  } catch {
    return undefined
  }
  if (!Array.isArray(p) || p.length < TEXT_HEAD) return undefined
  const format = p[0]
  if (format !== RELATIVE && format !== ABSOLUTE) return undefined
  const [, id, issuedAt, createdAt, lastSeenAt, idleExpiresAt, absoluteExpiresAt, userId] = p
  const [idleTimeout, persistent] = [p[8], p[9]]
  if (
    typeof id !== 'string' ||
    (userId !== null && typeof userId !== 'string') ||
    (idleTimeout !== null && !isTime(idleTimeout)) ||
    (persistent !== null && persistent !== 0 && persistent !== 1)
  ) {
    return undefined
  }
  const base = format === RELATIVE && isTime(issuedAt) ? issuedAt : 0
  // NaN, which sessionOf refuses, for what is not a time (`null + 0` would be one)
  const time = (t: unknown) => (isTime(t) ? t + base : Number.NaN)
  return sessionOf(
    id,
    issuedAt,
    time(createdAt),
    time(lastSeenAt),
    time(idleExpiresAt),
    time(absoluteExpiresAt),
    userId ?? undefined,
    idleTimeout ?? undefined,
    persistent === null ? undefined : persistent === 1,
    p,
    TEXT_HEAD,
  )
}

/**
 * The session a payload holds, its times checked, its meta built in the order of `metaOf` (so
 * of the hidden class of every other meta), and its fields the pairs of `p` from `from` on.
 */
function sessionOf(
  id: string,
  issuedAt: unknown,
  createdAt: unknown,
  lastSeenAt: unknown,
  idleExpiresAt: unknown,
  absoluteExpiresAt: unknown,
  userId: string | undefined,
  idleTimeout: number | undefined,
  persistent: boolean | undefined,
  p: unknown[],
  from: number,
): OpenedSession | undefined {
  if (
    !isTime(issuedAt) ||
    !isTime(createdAt) ||
    !isTime(lastSeenAt) ||
    !isTime(idleExpiresAt) ||
    !isTime(absoluteExpiresAt) ||
    (p.length - from) % 2 !== 0
  ) {
    return undefined
  }
  const meta: SessionMeta = { createdAt, lastSeenAt, idleExpiresAt, absoluteExpiresAt }
  if (userId !== undefined) meta.userId = userId
  if (idleTimeout !== undefined) meta.idleTimeout = idleTimeout
  if (persistent !== undefined) meta.persistent = persistent
  const fields = new Map<string, string>()
  for (let i = from; i < p.length; i += 2) {
    const field = p[i]
    const text = p[i + 1]
    if (typeof field !== 'string' || typeof text !== 'string') return undefined
    fields.set(field, text)
  }
  return { id, fields, meta, issuedAt }
}
