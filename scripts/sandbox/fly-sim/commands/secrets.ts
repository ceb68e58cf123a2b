// fly secrets import | set | unset | list | deploy | sync (internal/command/secrets/*.go,
// internal/appsecrets; flyctl.md §2, fly-platform.md §6). Values are stored before any restart;
// a failed restart leaves them stored. Values are never printed back.
import { call } from '../call.ts'
import { APP_FLAG, FlyError, JSON_FLAG, appName, err, json, out, parseFlags, unknownCommand } from '../cli.ts'
import { hex } from '../model/fleet.ts'
import { parseDuration } from '../model/flytoml.ts'
import { updateMachines } from '../model/rollout.ts'
import { currentSecrets, localMinVersion, recordMinVersion, secretStatus, updateSecrets } from '../model/secrets.ts'
import { dir, fault, findApp, latency, requestId, timeScale } from '../runtime.ts'
import { logCall, readState, updateState } from '../state.ts'
import { parseSecrets } from '../../../lib/secrets/flyctl-parser.ts'
import { addRelease, finishRelease } from './releases-model.ts'

const COMMON = { ...APP_FLAG, stage: { value: false }, detach: { value: false }, 'dns-checks': { value: false } }

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of call().stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** internal/sentry/sentry.go printError, after main.go recovers a panic (exit 3). */
function panic(message: string): FlyError {
  return new FlyError('', 3, `\x1b[31mOops, something went wrong! Could you try that again?\x1b[0m\n\n${message}\n\ngoroutine 1 [running]:\ngithub.com/superfly/flyctl/internal/command/secrets.parseSecrets(...)\n\tgithub.com/superfly/flyctl/internal/command/secrets/parser.go:67\n`)
}

/** appsecrets.Update, then (unless --stage) a restart-only deployment (DeploySecrets). */
async function store(sub: string, name: string, set: Record<string, string>, unset: string[], stage: boolean, detach: boolean, dnsChecks = true) {
  await latency('secrets')
  const f = await fault(`secrets ${sub}`, name)
  if (f?.kind === 'fail') throw new FlyError(`failed to update app secrets: internal server error (Request ID: ${requestId()})`)
  const { version, machines } = updateState(dir(), (state) => {
    const app = findApp(state, name)
    return { version: updateSecrets(app, set, unset), machines: app.machines.filter((m) => m.state !== 'destroyed').length }
  })
  recordMinVersion(name, version)
  if (f?.kind === 'drop') {
    // A write the API acknowledged but did not keep (the digest will not move).
    updateState(dir(), (state) => {
      const app = findApp(state, name)
      app.secretsLog = app.secretsLog.filter((e) => !(e.version === version && (f.detail === undefined || e.name === f.detail)))
    })
  }
  if (stage) return out('Secrets have been staged, but not set on VMs. Deploy or update machines in this app for the secrets to take effect.\n')
  if (!machines) return out('Secrets are staged for the first deployment\n')
  await restartOnly(name, f?.kind === 'restart-fail', detach, dnsChecks)
}

/**
 * A restart-only deployment (secrets.go DeploySecrets → DeployMachinesApp with RestartOnly): the
 * deployed config, a new release, the rolling rules (stopped machines stay stopped), no release
 * command, no "Visit" line; DNS checks after success unless --detach or --dns-checks=false.
 */
async function restartOnly(name: string, failRestart: boolean, detach: boolean, dnsChecks = true) {
  const state = readState(dir())
  const app = findApp(state, name)
  const live = app.machines.filter((m) => m.state !== 'destroyed')
  if (!live.length || !app.deployed) throw new FlyError('no machines available to deploy', 1, '', "'fly secrets deploy' will only work if the app has been deployed and there are machines available\n\nTry 'fly deploy' first\n\n")
  const image = [...app.releases].sort((a, b) => b.Version - a.Version).find((r) => r.Status === 'complete')?.ImageRef ?? live[0].image
  const release = updateState(dir(), (s) => addRelease(s.apps[name], 'running', image, 'Secrets updated'))
  if (failRestart) {
    updateState(dir(), (s) => finishRelease(s.apps[name], release.Version, 'failed'))
    throw new FlyError(`failed to update machine ${live[0].id}: failed to update VM ${live[0].id}: request returned non-2xx status, 500 (Request ID: ${requestId()})`)
  }
  const strategy = app.deployedConfig?.deploy.strategy || 'rolling'
  out(`Updating existing machines in '${name}' with ${strategy} strategy\n`)
  try {
    await updateMachines(
      {
        app: name, config: live[0].config, region: live[0].region, releaseVersion: release.Version, minSecretsVersion: localMinVersion(name),
        waitMs: parseDuration(app.deployedConfig?.deploy.waitTimeout, 300_000) * timeScale(), strategy, skipHealthChecks: detach, skipSmokeChecks: false,
        maxUnavailable: app.deployedConfig?.deploy.maxUnavailable ?? 0.33, healthyAfterMs: 0, ha: true,
      },
      (m) => ({ ...m.config, metadata: { ...m.config.metadata, fly_release_version: String(release.Version), fly_release_id: release.ID } }),
    )
  } catch (error) {
    updateState(dir(), (s) => finishRelease(s.apps[name], release.Version, 'failed'))
    throw error
  }
  updateState(dir(), (s) => finishRelease(s.apps[name], release.Version, 'complete'))
  const url = app.deployedConfig?.url?.replace('{app}', name)
  if (!detach && dnsChecks && url && app.ips.length) err(`Checking DNS configuration for ${new URL(url).hostname}\n✓ DNS configuration verified\n`)
}

