// The Fly simulator: behaves like flyctl v0.4.87 for every command the toolkit uses (arguments,
// JSON shapes and key casing, stderr texts, exit codes), on a model of the Fly platform kept in
// $FLY_SIM_STATE: fleets of machines with auto-stop, rolling updates that stop half-way, IPs and
// Flycast, secrets versions, remote builds from a real build context, Postgres and Managed
// Postgres. Every call is logged with its argv and stdin; faults can be injected per command.
// Layout: server.ts and client.ts (how a `flyctl` process reaches the simulator), call.ts (one
// invocation), dispatch.ts (this file: the command tree), cli.ts (flags, errors), state.ts (the
// model's data), model/ (platform rules), commands/ (one module per command group),
// prisma-standin.ts (what migrate deploy does).
import { FlyError, err, out, unknownCommand } from './cli.ts'
import { apps } from './commands/apps.ts'
import { config } from './commands/config.ts'
import { deploy } from './commands/deploy.ts'
import { ips } from './commands/ips.ts'
import { logs } from './commands/logs.ts'
import { mpg } from './commands/mpg.ts'
import { platform } from './commands/platform.ts'
import { postgres } from './commands/postgres.ts'
import { proxy } from './commands/proxy.ts'
import { secrets } from './commands/secrets.ts'
import { ssh } from './commands/ssh.ts'
import { checks, machine, releases, status } from './commands/status.ts'
import { volumes } from './commands/volumes.ts'
import { call, Exit } from './call.ts'
import { dir, platformPass } from './runtime.ts'
import { loadMinVersions } from './model/secrets.ts'
import { logCall } from './state.ts'

async function dispatch(argv: string[]): Promise<void> {
  const [command, sub, ...rest] = argv
  const afterCommand = argv.slice(1)
  if (command === 'version') return out('flyctl v0.4.87 linux/amd64 Commit: sim BuildDate: 2026-08-20T00:00:00Z\n')
  // internal/config/config.go: FLY_ACCESS_TOKEN, then FLY_API_TOKEN, or -t.
  const { env } = call()
  if (!env.FLY_API_TOKEN && !env.FLY_ACCESS_TOKEN && !argv.some((a) => a === '-t' || a.startsWith('--access-token'))) {
    throw new FlyError("no access token available. Please login with 'flyctl auth login'")
  }
  platformPass()
  switch (command) {
    case 'apps':
    case 'app':
      return apps(sub, rest, releases)
    case 'status':
      return status(afterCommand)
    case 'checks':
      return checks(sub, rest)
    case 'machine':
    case 'machines':
    case 'm':
      return machine(sub, rest)
    case 'releases':
      return releases(afterCommand)
    case 'secrets':
      return secrets(sub, rest, argv)
    case 'config':
      return config(sub, rest)
    case 'deploy':
      return deploy(afterCommand)
    case 'ssh':
      return ssh(sub, rest)
    case 'logs':
      return logs(afterCommand)
    case 'proxy':
      return proxy(afterCommand)
    case 'ips':
    case 'ip':
      return ips(sub, rest)
    case 'postgres':
    case 'pg':
      return postgres(sub, rest)
    case 'mpg':
    case 'managed-postgres':
      return mpg(sub, rest)
    case 'volumes':
    case 'volume':
    case 'vol':
      return volumes(sub, rest)
    case 'platform':
      return platform(sub, rest)
    default:
      throw unknownCommand(command, 'flyctl')
  }
}

/** One flyctl invocation, inside its Call: its exit code (cli.Run's mapping of errors). */
export async function runFlyctl(): Promise<number> {
  const { argv } = call()
  // flyctl reads its config.yml at start (viper): the minimum secrets versions are this call's.
  loadMinVersions()
  // Every invocation is logged when it starts (so hung and interrupted calls show too);
  // `secrets import` is logged once its stdin has been read, with that stdin.
  if (!(argv[0] === 'secrets' && argv[1] === 'import')) logCall(dir(), argv, null, call())
  try {
    await dispatch(argv)
    return 0
  } catch (error) {
    if (error instanceof Exit) return error.code
    if (!(error instanceof FlyError)) throw error
    if (error.message) err(`Error: ${error.message}\n`)
    if (error.extraStderr) err(error.extraStderr)
    if (error.extraStdout) out(error.extraStdout)
    return error.code
  }
}
