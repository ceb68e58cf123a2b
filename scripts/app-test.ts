// `make app-test`: the applications' own tests, the `test` command of infra/fly/settings.json, run
// in the pnpm workspace after a frozen install. CI runs it before any deploy: the toolkit's own
// tests say nothing about the apps.
import { main } from './lib/core/cli.js'
import { CommandError, UserError } from './lib/core/errors.js'
import { resolveOnPath } from './lib/fly/flyctl.js'
import { loadSettings, workspaceDir } from './lib/core/settings.js'

void main({ name: 'app-test', usage: 'app-test [--verbose]', environment: false }, async (ctx) => {
  const settings = loadSettings()
  const cwd = workspaceDir(settings)
  const pnpm = resolveOnPath('pnpm') ?? resolveOnPath('corepack')
  if (!pnpm) throw new UserError('pnpm not found: enable it with corepack enable pnpm (Node ships corepack up to 24), or npm install --global pnpm')
  const viaCorepack = pnpm.endsWith('corepack')
  try {
    await ctx.exec.run({ argv: viaCorepack ? [pnpm, 'pnpm', 'install', '--frozen-lockfile'] : [pnpm, 'install', '--frozen-lockfile'], write: false, cwd, stream: true, timeoutMs: 20 * 60_000 })
    await ctx.exec.run({ argv: ['sh', '-c', settings.test], write: false, cwd, stream: true, timeoutMs: 60 * 60_000 })
  } catch (error) {
    if (error instanceof CommandError) throw new CommandError(error.command, error.status, '', error.reason, 'the applications\' tests failed: fix them before deploying')
    throw error
  }
  ctx.log.ok(`the applications' tests passed (${settings.test}, in ${settings.workspace})`)
})
