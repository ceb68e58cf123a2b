// Section 6.1/6.2 of the deployment strategy: create the environment's three Fly apps.
// Lists what exists first and creates only the missing ones, so a second run creates nothing.
// DB=1 also creates the environment's Postgres app and attaches it to the internal API; both
// print passwords, so their output is never echoed.
import { envFlag, main } from './lib/cli.js'
import { flyAppName, databaseAppName, type AppKey } from './lib/names.js'
import { loadSettings } from './lib/settings.js'
import { table } from './lib/log.js'
import { envFilePath } from './lib/config.js'
import { registerSecret } from './lib/secrets-mask.js'
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

/** Keeps the attach's connection string for the toolkit's own checks, in a file only its owner can read. */
function saveDatabaseUrl(path: string, url: string): string {
  registerSecret(url)
  const text = existsSync(path) ? readFileSync(path, 'utf8') : ''
  // The placeholder copied from the .env.example is replaced; a real value is the operator's.
  const placeholder = /^\s*DATABASE_URL\s*=.*CHANGE_ME.*$/m
  if (placeholder.test(text)) {
    writeFileSync(path, text.replace(placeholder, () => `DATABASE_URL=${url}`))
    chmodSync(path, 0o600)
    return 'DATABASE_URL placeholder replaced (mode 0600)'
  }
  if (/^\s*DATABASE_URL\s*=/m.test(text)) return 'already has DATABASE_URL: left as it is (the attached one is on Fly)'
  mkdirSync(dirname(path), { recursive: true })
  if (existsSync(path)) appendFileSync(path, `DATABASE_URL=${url}\n`)
  else writeFileSync(path, `DATABASE_URL=${url}\n`)
  chmodSync(path, 0o600)
  return 'DATABASE_URL written (mode 0600)'
}

await main(
  { name: 'create-apps', usage: 'create-apps <staging|production> [--app KEY] [--db] [--dry-run] [--verbose]', environment: true, options: { db: { type: 'boolean' } } },
  async (ctx) => {
    const settings = loadSettings()
    const fly = ctx.fly()
    const existing = new Set((await fly.appsList()).map((app) => app.Name))
    const rows: string[][] = []

    for (const key of ctx.apps) {
      const name = flyAppName(ctx.env, key as AppKey)
      if (existing.has(name)) {
        rows.push([name, 'exists'])
        continue
      }
      await fly.appsCreate(name, settings.org)
      rows.push([name, ctx.dryRun ? 'would create' : 'created'])
    }

    if (ctx.flags.db || envFlag('DB')) {
      const dbApp = databaseAppName(ctx.env)
      const consumer = flyAppName(ctx.env, 'internal-api')
      if (existing.has(dbApp)) {
        rows.push([dbApp, 'exists'])
        // A run that created the database but died before attaching it gets the attach now.
        const attached = existing.has(consumer) && (await fly.secretsList(consumer)).some((s) => s.name === 'DATABASE_URL')
        if (attached) rows.push([`${dbApp} → ${consumer}`, 'already attached (DATABASE_URL is on the app)'])
        else rows.push(...(await attach(dbApp, consumer)))
      } else {
        const { region, org, postgres } = settings
        await fly.postgresCreate({ name: dbApp, region, org, ...postgres })
        rows.push([dbApp, ctx.dryRun ? 'would create' : 'created (password not shown: see flyctl postgres create output in Fly)'])
        rows.push(...(await attach(dbApp, consumer)))
      }
    }

    async function attach(dbApp: string, consumer: string): Promise<string[][]> {
      const attached = await fly.postgresAttach(dbApp, consumer)
      const rows = [[`${dbApp} → ${consumer}`, ctx.dryRun ? 'would attach (sets DATABASE_URL)' : 'attached (DATABASE_URL set on the app)']]
      const url = /postgres(?:ql)?:\/\/\S+/.exec(attached.stdout)?.[0]
      const path = envFilePath(ctx.envDir, ctx.env, 'internal-api')
      if (url) rows.push([path, saveDatabaseUrl(path, url)])
      return rows
    }
    ctx.log.result(table(['app', 'result'], rows))
  },
)
