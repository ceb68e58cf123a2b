// 0.0.0.0: Fly Proxy reaches the machine over IPv4.
import { createApp } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const server = createApp().listen(port, '0.0.0.0', () => console.log(`web-admin listening on 0.0.0.0:${port}`))
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close(() => process.exit(0)))
