import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { entrypointScript, renderEntrypoint, type Rendered } from './fly-sim/model/boot.ts'
import { isPassing, routeRequest, secretsAt } from './fly-sim/model/fleet.ts'
import { hasFlycast, hasPublicIp } from './fly-sim/model/ips.ts'
import { readSandbox, readState, updateState, type SimApp, type SimImage, type SimState } from './fly-sim/state.ts'
import { loadGateway, type Gateway } from './gateway.ts'

// Fly Proxy for the sandbox, over the simulator's state: the public hostnames of apps that have a
// public IP (GET /<fly app>/<path>, which HEALTH_URL_TEMPLATE points at), and Flycast inside the
// network (http://APP.flycast, the service's *external* port, refused by force_https). Like Fly
// Proxy it routes to a started machine whose checks pass, and starts a stopped machine of an
// auto-start service when none runs. Behind it the apps answer as MicroBima's would: /health, and
// GET /v1/whoami naming the app and its NODE_ENV; the gateway's image renders its Kong
// configuration from the machine's environment and secrets with the image's own entrypoint
// (`… render`), and Kong's routing and key-auth are played by scripts/sandbox/gateway.ts.

export interface FlyProxy {
  port: number
  template: string
  close(): Promise<void>
}

interface Answer {
  status: number
  body: string
  headers?: Record<string, string>
  /** No route at all: the connection is dropped (as when a name does not resolve). */
  drop?: boolean
}

const json = (status: number, value: unknown): Answer => ({ status, body: JSON.stringify(value) })
// By rendering: renderEntrypoint gives one answer per image and environment, parsed once here.
const gateways = new WeakMap<Rendered, Gateway | Error>()

/** The machine's view of its environment: [env] plus the secrets version it runs with. */
function machineEnv(app: SimApp, machine: SimApp['machines'][number]): Record<string, string> {
  return { ...machine.config.env, ...secretsAt(app, machine.secretsVersion) }
}

function gatewayFor(image: SimImage, env: Record<string, string>): Gateway | Error {
  const rendered = renderEntrypoint(image, env)
  if (!gateways.has(rendered)) {
    try {
      gateways.set(rendered, rendered.status === 0 ? loadGateway(rendered.stdout) : new Error(rendered.stderr.trim() || `renderer exited ${rendered.status}`))
    } catch (error) {
      gateways.set(rendered, error as Error)
    }
  }
  return gateways.get(rendered)!
}

async function serveApp(stateDir: string, name: string, path: string, headers: Record<string, string>, depth: number): Promise<Answer> {
  const scale = readSandbox(stateDir).timeScale ?? 1
  // The state as this request left it (a machine started, its idle clock reset).
  const { machine, state } = updateState(stateDir, (state) => ({ machine: state.apps[name] ? routeRequest(state, state.apps[name], scale) : undefined, state }))
  const app = state.apps[name]
  if (!machine) return json(503, { error: 'no machines available to serve the request' })
  const current = app.machines.find((m) => m.id === machine.id)!
  if (!isPassing(state, current)) return json(503, { error: 'no healthy machines' })
  const image = state.images[current.image]
  if (image && image.http5xxUntil !== undefined && (image.http5xxUntil === 0 || Date.now() < image.http5xxUntil)) return json(503, { status: 'unavailable' })
  const env = machineEnv(app, current)
  if (image && entrypointScript(image)) return gateway(stateDir, state, image, env, path, headers, depth)
  if (path === '/health') return json(200, { status: 'ok' })
  if (path === '/v1/whoami') return json(200, { app: name, environment: env.NODE_ENV ?? null })
  return json(404, { error: 'not found' })
}

async function gateway(stateDir: string, state: SimState, image: SimImage, env: Record<string, string>, path: string, headers: Record<string, string>, depth: number): Promise<Answer> {
  const kong = gatewayFor(image, env)
  // Kong does not start without a valid configuration: the proxy finds nothing listening.
  if (kong instanceof Error) return json(502, { error: `gateway failed to start: ${kong.message}` })
  const decision = kong.handle({ method: 'GET', path, headers })
  if (!decision.upstream) return { status: decision.status, body: decision.body ?? '' }
  const upstream = new URL(decision.upstream.url)
  if (!upstream.hostname.endsWith('.flycast')) return json(502, { message: 'An invalid response was received from the upstream server' })
  return flycast(stateDir, state, upstream.hostname.slice(0, -'.flycast'.length), Number(upstream.port || 80), decision.upstream.path, decision.upstream.headers, depth + 1)
}

/** http://APP.flycast:PORT: only with a private_v6, by the service's external port, no force_https. */
async function flycast(stateDir: string, state: SimState, name: string, port: number, path: string, headers: Record<string, string>, depth: number): Promise<Answer> {
  const app = state.apps[name]
  // No Flycast address: the name does not resolve and Kong answers 502 (its DNS error).
  if (!app || !hasFlycast(app)) return json(502, { message: 'name resolution failed' })
  const services = app.machines.find((m) => m.state !== 'destroyed')?.config.services ?? []
  const exposed = services.flatMap((s) => s.ports).find((p) => p.port === port && p.handlers.includes('http'))
  if (!exposed) return json(502, { message: 'An invalid response was received from the upstream server' })
  if (exposed.force_https) return { status: 301, body: '', headers: { location: `https://${name}.flycast${path}` } }
  if (depth > 3) return json(508, { error: 'loop' })
  return serveApp(stateDir, name, path, headers, depth)
}

export function startFlyProxy(stateDir: string): Promise<FlyProxy> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const [, name = '', ...rest] = (req.url ?? '/').split('/')
    const path = `/${rest.join('/')}`
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]))
    void (async () => {
      let answer: Answer
      try {
        const state = readState(stateDir)
        const app = state.apps[name]
        answer = app && hasPublicIp(app) ? await serveApp(stateDir, name, path, headers, 0) : { status: 0, body: '', drop: true }
      } catch {
        answer = json(503, { error: 'state being replaced' }) // a flapping app, as the operator would see one
      }
      if (answer.drop) return void req.socket.destroy()
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
      res.end(answer.body)
    })()
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.unref()
      resolve({ port, template: `http://127.0.0.1:${port}/{app}{path}`, close: () => new Promise((ok) => server.close(() => ok())) })
    })
  })
}
