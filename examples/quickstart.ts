import { createServer } from 'node:http'
import { createSessions } from 'tessera'
import { withSession } from 'tessera/node'

const sessions = createSessions<{ visits: number }>({
  secret: process.env.SESSION_SECRET, // 32+ random bytes: `npx tessera keygen`
})

const server = createServer(
  withSession(sessions, (_req, res, session) => {
    const visits = (session.get('visits') ?? 0) + 1
    session.set('visits', visits)
    res.end(`You have been here ${visits} time(s)\n`)
  }),
)
server.listen(Number(process.env.PORT ?? 3000), () => console.log('listening'))
