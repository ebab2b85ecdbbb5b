/**
 * The Tessera demo: a small app on node:http and the memory store, showing a counter, flash
 * messages, login with session regeneration, the device list, logout, and CSRF protection on
 * every form.
 *
 *   npm start            then open http://localhost:3000
 *
 * SESSION_SECRET is read from the environment; without it a random one is made at startup
 * (sessions then end when the server restarts, which the memory store does anyway).
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import { createSessions, type Session } from 'tessera'
import { csrf } from 'tessera/csrf'
import { withSession } from 'tessera/node'
import { memoryStore } from 'tessera/stores/memory'

type Data = { visits: number; user: string }

// an empty SESSION_SECRET counts as unset, as everywhere in Tessera
const secret = process.env.SESSION_SECRET || randomBytes(32).toString('base64url')
if (!process.env.SESSION_SECRET)
  console.log('SESSION_SECRET not set: using a random secret for this run')

const sessions = createSessions<Data>({
  secret,
  store: memoryStore({ maxSessions: 10_000 }),
  idleTimeout: '30m',
  absoluteTimeout: '12h',
})
sessions.on('created', (e) => console.log(`session created ${e.idHash.slice(0, 12)}…`))
sessions.on('regenerated', (e) => console.log(`session regenerated ${e.idHash.slice(0, 12)}…`))
sessions.on('destroyed', (e) => console.log(`session destroyed ${e.idHash.slice(0, 12)}…`))
const protect = csrf()

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  let body = ''
  for await (const chunk of req) {
    body += chunk
    if (body.length > 10_000) break
  }
  return new URLSearchParams(body)
}

async function page(session: Session<Data>): Promise<string> {
  const user = session.get('user')
  const notice = session.flash.get<string>('notice')
  const devices = user ? await sessions.listByUser(user, { current: session }) : []
  // every form carries the session's CSRF token; the POST handlers check it
  const token = `<input type="hidden" name="_csrf" value="${protect.token(session)}">`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera demo</title>
<style>body{font:16px system-ui;max-width:40rem;margin:2rem auto;padding:0 1rem}
.notice{background:#e7f6e7;padding:.5rem 1rem;border-radius:4px}code{font-size:.85em}</style></head>
<body>
<h1>Tessera demo</h1>
${notice ? `<p class="notice">${escapeHtml(notice)}</p>` : ''}
<p>You have loaded this page <strong id="visits">${session.get('visits') ?? 0}</strong> time(s) in this session.</p>
${
  user
    ? `<p>Signed in as <strong id="user">${escapeHtml(user)}</strong>.</p>
<h2>Your sessions</h2><ul>${devices
        .map(
          (d) =>
            `<li><code>${d.idHash.slice(0, 12)}…</code> last seen ${new Date(d.lastSeenAt).toISOString()}${d.current ? ' (this one)' : ''}</li>`,
        )
        .join('')}</ul>
<form method="post" action="/logout-others">${token}<button>Log out other sessions</button></form>
<form method="post" action="/logout">${token}<button>Log out</button></form>`
    : `<form method="post" action="/login">${token}<label>Name <input name="user" required maxlength="64"></label>
<button>Sign in</button></form>`
}
</body></html>`
}

const server = createServer(
  withSession(sessions, async (req, res, session) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const redirect = (to: string) => {
      res.writeHead(303, { location: to })
      res.end()
    }
    const body = req.method === 'POST' ? await form(req) : undefined
    const refused = protect.check(session, {
      method: req.method,
      headers: req.headers,
      token: body?.get('_csrf'),
    })
    if (refused !== undefined) {
      res.writeHead(403, { 'content-type': 'text/plain' })
      res.end('Forbidden: reload the page and try again.')
      return
    }
    if (req.method === 'POST' && url.pathname === '/login') {
      const user = body?.get('user')?.trim()
      if (!user) return redirect('/')
      session.regenerate() // new id at login: no session fixation
      protect.rotate(session) // and a new CSRF secret: tokens from before the login stop working
      session.setUser(user)
      session.set('user', user)
      session.flash.set('notice', `Welcome, ${user}!`)
      return redirect('/')
    }
    if (req.method === 'POST' && url.pathname === '/logout') {
      session.destroy()
      session.flash.set('notice', 'You are signed out.')
      return redirect('/')
    }
    if (req.method === 'POST' && url.pathname === '/logout-others') {
      const user = session.get('user')
      const n = user ? await sessions.destroyByUser(user, { except: session }) : 0
      session.flash.set('notice', `Signed out ${n} other session(s).`)
      return redirect('/')
    }
    if (req.method === 'GET' && url.pathname === '/') {
      session.set('visits', (session.get('visits') ?? 0) + 1)
      // rendered before the headers go out: the page's CSRF token may add the session's secret,
      // and the session is saved as the headers are sent
      const html = await page(session)
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(html)
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('Not found')
  }),
)

const port = Number(process.env.PORT ?? 3000)
server.listen(port, () => console.log(`Tessera demo on http://localhost:${port}`))
