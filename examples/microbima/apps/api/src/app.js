// The internal API's HTTP surface, without listening, so tests can start it on any port.
import { createServer } from 'node:http'

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

export function createApp(env = process.env) {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (req.method !== 'GET') return json(res, 405, { error: 'method not allowed' })
    if (path === '/health') return json(res, 200, { status: 'ok' })
    // Tells a caller which deployment answered: NODE_ENV comes from fly.toml, not from the image.
    if (path === '/v1/whoami') return json(res, 200, { app: 'internal-api', environment: env.NODE_ENV })
    return json(res, 404, { error: 'not found' })
  })
}
