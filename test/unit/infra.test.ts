import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parse as parseToml } from 'smol-toml'
import { APP_KEYS, ENVIRONMENTS, flyAppName, flyConfigPath, otherEnvironment, databaseAppName } from '../../scripts/lib/core/names.ts'

const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN)

for (const env of ENVIRONMENTS) {
  for (const key of APP_KEYS) {
    const path = flyConfigPath(env, key)
    test(`${path}: app, region, /health check within flyctl's limits, deploy strategy`, () => {
      const config = parseToml(readFileSync(path, 'utf8')) as any
      assert.is(config.app, flyAppName(env, key))
      assert.is(config.primary_region, 'jnb')
      const [check] = config.http_service.checks
      assert.is(check.path, '/health')
      assert.ok(seconds(check.interval) >= 2, 'interval >= 2s')
      assert.ok(seconds(check.timeout) <= 60, 'timeout <= 60s')
      assert.ok(['rolling', 'canary', 'bluegreen', 'immediate'].includes(config.deploy.strategy))
      assert.ok(existsSync(join(dirname(path), config.build.dockerfile)), 'the Dockerfile [build] names exists')
      if (key === 'internal-api') assert.is(config.deploy.release_command, "sh -c 'cd /app && npx prisma migrate deploy'")
      else assert.is(config.deploy.release_command, undefined)
      const other = otherEnvironment(env)
      const text = readFileSync(path, 'utf8')
      assert.not.match(text, `microbima-${other}-`)
      assert.not.match(text, databaseAppName(other))
    })
  }
  test(`${env}: the gateway reaches its own internal API over Flycast, which is private and plain HTTP`, () => {
    const gateway = parseToml(readFileSync(flyConfigPath(env, 'public-api'), 'utf8')) as any
    // Flycast routes by the service's external port (80 for an http_service), not internal_port.
    assert.is(gateway.env.KONG_UPSTREAM_URL, `http://${flyAppName(env, 'internal-api')}.flycast`)
    assert.is(gateway.build.dockerfile, '../../docker/public-api.Dockerfile')
    const api = parseToml(readFileSync(flyConfigPath(env, 'internal-api'), 'utf8')) as any
    assert.is(api.http_service.force_https, false, 'force_https answers Flycast requests with a redirect to an https that does not exist')
    for (const key of APP_KEYS) assert.not.ok('NODE_ENV' in ((parseToml(readFileSync(flyConfigPath(env, key), 'utf8')) as any).env ?? {}), 'NODE_ENV comes from the secrets the toolkit sets')
  })
  test(`env/${env}: an example per app, NODE_ENV left to the toolkit, DATABASE_URL naming its own database`, () => {
    for (const key of APP_KEYS) {
      const text = readFileSync(`env/${env}/${key}.env.example`, 'utf8')
      assert.not.match(text, /^NODE_ENV=/m)
      for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) assert.match(line, /^[A-Z_][A-Z0-9_]*=\S+$/)
    }
    const api = readFileSync(`env/${env}/internal-api.env.example`, 'utf8')
    assert.match(api, `@${databaseAppName(env)}.flycast:5432/`)
  })
}

test('real env files are ignored by git, examples are not', () => {
  const ignore = readFileSync('.gitignore', 'utf8')
  assert.match(ignore, 'env/*/*.env\n')
  assert.match(ignore, '!env/*/*.env.example')
  assert.match(ignore, 'backups/')
})

test.run()
