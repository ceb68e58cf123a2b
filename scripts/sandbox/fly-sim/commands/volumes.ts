// fly volumes list | snapshots create/list (internal/command/volumes/list.go, snapshots/*.go;
// flyctl.md §8.4–§8.6, flyctl facts 7): snapshots are asynchronous and `create` returns no ID. A
// new snapshot is listed as pending for a while (sandbox `snapshotMs`, scaled by timeScale):
// waiting, then running, then created. Harsher reading of what Fly leaves uncertain: its id stays
// "" until it is created (the table shows "(pending)"), and while waiting its created_at is Go's
// zero time, so flyctl's oldest-first sort lists it first.
import { APP_FLAG, FlyError, JSON_FLAG, appName, err, json, out, parseFlags, unknownCommand } from '../cli.ts'
import { hex, nowIso } from '../model/fleet.ts'
import { dir, fault, findApp, latency, requestId, sandbox, timeScale } from '../runtime.ts'
import { copyForBackup } from '../model/restores.ts'
import { type SimSnapshot, type SimVolume, readState, updateState } from '../state.ts'

/** How long a new snapshot stays pending, before timeScale: a small volume's first snapshot. */
const SNAPSHOT_MS = 30_000
const ZERO_TIME = '0001-01-01T00:00:00Z'

/** Snapshots move on with time: waiting → running (after a quarter of the wait) → created | failed. */
function settle(snapshot: SimSnapshot, now = Date.now()): void {
  if (snapshot.status === 'created' || snapshot.status === 'failed') return
  if (snapshot.readyAt >= 0 && now >= snapshot.readyAt) {
    snapshot.status = snapshot.fails ? 'failed' : 'created'
    if (!snapshot.fails) snapshot.size = 1024 * 1024 * 24
  } else if (now >= snapshot.runningAt) snapshot.status = 'running'
}

/** fly-go VolumeSnapshot as flaps answers it (no omitempty: id "" while pending). */
function snapshotJson(s: SimSnapshot, volume: SimVolume) {
  const listed = s.status === 'created'
  return { id: listed ? s.id : '', size: s.size, volume_size: volume.size_gb * 1024 ** 3, digest: listed ? s.digest : '', created_at: s.status === 'waiting' ? ZERO_TIME : s.created_at, status: s.status, retention_days: 5 }
}

/** go-humanize IBytes: 1024-based, one decimal below 10. */
function iBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) (value /= 1024), unit++
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${units[unit]}`
}

/** go-humanize Time, for the past: "now", "1 second ago", "N minutes ago", … */
function ago(iso: string): string {
  if (iso === ZERO_TIME) return '' // timeToString: a zero time is an empty cell
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000)
  const steps: [number, string, number][] = [[60, 'second', 1], [3600, 'minute', 60], [86400, 'hour', 3600], [Infinity, 'day', 86400]]
  if (s < 1) return 'now'
  for (const [limit, unit, size] of steps) {
    if (s < limit) {
      const n = Math.floor(s / size)
      return `${n} ${unit}${n === 1 ? '' : 's'} ago`
    }
  }
  return ''
}

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
      // Faults: snapshot-fail (it is listed, then ends `failed`), snapshot-stuck (it never leaves
      // `running`); `ms` overrides how long it stays pending.
      const f = await fault('volumes snapshots create', flags.app as string | undefined)
      const pendingMs = f?.ms ?? (sandbox().snapshotMs ?? SNAPSHOT_MS) * timeScale()
      const id = `vs_${hex(10)}`
      // The snapshot is the volume as it is now: the database on it is copied at once, so rows
      // written from here on are not in what a restore brings back (model/restores.ts).
      const requested = nowIso()
      const owner = readState(dir()).volumes[volumeId]?.app
      const copied = owner ? await copyForBackup(dir(), id, sandbox().postgres?.[owner]) : false
      updateState(dir(), (state) => {
        const volume = state.volumes[volumeId]
        if (!volume) throw new FlyError(`failed to create volume snapshot: volume ${volumeId} not found (Request ID: ${requestId()})`)
        const now = Date.now()
        volume.snapshots.push({
          id, volume: volumeId, status: 'waiting', created_at: requested, size: 0, digest: hex(16),
          runningAt: now + pendingMs / 4, readyAt: f?.kind === 'snapshot-stuck' ? -1 : now + pendingMs, ...(f?.kind === 'snapshot-fail' ? { fails: true } : {}), copied,
        })
      })
      return out(`Scheduled to snapshot volume ${volumeId}\n`)
    }
    if (action === 'list' || action === 'ls') {
      await fault('volumes snapshots list', flags.app as string | undefined)
      const volume = updateState(dir(), (state) => {
        const v = state.volumes[volumeId]
        for (const s of v?.snapshots ?? []) settle(s)
        return v
      })
      if (!volume) throw new FlyError(`failed retrieving snapshots: volume ${volumeId} not found (Request ID: ${requestId()})`)
      // runList: sorted by created_at, oldest first (a waiting snapshot's zero time sorts first).
      const list = volume.snapshots.map((s) => snapshotJson(s, volume)).sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at))
      if (flags.json) return json(list)
      if (!list.length) return err(`No snapshots available for volume ${volumeId}\n`)
      const rows = list.map((s) => [s.id || '(pending)', s.status, iBytes(s.size), iBytes(s.volume_size), ago(s.created_at), String(s.retention_days)])
      const total = list.reduce((sum, s) => sum + s.size, 0)
      return out(`Snapshots\nID\tSTATUS\tSTORED SIZE\tVOL SIZE\tCREATED AT\tRETENTION DAYS\n${rows.map((r) => r.join('\t')).join('\n')}\n\nTotal stored size: ${iBytes(total)}\n`)
    }
    throw unknownCommand(action, 'flyctl volumes snapshots')
  }
  throw unknownCommand(sub, 'flyctl volumes')
}
