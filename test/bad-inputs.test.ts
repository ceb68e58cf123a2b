import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { sql } from './support/pg.ts'
import { createSandbox } from '../scripts/sandbox/sandbox.ts'
import { PRODUCTION, STAGING, scenario, type Scenario } from './support/scenario.ts'
import { MIGRATIONS, SECRET, projectCopy, runMake, runScript, tempDir, writeEnvDir, type RunResult } from './support/toolkit.ts'

// Hostile and clumsy inputs. A bad one is refused before any change: exit 2 (3 for a safety rule),
// one `error:` line per problem naming it and the fix, no write in the simulator's call log, no
// JavaScript stack trace, no secret value anywhere in the output. Make variables are tested through
// make itself, with shell and make metacharacters: nothing they contain ever runs. Valid setups
// that look unusual (IPv6 and unix-socket hosts, odd ENV_DIR names, half-configured environments)
// are accepted. At the end, every target runs once more and no output of this file, no flyctl
// argv, no ledger row and no step summary holds a secret value (apps that log secrets included).

let shared: Scenario | undefined
const ready = async () => (shared ??= await scenario({ stagingDeployed: true }))

const SECRET_VALUES = Object.values(SECRET).flatMap((v) => [v, `${v}P`])

/** Every output of every run, for the closing scan. */
const outputs: string[] = []

/** No stack trace, no `bug:` line, no secret value. */
function assertClean(result: RunResult): void {
  outputs.push(result.output)
  assert.not.match(result.output, /\n\s+at .+:\d+:\d+/, 'stack trace in the output')
  assert.not.match(result.output, /^bug: /m)
  for (const value of SECRET_VALUES) assert.not.ok(result.output.includes(value), `secret ${value} in the output:\n${result.output}`)
}

/** The script's own exit code: make exits 2 for any failed recipe and names the script's code. */
function scriptCode(result: RunResult): number | null {
  const made = /make: \*\*\* \[[^\]]+\] Error (\d+)/.exec(result.stderr)
  if (!made) return result.code
  assert.is(result.code, 2, 'make exits 2 when a recipe fails')
  return Number(made[1])
}

const code = scriptCode
const make = async (...args: Parameters<typeof runMake>) => {
  const result = await runMake(...args)
  assertClean(result)
  return result
}

type Expected = string | RegExp

function expectRefused(result: RunResult, code: 2 | 3, expected: Expected[], s?: Scenario): void {
  assert.is(scriptCode(result), code, result.output)
  const prefix = code === 2 ? 'error: ' : 'refused: '
  const lines = result.stderr.split('\n').filter((l) => l.startsWith(prefix))
  assert.is(lines.length, expected.length, `expected ${expected.length} ${prefix}line(s):\n${result.stderr}`)
  expected.forEach((e, i) => assert.match(lines[i], e))
  assertClean(result)
  if (s) assert.equal(s.sandbox.writes().map((c) => c.argv.join(' ')), [])
}

/** An env folder like the scenario's, changed by `edit`. */
function editedEnv(s: Scenario, edit: (dir: string) => void): string {
  const dir = writeEnvDir(s.files, tempDir())
  edit(dir)
  return dir
}
const put = (dir: string, env: string, app: string, text: string, mode = 0o600) => {
  const path = join(dir, env, `${app}.env`)
  rmSync(path, { recursive: true, force: true })
  writeFileSync(path, text, { mode })
  chmodSync(path, mode)
}
const stagingUrl = (s: Scenario) => s.files.staging!['internal-api']!.DATABASE_URL
const productionUrl = (s: Scenario) => s.files.production!['internal-api']!.DATABASE_URL
/** The production env folder with internal-api.env's DATABASE_URL replaced. */
const productionDb = (s: Scenario, url: string) => editedEnv(s, (d) => put(d, 'production', 'internal-api', `DATABASE_URL=${url}\nJWT_SECRET=${SECRET.jwt}P\n`))
const withEnv = (s: Scenario, extra: Record<string, string>) => ({ env: { ...s.env, ...extra } })
const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

const mark = join(tempDir('mb-inject-'), 'ran')

interface Case {
  name: string
  run: (s: Scenario) => Promise<RunResult>
  code?: 2 | 3
  errors: Expected[]
  after?: (s: Scenario) => Promise<void> | void
}

