// fly apps create | list | destroy (internal/command/apps/create.go, list.go, destroy.go; flyctl.md §1,
// flyctl facts 8).
import { env } from '../call.ts'
import { FlyError, JSON_FLAG, NON_INTERACTIVE, err, json, out, parseFlags, str, unknownCommand } from '../cli.ts'
import { newApp } from '../model/apps.ts'
import { stopRestored } from '../model/restores.ts'
import { dir, fault, latency, requestId, sandbox } from '../runtime.ts'
import { type SimApp, readState, updateState } from '../state.ts'

export function orgJson(slug: string) {
  return { ID: `org_${slug}`, InternalNumericID: '1234', Name: slug, Slug: slug, RawSlug: slug, PaidPlan: true }
}

/** fly.App (GraphQL, capitalised keys; the fields apps list fetches are meaningful). */
export function appJson(app: SimApp) {
  const current = [...app.releases].sort((a, b) => b.Version - a.Version)[0]
  return {
    ID: app.id, Name: app.name, Status: app.deployed ? 'deployed' : 'pending', Deployed: app.deployed,
    Hostname: `${app.name}.fly.dev`, AppURL: `https://${app.name}.fly.dev`, Version: current?.Version ?? 0, NetworkID: 0, Network: 'default',
    Organization: orgJson(app.org), PlatformVersion: 'machines', PostgresAppRole: app.postgres ? { Name: 'postgres_cluster' } : null,
    Secrets: null, CurrentRelease: current ? { Version: current.Version, Status: current.Status, CreatedAt: current.CreatedAt } : null,
  }
}

/** internal/prompt/prompt.go Org: auto-select the only (personal) org, else a non-interactive error. */
export function chooseOrg(given: string | undefined): string {
  const orgs = sandbox().orgs ?? ['microbima']
  let org = given || env('FLY_ORG') || env('FLY_ORGANIZATION')
  if (!org) {
    if (orgs.length !== 1) throw new FlyError('org slug must be specified when not running interactively')
    org = orgs[0]
    err(`automatically selected personal organization: ${org}\n`)
  }
  if (!orgs.includes(org)) throw new FlyError(`organization ${org} not found`)
  return org
}

async function create(args: string[]) {
  const { flags, positionals } = parseFlags(args, { name: { value: true }, org: { short: 'o', value: true }, 'generate-name': { value: false }, network: { value: true }, save: { value: false }, yes: { short: 'y', value: false }, ...JSON_FLAG })
  await latency('apps')
  const name = positionals[0] ?? str(flags, 'name')
  if (positionals[0] && flags.name && flags.name !== positionals[0]) throw new FlyError(`two app names specified ${positionals[0]} and ${flags.name}, only one may be specified`)
  if (!name) throw new FlyError(NON_INTERACTIVE)
  const org = chooseOrg(str(flags, 'org'))
  await fault('apps', name)
  const app = updateState(dir(), (state) => {
    if (state.apps[name] || sandbox().takenNames?.includes(name)) {
      throw new FlyError(`Validation failed: Name has already been taken (Request ID: ${requestId()})`, 1, '', 'App names are unique across all of Fly.io, not just your organization, so this name may be held by an app you cannot see. Try a different name.\n')
    }
    return (state.apps[name] = newApp(name, org))
  })
  if (flags.json) json(appJson(app))
  else out(`New app created: ${name}\n`)
}

async function list(args: string[]) {
  const { flags } = parseFlags(args, { org: { short: 'o', value: true }, quiet: { short: 'q', value: false }, ...JSON_FLAG })
  await latency('apps')
  await fault('apps')
  const apps = Object.values(readState(dir()).apps).filter((a) => !flags.org || a.org === flags.org)
  if (flags.json) json(apps.map(appJson))
  else if (flags.quiet) out(apps.map((a) => a.name).join('\n') + (apps.length ? '\n' : ''))
  else out(apps.length ? apps.map((a) => `${a.name}\t${a.org}\t${appJson(a).Status}`).join('\n') + '\n' : 'No apps found\n')
}

/** destroy.go RunDestroy: for each name in turn, without --yes the warning and the non-interactive
 * refusal before any lookup (an unknown app is refused the same way); then GetApp (an unknown app
 * stops the run there), and the app is gone with its machines, IPs, secrets and volumes (and the
 * database the simulator restored for it). */
async function destroy(args: string[]) {
  const { flags, positionals } = parseFlags(args, { yes: { short: 'y', value: false } })
  if (!positionals.length) throw new FlyError('no app names provided')
  await latency('apps')
  for (const name of positionals) {
    if (!flags.yes) {
      err('Destroying an app is not reversible.\n')
      throw new FlyError('yes flag must be specified when not running interactively')
    }
    await fault('apps destroy', name)
    const gone = updateState(dir(), (state) => {
      if (!state.apps[name]) return false
      delete state.apps[name]
      for (const [id, volume] of Object.entries(state.volumes)) if (volume.app === name) delete state.volumes[id]
      return true
    })
    if (!gone) throw new FlyError(`Could not find App "${name}"`)
    await stopRestored(dir(), name)
    out(`Destroyed app ${name}\n`)
  }
}

export async function apps(sub: string | undefined, args: string[], releases: (args: string[]) => Promise<void>) {
  if (sub === 'create') return create(args)
  if (sub === 'list' || sub === 'ls') return list(args)
  if (sub === 'releases') return releases(args)
  if (['destroy', 'delete', 'remove', 'rm'].includes(sub ?? '')) return destroy(args)
  throw unknownCommand(sub, 'flyctl apps')
}
