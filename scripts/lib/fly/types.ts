// The JSON shapes of flyctl v0.4.87 that the toolkit reads (flyctl.md §0.2: GraphQL types have
// capitalised keys, Machines API types snake_case). Only the fields the toolkit uses are typed.

export interface FlyApp {
  Name: string
  Status: string
  Deployed: boolean
  Hostname: string
  Organization?: { Slug: string }
}

export interface FlyCheck {
  name: string
  status: 'passing' | 'warning' | 'critical' | string
  output?: string
}

export interface FlyService {
  internal_port?: number
  autostop?: boolean | 'suspend'
  autostart?: boolean
  min_machines_running?: number
}

/** fly-go MachineExitEvent (zero values omitted). */
export interface FlyExitEvent {
  exit_code?: number
  oom_killed?: boolean
  requested_stop?: boolean
  restarting?: boolean
  exited_at?: string
}

/** fly-go MachineEvent: newest first in a machine's `events`; `timestamp` in Unix milliseconds. */
export interface FlyMachineEvent {
  type?: string
  status?: string
  source?: string
  timestamp?: number
  request?: { exit_event?: FlyExitEvent; MonitorEvent?: { exit_event?: FlyExitEvent }; restart_count?: number }
}

export interface FlyMachine {
  id: string
  state: string
  region: string
  config?: { image?: string; metadata?: Record<string, string>; services?: FlyService[]; standbys?: string[]; env?: Record<string, string>; restart?: { policy?: string; max_retries?: number } }
  checks?: FlyCheck[]
  created_at?: string
  updated_at?: string
  events?: FlyMachineEvent[]
}

export interface FlyStatus {
  Name: string
  Hostname: string
  Deployed: boolean
  Version: number
  Machines: FlyMachine[] | null
}

export interface FlyRelease {
  ID: string
  Version: number
  Status: string
  Description: string
  ImageRef: string
  CreatedAt: string
  User?: { Name?: string; Email?: string }
}

export interface FlySecret {
  name: string
  digest: string
  status?: string
}

export interface FlyVolume {
  id: string
  name: string
  state: string
  size_gb: number
  region: string
  attached_machine_id: string | null
}

export interface FlySnapshot {
  id: string
  created_at: string
  status: string
}

export interface FlyIp {
  ID: string
  Address: string
  Type: string
  Region: string
}

export interface FlyRegion {
  code: string
  name: string
  mpg_available?: boolean
}

export interface MpgCluster {
  id: string
  name: string
  region: string
  status: string
  organization?: { Slug?: string }
  attached_apps: { name: string }[] | null
}

export interface MpgBackup {
  id: string
  status: string
  type: string
  start: string
  stop: string
}

/** `mpg status --json` (uiex/mpg/v2 GetClusterById): the cluster, and its default credentials. */
export interface MpgStatus {
  data: MpgCluster & { ip_assignments?: { direct?: string } }
  credentials?: { status?: string; user?: string; password?: string; dbname?: string; pgbouncer_uri?: string }
}
