import { scenario, addMachine, STAGING } from './support/scenario.ts'
import { runScript } from './support/toolkit.ts'
const s = await scenario({ stagingDeployed: true })
s.sandbox.fault({ command: 'deploy', app: STAGING[2], kind: 'http-5xx', times: 1 })
const r = await runScript('deploy', ['staging', '--app', 'web-admin'], { env: s.env })
console.log(r.stdout)
await s.sandbox.close(); process.exit(0)
