// A new app as `apps create` (and `postgres create`) leave it: no machines, no IPs, no secrets.
import { hex, nowIso } from './fleet.ts'
import type { SimApp } from '../state.ts'

export function newApp(name: string, org: string): SimApp {
  return { id: hex(8), name, org, createdAt: nowIso(), deployed: false, ips: [], secretsLog: [], secretsVersion: 0, secretsCacheVersion: 0, releases: [], machines: [], logs: [] }
}
