import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checksumOf, scriptMatchesChecksum } from '../../scripts/lib/database/checksum.ts'
import { compareMigrations, pendingMigrations, type LocalMigration, type MigrationRow } from '../../scripts/lib/database/migrations.ts'
import { parseCommandLine } from '../../scripts/lib/core/cli.ts'
import { UserError } from '../../scripts/lib/core/errors.ts'
import { healthUrl } from '../../scripts/lib/fleet/health.ts'
import { healthPath } from '../../scripts/lib/fly/flytoml.ts'
import { databaseAppName, flyAppName, flyConfigPath, parseEnvironment } from '../../scripts/lib/core/names.ts'

test("checksum is Prisma's: sha256 hex of the script", () => {
  assert.is(checksumOf('hello'), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824')
})

test('checksum comparison accepts CRLF and LF variants, as Prisma does', () => {
  const lf = 'CREATE TABLE a();\nCREATE TABLE b();\n'
  const crlf = lf.replace(/\n/g, '\r\n')
  assert.ok(scriptMatchesChecksum(crlf, checksumOf(lf)))
  assert.ok(scriptMatchesChecksum(lf, checksumOf(crlf)))
  assert.not.ok(scriptMatchesChecksum(lf + '-- edited\n', checksumOf(lf)))
})

const local = (name: string, script = `-- ${name}\n`): LocalMigration => ({ name, dir: '', script, checksum: checksumOf(script), downPath: '' })
const row = (name: string, extra: Partial<MigrationRow> = {}): MigrationRow => ({
  id: name,
  checksum: checksumOf(`-- ${name}\n`),
  finished_at: new Date(),
  migration_name: name,
  logs: null,
  rolled_back_at: null,
  started_at: new Date(),
  applied_steps_count: 1,
  ...extra,
})

test('compareMigrations classifies every state Prisma can leave', () => {
  const migrations = ['1_a', '2_b', '3_c', '4_d', '5_e'].map((n) => local(n))
  const statuses = compareMigrations(migrations, [
    row('1_a'),
    row('2_b', { checksum: checksumOf('other') }),
    row('3_c', { finished_at: null, logs: 'P3018' }),
    row('4_d', { rolled_back_at: new Date() }),
    row('9_gone'),
  ])
  assert.equal(
    statuses.map((s) => [s.name, s.state]),
    [['1_a', 'applied'], ['2_b', 'checksum-mismatch'], ['3_c', 'failed'], ['4_d', 'rolled-back'], ['5_e', 'pending'], ['9_gone', 'unknown-on-remote']],
  )
  assert.equal(pendingMigrations(statuses), ['4_d', '5_e'])
})

test('a migration re-applied after a rollback counts as applied', () => {
  const statuses = compareMigrations([local('1_a')], [row('1_a', { rolled_back_at: new Date() }), row('1_a')])
  assert.is(statuses[0].state, 'applied')
})

test('no migrations table means everything is pending', () => {
  assert.equal(compareMigrations([local('1_a')], null).map((s) => s.state), ['pending'])
})

test('names follow the interface table', () => {
  assert.is(flyAppName('production', 'web-admin'), 'microbima-production-web-admin')
  assert.is(databaseAppName('production'), 'microbima-prod-db')
  assert.is(databaseAppName('staging'), 'microbima-staging-db')
  assert.is(flyConfigPath('production', 'internal-api'), 'infra/fly/internal-api-prod/fly.toml')
  assert.is(parseEnvironment('prod'), 'production')
  assert.is(parseEnvironment('Production'), undefined)
})

test('command lines: environment aliases, app keys, strict flags', () => {
  const definition = { name: 'x', usage: 'x <env>', environment: true }
  assert.equal(parseCommandLine(definition, ['prod', '--app=web-admin']).apps, ['web-admin'])
  assert.is(parseCommandLine(definition, ['prod']).env, 'production')
  for (const [argv, message] of [
    [['qa'], 'unknown environment "qa"'],
    [[], 'no environment given'],
    [['staging', '--app', 'api'], 'unknown app "api"'],
    [['staging', '--dryrun'], "Unknown option '--dryrun'"],
  ] as const) {
    try {
      parseCommandLine(definition, [...argv])
      assert.unreachable()
    } catch (error) {
      assert.instance(error, UserError)
      assert.match((error as Error).message, message)
    }
  }
})

test('health URL template and health path from fly.toml', () => {
  assert.is(healthUrl('https://{hostname}{path}', { Hostname: 'a.fly.dev' }, 'a', '/health'), 'https://a.fly.dev/health')
  assert.is(healthUrl('http://127.0.0.1:9/{app}{path}', { Hostname: 'x' }, 'microbima-staging-web-admin', '/healthz'), 'http://127.0.0.1:9/microbima-staging-web-admin/healthz')
  assert.is(healthPath({ http_service: { checks: [{ path: '/status' }] } }), '/status')
  assert.is(healthPath({}), '/health')
})

test.run()
