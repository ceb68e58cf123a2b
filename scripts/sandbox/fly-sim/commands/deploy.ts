// fly deploy (internal/command/deploy/deploy.go, deploy_build.go, deploy_first.go,
// machines_deploymachinesapp.go, machines_releasecommand.go; flyctl.md §3, §4; fly-platform.md
// §1–§4, §7): working directory and config, the image (a remote build of the context, or an
// existing ref through the registry, which is scoped per organisation), IPs on a first deploy,
// the release record, the release command in a temporary machine, then new machines for an
// empty group or a rolling update of the existing ones; no rollback on failure.
import { resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { call, env } from '../call.ts'
import { APP_FLAG, FlyError, err, out, parseFlags, str } from '../cli.ts'
import { CRASH_RUN_MS, hex, machineConfig, secretsAt, launchSecretsVersion } from '../model/fleet.ts'
import { configDefinition } from '../model/config-json.ts'
import { loadAppConfig, parseDuration } from '../model/flytoml.ts'
import { provisionOnFirstDeploy } from '../model/ips.ts'
import { createMachines, updateMachines } from '../model/rollout.ts'
import { localMinVersion } from '../model/secrets.ts'
import { dir, fault, findApp, latency, requestId, sandbox, timeScale } from '../runtime.ts'
import { readState, updateState } from '../state.ts'
import { runReleaseCommand } from './release-command.ts'
import { remoteBuild } from './remote-build.ts'
import { addRelease, finishRelease } from './releases-model.ts'
import { logLine } from '../model/logs.ts'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const ulid = () => Array.from(randomBytes(26), (b) => CROCKFORD[b % 32]).join('')

const FLAGS = {
  ...APP_FLAG,
  image: { short: 'i', value: true }, 'image-label': { value: true }, 'remote-only': { value: false }, 'local-only': { value: false },
  strategy: { value: true }, 'skip-release-command': { value: false }, detach: { value: false }, 'wait-timeout': { value: true },
  'release-command-timeout': { value: true }, 'build-only': { value: false }, push: { value: false }, yes: { short: 'y', value: false }, now: { value: false },
  env: { short: 'e', value: true, repeat: true }, 'max-unavailable': { value: true }, regions: { value: true }, 'exclude-regions': { value: true }, 'primary-region': { value: true },
  ha: { value: false }, flycast: { value: false }, 'no-public-ips': { value: false }, 'build-arg': { value: true, repeat: true }, dockerfile: { value: true },
  ignorefile: { value: true }, 'build-target': { value: true }, 'deploy-retries': { value: true }, 'smoke-checks': { value: false }, 'dns-checks': { value: false },
  'update-only': { value: false }, depot: { value: true }, label: { value: true, repeat: true },
}

export async function deploy(args: string[]) {
  const { flags, positionals } = parseFlags(args, FLAGS)
  // ChangeWorkingDirectoryToFirstArgIfPresent: the positional working directory comes first.
  const context = resolve(call().cwd, positionals[0] ?? '.')
  const { config, path: configPath } = loadAppConfig(resolve(context, str(flags, 'config') || 'fly.toml'))
  const name = str(flags, 'app') || env('FLY_APP') || config.app
  if (!name) throw new FlyError('the config for your app is missing an app name, add an app field to the fly.toml file or specify with the -a flag')
  for (const kv of (flags.env as string[] | undefined) ?? []) {
    const eq = kv.indexOf('=')
    if (eq > 0) config.env[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  const target = findApp(readState(dir()), name)
  // validation.go: an invalid [[restart]] policy fails the deploy's config validation.
  if (config.invalid.length) throw new FlyError('App configuration is not valid', 1, `Validating ${configPath}\n${config.invalid.join('\n')}\n\n   ✘invalid app configuration\n`)
  // Faults are taken by what they act on: a build (`build`: build-fail, …) or the rollout
  // (`deploy`): a --build-only call never consumes a rollout's fault.
  const f = flags['build-only'] ? undefined : await fault('deploy', name)
  // DeployWithConfig validates the configuration first (stderr text blocks, stdout lines).
  err('==> Verifying app config\n')
  out(`Validating ${configPath}\n✓ Configuration is valid\n`)
  err('--> Verified app config\n')

  // The image: an existing ref resolved in the target app's organisation, or a remote build.
  let image = str(flags, 'image') ?? config.build.image
  if (image) {
    const ref = image
    err(`==> Building image\nSearching for image '${ref}' remotely...\n`)
    const known = readState(dir()).images[ref]
    // resolver.go: `could not find image %q`, wrapped by DeployWithConfig.
    if (!known || known.org !== target.org) throw new FlyError(`failed to fetch an image or build from source: could not find image "${ref}"`)
    err(`image found: img_${known.digest.slice(7, 23)}\n`)
  } else {
    if (flags['local-only']) throw new FlyError('failed to fetch an image or build from source: docker daemon not available')
    image = `registry.fly.io/${name}:${str(flags, 'image-label') || `deployment-${ulid()}`}`
    // deploy.go: Publish = push || !buildOnly; --build-only returns right after the image (no release).
    await remoteBuild({ app: name, org: target.org, ref: image, context, configPath, config, flags, publish: Boolean(flags.push) || !flags['build-only'], fault: await fault('build', name) })
    if (flags['build-only']) return
  }
  // The rollout: the sandbox's `deploy` latency (a build's own time is `build`).
  await latency('deploy')
  const deployedImage = image
  if (f?.kind === 'fail') throw new FlyError(`failed to update machine ${hex(7)}: failed to update VM: request returned non-2xx status, 500 (Request ID: ${requestId()})`)
  if (f?.kind === 'unhealthy' && f.afterMachines === undefined) updateState(dir(), (state) => void (state.images[deployedImage].broken = true))
  if (f?.kind === 'http-5xx') updateState(dir(), (state) => void (state.images[deployedImage].http5xxUntil = f.ms ? Date.now() + f.ms : 0))
  // Fault `crash`: the image's process exits soon after every start (each run lasts 1 s of Fly time).
  if (f?.kind === 'crash') updateState(dir(), (state) => void (state.images[deployedImage].crash = { exitCode: f.exitCode ?? 1, runMs: CRASH_RUN_MS * timeScale(), lines: (f.detail ?? "Error: Cannot find module '/app/dist/main.js'").split('\n') }))

  // DeployWithConfig prints the monitoring line before NewMachineDeployment, which provisions IPs on
  // a first deploy before anything else, even if the deploy fails later (deploy_first.go).
  out(`\nWatch your deployment at https://fly.io/apps/${name}/monitoring\n\n`)
  // deployToMachines: --deploy-retries is read after the build, before NewMachineDeployment (no
  // IPs, no release yet).
  const retries = deployRetries(str(flags, 'deploy-retries') ?? 'auto')
  const first = !target.deployed && !target.machines.some((m) => m.state !== 'destroyed')
  if (first) {
    const kind = flags.flycast ? 'private' : flags['no-public-ips'] ? 'none' : 'public'
    out(updateState(dir(), (state) => provisionOnFirstDeploy(state.apps[name], kind, config.services.length > 0)))
  }
  // createReleaseInBackend stores the whole config (with -a and --env) as the release's definition.
  const definition = configDefinition(config.raw, { app: name, env: config.env })
  const release = updateState(dir(), (state) => {
    state.apps[name].definition = definition
    return addRelease(state.apps[name], 'running', deployedImage)
  })
  const fail = (error: unknown, status: 'failed' | 'interrupted' = 'failed') => {
    updateState(dir(), (state) => finishRelease(state.apps[name], release.Version, status))
    return error
  }
  // A cancelled context marks the release interrupted (DeployMachinesApp), then cli.Run exits 127.
  call().onInterrupt = () => {
    fail(undefined, 'interrupted')
    return 127
  }

  const minSecretsVersion = localMinVersion(name)
  if (config.deploy.releaseCommand && !flags['skip-release-command']) {
    const state = readState(dir())
    const app = state.apps[name]
    const version = updateState(dir(), (s) => launchSecretsVersion(s.apps[name], minSecretsVersion))
    const releaseEnv = { RELEASE_COMMAND: '1', FLY_PROCESS_GROUP: 'fly_app_release_command', PRIMARY_REGION: config.primaryRegion }
    const env = { ...config.env, ...secretsAt(app, version), ...releaseEnv }
    // parseDurationFlag: `none` (and 0) wait for ever (WithAllowInfinite).
    const timeout = str(flags, 'release-command-timeout') || config.deploy.releaseCommandTimeout
    const timeoutMs = timeout === 'none' || /^0+(s|m|h|ms)?$/.test(timeout ?? '') ? Infinity : parseDuration(timeout, 300_000) * timeScale()
    try {
      await runReleaseCommand({
        app: name, command: config.deploy.releaseCommand, image: state.images[deployedImage], env, configEnv: { ...config.env, ...releaseEnv }, secretsVersion: version,
        release, injectedFailure: f?.kind === 'release-command-fail', slowMs: f?.kind === 'release-command-slow' ? (f.ms ?? 60_000) : undefined, region: config.primaryRegion, timeoutMs,
      })
    } catch (error) {
      throw fail(error)
    }
  }

  const strategy = str(flags, 'strategy') || config.deploy.strategy || 'rolling'
  const rollout = {
    app: name,
    config: machineConfig(config, deployedImage, release.Version, release.ID),
    region: str(flags, 'primary-region') || config.primaryRegion,
    releaseVersion: release.Version,
    minSecretsVersion,
    waitMs: parseDuration(str(flags, 'wait-timeout') || config.deploy.waitTimeout, 300_000) * timeScale(),
    strategy,
    skipHealthChecks: Boolean(flags.detach),
    skipSmokeChecks: Boolean(flags.detach) || flags['smoke-checks'] === false,
    maxUnavailable: Number(str(flags, 'max-unavailable') ?? config.deploy.maxUnavailable ?? 0.33),
    healthyAfterMs: f?.kind === 'healthy-after-ms' ? (f.ms ?? 0) : 0,
    crashAfter: f?.kind === 'unhealthy' ? f.afterMachines : undefined,
    ha: flags.ha !== false,
  }
  if (f?.kind === 'no-op') {
    // The failure mode of flyctl#2651: a deploy that changes nothing yet exits 0.
    updateState(dir(), (state) => finishRelease(state.apps[name], release.Version, 'complete'))
    return out(`\nVisit your newly deployed app at https://${name}.fly.dev/\n\n`)
  }
  try {
    const live = readState(dir()).apps[name].machines.filter((m) => m.state !== 'destroyed')
    if (live.length === 0) {
      // warnAboutProcessGroupChanges: the header depends on isFirstDeploy, not on the machine count.
      out(`${first ? 'This deployment will:' : 'Process groups have changed. This will:'}\n * create ${config.mounts.length || !rollout.ha ? '1 "app" machine' : config.services.length ? '2 "app" machines' : '1 "app" machine and 1 standby machine for it'}\n\n`)
      await createMachines(rollout)
      // The proxy uses the most restrictive auto_stop_machines of the group's services (slices.Min: off < stop < suspend).
      const rank = (a: boolean | 'suspend') => (a === false ? 0 : a === true ? 2 : 1)
      const strictest = config.services.length ? config.services.map((s) => s.autostop).sort((a, b) => rank(a) - rank(b))[0] : false
      if (strictest === true) out(`\n\nNOTE: The machines for [app] have services with 'auto_stop_machines = "stop"' that will be stopped when idling\n\n`)
      if (strictest === 'suspend') out(`\n\nNOTE: The machines for [app] have services with 'auto_stop_machines = "suspend"' that will be suspended when idling\n\n`)
    } else if (retries > 0) {
      // updateExistingMachinesWRecovery (plan.go): no "Updating existing machines" line, machines
      // in map order, and a failed check is an unrecoverableError wrapped per machine, its chain
      // still holding context.DeadlineExceeded: exit 126 (flyctl-facts item 3). Its own progress
      // lines and its random order are not modelled: the rolling ones stand in.
      await updateMachines(rollout).catch((error: unknown) => {
        const health = error instanceof FlyError && /^timeout reached waiting for health checks to pass for machine (\w+):/.exec(error.message)
        throw health ? new FlyError(`failed to update machine ${health[1]}: Unrecoverable error: ${error.message}`, 126) : error
      })
    } else {
      out(`Updating existing machines in '${name}' with ${strategy} strategy\n`)
      await updateMachines(rollout)
    }
  } catch (error) {
    throw fail(error)
  }
  updateState(dir(), (state) => {
    const app = state.apps[name]
    finishRelease(app, release.Version, 'complete')
    app.deployed = true
    app.deployedConfig = config
    const id = app.machines.find((m) => m.state === 'started')?.id ?? app.machines[0]?.id ?? 'none'
    app.logs.push(logLine(id, rollout.region, 'info', 'Starting init (commit: sim)...'), logLine(id, rollout.region, 'info', `listening on 0.0.0.0:${config.services[0]?.internal_port ?? 8080} (image ${deployedImage})`))
  })
  // checkDNS: only after success, and only for an app with a URL and at least one IP.
  const url = config.url?.replace('{app}', name) ?? null
  if (!flags.detach && flags['dns-checks'] !== false && url && readState(dir()).apps[name].ips.length) err(`Checking DNS configuration for ${new URL(url).hostname}\n✓ DNS configuration verified\n`)
  if (env('FLY_EMIT_RELEASE_JSON')) out(JSON.stringify({ id: release.ID, version: release.Version, image_ref: deployedImage }) + '\n')
  // DeployWithConfig's closing line: public needs an app URL (an app without http services prints none).
  if (flags.flycast) out(`\nYour your newly deployed app is available in the organizations' private network under http://${name}.flycast\n`)
  else if (flags['no-public-ips']) out('\nYour app is deployed but does not have a public or private IP address\n')
  else if (url) out(`\nVisit your newly deployed app at ${url}\n\n`)

}

/**
 * deployToMachines' --deploy-retries (flyctl-facts item 3): `auto` asks LaunchDarkly (the sandbox's
 * deployRetriesAuto, default 0); otherwise strconv.Atoi must accept it (an optional sign, digits,
 * within int64) and it must not be negative.
 */
function deployRetries(value: string): number {
  if (value === 'auto') return sandbox().deployRetriesAuto ?? 0
  const invalid = new FlyError("--deploy-retries must be set to a positive integer, 0, or 'auto'")
  if (!/^[+-]?\d+$/.test(value)) throw invalid
  const n = BigInt(value)
  if (n < 0n || n > 9223372036854775807n) throw invalid
  return Number(n)
}
