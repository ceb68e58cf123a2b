import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadDatabaseTarget, parseDatabaseUrl, readEnvFile } from '../../scripts/lib/secrets/env-files.ts'
import { UserError } from '../../scripts/lib/core/errors.ts'
import { createLogger } from '../../scripts/lib/core/log.ts'
import { mask } from '../../scripts/lib/secrets/mask.ts'
import { encodeSecret } from '../../scripts/lib/secrets/stdin.ts'
import { tempDir } from '../support/toolkit.ts'

const quiet = { ...createLogger(), warn: () => {}, info: () => {} }

function envFile(body: string, mode = 0o600): string {
  const path = join(tempDir(), 'app.env')
  writeFileSync(path, body, { mode })
  chmodSync(path, mode)
  return path
}

function userError(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    assert.instance(error, UserError)
    return (error as Error).message
  }
  throw new Error('expected a UserError')
}

test('reads NAME=VALUE pairs, quoted and multi-line values, comments and export', () => {
  const path = envFile('# comment\nA=1\nexport B="two words"\nC=\'x=y\'\nD="line1\nline2"\n\n')
  assert.equal(readEnvFile(path, 'staging', quiet).values, { A: '1', B: 'two words', C: 'x=y', D: 'line1\nline2' })
})

test('a malformed line names the file and the line', () => {
  const path = envFile('A=1\nthis is not an assignment\n')
  assert.is(userError(() => readEnvFile(path, 'staging', quiet)), `${path} line 2 is not NAME=VALUE: fix or remove that line`)
})

test('a repeated key is refused with both line numbers', () => {
  const path = envFile('A=1\nB=2\nA=3\n')
  assert.match(userError(() => readEnvFile(path, 'staging', quiet)), 'line 3 sets A again (first on line 1)')
})

test('an empty value and a name Fly rejects are refused', () => {
  assert.match(userError(() => readEnvFile(envFile('A=\n'), 'staging', quiet)), 'A is empty')
  assert.match(userError(() => readEnvFile(envFile('MY-KEY=1\n'), 'staging', quiet)), 'MY-KEY is not a name Fly accepts')
  assert.match(userError(() => readEnvFile(envFile('1KEY=1\n'), 'staging', quiet)), 'is not a name Fly accepts')
})

test('NODE_ENV contradicting the environment is refused; a matching one is dropped', () => {
  assert.match(userError(() => readEnvFile(envFile('NODE_ENV=production\n'), 'staging', quiet)), 'sets NODE_ENV=production in the staging environment')
  assert.equal(readEnvFile(envFile('NODE_ENV=staging\nA=1\n'), 'staging', quiet).values, { A: '1' })
})

test('a missing file names the example to copy', () => {
  assert.match(userError(() => readEnvFile('/nonexistent/internal-api.env', 'staging', quiet)), 'copy /nonexistent/internal-api.env.example')
})

test('a file others can read is a warning on staging and refused for production', () => {
  const warnings: string[] = []
  const path = envFile('A=1\n', 0o644)
  readEnvFile(path, 'staging', { ...quiet, warn: (m) => warnings.push(m) })
  assert.match(warnings[0], 'can be read or written by every user (mode 644)')
  assert.match(userError(() => readEnvFile(path, 'production', quiet)), `run chmod 600 ${path}`)
})

test('values read from env files are masked in every printed line', () => {
  readEnvFile(envFile('TOKEN=sup3r-secret-value\n'), 'staging', quiet)
  assert.is(mask('stderr said sup3r-secret-value twice: sup3r-secret-value'), 'stderr said **** twice: ****')
  assert.is(mask('postgres://u:pw@h:5432/d'), 'postgres://u:****@h:5432/d')
})

