import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { createApp } from '../src/app.js'

async function start(env) {
  const server = createApp(env).listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, base: `http://127.0.0.1:${server.address().port}` }
}

test('GET /health answers 200 {"status":"ok"} without a database', async (t) => {
  const { server, base } = await start({})
  t.after(() => server.close())
  const res = await fetch(`${base}/health`)
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { status: 'ok' })
})

test('GET /v1/whoami names the environment the deployment gives it', async (t) => {
  const { server, base } = await start({ NODE_ENV: 'staging' })
  t.after(() => server.close())
  assert.deepEqual(await (await fetch(`${base}/v1/whoami`)).json(), { app: 'internal-api', environment: 'staging' })
})

test('unknown paths are 404', async (t) => {
  const { server, base } = await start({})
  t.after(() => server.close())
  assert.equal((await fetch(`${base}/nope`)).status, 404)
})
