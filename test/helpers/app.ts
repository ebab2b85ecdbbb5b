import type { Route } from './http.js'

export type AppData = { count: number; userId: string; [key: string]: unknown }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The routes every adapter-level test uses. */
export const appRoutes: Route<AppData> = async (session, url) => {
  const q = (name: string) => url.searchParams.get(name) ?? ''
  switch (url.pathname) {
    case '/count': {
      const count = (session.get('count') ?? 0) + 1
      session.set('count', count)
      return { body: { count, isNew: session.isNew } }
    }
    case '/read':
      return {
        body: {
          count: session.get('count') ?? null,
          isNew: session.isNew,
          idHash: session.isNew ? null : session.idHash,
        },
      }
    case '/nothing':
      return { body: 'ok' }
    case '/set':
      if (q('wait')) await sleep(Number(q('wait')))
      session.set(q('key'), q('value'))
      return { body: 'ok' }
    case '/get':
      return { body: session.get(q('key')) ?? null }
    case '/login':
      session.regenerate()
      session.setUser(q('user'))
      session.set('userId', q('user'))
      return { body: { idHash: session.idHash } }
    case '/logout':
      session.destroy()
      return { body: 'bye' }
    case '/flash':
      session.flash.set('notice', q('msg'))
      return { redirect: '/show' }
    case '/show':
      return { body: { notice: session.flash.get('notice') ?? null } }
    default:
      return { status: 404, body: 'not found' }
  }
}