export async function secrets(sub: string | undefined, args: string[], argv: string[]) {
  if (sub === 'import') {
    const { flags } = parseFlags(args, COMMON)
    const name = appName(flags)
    findApp(readState(dir()), name) // the app is looked up before stdin is read
    const input = await readStdin()
    logCall(dir(), argv, input.toString('utf8'), call())
    const parsed = parseSecrets(input)
    if (parsed.kind === 'panic') throw panic(parsed.message)
    if (parsed.kind === 'error') throw new FlyError(`Failed to parse secrets from stdin: ${parsed.message}`)
    if (!parsed.secrets.size) throw new FlyError('requires at least one SECRET=VALUE pair')
    return store('import', name, Object.fromEntries(parsed.secrets), [], Boolean(flags.stage), Boolean(flags.detach), flags['dns-checks'] !== false)
  }
  if (sub === 'set') {
    const { flags, positionals } = parseFlags(args, COMMON)
    const name = appName(flags)
    if (!positionals.length) throw new FlyError('requires at least one SECRET=VALUE pair')
    const values: Record<string, string> = {}
    for (const arg of positionals) {
      const eq = arg.indexOf('=')
      if (eq < 0) throw new FlyError(`could not parse secrets: '${arg}': must be in the format NAME=VALUE`)
      values[arg.slice(0, eq)] = arg.slice(eq + 1)
    }
    return store('set', name, values, [], Boolean(flags.stage), Boolean(flags.detach), flags['dns-checks'] !== false)
  }
  if (sub === 'unset') {
    const { flags, positionals } = parseFlags(args, COMMON)
    const name = appName(flags)
    if (!positionals.length) throw new FlyError('requires at least 1 arg(s), only received 0')
    return store('unset', name, {}, positionals, Boolean(flags.stage), Boolean(flags.detach), flags['dns-checks'] !== false)
  }
  if (sub === 'list' || sub === 'ls') {
    const { flags } = parseFlags(args, { ...APP_FLAG, ...JSON_FLAG })
    const name = appName(flags)
    await latency('secrets')
    const f = await fault('secrets list', name)
    const app = findApp(readState(dir()), name)
    // Fault `json-null`: Go renders a nil slice as null, not [].
    if (f?.kind === 'json-null' && flags.json) return out('null\n')
    const list = [...currentSecrets(app)].sort(([a], [b]) => a.localeCompare(b)).map(([k, s]) => ({ name: k, digest: s.digest, status: secretStatus(app, s.at) }))
    if (flags.json) return json(list)
    return out(`NAME\tDIGEST\tSTATUS\n${list.map((s) => `${s.status === 'Staged' ? '* ' : s.status === 'Partial' ? '! ' : ''}${s.name}\t${s.digest}\t${s.status}`).join('\n')}\n`)
  }
  if (sub === 'deploy') {
    const { flags } = parseFlags(args, { ...APP_FLAG, detach: { value: false }, 'dns-checks': { value: false } })
    const name = appName(flags)
    await latency('secrets')
    const f = await fault('secrets deploy', name)
    return restartOnly(name, f?.kind === 'restart-fail', Boolean(flags.detach), flags['dns-checks'] !== false)
  }
  if (sub === 'sync') {
    // sync.go: unsets a random secret that does not exist to learn the latest version; prints nothing.
    const { flags } = parseFlags(args, COMMON)
    const name = appName(flags)
    await latency('secrets')
    await fault('secrets sync', name)
    const version = updateState(dir(), (state) => updateSecrets(findApp(state, name), {}, [`BogusDummySecret_${hex(8)}`]))
    recordMinVersion(name, version)
    return
  }
  throw unknownCommand(sub, 'flyctl secrets')
}
