/**
 * Typed errors with stable codes. Switch on `err.code`, never on the message.
 *
 * @example
 * ```ts
 * try { await sessions.commit(session) } catch (err) {
 *   if (err instanceof SessionError && err.code === 'ERR_SESSION_STORE') retryLater()
 * }
 * ```
 * @module
 */

/** Every code a {@link SessionError} can carry. */
export type SessionErrorCode =
  | 'ERR_SESSION_CONFIG'
  | 'ERR_SESSION_STORE'
  | 'ERR_SESSION_COOKIE_TOO_LARGE'
  | 'ERR_SESSION_IMMUTABLE'
  | 'ERR_SESSION_SERIALIZE'
  | 'ERR_SESSION_VALIDATION'
  | 'ERR_SESSION_STATE'
  | 'ERR_SESSION_CSRF'
  | 'ERR_SESSION_OIDC'

/** Base class of every error Tessera throws. */
export class SessionError extends Error {
  override name = 'SessionError'
  readonly code: SessionErrorCode

  constructor(code: SessionErrorCode, message: string, options?: ErrorOptions) {
    super(`[tessera] ${message}`, options)
    this.code = code
  }
}

/** The options given to Tessera are wrong; thrown at startup. The message says what to change. */
export class SessionConfigError extends SessionError {
  override name = 'SessionConfigError'
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_SESSION_CONFIG', message, options)
  }
}

/** Store operations, as named in {@link SessionStoreError.operation}. */
export type StoreOperation =
  | 'get'
  | 'set'
  | 'add'
  | 'patch'
  | 'touch'
  | 'destroy'
  | 'listByUser'
  | 'destroyByUser'
  | 'count'
  | 'scan'
  | 'prune'
  | 'close'
  /** Opening the store's connection (`storeFromUrl`). */
  | 'connect'

/**
 * A store failed. Never a silent fresh session: the request fails instead.
 * Carries the store and the operation, never the session id; the driver's error is `cause`.
 */
export class SessionStoreError extends SessionError {
  override name = 'SessionStoreError'
  readonly store: string
  readonly operation: StoreOperation

  constructor(store: string, operation: StoreOperation, message: string, options?: ErrorOptions) {
    super('ERR_SESSION_STORE', `[store:${store}] ${operation} failed: ${message}`, options)
    this.store = store
    this.operation = operation
  }
}

/**
 * The default report of a store error that no request sees (a timed prune or sweep): a
 * process warning of type `TesseraWarning` with the error's code, shown once on stderr and
 * observable with `process.on('warning')`.
 * @example
 * ```ts
 * postgresStore({ pool, onPruneError: (error) => log.warn(error) }) // instead of this default
 * ```
 */
export function emitStoreWarning(error: SessionStoreError): void {
  process.emitWarning(error.message, { type: 'TesseraWarning', code: error.code })
}

/** A session does not fit where it must go (a cookie, a store's value limit). */
export class SessionCookieTooLargeError extends SessionError {
  override name = 'SessionCookieTooLargeError'
  readonly size: number
  readonly limit: number

  constructor(size: number, limit: number, hint: string) {
    super(
      'ERR_SESSION_COOKIE_TOO_LARGE',
      `session is ${size} bytes, over the limit of ${limit}: ${hint}`,
    )
    this.size = size
    this.limit = limit
  }
}

/** A write to a key that was set with `{ immutable: true }`. */
export class SessionImmutableError extends SessionError {
  override name = 'SessionImmutableError'
  readonly key: string
  constructor(key: string) {
    super(
      'ERR_SESSION_IMMUTABLE',
      `session key "${key}" is immutable; delete() it first if it must really change`,
    )
    this.key = key
  }
}

/** A value cannot be stored by the configured codec, or a key is not allowed. */
export class SessionSerializeError extends SessionError {
  override name = 'SessionSerializeError'
  readonly key: string
  constructor(key: string, message: string, options?: ErrorOptions) {
    super('ERR_SESSION_SERIALIZE', `cannot store session key "${key}": ${message}`, options)
    this.key = key
  }
}

/** One problem a schema found (Standard Schema's issue shape). */
export interface ValidationIssue {
  readonly message: string
  readonly path?: ReadonlyArray<unknown> | undefined
}

/** Stored data failed the schema given as `schema` (with `onInvalidData: 'error'`). */
export class SessionValidationError extends SessionError {
  override name = 'SessionValidationError'
  readonly issues: readonly ValidationIssue[]
  constructor(issues: readonly ValidationIssue[]) {
    super(
      'ERR_SESSION_VALIDATION',
      `stored session data failed the schema: ${issues.map((i) => i.message).join('; ')}`,
    )
    this.issues = issues
  }
}

/** A session was used in a way its state does not allow (written after it was destroyed, ...). */
export class SessionStateError extends SessionError {
  override name = 'SessionStateError'
  constructor(message: string) {
    super('ERR_SESSION_STATE', message)
  }
}
