import type { SessionStoreError } from './errors.js'
import type { CookieRejection } from './keyring.js'

/**
 * Why a session cookie led to no session:
 * - `malformed`: its shape or length;
 * - `bad-signature`: no key of the keyring signed it, or it does not decrypt;
 * - `unknown`: validly signed, but the store has no such session (logged out, revoked,
 *   evicted);
 * - `moved`: its session got a new id in the last minute, by a `regenerate()` such as a
 *   login's, while this request was on its way. The request gets an empty session whose
 *   changes are not kept and that sends no cookie, so it cannot replace the login's cookie in
 *   the browser, unless it logs in itself with `regenerate()` or `setUser()`;
 * - `revoked`: the cookie store's `isRevoked` refused it.
 *
 * Expired sessions and data failing the schema have their own events.
 */
export type RejectionReason = CookieRejection | 'unknown' | 'moved' | 'revoked'

/** Events a session manager emits, with what each listener receives. */
export interface SessionEvents {
  /** A new session was stored for the first time. */
  created: { idHash: string }
  /** A session got a new id; the old record is gone. */
  regenerated: { idHash: string; previousIdHash: string }
  /** A session was destroyed (logout, or revoked). */
  destroyed: { idHash: string }
  /** A stored session was past its idle or absolute expiry when loaded. */
  expired: { idHash: string; kind: 'idle' | 'absolute' }
  /** A session cookie was refused; the request has no session. */
  rejected: { reason: RejectionReason; idHash?: string }
  /** Stored data failed the schema (with `onInvalidData: 'reset'`). */
  invalid: { idHash: string; issues: readonly { message: string }[] }
  /** A store operation failed; the request fails with this error too. */
  storeError: { error: SessionStoreError }
}

export type SessionEventName = keyof SessionEvents
export type SessionListener<E extends SessionEventName> = (event: SessionEvents[E]) => void

/**
 * A tiny typed emitter. Unlike Node's EventEmitter, an `error`-like event with no listener
 * never throws, and a throwing listener (or an async one that rejects) never breaks a request.
 */
export class Emitter {
  readonly #listeners: { [E in SessionEventName]?: SessionListener<E>[] } = {}

  /**
   * Add `listener`; the function returned removes it. The lists are replaced, never changed in
   * place, so a listener that removes itself (or adds another) while an event is emitted
   * changes nothing for that event's other listeners.
   */
  on<E extends SessionEventName>(event: E, listener: SessionListener<E>): () => void {
    const listeners = this.#listeners as Record<E, SessionListener<E>[] | undefined>
    listeners[event] = [...(listeners[event] ?? []), listener]
    let on = true
    return () => {
      const list = listeners[event]
      const i = on && list !== undefined ? list.indexOf(listener) : -1
      on = false
      if (i >= 0) listeners[event] = [...list!.slice(0, i), ...list!.slice(i + 1)]
    }
  }

  emit<E extends SessionEventName>(event: E, payload: SessionEvents[E]): void {
    const list = this.#listeners[event] as SessionListener<E>[] | undefined
    if (!list) return
    for (const listener of list) {
      try {
        // an async listener's answer: its rejection is its failure too, which unhandled would
        // end the process (Node's default for an unhandled rejection)
        const answer: unknown = listener(payload)
        if (typeof (answer as { then?: unknown } | null)?.then === 'function') {
          ;(answer as PromiseLike<unknown>).then(undefined, ignore)
        }
      } catch {
        // a listener's failure is its own; it never breaks a request
      }
    }
  }
}

const ignore = (): void => {}
