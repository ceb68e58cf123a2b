import { createServer } from 'node:http'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

// The apps' HTTP health endpoints, for the sandbox: GET /<fly app>/<path> answers 200 while the
// app's machines run with passing checks and its image is not marked broken (fault `http-5xx`).

export interface HealthServer {
  port: number
  template: string
  close(): Promise<void>
}

export function appIsHealthy(stateDir: string, app: string): boolean {
  const path = join(stateDir, 'state.json')
  if (!existsSync(path)) return false
  const state = JSON.parse(readFileSync(path, 'utf8'))
  const entry = state.apps?.[app]
  if (!entry?.machines?.length) return false
  return entry.machines.every(
    (m: { state: string; healthyAt: number; image: string }) =>
      m.state === 'started' && m.healthyAt >= 0 && Date.now() >= m.healthyAt && !entry.brokenImages.includes(m.image) && !(Date.now() < (entry.brokenUntil?.[m.image] ?? 0)),
  )
}

export function startHealthServer(stateDir: string): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const app = (req.url ?? '/').split('/')[1] ?? ''
    let healthy = false
    try {
      healthy = appIsHealthy(stateDir, app)
    } catch {
      healthy = false // state.json being replaced: answer as a flapping app would
    }
    res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ status: healthy ? 'ok' : 'unavailable' }))
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.unref()
      resolve({ port, template: `http://127.0.0.1:${port}/{app}{path}`, close: () => new Promise((ok) => server.close(() => ok())) })
    })
  })
}
