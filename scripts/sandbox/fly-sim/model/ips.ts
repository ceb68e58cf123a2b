// An app's IP addresses (fly-platform.md §4; flyctl internal/command/ips, deploy_first.go):
// public dedicated v6 and shared v4 make it reachable from the internet on APP.fly.dev; a
// private_v6 (Flycast) makes APP.flycast resolve inside the organisation's network.
import { hex, nowIso } from './fleet.ts'
import type { SimApp, SimIp } from '../state.ts'

export function allocate(app: SimApp, type: SimIp['Type'], region = 'global'): SimIp {
  const address =
    type === 'private_v6' ? `fdaa:0:${hex(2)}:0:1::${parseInt(hex(1), 16) + 2}`
    : type === 'v6' ? `2a09:8280:1::${hex(2)}:${hex(2)}:0`
    : type === 'shared_v4' ? '66.241.124.' + (parseInt(hex(1), 16) % 250 + 2)
    : `137.66.${parseInt(hex(1), 16)}.${parseInt(hex(1), 16) % 250 + 2}`
  const ip: SimIp = { ID: type === 'shared_v4' ? '' : `ip_${hex(8)}`, Address: address, Type: type, Region: type === 'shared_v4' ? '' : region, CreatedAt: type === 'shared_v4' ? '0001-01-01T00:00:00Z' : nowIso() }
  app.ips.push(ip)
  return ip
}

export const hasPublicIp = (app: SimApp) => app.ips.some((ip) => ip.Type === 'v4' || ip.Type === 'v6' || ip.Type === 'shared_v4')
export const hasFlycast = (app: SimApp) => app.ips.some((ip) => ip.Type === 'private_v6')

/** `ips list --json`: fly-go appends the shared v4 last (resource_ip_addresses.go). */
export function ipsJson(app: SimApp) {
  const own = app.ips.filter((ip) => ip.Type !== 'shared_v4')
  const shared = app.ips.filter((ip) => ip.Type === 'shared_v4')
  return [...own, ...shared].map((ip) => ({ ID: ip.ID, Address: ip.Address, Type: ip.Type, Region: ip.Region, CreatedAt: ip.CreatedAt, ServiceName: '', Network: null }))
}

/**
 * provisionIpsOnFirstDeploy: only on a first deploy of an app with services and no IPs yet; the
 * default is public (dedicated v6 + shared v4), --flycast a private v6, --no-public-ips nothing.
 * Returns the stdout lines flyctl prints.
 */
export function provisionOnFirstDeploy(app: SimApp, kind: 'public' | 'private' | 'none', hasServices: boolean): string {
  if (!hasServices || app.ips.length || kind === 'none') return ''
  if (kind === 'private') {
    const v6 = allocate(app, 'private_v6')
    return `Provisioning ip address for ${app.name}\n  Private ipv6: ${v6.Address}\n\n`
  }
  const v6 = allocate(app, 'v6')
  const v4 = allocate(app, 'shared_v4')
  return `Provisioning ips for ${app.name}\n  Dedicated ipv6: ${v6.Address}\n  Shared ipv4: ${v4.Address}\n  Add a dedicated ipv4 with: fly ips allocate-v4\n\n`
}
