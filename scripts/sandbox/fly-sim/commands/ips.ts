// fly ips list | allocate-v6 | allocate-v4 | release (internal/command/ips/*.go; fly-platform.md §4.2–§4.4).
import { isIP } from 'node:net'
import { APP_FLAG, FlyError, JSON_FLAG, appName, json, minimumArgs, out, parseFlags, unknownCommand } from '../cli.ts'
import { allocate, ipsJson } from '../model/ips.ts'
import { dir, fault, findApp, latency } from '../runtime.ts'
import { readState, updateState } from '../state.ts'

const ageOf = () => '0s ago'

export async function ips(sub: string | undefined, args: string[]) {
  const common = { ...APP_FLAG, region: { short: 'r', value: true }, org: { short: 'o', value: true }, network: { value: true } }
  if (sub === 'list' || sub === 'ls') {
    const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG })
    const name = appName(flags)
    await latency('ips')
    await fault('ips list', name)
    const list = ipsJson(findApp(readState(dir()), name))
    if (flags.json) return json(list)
    const label = { v4: 'public ingress (dedicated, $2/mo)', v6: 'public ingress (dedicated)', shared_v4: 'public ingress (shared)', private_v6: 'private ingress' } as Record<string, string>
    return out(`VERSION\tIP\tTYPE\tREGION\tCREATED AT\n${list.map((ip) => `${ip.Type.replace(/^shared_|^private_/, '')}\t${ip.Address}\t${label[ip.Type]}\t${ip.Region || 'global'}\t${ageOf()}`).join('\n')}\n\nLearn more about Fly.io public, private, shared and dedicated IP addresses in our docs: https://fly.io/docs/networking/services/\n`)
  }
  if (sub === 'allocate-v6') {
    const { flags } = parseFlags(args, { ...common, private: { value: false } })
    const name = appName(flags)
    await latency('ips')
    await fault('ips allocate-v6', name)
    // flyctl does not look for an existing private address: each call allocates another one.
    const ip = updateState(dir(), (state) => allocate(findApp(state, name), flags.private ? 'private_v6' : 'v6', (flags.region as string) || 'global'))
    return out(`VERSION\tIP\tTYPE\tREGION\tCREATED AT\nv6\t${ip.Address}\t${flags.private ? 'private ingress' : 'public ingress (dedicated)'}\t${ip.Region}\t${ageOf()}\n`)
  }
  if (sub === 'allocate-v4') {
    const { flags } = parseFlags(args, { ...common, shared: { value: false }, yes: { short: 'y', value: false } })
    const name = appName(flags)
    await latency('ips')
    if (!flags.shared && !flags.yes) throw new FlyError('yes flag must be specified when not running interactively')
    await fault('ips allocate-v4', name)
    const ip = updateState(dir(), (state) => allocate(findApp(state, name), flags.shared ? 'shared_v4' : 'v4', (flags.region as string) || 'global'))
    if (flags.shared) return out(`VERSION\tIP\tTYPE\tREGION\nv4\t${ip.Address}\tshared\tglobal\n`)
    return out(`VERSION\tIP\tTYPE\tREGION\tCREATED AT\nv4\t${ip.Address}\tpublic ingress (dedicated, $2/mo)\t${ip.Region}\t${ageOf()}\n`)
  }
  if (sub === 'release') {
    const { flags, positionals } = parseFlags(args, APP_FLAG)
    const name = appName(flags)
    minimumArgs(positionals, 1)
    await latency('ips')
    for (const address of positionals) {
      if (!isIP(address)) throw new FlyError(`Invalid IP address: '${address}'`)
      await fault('ips release', name)
      updateState(dir(), (state) => {
        const app = findApp(state, name)
        const index = app.ips.findIndex((ip) => ip.Address === address)
        if (index < 0) throw new FlyError(`Could not find IP address ${address} for app ${name}`)
        app.ips.splice(index, 1)
      })
      out(`Released ${address} from ${name}\n`)
    }
    return
  }
  throw unknownCommand(sub, 'flyctl ips')
}