test('DATABASE_URL must be a postgres URL; IPv6 literals, unix sockets and encoded credentials are valid', () => {
  assert.match(userError(() => parseDatabaseUrl(undefined, 'f')), 'f has no DATABASE_URL')
  assert.match(userError(() => parseDatabaseUrl('mysql://h/db', 'f')), 'uses mysql:// but must be a postgres://')
  assert.match(userError(() => parseDatabaseUrl('not a url', 'f')), 'is not a URL')
  assert.match(userError(() => parseDatabaseUrl('postgres://u:p%zz@h/db', 'f')), 'has a % that is not followed by two hex digits: write a literal % as %25')
  assert.equal(parseDatabaseUrl('postgresql://u:p@Db.Example:6543/app', 'f'), { url: 'postgresql://u:p@Db.Example:6543/app', host: 'db.example', port: 6543, database: 'app', user: 'u', password: 'p', socket: false, sslmode: undefined })
  const v6 = parseDatabaseUrl('postgres://u:p%25w@[fdaa:0:1::3]:5432/app?sslmode=disable', 'f')
  assert.equal([v6.host, v6.port, v6.password, v6.sslmode], ['fdaa:0:1::3', 5432, 'p%w', 'disable'])
  assert.equal([parseDatabaseUrl('postgres://u@%2Fvar%2Frun%2Fpostgresql/app', 'f').host, parseDatabaseUrl('postgres:///app?host=/run/pg', 'f').socket], ['/var/run/postgresql', true])
})

function envDir(staging: string, production?: string): string {
  const dir = tempDir()
  for (const [env, url] of [['staging', staging], ['production', production]] as const) {
    if (!url) continue
    mkdirSync(join(dir, env))
    writeFileSync(join(dir, env, 'internal-api.env'), 'DATABASE_URL=' + url + '\n', { mode: 0o600 })
  }
  return dir
}

async function userErrorAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
  } catch (error) {
    assert.instance(error, UserError)
    return (error as Error).message
  }
  throw new Error('expected a UserError')
}

test('cross-environment guard: the same database in both environments is refused, however the host is written', async () => {
  const dir = envDir('postgres://a:b@db.example:5432/app', 'postgres://c:d@DB.example:5432/app')
  assert.match(await userErrorAsync(() => loadDatabaseTarget(dir, 'staging', quiet)), 'staging and production name the same database (db.example:5432/app)')
  // localhost and 127.0.0.1 are one address: compared by what they resolve to, not as text.
  const aliases = envDir('postgres://a:b@localhost:5432/app', 'postgres://c:d@127.0.0.1:5432/app')
  assert.match(await userErrorAsync(() => loadDatabaseTarget(aliases, 'production', quiet)), 'staging and production name the same database')
  const other = envDir('postgres://a:b@db.example:5432/app_staging', 'postgres://c:d@db.example:5432/app')
  assert.is((await loadDatabaseTarget(other, 'production', quiet)).database, 'app')
})

test("cross-environment guard: naming the other environment's database app is refused", async () => {
  const dir = envDir('postgres://a:b@microbima-prod-db.flycast:5432/x')
  assert.match(await userErrorAsync(() => loadDatabaseTarget(dir, 'staging', quiet)), 'points at microbima-prod-db, the production database')
  const reverse = envDir('postgres://a:b@x:5432/y', 'postgres://a:b@top2.nearest.of.microbima-staging-db.internal:5432/x')
  assert.match(await userErrorAsync(() => loadDatabaseTarget(reverse, 'production', quiet)), 'points at microbima-staging-db')
})

test('secret values are encoded so flyctl stores them exactly; the few it cannot carry are named', () => {
  assert.equal(encodeSecret('A', 'pa"ss\\word'), { line: "A='pa\"ss\\word'" })
  assert.equal(encodeSecret('A', 'x #y'), { line: 'A="""x #y"""' })
  assert.equal(encodeSecret('A', 'one\ntwo'), { line: 'A="""one\ntwo"""' })
  const refused = encodeSecret('A', 'first"""\nsecond')
  assert.ok('problem' in refused && refused.problem.startsWith('spans several lines and its first line ends with """'), JSON.stringify(refused))
  const long = encodeSecret('A', 'x'.repeat(70_000))
  assert.ok('problem' in long && long.problem.includes('70000 bytes'), JSON.stringify(long))
})

test('an env value flyctl cannot carry is refused before any write, without echoing it', () => {
  const dir = tempDir()
  const path = join(dir, 'web-admin.env')
  writeFileSync(path, 'SESSION_SECRET="quoted-secret-value' + 'x'.repeat(70_000) + '"\n', { mode: 0o600 })
  try {
    readEnvFile(path, 'staging', createLogger())
    assert.unreachable('should refuse')
  } catch (error) {
    assert.instance(error, UserError)
    assert.match((error as Error).message, /the value of SESSION_SECRET is \d+ bytes long; flyctl secrets import silently drops any line of 64 KiB or more/)
    assert.not.match((error as Error).message, 'quoted-secret-value')
  }
})

test.run()
