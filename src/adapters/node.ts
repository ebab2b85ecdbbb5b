/**
 * Node `http` adapter: wraps a `(req, res, session)` handler into an `http` listener. The
 * commit happens before the headers go out, even when the handler calls `res.writeHead()` or
 * `res.end()` itself: those calls are held until the store has the session.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { withSession } from 'tessera/node'
 * createServer(withSession(sessions, (req, res, session) => {
 *   session.set('count', (session.get('count') ?? 0) + 1)
 *   res.end(`visit ${session.get('count')}`)
 * })).listen(3000)
 * ```
 * @module
 */
import { type IncomingMessage, type OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { SessionStateError } from '../core/errors.js'
import { applySetCookies, isSecureRequest } from '../core/http.js'
import type { SessionManager } from '../core/manager.js'
import { type Saver, type Session, type SessionData, STATE } from '../core/session.js'
import { checkAdapter } from './options.js'

export type NodeSessionHandler<Data extends SessionData> = (
  req: IncomingMessage,
  res: ServerResponse,
  session: Session<Data>,
) => unknown

export interface NodeAdapterOptions {
  /**
   * Called when loading or committing the session, or the handler, fails. The default answers
   * 500 with a plain body (never a stack) and logs errors that are not the store's. Not called
   * when the handler fails after it ended its response (the answer stands, sent or waiting for
   * the commit, and the error is logged with `console.error`); when it fails midway through a response it began, the connection is cut
   * (`res.destroyed`, or `res.headersSent` once the headers are out) before this is called.
   */
  onError?: (error: unknown, req: IncomingMessage, res: ServerResponse) => void
}

/** Whether the request came over HTTPS (or a trusted proxy says so). */
export function isSecure(req: IncomingMessage, trustProxy: boolean): boolean {
  return isSecureRequest(
    (req.socket as { encrypted?: boolean }).encrypted === true,
    req.headers['x-forwarded-proto'],
    trustProxy,
  )
}

/**
 * `res`'s headers as the core's `HeaderTarget`, for `applySetCookies`.
 * @example
 * ```ts
 * applySetCookies(nodeHeaders(res), await sessions.commit(session))
 * ```
 */
export const nodeHeaders = (res: ServerResponse) => ({
  set: (n: string, v: string) => res.setHeader(n, v),
  // not appendHeader: of a header not yet set, it hands it to setHeader, which checks the name
  // and value a second time (3,000 instructions for a cookie-store session's Set-Cookie); of
  // one set, it pushes onto the very array the handler gave setHeader, which may be one it
  // keeps (a constant list of cookies), to grow by a session cookie every request
  append: (n: string, v: string) => {
    const set = res.getHeader(n)
    if (set === undefined) res.setHeader(n, v)
    else res.setHeader(n, Array.isArray(set) ? [...set, v] : [String(set), v])
  },
})

/**
 * The default error answer of the Node-based adapters: `500` with a plain body (never a
 * stack), or a destroyed socket when the headers are already out (or the response was cut
 * already: a handler that failed midway through a held response). Errors that are not the
 * store's are logged (store errors go to the `storeError` event).
 * @example
 * ```ts
 * withSession(sessions, handler, { onError: (e, req, res) => respondWithError(e, req, res) })
 * ```
 */
export function respondWithError(error: unknown, _req: IncomingMessage, res: ServerResponse): void {
  if ((error as { code?: string })?.code !== 'ERR_SESSION_STORE') console.error(error)
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  // the handler's headers (Content-Length, ETag, other cookies) do not describe this answer
  for (const name of res.getHeaderNames()) res.removeHeader(name)
  res.statusCode = 500
  res.setHeader('content-type', 'text/plain; charset=utf-8')
  res.end('Internal Server Error')
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function'

type Held = 'writeHead' | 'write' | 'end' | 'flushHeaders'

/** Indexes in {@link HELD} of the calls a hold treats apart. */
const WRITE = 1
const END = 2

/**
 * How far the calls a hold keeps for its commit go: none, a response begun (`writeHead`,
 * `write`, `flushHeaders`), or one ended.
 */
const NOTHING = 0
const STARTED = 1
const ENDED = 2
type Given = typeof NOTHING | typeof STARTED | typeof ENDED

/** Options of {@link commitBeforeHeaders}. */
export interface HoldOptions {
  /**
   * Once the hold lets go, put back the methods it replaced (`true`), or leave it in place,
   * passing every later call straight through (`false`). Either way the response's calls do
   * the same. Which is cheaper depends on the response object: on a plain `ServerResponse`,
   * leaving it (a response is dropped after its request, and removing four own properties
   * costs more than the few calls that pass through); on a response whose prototype was
   * changed (Express's, when the hold cannot go through the prototype: see `prototype`),
   * putting back. A failed commit always takes the hold off, so that
   * `onFailure`'s answer goes out; so does a hold over another one (two sessions in one
   * request), so that the one below can.
   * @default true
   */
  restore?: boolean
  /**
   * Hold through the response's prototype instead of with four own properties on each
   * response: the prototype's methods are replaced once by ones that pass each call to the
   * response's hold, when it has one, and the holds are kept by response in a `WeakMap`.
   * Taken only where the prototype is not Node's own (Express gives every response its own
   * chain, ending in its `response` object, which is where the methods go, so that sub-apps
   * share them) and nothing has wrapped the response's methods yet (a wrapper installed
   * before the hold could bypass one installed below it); otherwise the own properties, as
   * without it. Otherwise V8 adds four properties to each response and deletes them again,
   * which leaves the response in its slow dictionary mode: on Express with the Redis store,
   * holding through the prototype took 15 to 17 µs of server CPU off every request (of about
   * 125). With the memory store the two cost the same, unless a node-redis client was
   * connected in the same process: then the own properties cost 19 µs more. `restore` then
   * does not apply.
   * @default false
   */
  prototype?: boolean
}

const HELD: readonly Held[] = ['writeHead', 'write', 'end', 'flushHeaders']

type Method = (...args: unknown[]) => unknown

/** On the prototype whose methods dispatch to a response's hold: what each calls when none holds. */
const NEXT = Symbol('tessera.next')

type Carrier = ServerResponse & Record<Held, Method> & { [NEXT]?: Method[] }

/**
 * The hold on each response held through its prototype (see {@link HoldOptions.prototype}): a
 * `WeakMap` rather than a property, as adding a property to an Express response costs more
 * (one to two microseconds; 2 to 3 µs a request measured against a symbol property).
 */
const holds = new WeakMap<object, SharedHold>()

/**
 * The holds with own methods on responses whose prototype dispatches (Express's, with a
 * wrapper installed before the session middleware): the last one made, which is over the
 * others. Only its `headersSent` reads them (see {@link heldHeadersSent}).
 */
const ownHolds = new WeakMap<object, OwnHold>()

/**
 * `res.headersSent` as the holds on `res` have it while one keeps the handler's calls for its
 * commit (see {@link Hold.headersSent}), or undefined when none does. Own holds are over the
 * prototype's: a response with own methods gets no prototype hold after them.
 */
function heldHeadersSent(res: object): boolean | undefined {
  for (let hold = ownHolds.get(res); hold !== undefined; hold = hold.below) {
    const sent = hold.headersSent()
    if (sent !== undefined) return sent
  }
  for (let hold = holds.get(res); hold !== undefined; hold = hold.below) {
    const sent = hold.headersSent()
    if (sent !== undefined) return sent
  }
  return undefined
}

/** On the `end` an own hold puts on a response: the hold (see {@link holdOf}). */
const HOLD = Symbol('tessera.hold')

/**
 * The hold that now gets `res`'s calls first: the own hold whose `end` is `res.end`, else the
 * first prototype hold that still holds; undefined when the calls go straight to Node (or to
 * a wrapper that is not a hold).
 */
function holdOf(res: ServerResponse): Hold | undefined {
  return (res.end as { [HOLD]?: Hold })[HOLD] ?? holding(res)
}

/** The first hold on `res`'s prototype that still holds (see {@link dispatch}), if any. */
function holding(res: object): SharedHold | undefined {
  let hold = holds.get(res)
  while (hold?.passes) hold = hold.below
  return hold
}

/**
 * Passes a call of `res`'s method `HELD[i]` to the first hold on it that still holds, or on to
 * the method the prototype's dispatcher replaced. Two sessions in one request: the second
 * hold is over the first (`below`), and each is skipped once it lets go.
 */
function dispatch(res: Carrier, i: number, args: unknown[]): unknown {
  const hold = holding(res)
  return hold === undefined ? res[NEXT]![i]!.apply(res, args) : hold.call(i, args)
}

/**
 * Whether `res`'s methods dispatch to its hold, making them do so on the first call for a kind
 * of response: the dispatchers go on the last prototype in its chain before
 * `ServerResponse.prototype` (Express's `response`, which every app's and sub-app's response
 * inherits from). False for a response whose prototype is Node's own, which is never changed.
 */
function dispatches(res: ServerResponse): boolean {
  if ((res as unknown as Carrier)[NEXT] !== undefined) return true
  let top = Object.getPrototypeOf(res) as Carrier | null
  if (top === null || top === ServerResponse.prototype) return false
  for (;;) {
    const up = Object.getPrototypeOf(top) as Carrier | null
    if (up === ServerResponse.prototype) break
    // not a ServerResponse: left alone
    if (up === null) return false
    top = up
  }
  const above = Object.getPrototypeOf(top) as Carrier
  const next = HELD.map(
    (name) =>
      // the top's own method if it has one, else Node's, looked up at each call: an agent that
      // wraps ServerResponse.prototype later still gets the calls
      (Object.getOwnPropertyDescriptor(top, name)?.value as Method | undefined) ??
      function (this: ServerResponse, ...args: unknown[]) {
        return above[name].apply(this, args)
      },
  )
  HELD.forEach((name, i) => {
    Object.defineProperty(top, name, {
      configurable: true,
      writable: true,
      value: function (this: Carrier, ...args: unknown[]) {
        return dispatch(this, i, args)
      },
    })
  })
  Object.defineProperty(top, NEXT, { value: next })
  // and `headersSent`, which error handlers read to choose between an answer and a cut
  // connection (Express's finalhandler): what a hold says while it keeps the handler's calls,
  // else what was there (Node's getter, looked up at each read as the methods are)
  const own = Object.getOwnPropertyDescriptor(top, 'headersSent')
  Object.defineProperty(top, 'headersSent', {
    configurable: true,
    enumerable: own?.enumerable ?? true,
    get(this: Carrier) {
      const held = heldHeadersSent(this)
      if (held !== undefined) return held
      return own === undefined
        ? (Reflect.get(above, 'headersSent', this) as boolean)
        : own.get !== undefined
          ? (own.get.call(this) as boolean)
          : (own.value as boolean)
    },
  })
  return true
}

/** A response's status and headers, as {@link Hold.headersSent} keeps them. */
interface Kept {
  status: number
  message: string
  headers: OutgoingHttpHeaders
}

const keep = (res: ServerResponse): Kept => ({
  status: res.statusCode,
  message: res.statusMessage,
  headers: res.getHeaders(),
})

/**
 * Calls `then` once `req` is read to its end (or closed), reading the rest of it: an error
 * handler that found the answer held waits for that before its own answer (Express's
 * finalhandler, which then sets its headers, and throws `ERR_HTTP_HEADERS_SENT` in an event
 * listener, ending the process, if the held answer went out first). Node reads what is left
 * of a request once its response is sent anyway.
 */
function afterRequest(req: IncomingMessage, then: () => void): void {
  if (req.readableEnded || req.destroyed) {
    then()
    return
  }
  const once = () => {
    req.off('end', once)
    req.off('close', once)
    then()
  }
  req.on('end', once)
  req.on('close', once)
  req.resume()
}

/**
 * Puts back the status and headers {@link keep} took from `res`, undoing any change since. A
 * header set again goes out in lower case (`getHeaders()` keeps no other), as HTTP/2 sends
 * every name; the others keep theirs.
 */
function restore(res: ServerResponse, kept: Kept): void {
  res.statusCode = kept.status
  res.statusMessage = kept.message
  for (const name of res.getHeaderNames()) {
    if (!Object.hasOwn(kept.headers, name)) res.removeHeader(name)
  }
  for (const name in kept.headers) {
    const value = kept.headers[name]
    if (value !== undefined && res.getHeader(name) !== value) res.setHeader(name, value)
  }
}

/**
 * What every hold of {@link commitBeforeHeaders} does with the calls it gets, whichever way
 * they reach it: the first decides (nothing due: let go; a commit: hold until it is done),
 * the held ones are replayed in order once the cookies are on, and dropped if it fails.
 * {@link OwnHold} and {@link SharedHold} say how calls are passed on and how the hold lets go.
 *
 * While the commit runs, the handler's `end` is its answer: a write or end after it (an error
 * page, once the handler failed after answering) is refused, as Node refuses one after `end`,
 * but silently (Node's 'error' event would have no listener, and end the process). Node would
 * also refuse the status and headers such an error page sets (`ERR_HTTP_HEADERS_SENT`): on
 * the responses whose `headersSent` the holds answer (Express's), those are undone before
 * the answer goes out (see {@link Hold.headersSent}).
 */
abstract class Hold {
  #state: 'waiting' | 'committing' | 'done' | 'failed' = 'waiting'
  #queue: [number, unknown[]][] | undefined
  /** How far the held calls go: one field set as each is queued, not a scan of the queue. */
  #given: Given = NOTHING
  /** The ended answer's status and headers, kept once something may answer over it. */
  #kept: Kept | undefined

  constructor(
    readonly res: ServerResponse,
    readonly target: HoldTarget,
  ) {}

  /** Passes a call of `HELD[i]` on to what is below the hold. */
  protected abstract forward(i: number, args: unknown[]): unknown

  /** The hold is done with; `failed`: its commit failed, so it must come off whatever else. */
  protected abstract letGo(failed: boolean): void

  call(i: number, args: unknown[]): unknown {
    const res = this.res
    // a reference taken before the commit finished (`res.end(await render())`) still works
    if (this.#state === 'done') return this.forward(i, args)
    if (this.#state === 'failed') return i === WRITE ? false : res
    if (this.#state === 'waiting') {
      if (!this.target.due()) {
        this.#done()
        return this.forward(i, args)
      }
      const committed = this.target.commit()
      if (!(committed instanceof Promise)) {
        this.#done()
        // most writes of a stored session send no cookie: no header helper for them
        if (committed.length > 0 && !res.headersSent) {
          applySetCookies(nodeHeaders(res), committed)
          if (i === 0) return this.forward(i, withCookies(args, committed))
        }
        return this.forward(i, args)
      }
      this.#state = 'committing'
      this.#queue = []
      committed.then(
        (cookies) => {
          if (this.#kept === undefined) this.#send(cookies)
          else afterRequest(res.req, () => this.#send(cookies))
        },
        (error: unknown) => {
          if (this.#state !== 'committing') return
          this.#state = 'failed'
          // always off: onFailure's answer (which may come later) must go out, while calls
          // through references the handler took before stay dropped
          this.letGo(true)
          this.#queue = undefined
          this.target.fail(error)
        },
      )
    }
    // after the handler's answer: refused (see the class's comment)
    if (this.#given === ENDED) return i === WRITE ? false : res
    this.#given = i === END ? ENDED : STARTED
    this.#queue!.push([i, args])
    return i === WRITE ? true : res
  }

  /**
   * Whether the handler's answer stands, asked when the handler failed after its first write:
   * an `end` held for the commit goes out once the commit is done (true), as one already sent
   * has. A response it began through the hold (a held `writeHead`, `write` or `flushHeaders`)
   * and will not end is cut instead: the held calls are dropped and the connection destroyed,
   * so that no error page follows a 200's head (false, as for a response sent but not ended).
   * A hold that passed the calls on asks the one they went to, if they went to one.
   */
  answered(): boolean {
    if (this.#state !== 'committing') {
      // passed on: to Node, or to the hold of another session (two in one request), which
      // may hold them for its own commit
      const next = holdOf(this.res)
      return next !== undefined && next !== this ? next.answered() : this.res.writableEnded
    }
    if (this.#given === ENDED) return true
    this.#state = 'failed'
    this.#queue = undefined
    this.letGo(true)
    this.res.destroy()
    return false
  }

  /**
   * `res.headersSent` while the hold keeps the handler's calls for its commit, or undefined
   * when it keeps none (Node's answer then holds); read on the responses whose prototype
   * dispatches (Express's). True once the handler began a response, as Node says after a
   * `writeHead` or `write`: an error handler then cuts the connection rather than answer
   * after it (Express's finalhandler destroys the socket). False once the handler ended it:
   * true would make finalhandler destroy the socket with the answer still held. An error
   * handler that answers then has its `end` refused, and the status and headers it set
   * undone before the answer goes out: they are kept here, the first time one asks.
   */
  headersSent(): boolean | undefined {
    if (this.#state !== 'committing') return undefined
    if (this.#given === STARTED) return true
    this.#kept ??= keep(this.res)
    return false
  }

  /** Sends the held calls once the commit gave `cookies`. */
  #send(cookies: readonly string[]): void {
    // cut meanwhile (see answered): nothing to send
    if (this.#state !== 'committing') return
    const res = this.res
    this.#done()
    if (this.#kept !== undefined) restore(res, this.#kept)
    const sending = !res.headersSent && cookies.length > 0
    if (sending) applySetCookies(nodeHeaders(res), cookies)
    // the calls came through the hold, past any wrapper above it: on to what is below
    for (const [at, params] of this.#queue!)
      this.forward(at, sending && at === 0 ? withCookies(params, cookies) : params)
    this.#queue = undefined
  }

  /** Lets the response go out uncommitted; false when the commit had already started. */
  abandon(): boolean {
    if (this.#state !== 'waiting') return false
    this.#done()
    return true
  }

  #done(): void {
    this.#state = 'done'
    this.letGo(false)
  }
}

/**
 * `writeHead`'s arguments with `cookies` added to the `Set-Cookie` its headers carry, when they
 * carry one: headers given to `writeHead` replace those of the same name set before (the
 * session's cookies, by then), so an app's `writeHead(200, { 'set-cookie': [...] })` would
 * otherwise drop them. Its own headers object or array is copied, never changed.
 */
function withCookies(args: unknown[], cookies: readonly string[]): unknown[] {
  // writeHead(statusCode, [statusMessage], [headers])
  const at = typeof args[1] === 'string' ? 2 : 1
  const headers = args[at]
  if (typeof headers !== 'object' || headers === null) return args
  let merged: unknown
  if (Array.isArray(headers)) {
    // [name, value, name, value, ...]. With headers already set (the session's), Node applies
    // each pair with setHeader, so of two pairs with one name only the last is kept: each name
    // goes once, with all its values as an array, and Set-Cookie with the session's too
    const byName = new Map<string, [name: unknown, values: unknown[]]>()
    const pairs = headers as unknown[]
    for (let k = 0; k + 1 < pairs.length; k += 2) {
      const lower = String(pairs[k]).toLowerCase()
      const entry = byName.get(lower) ?? [pairs[k], []]
      const value = pairs[k + 1]
      if (Array.isArray(value)) entry[1].push(...(value as unknown[]))
      else entry[1].push(value)
      byName.set(lower, entry)
    }
    const own = byName.get('set-cookie')
    if (own === undefined) return args
    own[1].push(...cookies)
    merged = [...byName.values()].flatMap(([name, values]) => [
      name,
      values.length === 1 ? values[0] : values,
    ])
  } else {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === 'set-cookie')
    if (key === undefined) return args
    const own = (headers as Record<string, unknown>)[key]
    const values = own === undefined ? [] : Array.isArray(own) ? own : [own]
    merged = { ...headers, [key]: [...values, ...cookies] }
  }
  const out = args.slice()
  out[at] = merged
  return out
}

/**
 * The hold as four own methods on the response, each passing its calls to the hold: over
 * whatever was there before (the prototype's, a wrapper's, another session's hold).
 */
class OwnHold extends Hold {
  /** The own hold under this one, on a response whose prototype dispatches (see {@link ownHolds}). */
  below: OwnHold | undefined
  readonly #original: Method[]
  readonly #held: Method[]
  /** Own properties to put back when the hold comes off. */
  readonly #own: (PropertyDescriptor | undefined)[] | undefined
  readonly #restores: boolean

  constructor(
    res: ServerResponse,
    target: HoldTarget,
    own: (PropertyDescriptor | undefined)[] | undefined,
    restore: boolean,
  ) {
    super(res, target)
    const methods = res as unknown as Record<Held, Method>
    this.#own = own
    // a hold over another (two sessions in one request) always comes off: the one below must
    // be able to take itself off if its commit fails, so that onFailure's answer gets through
    this.#restores = restore || own !== undefined
    // each method by name, in HELD's order: a load or store keyed by a name that varies is
    // megamorphic, and this runs on every request (with the Object.hasOwn calls it replaces,
    // a third of the instructions Tessera added to a bare node:http request)
    this.#original = [methods.writeHead, methods.write, methods.end, methods.flushHeaders]
    const end: Method & { [HOLD]?: Hold } = (...args) => this.call(2, args)
    // for a hold made over this one to find it (see holdOf): a property on a closure made
    // anyway, where a WeakMap entry would cost every request more
    end[HOLD] = this
    const held: Method[] = [
      (...args) => this.call(0, args),
      (...args) => this.call(1, args),
      end,
      (...args) => this.call(3, args),
    ]
    this.#held = held
    methods.writeHead = held[0]!
    methods.write = held[1]!
    methods.end = held[2]!
    methods.flushHeaders = held[3]!
  }

  protected forward(i: number, args: unknown[]): unknown {
    return this.#original[i]!.apply(this.res, args)
  }

  protected letGo(failed: boolean): void {
    if (!failed && !this.#restores) return
    const target = this.res as unknown as Record<Held, Method>
    // in reverse order of addition: V8 then undoes each property's map transition, where any
    // other order drops the response object into slow dictionary mode. On a response whose
    // prototype was changed (Express's), even this order does: there the hold goes through the
    // prototype instead (HoldOptions.prototype). On a plain ServerResponse, leaving the hold
    // in place is the cheaper way (HoldOptions.restore)
    for (let i = HELD.length - 1; i >= 0; i--) {
      // a wrapper installed over the hold (compression, say) stays: it calls the hold, which
      // now passes straight through to what was below it
      if (target[HELD[i]!] !== this.#held[i]) continue
      const descriptor = this.#own?.[i]
      if (descriptor) Object.defineProperty(this.res, HELD[i]!, descriptor)
      else delete target[HELD[i]!]
    }
  }
}

/**
 * The hold through the prototype: one object per response and no closures. (A first version
 * kept the own-property hold's closures, one per method, and saved nothing on Express: it is
 * the allocation that costs there.) Its calls arrive through {@link dispatch}; once it lets go
 * (`passes`), dispatch skips it, so passing a call on is a dispatch.
 */
class SharedHold extends Hold {
  passes = false

  constructor(
    res: Carrier,
    readonly below: SharedHold | undefined,
    target: HoldTarget,
  ) {
    super(res, target)
  }

  protected forward(i: number, args: unknown[]): unknown {
    return dispatch(this.res as Carrier, i, args)
  }

  protected letGo(): void {
    this.passes = true
    if (holds.get(this.res) !== this) return
    if (this.below === undefined) holds.delete(this.res)
    else holds.set(this.res, this.below)
  }
}

/**
 * Holds the response's first write until `commit` resolves, then puts its cookies on the
 * headers and replays the writes in order. On failure the writes are dropped and `onFailure`
 * answers instead. When `due()` says at the first write that there is nothing to commit (most
 * reads), the write goes straight through and nothing is committed; so does it, after the
 * cookies, when `commit` answers at once (`SessionManager.commitNow`). `abandon()` lets the
 * response go out uncommitted (the handler failed before writing anything); it returns false
 * when the commit had already started. Then `answered()` says whether the handler's answer
 * stands (its `end` went out or is held), cutting a response begun and held but not ended.
 * While a commit runs, a write or end after the held `end` is refused.
 *
 * The hold is in place from the start, not from the session's first change: a handler may
 * take `res.end` before the change that makes a commit due (`res.end(render(session))`).
 */
export function commitBeforeHeaders(
  res: ServerResponse,
  commit: () => readonly string[] | Promise<readonly string[]>,
  onFailure: (error: unknown) => void,
  due: () => boolean = () => true,
  options: HoldOptions = {},
): ResponseHold {
  return holdFor(res, { commit, due, fail: onFailure }, options)
}

/**
 * What {@link commitBeforeHeaders} returns, for the code that runs the handler and answers
 * its failure.
 * @example
 * ```ts
 * const hold = commitBeforeHeaders(res, commit, onFailure)
 * try { await handler(req, res) } catch (error) {
 *   if (hold.abandon() || !hold.answered()) onFailure(error)
 * }
 * ```
 */
export interface ResponseHold {
  /** Lets the response go out uncommitted (nothing was written); false when the commit had already started. */
  abandon(): boolean
  /**
   * Whether the handler's answer stands though it failed: its `end` went out, or waits for
   * the commit. A response begun and held but not ended is cut (`res.destroy()`) and gives
   * false, as one sent and not ended does: an error answer must not follow either.
   */
  answered(): boolean
}

/**
 * @internal What a hold asks of the session it commits: whether a commit is due at the first
 * write, the commit, and the answer when it fails. {@link commitBeforeHeaders} makes one of
 * its three functions; the node and Express adapters' {@link ResponseSession} is one, with no
 * closures.
 */
export interface HoldTarget {
  due(): boolean
  commit(): readonly string[] | Promise<readonly string[]>
  fail(error: unknown): void
}

/**
 * Whether `res`'s four held methods are its prototype's: four loads by name, a fraction of the
 * cost of four `Object.hasOwn` calls. An own property holding the prototype's very method
 * passes too, which changes nothing for a hold: its calls go where the prototype's would.
 */
function inheritsHeld(res: ServerResponse): boolean {
  const proto = Object.getPrototypeOf(res) as Record<Held, Method> | null
  const methods = res as unknown as Record<Held, Method>
  return (
    proto !== null &&
    methods.writeHead === proto.writeHead &&
    methods.write === proto.write &&
    methods.end === proto.end &&
    methods.flushHeaders === proto.flushHeaders
  )
}

/**
 * The descriptors of the held methods `res` has as own properties (a wrapper's, another
 * session's hold), or `undefined` when it has none that differ from its prototype's (see
 * {@link inheritsHeld}; taking such a one off leaves the same method in place).
 */
function ownMethods(res: ServerResponse): (PropertyDescriptor | undefined)[] | undefined {
  if (inheritsHeld(res)) return undefined
  for (const name of HELD) {
    if (Object.hasOwn(res, name)) return HELD.map((n) => Object.getOwnPropertyDescriptor(res, n))
  }
  return undefined
}

/** @internal {@link commitBeforeHeaders} with its three functions as one object. */
export function holdFor(
  res: ServerResponse,
  target: HoldTarget,
  options: HoldOptions = {},
): ResponseHold {
  if (options.prototype === true && dispatches(res)) {
    // through the prototype only once its dispatchers are in place: then a method equal to
    // the prototype's is the dispatcher, own property or not, and reaches the hold
    if (inheritsHeld(res)) {
      const hold = new SharedHold(res as Carrier, holds.get(res), target)
      holds.set(res, hold)
      return hold
    }
    // own methods, and known to the prototype's headersSent
    const hold = new OwnHold(res, target, ownMethods(res), options.restore ?? true)
    hold.below = ownHolds.get(res)
    ownHolds.set(res, hold)
    return hold
  }
  return new OwnHold(res, target, ownMethods(res), options.restore ?? true)
}

/**
 * The `session.save()` of the Node-based adapters: commit now and put the cookies on `res`'s
 * headers; a save that has cookies to send after the headers went out is an error.
 * @example
 * ```ts
 * session[STATE].saver = saveInto(res, () => sessions.commit(session))
 * ```
 */
export function saveInto(res: ServerResponse, commit: () => Promise<readonly string[]>): Saver {
  return { save: async () => applySaved(res, await commit()) }
}

function applySaved(res: ServerResponse, cookies: readonly string[]): void {
  if (cookies.length > 0 && res.headersSent) {
    throw new SessionStateError('session.save() was called after the response headers were sent')
  }
  applySetCookies(nodeHeaders(res), cookies)
}

/**
 * @internal One request's session as the Node-based adapters (node, Express) hold and save
 * it: the hold's {@link HoldTarget} and the session's saver (made so by the constructor) in
 * one object. Closures over the request made five functions and their context per request;
 * this allocates about 400 bytes less a request (docs/benchmark.md, hot-path changes).
 */
export class ResponseSession<Data extends SessionData> implements HoldTarget, Saver {
  constructor(
    readonly sessions: SessionManager<Data>,
    readonly session: Session<Data>,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly onError: (error: unknown, req: IncomingMessage, res: ServerResponse) => void,
  ) {
    session[STATE].saver = this
  }

  due(): boolean {
    return this.sessions.needsCommit(this.session)
  }

  commit(): readonly string[] | Promise<readonly string[]> {
    return this.sessions.commitNow(this.session)
  }

  fail(error: unknown): void {
    this.onError(error, this.req, this.res)
  }

  async save(): Promise<void> {
    applySaved(this.res, await this.sessions.commit(this.session))
  }
}

/** A plain `ServerResponse`'s hold: leaving it costs less than taking it off (see {@link HoldOptions}). */
const LEAVE_HOLD: HoldOptions = { restore: false }

/**
 * Wrap a `(req, res, session)` handler into a Node `http` request listener. The listener
 * returns a promise only when it has to wait (an async handler, or a store without `getNow`);
 * it settles once the handler has, and never rejects: failures go to `onError`.
 */
export function withSession<Data extends SessionData>(
  sessions: SessionManager<Data>,
  handler: NodeSessionHandler<Data>,
  options: NodeAdapterOptions = {},
): (req: IncomingMessage, res: ServerResponse) => undefined | Promise<void> {
  checkAdapter('tessera/node', sessions, options)
  const onError = options.onError ?? respondWithError
  // a failed request commits nothing it had not already started to send; an answer it gave
  // stands, sent or held for the commit; one begun and not ended is cut before onError
  const failed = (
    hold: ResponseHold,
    req: IncomingMessage,
    res: ServerResponse,
    error: unknown,
  ) => {
    if (hold.abandon() || !hold.answered()) onError(error, req, res)
    // the answer stands: the failure is only logged, as Express's final handler does
    else console.error(error)
  }
  const run = (
    req: IncomingMessage,
    res: ServerResponse,
    session: Session<Data>,
  ): undefined | Promise<void> => {
    const hold = holdFor(res, new ResponseSession(sessions, session, req, res, onError), LEAVE_HOLD)
    let done: unknown
    try {
      done = handler(req, res, session)
    } catch (error) {
      failed(hold, req, res, error)
      return undefined
    }
    // a synchronous handler's result is not awaited: no promise and no tick per request
    if (!isThenable(done)) return undefined
    return Promise.resolve(done).then(undefined, (error: unknown) => failed(hold, req, res, error))
  }
  return (req, res) => {
    const loaded = sessions.loadNow(req.headers.cookie, {
      secure: isSecure(req, sessions.trustProxy),
    })
    // a session had at once runs the handler in this tick (see SessionManager.loadNow)
    if (!(loaded instanceof Promise)) return run(req, res, loaded)
    return loaded.then(
      (session) => run(req, res, session),
      (error: unknown) => onError(error, req, res),
    )
  }
}
