import { describe, expect, it } from 'vitest'
import { getSession } from '../../src/adapters/express.js'
import { adapterSuite } from './suite.js'

adapterSuite('express')

describe('express specifics', () => {
  it('getSession() without the middleware says what to add', () => {
    expect(() => getSession({}, undefined, 'cart')).toThrow(
      /sessionMiddleware\(sessions, \{ property: 'cart' \}\)/,
    )
  })
})
