// fly volumes list | snapshots create/list (internal/command/volumes/list.go, snapshots/*.go;
// flyctl.md §8.4–§8.6): snapshots are asynchronous and `create` returns no ID.
import { APP_FLAG, FlyError, JSON_FLAG, appName, err, json, out, parseFlags, unknownCommand } from '../cli.ts'
import { hex, nowIso } from '../model/fleet.ts'
import { dir, fault, findApp, latency, requestId } from '../runtime.ts'
import { readState, updateState } from '../state.ts'

export async function volumes(sub: string | undefined, args: string[]) {
  if (sub === 'list' || sub === 'ls') {
    const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG, all: { value: false } })
    const name = appName(flags)
    await latency('volumes')
    await fault('volumes', name)
    const state = readState(dir())
    findApp(state, name)
    const list = Object.values(state.volumes).filter((v) => v.app === name).map((v) => ({ id: v.id, name: v.name, state: 'created', size_gb: v.size_gb, region: v.region, zone: '2824', encrypted: true, attached_machine_id: v.attached_machine_id, attached_alloc_id: null, created_at: v.created_at, host_dedication_id: '', snapshot_retention: 5, auto_backup_enabled: true }))
    if (flags.json) return json(list)
    return out(list.length ? `ID\tSTATE\tNAME\tSIZE\tREGION\n${list.map((v) => `${v.id}\t${v.state}\t${v.name}\t${v.size_gb}GB\t${v.region}`).join('\n')}\n` : 'No volumes found\n')
  }
  if (sub === 'snapshots' || sub === 'snapshot') {
    const [action, ...rest] = args
    const { flags, positionals } = parseFlags(rest, { ...APP_FLAG, ...JSON_FLAG })
    const volumeId = positionals[0]
    if (!volumeId) throw new FlyError('accepts 1 arg(s), received 0')
    await latency('volumes')
    if (action === 'create') {
      await fault('volumes snapshots create', flags.app as string | undefined)
      updateState(dir(), (state) => {
        const volume = state.volumes[volumeId]
        if (!volume) throw new FlyError(`failed to create volume snapshot: volume ${volumeId} not found (Request ID: ${requestId()})`)
        volume.snapshots.push({ id: `vs_${hex(8)}`, created_at: nowIso() })
      })
      return out(`Scheduled to snapshot volume ${volumeId}\n`)
    }
    if (action === 'list' || action === 'ls') {
      const volume = readState(dir()).volumes[volumeId]
      if (!volume) throw new FlyError(`volume ${volumeId} not found`)
      const list = volume.snapshots.map((s) => ({ id: s.id, size: 1024, volume_size: volume.size_gb, digest: hex(8), created_at: s.created_at, status: 'created', retention_days: 5 }))
      if (flags.json) return json(list)
      if (!list.length) return err(`No snapshots available for volume ${volumeId}\n`)
      return out(list.map((s) => `${s.id}\t${s.status}\t${s.created_at}`).join('\n') + '\n')
    }
    throw unknownCommand(action, 'flyctl volumes snapshots')
  }
  throw unknownCommand(sub, 'flyctl volumes')
}
