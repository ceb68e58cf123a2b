import { parse as parseYaml } from 'yaml'

// Just enough of Kong 3.x (DB-less) to play the public API in the sandbox: it reads the rendered
// kong.yml and decides, for one request, what Kong would answer or where it would proxy it.
// Modelled: route matching by the longest path prefix, strip_path, a service's url and path,
// plugins key-auth (header or query keys, hide_credentials, consumers' keyauth_credentials) and
// request-termination, run in Kong's priority order. rate-limiting is accepted and not enforced;
// any other plugin is refused, so a configuration using one is not silently half-emulated.

export interface GatewayRequest {
  method: string
  path: string // may carry a query string
  headers?: Record<string, string>
}

export interface GatewayResponse {
  /** Kong's own answer; with `upstream` set, Kong proxies and the caller supplies the upstream's. */
  status: number
  body?: string
  /** Where Kong proxies the request: the full upstream URL, its path, the headers sent on. */
  upstream?: { url: string; path: string; headers: Record<string, string> }
  /** The authenticated consumer's username. */
  consumer?: string
}

export interface Gateway {
  handle(request: GatewayRequest): GatewayResponse
}

interface Plugin {
  name: string
  enabled?: boolean
  config?: Record<string, any>
}

interface Route {
  name?: string
  paths: string[]
  strip_path: boolean
  plugins: Plugin[]
  service: Service
}

interface Service {
  name?: string
  url: URL
  plugins: Plugin[]
}

// Kong runs plugins by descending priority, whatever their order in the file.
const PRIORITY: Record<string, number> = { 'key-auth': 1250, 'rate-limiting': 910, 'request-termination': 2 }

const message = (text: string) => JSON.stringify({ message: text })

function plugins(list: unknown, where: string): Plugin[] {
  if (list === undefined) return []
  if (!Array.isArray(list)) throw new Error(`${where}: plugins must be a list`)
  return list.map((p: Plugin) => {
    if (!(p?.name in PRIORITY)) throw new Error(`${where}: plugin ${p?.name} is not emulated`)
    if (['route', 'service', 'consumer'].some((k) => k in p)) throw new Error(`${where}: plugin ${p.name}: scoping by reference is not emulated`)
    return p
  })
}

/** Kong's path_handling v0: the service's path, then what is left of the request's path. */
function upstreamPath(service: URL, rest: string): string {
  const base = service.pathname
  if (base === '/' || base === '') return rest.startsWith('/') ? rest : `/${rest}`
  if (rest === '' || rest === '/') return base
  return base.endsWith('/') && rest.startsWith('/') ? base + rest.slice(1) : base + rest
}

export function loadGateway(yamlText: string): Gateway {
  const config = parseYaml(yamlText) ?? {}
  if (config._format_version !== '3.0') throw new Error(`_format_version must be "3.0", got ${JSON.stringify(config._format_version)}`)

  const routes: Route[] = []
  for (const s of config.services ?? []) {
    if (typeof s?.url !== 'string') throw new Error(`service ${s?.name}: url is required`)
    const url = new URL(s.url) // throws on what Kong would reject too
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`service ${s.name}: ${url.protocol} upstreams are not emulated`)
    const service: Service = { name: s.name, url, plugins: plugins(s.plugins, `service ${s.name}`) }
    for (const r of s.routes ?? []) {
      // Only paths are matched here: a route that also names methods, hosts or headers, or a
      // regex path, would be matched wrongly, so it is refused.
      const other = ['methods', 'hosts', 'headers', 'snis', 'sources', 'destinations', 'expression'].filter((k) => r?.[k] !== undefined)
      if (!Array.isArray(r?.paths) || r.paths.length === 0 || other.length > 0 || r.paths.some((p: unknown) => typeof p !== 'string' || p.startsWith('~'))) {
        throw new Error(`route ${r?.name}: only plain path prefixes are emulated`)
      }
      routes.push({ name: r.name, paths: r.paths, strip_path: r.strip_path ?? true, plugins: plugins(r.plugins, `route ${r.name}`), service })
    }
  }
  const global = plugins(config.plugins, 'global')

  // Keys are unique in Kong: a repeated one makes the whole configuration fail to load.
  const consumers = new Map<string, string>()
  for (const c of config.consumers ?? []) {
    if (c.plugins !== undefined) throw new Error(`consumer ${c.username}: consumer plugins are not emulated`)
    for (const credential of c.keyauth_credentials ?? []) {
      const key = String(credential.key)
      if (consumers.has(key)) throw new Error(`keyauth_credentials: key of ${c.username} is already used by ${consumers.get(key)}`)
      consumers.set(key, c.username)
    }
  }

  return {
    handle({ method, path, headers = {} }) {
      const [pathname = '', query] = path.split(/\?(.*)/s, 2)
      const params = new URLSearchParams(query ?? '')
      let match: { route: Route; prefix: string } | undefined
      for (const route of routes) {
        for (const prefix of route.paths) {
          if (pathname.startsWith(prefix) && (!match || prefix.length > match.prefix.length)) match = { route, prefix }
        }
      }
      if (!match) return { status: 404, body: message('no Route matched with those values') }
      const { route, prefix } = match

      const sent: Record<string, string> = {}
      for (const [name, value] of Object.entries(headers)) sent[name.toLowerCase()] = value
      let consumer: string | undefined
      let hidden = false // the query string is rebuilt only when key-auth took a key out of it

      // A route's plugin overrides the service's of the same name, which overrides a global one.
      const byName = new Map<string, Plugin>()
      for (const p of [...global, ...route.service.plugins, ...route.plugins]) byName.set(p.name, p)
      const active = [...byName.values()].filter((p) => p.enabled !== false).sort((a, b) => PRIORITY[b.name]! - PRIORITY[a.name]!)
      for (const plugin of active) {
        const conf = plugin.config ?? {}
        if (plugin.name === 'key-auth') {
          // Kong's key-auth handler: per key name, the header, then (if allowed) the query string.
          if (conf.run_on_preflight === false && method.toUpperCase() === 'OPTIONS') continue
          let key: string | undefined
          for (const name of (conf.key_names ?? ['apikey']) as string[]) {
            const header = sent[name.toLowerCase()]
            const inQuery = conf.key_in_query !== false && params.has(name)
            if (conf.key_in_header !== false && header !== undefined) key = header
            else if (inQuery) key = params.get(name)!
            else continue
            if (conf.hide_credentials) {
              delete sent[name.toLowerCase()]
              params.delete(name)
              hidden = true
            }
            break
          }
          if (key === undefined || key === '') return { status: 401, body: message('No API key found in request') }
          consumer = consumers.get(key)
          if (consumer === undefined) return { status: 401, body: message('Invalid authentication credentials') }
          sent['x-consumer-username'] = consumer
        } else if (plugin.name === 'request-termination') {
          const status = conf.status_code ?? 503
          // Kong's default text per status is not modelled: without body or message, no body.
          const body: string | undefined = conf.body ?? (conf.message === undefined ? undefined : message(conf.message))
          return { status, ...(body === undefined ? {} : { body }), ...(consumer === undefined ? {} : { consumer }) }
        }
        // rate-limiting: accepted, not enforced.
      }

      const rest = route.strip_path ? pathname.slice(prefix.length) : pathname
      const upath = upstreamPath(route.service.url, rest)
      const search = hidden ? params.toString() : (query ?? '')
      const url = `${route.service.url.origin}${upath}${search ? `?${search}` : ''}`
      return { status: 200, upstream: { url, path: upath, headers: sent }, ...(consumer === undefined ? {} : { consumer }) }
    },
  }
}