const cases: Case[] = [
  // ---- usage ------------------------------------------------------------------------------------
  { name: 'unknown environment', run: (s) => runScript('deploy', ['qa'], { env: s.env }), errors: ['unknown environment "qa": use staging or production (prod)'] },
  { name: 'no environment', run: (s) => runScript('health', [], { env: s.env }), errors: ['no environment given: usage: health <staging|production>'] },
  { name: 'unknown app', run: (s) => runScript('deploy', ['staging', '--app', 'api'], { env: s.env }), errors: ['unknown app "api": use one of internal-api, public-api, web-admin'] },
  { name: 'unknown flag', run: (s) => runScript('deploy', ['staging', '--dryrun'], { env: s.env }), errors: ["Unknown option '--dryrun'"] },
  { name: 'a stray word after the environment', run: (s) => runScript('health', ['staging', 'web-admin'], { env: s.env }), errors: ['unexpected argument "web-admin": usage: health'] },
  { name: '--app and APP= disagree', run: (s) => runScript('health', ['staging', '--app', 'web-admin'], withEnv(s, { MB_APP: 'public-api' })), errors: ['--app and APP= disagree: give one'] },

  // ---- env files and the database URL --------------------------------------------------------------
  { name: 'missing env folder', run: (s) => runScript('deploy', ['staging'], withEnv(s, { ENV_DIR: '/nonexistent/env' })), errors: [/public-api\.env not found/, /web-admin\.env not found/, /\/nonexistent\/env\/staging\/internal-api\.env not found: copy \/nonexistent\/env\/staging\/internal-api\.env\.example to .* and fill in the values \(or set ENV_DIR\)/] },
  { name: 'missing env file', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => rmSync(join(d, 'staging', 'web-admin.env'))) } }), errors: [/web-admin\.env not found: copy .*web-admin\.env\.example/] },
  { name: 'malformed dotenv line', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'public-api', 'KONG_PARTNER_API_KEY=xyzw-long-value\nnot a pair\n')) } }), errors: [/public-api\.env line 2 is not NAME=VALUE: fix or remove that line/] },
  { name: 'duplicate key', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'public-api', 'KONG_PARTNER_API_KEY=aaaa-1111\nKONG_PARTNER_API_KEY=bbbb-2222\n')) } }), errors: [/line 2 sets KONG_PARTNER_API_KEY again \(first on line 1\): keep one/] },
  { name: 'missing DATABASE_URL', run: (s) => runScript('migrate', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'JWT_SECRET=long-enough-value\n')) } }), errors: [/internal-api\.env has no DATABASE_URL: add DATABASE_URL=postgres:\/\//] },
  { name: 'non-postgres URL', run: (s) => runScript('deploy', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'DATABASE_URL=mysql://u:p@h:3306/db\n')) } }), errors: ['uses mysql:// but must be a postgres:// or postgresql:// URL'] },
  { name: 'DATABASE_URL not a URL', run: (s) => runScript('deploy', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'DATABASE_URL=postgres://[nope/db\n')) } }), errors: ['DATABASE_URL is not a URL: use postgres://USER:PASSWORD@HOST:PORT/DATABASE'] },
  { name: 'a bare % in the password of DATABASE_URL', run: (s) => runScript('migrate', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', `DATABASE_URL=${stagingUrl(s).replace(`:${SECRET.stagingDbPassword}@`, ':50%off@')}\n`)) } }), errors: [/internal-api\.env: the password in DATABASE_URL has a % that is not followed by two hex digits: write a literal % as %25/] },
  { name: 'a bare % in the database name of the other environment', run: (s) => runScript('migrate', ['staging'], { env: { ...s.env, ENV_DIR: productionDb(s, productionUrl(s).replace(/\/postgres$/, '/db%zz')) } }), errors: [/production\/internal-api\.env: the database name in DATABASE_URL has a % that is not followed by two hex digits/] },
  { name: 'a port that is not a port', run: (s) => runScript('history', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'DATABASE_URL=postgres://u:p@db.example.com:99999/x\n')) } }), errors: [/DATABASE_URL (has port 99999, which is not a TCP port|is not a URL)/] },
  { name: 'same database URL in both environments', run: (s) => runScript('deploy', ['production', '--yes'], { env: { ...s.env, ENV_DIR: productionDb(s, stagingUrl(s)) } }), errors: ['staging and production name the same database'] },
  { name: 'same database through localhost and 127.0.0.1', run: (s) => runMake('deploy-prod', { YES: '1' }, { env: { ...s.env, ENV_DIR: productionDb(s, stagingUrl(s).replace('@127.0.0.1:', '@localhost:')) } }), errors: [/staging and production name the same database \(localhost:\d+\/postgres\): give each environment its own database/] },
  { name: 'same database through an IPv4-mapped IPv6 address', run: (s) => runScript('migrate', ['production', '--yes'], { env: { ...s.env, ENV_DIR: productionDb(s, stagingUrl(s).replace('@127.0.0.1:', '@[::ffff:127.0.0.1]:')) } }), errors: ['staging and production name the same database'] },
  { name: 'same server under another database name (identity once connected)', run: (s) => runScript('deploy', ['production', '--yes'], { env: { ...s.env, ENV_DIR: productionDb(s, stagingUrl(s).replace(/\/postgres$/, '/microbima_production')) } }), errors: [/staging and production reach the same database \(.* are one server and database\): give each environment its own database/] },
  { name: 'same database through localhost, in make diff', run: (s) => runMake('diff', {}, { env: { ...s.env, ENV_DIR: productionDb(s, stagingUrl(s).replace('@127.0.0.1:', '@LOCALHOST:')) } }), errors: ['staging and production name the same database'] },
  { name: 'same server under another database name, in migrate-status', run: (s) => runMake('migrate-status', {}, { env: { ...s.env, ENV_DIR: productionDb(s, stagingUrl(s).replace(/\/postgres$/, '/other')) } }), errors: ['staging and production reach the same database'] },
  { name: 'staging URL names the production database app', run: (s) => runScript('deploy', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'DATABASE_URL=postgres://u:p@microbima-prod-db.flycast:5432/x\n')) } }), errors: ['points at microbima-prod-db, the production database: use microbima-staging-db'] },
  { name: 'production URL names the staging database app', run: (s) => runScript('migrate', ['production', '--yes'], { env: { ...s.env, ENV_DIR: productionDb(s, 'postgres://u:p@top2.nearest.of.microbima-staging-db.internal:5432/x') } }), errors: ['points at microbima-staging-db, the staging database: use microbima-prod-db'] },
  { name: 'NODE_ENV contradicting the environment', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'NODE_ENV=production\n')) } }), errors: ['sets NODE_ENV=production in the staging environment: remove NODE_ENV, the toolkit sets it'] },
  { name: 'secret name Fly rejects', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION-SECRET=long-enough-value\n')) } }), errors: ['SESSION-SECRET is not a name Fly accepts for a secret'] },
  { name: 'empty value', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION_SECRET=\n')) } }), errors: ['SESSION_SECRET is empty: give it a value or remove the line'] },
  { name: 'CHANGE_ME placeholders: every one reported at once', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => { put(d, 'staging', 'web-admin', 'SESSION_SECRET=CHANGE_ME\n'); put(d, 'staging', 'public-api', 'KONG_PARTNER_API_KEY=CHANGE_ME_TOO\n') }) } }), errors: [/public-api\.env: KONG_PARTNER_API_KEY still holds the CHANGE_ME placeholder/, /web-admin\.env: SESSION_SECRET still holds the CHANGE_ME placeholder of the \.env\.example: fill in its value/] },
  { name: 'a value flyctl cannot carry on stdin', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', `SESSION_SECRET='first-line"""\nsecond-line'\n`)) } }), errors: ['the value of SESSION_SECRET spans several lines and its first line ends with """, which flyctl reads as the whole value: flyctl secrets import cannot take it, change the value'] },
  { name: 'a line of 64 KiB, which flyctl would drop', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', `SESSION_SECRET=${'x'.repeat(70_000)}\n`)) } }), errors: [/the value of SESSION_SECRET is 70000 bytes long/] },
  { name: 'an env file that is a directory', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => { rmSync(join(d, 'staging', 'web-admin.env')); mkdirSync(join(d, 'staging', 'web-admin.env')) }) } }), errors: [/cannot read .*web-admin\.env \(EISDIR\): it is a directory, not an env file/] },
  { name: "the other environment's env file is a directory", run: (s) => runMake('migrate-staging', {}, { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => { rmSync(join(d, 'production', 'internal-api.env')); mkdirSync(join(d, 'production', 'internal-api.env')) }) } }), errors: [/cannot read .*production\/internal-api\.env \(EISDIR\): it is a directory, not an env file/] },
  { name: 'an env file that is a FIFO does not block', run: (s) => runScript('set-secrets', ['staging'], { timeoutMs: 20_000, env: { ...s.env, ENV_DIR: editedEnv(s, (d) => { rmSync(join(d, 'staging', 'public-api.env')); execFileSync('mkfifo', [join(d, 'staging', 'public-api.env')]) }) } }), errors: [/public-api\.env is not a regular file \(a pipe or a device would block the read\): make it a plain file/] },
  { name: "the other environment's env file is a FIFO", run: (s) => runScript('migrate', ['staging'], { timeoutMs: 20_000, env: { ...s.env, ENV_DIR: editedEnv(s, (d) => { rmSync(join(d, 'production', 'internal-api.env')); execFileSync('mkfifo', [join(d, 'production', 'internal-api.env')]) }) } }), errors: [/production\/internal-api\.env is not a regular file/] },
  { name: 'an env file that is not UTF-8 (its value would reach Fly as U+FFFD)', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => writeFileSync(join(d, 'staging', 'web-admin.env'), Buffer.concat([Buffer.from('INTERNAL_API_URL=http://x\nSESSION_SECRET=caf'), Buffer.from([0xe9]), Buffer.from('-long-value\n')]), { mode: 0o600 })) } }), errors: [/web-admin\.env line 2 is not UTF-8 text: save the file as UTF-8/] },
  { name: 'a NUL byte in a value (the machine would cut the variable there)', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION_SECRET=before\0after-long\n')) } }), errors: ['the value of SESSION_SECRET contains a NUL byte, where the environment variable on the machine would end'] },
  { name: 'world-readable production env file', run: (s) => runScript('set-secrets', ['production', '--yes'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'production', 'web-admin', 'SESSION_SECRET=long-enough-value\n', 0o644)) } }), errors: ['can be read or written by every user (mode 644): run chmod 600'] },
  { name: 'group-readable production env file (0640)', run: (s) => runScript('set-secrets', ['production', '--yes'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'production', 'web-admin', 'SESSION_SECRET=long-enough-value\n', 0o640)) } }), errors: ['can be read or written by its group (mode 640): run chmod 600'] },

  // ---- values stored wrong: refused, never shortened -------------------------------------------------
  { name: "an unquoted '#' in a secret", run: (s) => runMake('set-secrets-staging', {}, { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION_SECRET=Tr0ub4dor#3xQ9zz\n')) } }), errors: [/web-admin\.env line 1: SESSION_SECRET has an unquoted '#' \(dotenv would cut the value there\): put the value in single quotes/] },
  { name: "an unquoted ' #' after an exported key", run: (s) => runMake('set-secrets-staging', {}, { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'public-api', 'export KONG_PARTNER_API_KEY=abcd1234 #rotated\n')) } }), errors: [/public-api\.env line 1: KONG_PARTNER_API_KEY has an unquoted '#'/] },
  { name: 'whitespace around an unquoted value', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION_SECRET=padded-value   \n')) } }), errors: [/SESSION_SECRET has whitespace around its value \(dotenv would drop it\)/] },
  { name: '\\n inside double quotes', run: (s) => runScript('set-secrets', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION_SECRET="line\\nbreak-value"\n')) } }), errors: [/SESSION_SECRET has \\n or \\r inside double quotes/] },

  // ---- migrations ---------------------------------------------------------------------------------
  { name: 'migration folder without migration.sql', run: (s) => { const p = projectCopy(); mkdirSync(join(p, MIGRATIONS, '20250301000000_empty')); return runScript('deploy', ['staging'], { env: s.env, cwd: p }) }, errors: [/20250301000000_empty has no migration\.sql: add it or remove the folder/] },
  { name: 'a dangling symlink in the migrations folder', run: (s) => { const p = projectCopy(); symlinkSync('/nonexistent/migration', join(p, MIGRATIONS, '20250301000000_gone')); return runScript('migrate', ['staging'], { env: s.env, cwd: p }) }, errors: [/20250301000000_gone is a broken link: remove it or point it at a migration folder/] },
  ...[
    ['COMMIT', 'DROP TABLE "Premium";\nCOMMIT;\n'],
    ['END', 'DROP TABLE "Premium";\nend;\n'],
    ['COMMIT', `INSERT INTO "Policy" ("id") VALUES ('a--b'); COMMIT; DROP TABLE "Premium";\n`],
    ['COMMIT', `SELECT E'it\\'s'; commit; DROP TABLE "Premium";\n`],
    ['ROLLBACK', '/* undo /* nested */ */ DROP TABLE "Premium"; ROLLBACK;\n'],
    ['START TRANSACTION', 'START   TRANSACTION; DROP TABLE "Premium";\n'],
  ].map(([word, down]): Case => ({
    name: `down.sql with ${word} (${JSON.stringify(down.slice(0, 40))}) is refused before anything runs`,
    run: (s) => {
      const p = projectCopy()
      writeFileSync(join(p, MIGRATIONS, '20250201000000_add_premiums', 'down.sql'), down)
      return runScript('rollback-migration', ['staging', '--name', '20250201000000_add_premiums'], { env: s.env, cwd: p })
    },
    errors: [new RegExp(`20250201000000_add_premiums/down\\.sql contains ${word}: it would end the transaction that keeps the undo and its bookkeeping together`)],
    after: async (s) => {
      assert.equal(await sql(s.dbs.staging, `SELECT to_regclass('"Premium"') IS NOT NULL AS present`), [{ present: true }])
      assert.equal(await sql(s.dbs.staging, "SELECT count(*)::int AS n FROM _prisma_migrations WHERE migration_name = '20250201000000_add_premiums' AND rolled_back_at IS NULL AND finished_at IS NOT NULL"), [{ n: 1 }])
    },
  })),
  { name: 'NAME= of a migration that does not exist', run: (s) => runScript('rollback-migration', ['staging', '--name', '20990101000000_nope'], { env: s.env }), errors: [`no migration 20990101000000_nope in ${MIGRATIONS}: use the full folder name`] },
  { name: 'NAME= missing', run: (s) => runScript('rollback-migration', ['staging'], { env: s.env }), errors: ['which migration? give NAME=<migration folder name>'] },
  { name: 'NAME= not a valid migration name', run: (s) => runScript('migration', ['--name', 'Add Riders'], { env: s.env, cwd: projectCopy() }), errors: ['NAME="Add Riders": use one word of lowercase letters, digits and _'] },

  // ---- flyctl and the choice of images ------------------------------------------------------------------
  { name: 'FLY_BIN missing', run: (s) => runScript('health', ['staging'], withEnv(s, { FLY_BIN: '/nonexistent/flyctl' })), errors: ['FLY_BIN=/nonexistent/flyctl does not exist: point FLY_BIN at the flyctl binary or unset it'] },
  { name: 'FLY_BIN not executable', run: (s) => { const f = join(tempDir(), 'flyctl'); writeFileSync(f, '#!/bin/sh\n', { mode: 0o644 }); return runScript('health', ['staging'], withEnv(s, { FLY_BIN: f })) }, errors: ['is not an executable file: chmod +x it or point FLY_BIN at flyctl'] },
  { name: 'flyctl not authenticated, before any change', run: (s) => runScript('deploy', ['staging'], withEnv(s, { FLY_API_TOKEN: '' })), errors: ["flyctl is not logged in or its token expired: run 'flyctl auth login' or set FLY_API_TOKEN"] },
  { name: 'IMAGE= that no release has (rollback)', run: (s) => runScript('rollback', ['staging', '--app', 'web-admin', '--image', 'registry.fly.io/microbima-staging-web-admin:nope'], { env: s.env }), errors: ['IMAGE=registry.fly.io/microbima-staging-web-admin:nope is not the image of any complete release of this app'] },
  { name: 'IMAGE= that does not exist (deploy-prod): before any snapshot or deploy', run: (s) => runMake('deploy-prod', { APP: 'web-admin', IMAGE: 'registry.fly.io/microbima-staging-web-admin:deployment-MISSING', YES: '1' }, { env: s.env }), errors: [/IMAGE=registry\.fly\.io\/microbima-staging-web-admin:deployment-MISSING is not the image of any release of microbima-production-web-admin or microbima-staging-web-admin/] },
  { name: 'VERSION= not a number', run: (s) => runScript('rollback', ['staging', '--app', 'web-admin', '--version', 'v3'], { env: s.env }), errors: ['VERSION=v3 is not a release number'] },
  { name: 'VERSION= and IMAGE= together', run: (s) => runScript('rollback', ['staging', '--app', 'web-admin', '--version', '1', '--image', 'x'], { env: s.env }), errors: ['IMAGE= and VERSION= both choose the target: give only one'] },
  { name: 'IMAGE= and BUILD=1 together', run: (s) => runScript('deploy', ['production', '--app', 'web-admin', '--image', 'registry.fly.io/a:b', '--build'], { env: s.env }), errors: ['IMAGE= and BUILD=1 contradict each other'] },
  { name: 'IMAGE= without APP=', run: (s) => runScript('deploy', ['production', '--image', 'registry.fly.io/a:b'], { env: s.env }), errors: ["IMAGE= is one app's image: name the app with APP="] },
  { name: 'history --limit not a number', run: (s) => runScript('history', ['staging', '--limit', 'many'], { env: s.env }), errors: ['--limit many is not a number of entries between 1 and 10000'] },

  // ---- make variables with shell and make metacharacters: nothing runs, stray words are errors -------------
  { name: 'NAME with backquotes', run: (s) => runMake('rollback-migration-staging', { NAME: `\`touch ${mark}\`` }, { env: s.env }), errors: [`NAME="\`touch ${mark}\`" is not a migration folder name`] },
  { name: 'NAME with $(…) and ;', run: (s) => runMake('rollback-migration-staging', { NAME: `x; touch ${mark}` }, { env: s.env }), errors: ['is not a migration folder name'] },
  { name: 'NAME with two words', run: (s) => runMake('rollback-migration-staging', { NAME: '20250201000000_add_premiums 20250115000000_add_customer_beneficiaries' }, { env: s.env }), errors: ['NAME="20250201000000_add_premiums 20250115000000_add_customer_beneficiaries" is not a migration folder name'] },
  { name: "NAME='add riders' for a new migration", run: (s) => runMake('migration', { NAME: 'add riders' }, { env: s.env }), errors: ['NAME="add riders": use one word of lowercase letters, digits and _'] },
  { name: 'IMAGE with $$(…)', run: (s) => runMake('rollback-staging', { APP: 'web-admin', IMAGE: `x$$(touch ${mark})` }, { env: s.env }), errors: [`IMAGE=x$$(touch ${mark}) is not an image reference (registry.fly.io/APP:TAG)`] },
  { name: 'IMAGE with $(shell …), make code', run: (s) => runMake('deploy-prod', { APP: 'web-admin', IMAGE: `$(shell touch ${mark})`, YES: '1' }, { env: s.env }), errors: [`IMAGE=$(shell touch ${mark}) is not an image reference`] },
  { name: 'APP with two apps', run: (s) => runMake('health-staging', { APP: 'web-admin public-api' }, { env: s.env }), errors: ['APP="web-admin public-api" names more than one app: give one of internal-api, public-api, web-admin, or none for all three'] },
  { name: 'APP with a ; command', run: (s) => runMake('health-staging', { APP: `web-admin;touch ${mark}` }, { env: s.env }), errors: [`unknown app "web-admin;touch ${mark}"`] },
  { name: 'VERSION with a ; command', run: (s) => runMake('rollback-staging', { APP: 'web-admin', VERSION: `1;touch ${mark}` }, { env: s.env }), errors: [`VERSION=1;touch ${mark} is not a release number`] },
  { name: 'ENV_DIR with $(…)', run: (s) => runMake('history-staging', { ENV_DIR: `$(touch ${mark})` }, { env: s.env }), errors: [`$(touch ${mark})/staging/internal-api.env not found`] },
  { name: 'DRY_RUN that is not yes or no', run: (s) => runMake('set-secrets-staging', { DRY_RUN: `1;touch ${mark}` }, { env: s.env }), errors: [`DRY_RUN=1;touch ${mark} is not a yes/no value: use 1 or 0`] },
  { name: 'HEALTH_TIMEOUT with $(shell …)', run: (s) => runMake('health-staging', { HEALTH_TIMEOUT: `$(shell touch ${mark})` }, { env: s.env }), errors: [`HEALTH_TIMEOUT=$(shell touch ${mark}) is not a number of seconds`] },
  { name: 'DB_KIND with a ; command', run: (s) => runMake('create-apps-staging', { DB_KIND: `mpg;touch ${mark}`, DB: '1', DRY_RUN: '1' }, { env: s.env }), errors: [/DB_KIND/] },

  // ---- settings: every numeric one validated up front ------------------------------------------------
  { name: 'HEALTH_TIMEOUT=abc', run: (s) => runMake('health-staging', { HEALTH_TIMEOUT: 'abc' }, { env: s.env }), errors: ['HEALTH_TIMEOUT=abc is not a number of seconds'] },
  { name: 'LOCK_WAIT=-1', run: (s) => runScript('deploy', ['staging'], withEnv(s, { LOCK_WAIT: '-1' })), errors: ['LOCK_WAIT=-1 is not a number of seconds'] },
  { name: 'LOGS_TIMEOUT=1e9', run: (s) => runMake('logs-staging', { LOGS_TIMEOUT: '1e9' }, { env: s.env }), errors: ['LOGS_TIMEOUT=1e9 is not a number of seconds'] },
  { name: 'FLY_READ_TIMEOUT= (set, empty)', run: (s) => runMake('health-staging', { FLY_READ_TIMEOUT: '' }, { env: s.env }), errors: ['FLY_READ_TIMEOUT= is empty: give it a number of seconds, or leave it unset for the default (60)'] },
  { name: 'HEALTH_INTERVAL of spaces', run: (s) => runScript('health', ['staging'], withEnv(s, { HEALTH_INTERVAL: '  ' })), errors: ['HEALTH_INTERVAL= is empty'] },
  { name: 'DB_STATEMENT_TIMEOUT=0', run: (s) => runScript('migrate', ['staging'], withEnv(s, { DB_STATEMENT_TIMEOUT: '0' })), errors: ['DB_STATEMENT_TIMEOUT=0 would never wait: give it a number of seconds above 0'] },
  { name: 'PROXY_READY_TIMEOUT=Infinity', run: (s) => runScript('migrate-status', [], withEnv(s, { PROXY_READY_TIMEOUT: 'Infinity' })), errors: ['PROXY_READY_TIMEOUT=Infinity is not a number of seconds'] },
  { name: 'DB_LOCK_TIMEOUT of a year', run: (s) => runScript('history', ['staging'], withEnv(s, { DB_LOCK_TIMEOUT: '31536000' })), errors: ['DB_LOCK_TIMEOUT=31536000 is more than a week'] },
  { name: 'FLY_RETRY_BASE_MS beyond what a timer takes', run: (s) => runScript('health', ['staging'], withEnv(s, { FLY_RETRY_BASE_MS: '99999999999' })), errors: ['FLY_RETRY_BASE_MS=99999999999 is more than an hour'] },
  { name: 'STUDIO_PORT=70000', run: (s) => runScript('studio', ['staging'], withEnv(s, { STUDIO_PORT: '70000' })), errors: ['STUDIO_PORT=70000 is not a TCP port (1-65535)'] },
  { name: 'LOGS_LINES=2.5', run: (s) => runScript('health', ['staging'], withEnv(s, { LOGS_LINES: '2.5' })), errors: ['LOGS_LINES=2.5 is not a whole number'] },
  { name: 'HEALTH_URL_TEMPLATE that gives no URL', run: (s) => runMake('health-staging', { HEALTH_URL_TEMPLATE: 'health of {app}{path}' }, { env: s.env }), errors: ['HEALTH_URL_TEMPLATE=health of {app}{path} does not give an http(s) URL: use e.g. https://{hostname}{path}'] },
  { name: 'FOLLOW=2', run: (s) => runMake('logs-staging', { FOLLOW: '2' }, { env: s.env }), errors: ['FOLLOW=2 is not a yes/no value: use 1 or 0'] },
  { name: 'three bad settings: all reported together', run: (s) => runMake('deploy-staging', { HEALTH_TIMEOUT: 'soon', LOCK_TTL: '-5', ALLOW_DIRTY: 'maybe' }, { env: s.env }), errors: ['HEALTH_TIMEOUT=soon is not a number of seconds', 'LOCK_TTL=-5 is not a number of seconds', 'ALLOW_DIRTY=maybe is not a yes/no value: use 1 or 0'] },

  // ---- a make variable given but empty is an error, never "not given" ------------------------------
  { name: 'PLAN= (given, empty) does not deploy production unchecked', run: (s) => runMake('deploy-prod', { YES: '1', PLAN: '' }, { env: s.env }), errors: ['PLAN= is empty: give it the plan.json that DRY_RUN=1 PLAN_OUT= wrote, or leave it out'] },
  { name: 'PLAN_OUT= (given, empty) with DRY_RUN=1', run: (s) => runMake('deploy-prod', { DRY_RUN: '1', PLAN_OUT: '' }, { env: s.env }), errors: ['PLAN_OUT= is empty: give it the file to write the plan to, or leave it out'] },
  { name: 'ENV_DIR= (given, empty) does not read the current folder', run: (s) => runMake('history-staging', { ENV_DIR: '' }, { env: s.env }), errors: ['ENV_DIR= is empty: give it the folder of the env files, or leave it out for env/'] },
  { name: 'ENV_DIR exported empty, script run directly', run: (s) => runScript('history', ['staging'], withEnv(s, { ENV_DIR: '' })), errors: ['ENV_DIR= is empty: give it the folder of the env files, or leave it out'] },
  { name: 'APP= and IMAGE= given empty: both reported', run: (s) => runMake('rollback-staging', { APP: '', IMAGE: '' }, { env: s.env }), errors: ['APP= is empty: give it one of internal-api, public-api, web-admin, or leave it out for all three', 'IMAGE= is empty: give it an image reference (registry.fly.io/APP:TAG), or leave it out'] },

  // ---- an approved plan edited by hand: its whole shape is checked ------------------------------------
  ...([
    ['migrations [null]', { migrations: [null] }, '"migrations[0]" must be {"name": …, "checksum": …}'],
    ['a migration without its checksum', { migrations: [{ name: 'x' }] }, '"migrations[0]" must be {"name": …, "checksum": …}'],
    ['secrets of an app not a list', { secrets: { 'web-admin': 'X' } }, '"secrets.web-admin" must be a list of secret names'],
    ['an image that is a number', { images: { 'web-admin': { running: null, deploy: 5 } } }, '"images.web-admin.deploy" must be an image reference or null'],
    ['an unknown key', { approvedBy: 'me' }, 'unknown key "approvedBy"'],
  ] as const).map(([what, change, why]): Case => ({
    name: `PLAN= with ${what}`,
    run: (s) => {
      const plan = join(tempDir('mb-plan-'), 'plan.json')
      writeFileSync(plan, JSON.stringify({ environment: 'production', images: { 'web-admin': { running: null, deploy: null } }, migrations: [], secrets: {}, ...change }))
      return runMake('deploy-prod', { YES: '1', PLAN: plan }, { env: s.env })
    },
    errors: [new RegExp(`^error: PLAN=\\S+plan\\.json is not a plan written by PLAN_OUT= \\(${escapeRe(why)}\\): pass the plan\\.json that DRY_RUN=1 PLAN_OUT= wrote$`)],
  })),

  // ---- infra/fly/settings.json: every value's type, every key ---------------------------------------------
  ...([
    ['probeVia null', (j: any) => void (j.apps['internal-api'].probeVia = null), '"apps.internal-api.probeVia" must be an object, not null'],
    ['database a string', (j: any) => void (j.database = 'mpg'), '"database" must be an object, not the string "mpg"'],
    ['database.staging null', (j: any) => void (j.database = { staging: null }), '"database.staging" is null: use flypg'],
    ['prisma a string', (j: any) => void (j.prisma = 'apps/api/prisma'), '"prisma" must be an object, not the string "apps/api/prisma"'],
    ['apps null', (j: any) => void (j.apps = null), '"apps" must be an object, not null'],
    ['an app given as a string', (j: any) => void (j.apps['web-admin'] = 'apps/web-admin'), '"apps.web-admin" must be an object, not the string "apps/web-admin"'],
    ['an unknown app key', (j: any) => void (j.apps.internal_api = { source: 'apps/api' }), '"apps.internal_api" is not a setting (a typo?): use internal-api, public-api, web-admin'],
    ['an unknown top-level key', (j: any) => void (j.regoin = 'jnb'), '"regoin" is not a setting (a typo?)'],
    ['probeVia through the app itself', (j: any) => void (j.apps['internal-api'].probeVia.app = 'internal-api'), '"apps.internal-api.probeVia.app" names internal-api itself'],
    ['a count that is a string', (j: any) => void (j.flypg.volumeSizeGb = '10'), '"flypg.volumeSizeGb" must be a positive whole number, not the string "10"'],
  ] as const).map(([what, edit, why]): Case => ({
    name: `settings.json: ${what}`,
    run: (s) => {
      const project = projectCopy()
      const path = join(project, 'infra/fly/settings.json')
      const settings = JSON.parse(readFileSync(path, 'utf8'))
      edit(settings)
      writeFileSync(path, JSON.stringify(settings))
      return runScript('health', ['staging'], { env: s.env, cwd: project })
    },
    errors: [new RegExp(`^error: infra/fly/settings\\.json: ${escapeRe(why)}`)],
  })),

  // ---- fly.toml: the types of the fields the toolkit reads ----------------------------------------------------
  ...([
    ['[services] instead of [[services]]', (t: string) => `${t}\n[services]\n  internal_port = 8080\n`, 'services must be a list of tables ([[services]]), not a table'],
    ['checks = 5 under [http_service]', (t: string) => t.replace(/\[\[http_service\.checks\]\][^[]*/, '').replace('[http_service]', '[http_service]\n  checks = 5'), 'http_service.checks must be a list of tables ([[http_service.checks]]), not 5'],
    ['min_machines_running = "lots"', (t: string) => t.replace(/min_machines_running = \d+/, 'min_machines_running = "lots"'), 'http_service.min_machines_running must be a whole number, not the string "lots"'],
  ] as const).map(([what, edit, why]): Case => ({
    name: `fly.toml: ${what}`,
    run: (s) => {
      const project = projectCopy()
      const path = join(project, 'infra/fly/web-admin-staging/fly.toml')
      writeFileSync(path, edit(readFileSync(path, 'utf8')))
      return runScript('health', ['staging', '--app', 'web-admin'], { env: s.env, cwd: project })
    },
    errors: [new RegExp(`^error: infra/fly/web-admin-staging/fly\\.toml: ${escapeRe(why)}$`)],
  })),

  // ---- DATABASE_URL's query ----------------------------------------------------------------------------------
  { name: 'sslmode that libpq does not know', run: (s) => runScript('history', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', `DATABASE_URL=${stagingUrl(s)}?sslmode=bogus\n`)) } }), errors: [/internal-api\.env: DATABASE_URL has sslmode=bogus, which libpq does not know: use one of disable, allow, prefer, require, verify-ca, verify-full$/] },
  { name: '?port= that is not a number shows its value', run: (s) => runScript('history', ['staging'], { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => put(d, 'staging', 'internal-api', 'DATABASE_URL=postgres://u:p@/x?host=/tmp&port=abc\n')) } }), errors: [/internal-api\.env: DATABASE_URL has port abc, which is not a TCP port \(1-65535\)$/] },

  // ---- BACKUP, count limits ------------------------------------------------------------------------------------
  { name: 'BACKUP=full (only dump is a kind)', run: (s) => runMake('migrate-prod', { BACKUP: 'full', YES: '1' }, { env: s.env }), errors: ['BACKUP=full is not a kind of backup: use BACKUP=dump (a pg_dump besides the snapshot), or leave it unset'] },
  { name: 'LOGS_LINES beyond any terminal', run: (s) => runMake('logs-staging', { LOGS_LINES: '99999999999999999999999' }, { env: s.env }), errors: ['LOGS_LINES=99999999999999999999999 is more than 10000: give it a whole number up to 10000'] },
  { name: 'LARGE_TABLE_ROWS huge', run: (s) => runMake('migrate-staging', { LARGE_TABLE_ROWS: '1000000000000' }, { env: s.env }), errors: ['LARGE_TABLE_ROWS=1000000000000 is more than 1000000000: give it a whole number up to 1000000000'] },
  { name: 'LOGS_LINES=0 (a count, not a wait)', run: (s) => runMake('logs-staging', { LOGS_LINES: '0' }, { env: s.env }), errors: ['LOGS_LINES=0 is not a count: give it a whole number above 0'] },
  { name: 'STUDIO_PORT=0', run: (s) => runScript('studio', ['staging'], withEnv(s, { STUDIO_PORT: '0' })), errors: ['STUDIO_PORT=0 is not a TCP port (1-65535)'] },

  // ---- values with control characters never split their error line ----------------------------------------------
  { name: 'APP with a newline', run: (s) => runMake('health-staging', { APP: 'web-admin\nerror: fake' }, { env: s.env }), errors: ['unknown app "web-admin\\nerror: fake": use one of internal-api, public-api, web-admin'] },
  { name: 'VERSION with a newline', run: (s) => runMake('rollback-staging', { APP: 'web-admin', VERSION: '1\n2' }, { env: s.env }), errors: ['VERSION=1\\n2 is not a release number'] },
  { name: 'IMAGE with a carriage return', run: (s) => runMake('rollback-staging', { APP: 'web-admin', IMAGE: 'x\rregistry' }, { env: s.env }), errors: ['IMAGE=x\\rregistry is not an image reference'] },
  { name: 'NAME with a newline', run: (s) => runMake('rollback-migration-staging', { NAME: 'a\nb' }, { env: s.env }), errors: ['NAME="a\\nb" is not a migration folder name'] },
  { name: 'ENV_DIR with a newline', run: (s) => runMake('history-staging', { ENV_DIR: '/nonexistent\nenv' }, { env: s.env }), errors: ['/nonexistent\\nenv/staging/internal-api.env not found'] },
  ...['x\u007fy', 'x\u2028y', 'x\u202eyx', 'x\ny'].map((reason): Case => ({ name: `REASON with ${JSON.stringify(reason)}`, run: (s) => runMake('lock-staging', { REASON: reason, DRY_RUN: '1' }, { env: s.env }), errors: ['REASON= must be one line of at most 200 characters, without control or format characters'] })),

  // ---- create-apps DB=1 checks that it can keep the credentials before creating anything ---------------
  { name: 'create-apps DB=1 with the env file a directory', run: (s) => runMake('create-apps-staging', { DB: '1' }, { env: { ...s.env, ENV_DIR: editedEnv(s, (d) => { rmSync(join(d, 'staging', 'internal-api.env')); mkdirSync(join(d, 'staging', 'internal-api.env')) }) } }), errors: [/staging\/internal-api\.env cannot be written \(EISDIR\): DB=1 keeps the new database's credentials there; fix it first/] },
  { name: 'create-apps DB=1 with ENV_DIR under a file', run: (s) => runMake('create-apps-prod', { DB: '1', YES: '1' }, { env: { ...s.env, ENV_DIR: join(editedEnv(s, () => undefined), 'staging', 'web-admin.env', 'env') } }), errors: [/production\/internal-api\.env cannot be written \(ENOTDIR\)/] },

  // ---- safety rules: exit 3 before any change ------------------------------------------------------------
  { name: 'YES=1 exported in the shell does not confirm production', code: 3, run: (s) => runMake('set-secrets-prod', {}, withEnv(s, { YES: '1' })), errors: ['make set-secrets-prod changes production and needs confirmation: run it from a terminal, or add YES=1 to the make command line (make set-secrets-prod YES=1)'] },
  { name: 'a refusal keeps exit 3 when GITHUB_STEP_SUMMARY cannot be written', code: 3, run: (s) => runMake('deploy-prod', {}, withEnv(s, { GITHUB_STEP_SUMMARY: join(tempDir(), 'no', 'such', 'dir', 'summary.md') })), errors: ['make deploy-prod changes production and needs confirmation'] },
]

for (const c of cases) {
  test(`bad input: ${c.name}`, async () => {
    const s = await ready()
    s.sandbox.clearCalls()
    const result = await c.run(s)
    expectRefused(result, c.code ?? 2, c.errors, s)
    assert.not.ok(existsSync(mark), `an injected command ran (${mark} exists)`)
    await c.after?.(s)
  })
}

test('flyctl JSON lists with malformed items: one operation failure (exit 1), no crash, nothing written', async () => {
  const s = await ready()
  const runs: Array<[string, string, () => Promise<RunResult>, string]> = [
    ['releases', '[null]', () => runMake('rollback-staging', { APP: 'web-admin' }, { env: s.env }), 'flyctl releases --json answered unexpected JSON: item 0 is null, not an object'],
    ['releases', '[{}]', () => runMake('rollback-staging', { APP: 'web-admin' }, { env: s.env }), 'flyctl releases --json answered unexpected JSON: item 0 has no Version'],
    ['releases', '[{"Version":3,"Status":"complete","ImageRef":"x","CreatedAt":"yesterday"}]', () => runMake('rollback-staging', { APP: 'web-admin' }, { env: s.env }), 'flyctl releases --json answered unexpected JSON: item 0 has CreatedAt "yesterday", not a date'],
    ['secrets list', '[null]', () => runMake('set-secrets-staging', { APP: 'web-admin' }, { env: s.env }), 'flyctl secrets list --json answered unexpected JSON: item 0 is null, not an object'],
    ['secrets list', '[{}]', () => runMake('diff', {}, { env: s.env }), 'flyctl secrets list --json answered unexpected JSON: item 0 has no name'],
  ]
  for (const [command, detail, run, expected] of runs) {
    s.sandbox.clearCalls()
    writeFileSync(join(s.sandbox.stateDir, 'faults.json'), '[]')
    s.sandbox.fault({ command, kind: 'stdout', detail: `${detail}\n` })
    const result = await run()
    writeFileSync(join(s.sandbox.stateDir, 'faults.json'), '[]')
    assert.is(scriptCode(result), 1, `${command} ${detail}:\n${result.output}`)
    const failed = result.stderr.split('\n').filter((l) => l.startsWith('failed: '))
    assert.equal(failed, [`failed: ${expected}`], result.stderr)
    assertClean(result)
    assert.equal(s.sandbox.writes().map((c) => c.argv.join(' ')), [], `${command} ${detail}`)
  }
})

test('make variables are text: REASON=$(…) and REASON=$(shell …) are stored as written, nothing runs', async () => {
  const s = await ready()
  for (const reason of [`$(touch ${mark})`, `$(shell touch ${mark})`, `\`touch ${mark}\`; echo "quoted" 'x'`]) {
    const result = await runMake('lock-staging', { REASON: reason, DRY_RUN: '1' }, { env: s.env })
    assert.is(result.code, 0, result.output)
    assert.match(result.stdout, `would hold the staging environment: ${reason}`)
    assertClean(result)
  }
  assert.not.ok(existsSync(mark))
})

test('IMAGE= and VERSION= exported in the shell choose nothing: only the make command line does', async () => {
  const s = await ready()
  s.sandbox.clearCalls()
  const result = await runMake('rollback-staging', { APP: 'web-admin' }, withEnv(s, { IMAGE: 'registry.fly.io/microbima-staging-web-admin:nope', VERSION: 'v9' }))
  assert.is(scriptCode(result), 1, result.output)
  assert.match(result.stderr, 'microbima-staging-web-admin has no earlier complete release with another image than the running one: nothing to roll back to')
  assert.not.match(result.output, /IMAGE=|VERSION=/)
  assert.equal(s.sandbox.writes(), [])
})

test('create-apps-prod asks: without a terminal and without YES=1 on the command line it refuses (exit 3) before creating anything', async () => {
  const sandbox = await createSandbox()
  sandbox.seedApps()
  sandbox.update((state) => void delete state.apps[PRODUCTION[2]])
  sandbox.clearCalls()
  const env = { ...sandbox.env, ENV_DIR: tempDir() }
  for (const result of [await runMake('create-apps-prod', {}, { env }), await runMake('create-apps-prod', {}, { env: { ...env, YES: '1' } }), await runScript('create-apps', ['prod'], { env })]) {
    expectRefused(result, 3, ['make create-apps-prod changes production and needs confirmation'])
  }
  assert.equal(sandbox.writes(), [])
  const yes = await runMake('create-apps-prod', { YES: '1' }, { env })
  assert.is(yes.code, 0, yes.output)
  assert.match(yes.stdout, new RegExp(`${PRODUCTION[2]}\\s+created`))
  await sandbox.close()
})

// ---- valid setups that look unusual are accepted -------------------------------------------------------

/** Listens on `where` (an IPv6 address or a unix socket) and forwards to a local TCP port. */
function forward(where: { host: string; port: number } | { path: string }, to: number): Promise<Server> {
  const server = createServer((socket) => {
    const upstream = createConnection(to, '127.0.0.1')
    socket.pipe(upstream).pipe(socket)
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
  })
  return new Promise((resolve) => server.listen(where, () => resolve(server)))
}
const portOf = (url: string) => Number(new URL(url).port)

test('IPv6 literal hosts ([::1], [fdaa::3]) in DATABASE_URL are valid', async () => {
  const s = await ready()
  const v6 = await forward({ host: '::1', port: 0 }, portOf(stagingUrl(s)))
  const url = `postgres://postgres:${SECRET.stagingDbPassword}@[::1]:${(v6.address() as { port: number }).port}/postgres`
  const dir = editedEnv(s, (d) => put(d, 'staging', 'internal-api', `DATABASE_URL=${url}\nJWT_SECRET=${SECRET.jwt}\n`))
  const history = await runMake('history-staging', {}, { env: { ...s.env, ENV_DIR: dir } })
  assert.is(history.code, 0, history.output)
  assertClean(history)
  const status = await runMake('migrate-status', {}, { env: { ...s.env, ENV_DIR: dir } })
  assert.is(status.code, 0, status.output)
  assert.match(status.stdout, /20250201000000_add_premiums\s+yes\s+applied\s+pending/)
  assertClean(status)
  v6.close()
  // Fly's private network: not reachable from here, but a valid setup (exit 1 for the connection, not 2).
  const fly = editedEnv(s, (d) => put(d, 'staging', 'internal-api', `DATABASE_URL=postgres://u:${SECRET.stagingDbPassword}@[fdaa:0:1::3]:5432/db\n`))
  const unreachable = await runScript('migrate-status', [], { env: { ...s.env, ENV_DIR: fly, DB_CONNECT_TIMEOUT: '1' } })
  assert.is(unreachable.code, 1, unreachable.output)
  assert.match(unreachable.stderr, /staging: cannot connect to the staging database at \[fdaa:0:1::3\]:5432\/db/)
  assert.not.match(unreachable.stderr, /^error: /m)
  assertClean(unreachable)
})

test('unix-socket hosts in DATABASE_URL are valid (?host=/dir and a percent-encoded /dir as host)', async () => {
  const s = await ready()
  const dir = tempDir('mb-sock-')
  const socket = await forward({ path: join(dir, '.s.PGSQL.5432') }, portOf(stagingUrl(s)))
  for (const url of [`postgres://postgres:${SECRET.stagingDbPassword}@${encodeURIComponent(dir)}:5432/postgres`, `postgresql://postgres:${SECRET.stagingDbPassword}@/postgres?host=${dir}`]) {
    const envDir = editedEnv(s, (d) => put(d, 'staging', 'internal-api', `DATABASE_URL=${url}\nJWT_SECRET=${SECRET.jwt}\n`))
    const result = await runMake('history-staging', {}, { env: { ...s.env, ENV_DIR: envDir } })
    assert.is(result.code, 0, `${url}\n${result.output}`)
    assertClean(result)
  }
  socket.close()
})

test('ENV_DIR with spaces, quotes and $ in its name works through make', async () => {
  const s = await ready()
  const dir = join(tempDir(), `env dir 'single' "double" $HOME`)
  cpSync(s.envDir, dir, { recursive: true })
  const result = await runMake('history-staging', { ENV_DIR: dir }, { env: s.env })
  assert.is(result.code, 0, result.output)
  const dry = await runMake('set-secrets-staging', { ENV_DIR: dir, DRY_RUN: '1' }, { env: s.env })
  assert.is(dry.code, 0, dry.output)
  assertClean(dry)
})

test("migrate-status with only staging's env file (the pull-request workflow) reports staging, production not configured", async () => {
  const s = await ready()
  const only = editedEnv(s, (d) => rmSync(join(d, 'production'), { recursive: true }))
  const result = await runMake('migrate-status', {}, { env: { ...s.env, ENV_DIR: only } })
  assert.is(result.code, 0, result.output)
  assert.match(result.stdout, /20250201000000_add_premiums\s+yes\s+applied\s+not configured/)
  assert.match(result.stderr, new RegExp(`production: not configured \\(${escapeRe(join(only, 'production', 'internal-api.env'))} not found\\)`))
  assert.match(result.stdout, 'production gate: cannot tell (production is not configured)')
  assertClean(result)
  const diff = await runMake('diff', {}, { env: { ...s.env, ENV_DIR: only } })
  assert.is(diff.code, 0, diff.output)
  assert.match(diff.stdout, 'production is not configured')
  assertClean(diff)
  // production's file copied from the .env.example, CHANGE_ME still in it: the same.
  const placeholder = editedEnv(s, (d) => put(d, 'production', 'internal-api', 'DATABASE_URL=postgres://USER:CHANGE_ME@microbima-prod-db.flycast:5432/microbima\nJWT_SECRET=CHANGE_ME\n'))
  const first = await runScript('migrate-status', [], { env: { ...s.env, ENV_DIR: placeholder }, timeoutMs: 30_000 })
  assert.is(first.code, 0, first.output)
  assert.match(first.stderr, 'production: not configured')
  assert.equal(s.sandbox.calls().filter((c) => c.argv[0] === 'proxy'), [])
})

test('a short secret that is an ordinary word never turns names into ****', async () => {
  const s = await ready()
  const dir = editedEnv(s, (d) => put(d, 'staging', 'web-admin', 'SESSION_SECRET=staging\nINTERNAL_API_URL=web-admin\n'))
  const result = await runMake('set-secrets-staging', { DRY_RUN: '1', VERBOSE: '1' }, { env: { ...s.env, ENV_DIR: dir } })
  assert.is(result.code, 0, result.output)
  assert.match(result.stdout, 'flyctl secrets import --app microbima-staging-web-admin --stage')
  assert.not.match(result.output, /microbima-\*\*\*\*|\*\*\*\*-admin|make \*\*\*\*/)
  assert.match(result.stderr, /the value of SESSION_SECRET also appears in "staging", which the toolkit prints: it cannot be hidden in the output; use a long random value/)
})

// ---- no secret in any output: apps that log them, health evidence, previews, every target ---------------

test('logs: an app that logs secret values (and database URLs) shows them masked', async () => {
  const s = await ready()
  s.sandbox.appLog(STAGING[2], `session=${SECRET.session} jwt=${SECRET.jwt}P kong=${SECRET.kong}`)
  s.sandbox.appLog(STAGING[0], `connecting to postgres://app:never-registered-pw@db.internal:5432/x with ${SECRET.mpesa}`)
  const result = await make('logs-staging', { LOGS_TIMEOUT: '2' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  assert.match(result.stdout, 'session=**** jwt=**** kong=****')
  assert.match(result.stdout, 'postgres://app:****@db.internal:5432/x with ****')
  assert.not.match(result.output, 'never-registered-pw')
})

test('health: the evidence of an unhealthy app (its logs, its probe body) shows no secret', async () => {
  const s = await ready()
  const image = s.sandbox.state().apps[STAGING[2]].machines[0].image
  s.sandbox.appLog(STAGING[2], `crash: SESSION_SECRET=${SECRET.session} rejected`)
  s.sandbox.update((state) => void (state.images[image].broken = true))
  try {
    const result = await make('health-staging', { APP: 'web-admin', HEALTH_TIMEOUT: '1' }, { env: s.env })
    assert.is(code(result), 1, result.output)
    assert.match(result.stderr, 'microbima-staging-web-admin is unhealthy:')
    assert.match(result.stderr, 'crash: SESSION_SECRET=**** rejected')
  } finally {
    s.sandbox.update((state) => void (state.images[image].broken = false))
  }
})

test('VERBOSE=1 set-secrets never shows a salt, a fingerprint or a digest', async () => {
  const s = await ready()
  const result = await make('set-secrets-staging', { APP: 'web-admin', VERBOSE: '1' }, { env: s.env })
  assert.is(result.code, 0, result.output)
  const rows = await sql<{ salt: string; fingerprint: string; fly_digest: string }>(s.dbs.staging, 'SELECT salt, fingerprint, fly_digest FROM microbima_deploy.secret_fingerprints')
  assert.ok(rows.length >= 3)
  assert.match(result.stderr, "'****', '****', '****'")
  for (const row of rows) for (const value of [row.salt, row.fingerprint, row.fly_digest]) assert.not.ok(result.output.includes(value), `${value} in the output`)
  const dry = await make('set-secrets-staging', { APP: 'web-admin', VERBOSE: '1', DRY_RUN: '1' }, { env: s.env })
  for (const row of rows) for (const value of [row.salt, row.fingerprint, row.fly_digest]) assert.not.ok(dry.output.includes(value))
})

test('secrets: every target shows no secret value anywhere (output, argv, ledger, step summary)', async () => {
  const s = await ready()
  const summary = join(tempDir('mb-summary-'), 'summary.md')
  const env = { ...s.env, LOGS_TIMEOUT: '1', HEALTH_TIMEOUT: '1', GITHUB_STEP_SUMMARY: summary }
  // What the tests above have not run yet (their outputs are scanned here too).
  const runs: Array<[string, Record<string, string>]> = [
    ['set-secrets-prod', { YES: '1', VERBOSE: '1' }], ['deploy-staging', { DRY_RUN: '1', VERBOSE: '1' }], ['deploy-prod', { YES: '1', VERBOSE: '1' }],
    ['migrate-prod', { YES: '1' }], ['migrate-status', { JSON: '1' }], ['diff', {}],
    ['logs-prod', {}], ['history-prod', { VERBOSE: '1' }], ['lock-status-prod', {}], ['rollback-prod', { APP: 'public-api', YES: '1' }],
    ['create-apps-prod', { DRY_RUN: '1', DB: '1' }], ['rollback-migration-staging', { NAME: '20250201000000_add_premiums', DRY_RUN: '1' }],
    ['set-secrets-staging', { APP: 'web-admin', APPLY: '1', VERBOSE: '1' }],
  ]
  for (const [target, vars] of runs) await make(target, vars, { env })
  s.sandbox.fault({ command: 'deploy', app: STAGING[0], kind: 'release-command-fail', times: 1 })
  await make('deploy-staging', { VERBOSE: '1' }, { env })
  await make('migrate-prod', {}, { env })
  for (const value of SECRET_VALUES) {
    for (const output of outputs) assert.not.ok(output.includes(value), `${value} in output:\n${output.slice(0, 400)}`)
    for (const call of s.sandbox.calls()) assert.not.ok(call.argv.join(' ').includes(value), `${value} in argv ${call.argv.join(' ')}`)
  }
  const rows = JSON.stringify([...(await sql(s.dbs.staging, 'SELECT * FROM microbima_deploy.ledger')), ...(await sql(s.dbs.production, 'SELECT * FROM microbima_deploy.ledger'))])
  for (const value of SECRET_VALUES) assert.not.ok(rows.includes(value), `${value} in the ledger`)
  const markdown = readFileSync(summary, 'utf8')
  assert.match(markdown, '#### deploy staging')
  for (const value of SECRET_VALUES) assert.not.ok(markdown.includes(value), `${value} in the GitHub step summary`)
  // Secrets reach flyctl on stdin only.
  assert.ok(s.sandbox.calls().some((c) => c.argv[1] === 'import' && c.stdin?.includes(SECRET.jwt)))
  assert.ok(outputs.length > 50, String(outputs.length))
})

test('env file warnings are said once, where they matter: a group-readable staging file and a Flycast URL on the internal port warn once; a plain-word secret is warned about by set-secrets only, never by read-only targets', async () => {
  const s = await ready()
  const dir = editedEnv(s, (d) => put(d, 'staging', 'web-admin', `SESSION_SECRET=verified\nINTERNAL_API_URL=http://microbima-staging-internal-api.flycast:3000\n`, 0o640))
  const env = { ...s.env, ENV_DIR: dir }
  const secrets = await runMake('set-secrets-staging', { DRY_RUN: '1' }, { env })
  assert.is(secrets.code, 0, secrets.output)
  const count = (text: string, needle: string) => text.split(needle).length - 1
  assert.is(count(secrets.stderr, 'web-admin.env can be read or written by its group (mode 640): run chmod 600'), 1, secrets.stderr)
  assert.is(count(secrets.stderr, 'INTERNAL_API_URL names port 3000 on Flycast, which serves the service\'s external port (80), not the app\'s internal port: use http://microbima-staging-internal-api.flycast'), 1, secrets.stderr)
  assert.is(count(secrets.stderr, 'the value of SESSION_SECRET is a plain word'), 1, secrets.stderr)
  for (const target of ['migrate-status', 'diff', 'history-staging']) {
    const read = await runMake(target, {}, { env })
    assert.not.match(read.stderr, 'plain word', `${target} warned about a secret it does not push:\n${read.stderr}`)
  }
})

test('at least 80 bad inputs are covered', () => {
  assert.ok(cases.length >= 80, String(cases.length))
})

test.run()
