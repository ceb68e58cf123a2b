import type { Context } from '../core/cli.js'
import { OperationError } from '../core/errors.js'
import type { FlyIp } from './types.js'

// The internal API is private (fly-platform.md §4): a Flycast address (private IPv6) so the
// gateway reaches it at http://<app>.flycast, and no public IP, so the internet does not. Fly's
// first deploy would give it public addresses unless it already has one: so create-apps sets this
// up, and deploy checks it before the internal API's deploy and mends it if needed.

export const PUBLIC_IP = new Set(['v4', 'v6', 'shared_v4'])

export function isPrivate(ips: FlyIp[]): boolean {
  return ips.some((ip) => ip.Type === 'private_v6') && !ips.some((ip) => PUBLIC_IP.has(ip.Type))
}

/** Allocates the Flycast address if missing and releases public ones; returns what it did. */
export async function makePrivate(ctx: Context, app: string, before: FlyIp[]): Promise<string[]> {
  const fly = ctx.fly()
  const done: string[] = []
  if (!before.some((ip) => ip.Type === 'private_v6')) {
    await fly.network.allocatePrivateV6(app)
    done.push(ctx.dryRun ? 'would allocate a Flycast address (private IPv6)' : 'Flycast address allocated')
  }
  for (const ip of before.filter((ip) => PUBLIC_IP.has(ip.Type))) {
    await fly.network.release(app, ip.Address)
    done.push(`${ctx.dryRun ? 'would release' : 'released'} public ${ip.Type} ${ip.Address}`)
  }
  if (ctx.dryRun || !done.length) return done
  const after = await fly.network.ips(app)
  if (!isPrivate(after)) {
    throw new OperationError(`${app} should be private with a Flycast address, but flyctl ips list shows: ${after.map((ip) => `${ip.Type} ${ip.Address}`).join(', ') || 'no addresses'}`)
  }
  return done
}
