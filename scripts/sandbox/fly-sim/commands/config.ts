// fly config show (internal/command/config/show.go runShow; internal/appconfig/remote.go
// FromRemoteApp, serde.go WriteTo; flyctl-facts item 1): the current release's definition, or with
// --local the local fly.toml through the same serialiser. JSON (2-space, with blank lines before
// sections) by default; --toml and --yaml add a header with the time.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { stringify as toToml } from 'smol-toml'
import { stringify as toYaml } from 'yaml'
import { call } from '../call.ts'
import { APP_FLAG, FlyError, appName, out, parseFlags, str, unknownCommand } from '../cli.ts'
import { configDefinition, renderConfigJson } from '../model/config-json.ts'
import { parseAppConfig } from '../model/flytoml.ts'
import { dir, fault, latency, requestId } from '../runtime.ts'
import { readState } from '../state.ts'

function render(definition: Record<string, unknown>, format: 'json' | 'toml' | 'yaml'): string {
  if (format === 'json') return renderConfigJson(definition)
  const header = `# fly.${format} app configuration file generated for ${definition.app ?? ''} on ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}\n#\n# See https://fly.io/docs/reference/configuration/ for information about how to use this file.\n#\n\n`
  return header + (format === 'toml' ? `${toToml(definition)}\n` : toYaml(definition))
}

async function show(args: string[]) {
  const { flags, positionals } = parseFlags(args, { ...APP_FLAG, local: { value: false }, yaml: { value: false }, toml: { value: false } })
  if (positionals.length) throw unknownCommand(positionals[0], 'flyctl config show') // cobra.NoArgs
  const name = appName(flags)
  await latency('config')
  await fault('config show', name)
  const format = flags.yaml ? 'yaml' : flags.toml ? 'toml' : 'json'
  if (flags.local) {
    // LoadAppConfigIfPresent: -c (a file, or a folder holding fly.toml), else ./fly.toml; its own `app`.
    const given = resolve(call().cwd, str(flags, 'config') || 'fly.toml')
    const path = [given, join(given, 'fly.toml')].find((p) => existsSync(p) && statSync(p).isFile())
    if (!path) throw new FlyError('No local fly.toml found')
    return out(render(configDefinition(parseAppConfig(readFileSync(path, 'utf8'), path).raw), format))
  }
  const app = readState(dir()).apps[name]
  // A missing app: the flaps text third-party logs show (flyctl-facts item 1; the path is UNCERTAIN).
  if (!app) throw new FlyError(`app not found (Request ID: ${requestId()})`)
  // currentReleaseUnprocessed.configDefinition; without one, a config synthesised from the machines.
  const definition = app.definition ?? (app.deployedConfig ? configDefinition(app.deployedConfig.raw ?? {}, { app: name }) : undefined)
  if (definition) return out(render({ ...definition, app: name }, format))
  const machines = app.machines.filter((m) => m.state !== 'destroyed' && m.config.metadata.fly_platform_version === 'v2')
  if (!machines.length) throw new FlyError('failed to grab app config from existing machines, error: could not create a fly.toml from any machines :-(\nNo machines configured for this app')
  return out(render({ app: name, primary_region: machines[0].config.env.PRIMARY_REGION ?? machines[0].region }, format))
}

export async function config(sub: string | undefined, args: string[]) {
  if (sub === 'show' || sub === 'display') return show(args)
  throw unknownCommand(sub, 'flyctl config')
}
