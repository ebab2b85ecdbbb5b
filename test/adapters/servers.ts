/**
 * One app, served by every adapter over real HTTP on loopback: the same routes, two named
 * sessions (`session` with cookie `sid`, `cart` with cookie `cart`), redirects and streamed
 * bodies, each in the framework's own idiom.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { getRequestListener } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import Koa from 'koa'
import * as expressAdapter from '../../src/adapters/express.js'
import * as compat from '../../src/adapters/express-session.js'
import * as fastifyAdapter from '../../src/adapters/fastify.js'
import { withSession as withFetchSession } from '../../src/adapters/fetch.js'
import { sessionMiddleware as honoSession, type SessionEnv } from '../../src/adapters/hono.js'
import { sessionMiddleware as koaSession, type SessionContext } from '../../src/adapters/koa.js'
import { withSession as withNodeSession } from '../../src/adapters/node.js'
import type { Session } from '../../src/core/session.js'
import type { Sessions } from '../../src/index.js'
import { expressServer } from '../helpers/express-server.js'
import { listen, type Running } from '../helpers/http.js'

export type { Running }

export const ADAPTERS = [
  'node',
  'fetch',
  'express',
  'express-constructed',
  'express-session',
  'fastify',
  'hono',
  'koa',
] as const
export type AdapterName = (typeof ADAPTERS)[number]

export type AppData = { count: number; userId: string; [key: string]: unknown }
export type CartData = { items: string[] }

export interface RouteContext {
  session: Session<AppData>
  cart: Session<CartData>
  url: URL
  method: string
}
export interface RouteResult {
  status?: number
  body?: unknown
  redirect?: string
  /** A body streamed chunk by chunk (headers go out before the last chunk). */
  stream?: AsyncIterable<string>
}
export type Routes = (ctx: RouteContext) => RouteResult | Promise<RouteResult>

export interface Managers {
  session: Sessions<AppData>
  cart: Sessions<CartData>
}

const streamOf = (chunks: AsyncIterable<string>) => Readable.from(chunks, { objectMode: false })

/** A fetch `Response` for a route result (fetch and Hono). */
function toResponse(result: RouteResult): Response {
  if (result.redirect) {
    return new Response(null, { status: 302, headers: { location: result.redirect } })
  }
  if (result.stream) {
    return new Response(Readable.toWeb(streamOf(result.stream)) as ReadableStream, {
      headers: { 'content-type': 'text/plain' },
    })
  }
  return Response.json(result.body ?? null, { status: result.status ?? 200 })
}

/** Answer a route result on a Node response (node, Express). */
async function toNode(result: RouteResult, res: ServerResponse): Promise<void> {
  if (result.redirect) {
    res.writeHead(302, { location: result.redirect })
    res.end()
    return
  }
  if (result.stream) {
    res.writeHead(200, { 'content-type': 'text/plain' })
    for await (const chunk of result.stream) res.write(chunk)
    res.end()
    return
  }
  res.writeHead(result.status ?? 200, { 'content-type': 'application/json' })
  res.end(JSON.stringify(result.body ?? null))
}

const urlOf = (req: IncomingMessage) => new URL(req.url ?? '/', 'http://localhost')

export async function serve(
  adapter: AdapterName,
  managers: Managers,
  routes: Routes,
): Promise<Running> {
  const { session: sessions, cart: carts } = managers
  switch (adapter) {
    case 'node':
      return listen(
        createServer(
          withNodeSession(sessions, (req, res, session) =>
            withNodeSession(carts, async (_req, _res, cart) => {
              await toNode(
                await routes({ session, cart, url: urlOf(req), method: req.method! }),
                res,
              )
            })(req, res),
          ),
        ),
      )
    case 'fetch':
      return listen(
        createServer(
          getRequestListener(
            withFetchSession(sessions, (request, session) =>
              withFetchSession(carts, async (_request, cart) => {
                const url = new URL(request.url)
                return toResponse(await routes({ session, cart, url, method: request.method }))
              })(request),
            ),
          ),
        ),
      )
    case 'express':
    case 'express-constructed':
    case 'express-session': {
      const app = express()
      if (adapter === 'express-session') app.use(compat.sessionMiddleware(sessions))
      else app.use(expressAdapter.sessionMiddleware(sessions))
      app.use(expressAdapter.sessionMiddleware(carts, { property: 'cart' }))
      app.use((req, res, next) => {
        const session =
          adapter === 'express-session'
            ? compat.getSession<AppData>(req)
            : expressAdapter.getSession(req, sessions)
        const cart = expressAdapter.getSession(req, carts, 'cart')
        Promise.resolve(routes({ session, cart, url: urlOf(req), method: req.method }))
          .then(async (result) => {
            if (result.redirect) res.redirect(302, result.redirect)
            else if (result.stream) await toNode(result, res)
            else res.status(result.status ?? 200).json(result.body ?? null)
          })
          .catch(next)
      })
      return listen(adapter === 'express-constructed' ? expressServer(app) : createServer(app))
    }
    case 'fastify': {
      const app = Fastify()
      await app.register(fastifyAdapter.sessionPlugin, { sessions })
      await app.register(fastifyAdapter.sessionPlugin, { sessions: carts, property: 'cart' })
      app.all('/*', async (request, reply) => {
        const session = fastifyAdapter.getSession(request, sessions)
        const cart = fastifyAdapter.getSession(request, carts, 'cart')
        const url = new URL(request.url, 'http://localhost')
        const result = await routes({ session, cart, url, method: request.method })
        if (result.redirect) return reply.redirect(result.redirect, 302)
        if (result.stream) return reply.type('text/plain').send(streamOf(result.stream))
        return reply.code(result.status ?? 200).send(result.body ?? null)
      })
      await app.listen({ port: 0, host: '127.0.0.1' })
      const { port } = app.server.address() as AddressInfo
      return { url: `http://127.0.0.1:${port}`, close: () => app.close() }
    }
    case 'hono': {
      const app = new Hono<SessionEnv<AppData> & SessionEnv<CartData, 'cart'>>()
      app.use(honoSession(sessions))
      app.use(honoSession(carts, { name: 'cart' }))
      app.all('*', async (c) => {
        const url = new URL(c.req.url)
        const result = await routes({
          session: c.get('session'),
          cart: c.get('cart'),
          url,
          method: c.req.method,
        })
        return toResponse(result)
      })
      return listen(createServer(getRequestListener(app.fetch)))
    }
    case 'koa': {
      const app = new Koa<
        Koa.DefaultState,
        SessionContext<AppData> & SessionContext<CartData, 'cart'>
      >()
      app.silent = true
      app.use(koaSession(sessions))
      app.use(koaSession(carts, { property: 'cart' }))
      app.use(async (ctx) => {
        const url = new URL(ctx.url, 'http://localhost')
        const result = await routes({
          session: ctx.session,
          cart: ctx.cart,
          url,
          method: ctx.method,
        })
        if (result.redirect) {
          ctx.status = 302
          ctx.redirect(result.redirect)
        } else if (result.stream) {
          ctx.type = 'text/plain'
          ctx.body = streamOf(result.stream)
        } else {
          ctx.status = result.status ?? 200
          ctx.body = JSON.stringify(result.body ?? null)
          ctx.type = 'application/json'
        }
      })
      return listen(createServer(app.callback()))
    }
  }
}
