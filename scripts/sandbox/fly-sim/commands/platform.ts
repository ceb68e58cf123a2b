// fly platform regions --json (internal/command/platform/regions.go; fly-go types.go Region;
// flyctl.md §10): the 18 regions after the 2025 clean-up, and which of them have Managed Postgres.
import { JSON_FLAG, json, out, parseFlags, unknownCommand } from '../cli.ts'
import { fault, latency, sandbox } from '../runtime.ts'

export const REGIONS: [string, string, number, number, string][] = [
  ['ams', 'Amsterdam, Netherlands', 52.37, 4.89, 'europe'], ['arn', 'Stockholm, Sweden', 59.33, 18.07, 'europe'], ['bom', 'Mumbai, India', 19.08, 72.88, 'asia_pacific'],
  ['cdg', 'Paris, France', 48.86, 2.35, 'europe'], ['dfw', 'Dallas, Texas (US)', 32.78, -96.8, 'north_america'], ['ewr', 'Secaucus, NJ (US)', 40.79, -74.06, 'north_america'],
  ['fra', 'Frankfurt, Germany', 50.11, 8.68, 'europe'], ['gru', 'Sao Paulo, Brazil', -23.55, -46.63, 'south_america'], ['iad', 'Ashburn, Virginia (US)', 39.04, -77.49, 'north_america'],
  ['jnb', 'Johannesburg, South Africa', -26.2, 28.05, 'africa'], ['lax', 'Los Angeles, California (US)', 34.05, -118.24, 'north_america'], ['lhr', 'London, United Kingdom', 51.51, -0.13, 'europe'],
  ['nrt', 'Tokyo, Japan', 35.68, 139.69, 'asia_pacific'], ['ord', 'Chicago, Illinois (US)', 41.88, -87.63, 'north_america'], ['sin', 'Singapore, Singapore', 1.35, 103.82, 'asia_pacific'],
  ['sjc', 'San Jose, California (US)', 37.34, -121.89, 'north_america'], ['syd', 'Sydney, Australia', -33.87, 151.21, 'asia_pacific'], ['yyz', 'Toronto, Canada', 43.65, -79.38, 'north_america'],
]

/** fly-mpg.md §3.2 / docs mpg/index: the MPG regions (the sandbox may narrow them). */
export const mpgRegions = () => sandbox().mpgRegions ?? ['ams', 'fra', 'gru', 'iad', 'lax', 'lhr', 'nrt', 'ord', 'sin', 'sjc', 'syd', 'yyz']

export async function platform(sub: string | undefined, args: string[]) {
  if (sub !== 'regions') throw unknownCommand(sub, 'flyctl platform')
  const { flags } = parseFlags(args, JSON_FLAG)
  await latency('platform')
  await fault('platform regions')
  // runRegions: deprecated regions dropped, then sorted by name (not by code).
  const list = [...REGIONS].sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)).map(([code, name, latitude, longitude, geo]) => ({ code, name, latitude, longitude, gateway_available: code !== 'jnb', requires_paid_plan: false, deprecated: false, capacity: 100, geo_region: geo, mpg_available: mpgRegions().includes(code) }))
  if (flags.json) return json(list)
  out(`NAME\tCODE\tMPG\n${list.map((r) => `${r.name}\t${r.code}\t${r.mpg_available ? '✓' : ''}`).join('\n')}\n`)
}
