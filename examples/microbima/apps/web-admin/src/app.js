// The web admin's HTTP surface, without listening, so tests can start it on any port.
import { createServer } from 'node:http'

const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>MicroBima admin</title></head><body><h1>MicroBima admin</h1></body></html>'

export function createApp() {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ status: 'ok' }))
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      return res.end(PAGE)
    }
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found')
  })
}
