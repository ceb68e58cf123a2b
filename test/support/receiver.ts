import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

// A notification receiver for the tests: a local HTTP server that keeps every request and answers
// as told (a status, or never).

export interface Received {
  path: string
  headers: IncomingHttpHeaders
  body: string
  /** Date.now() when the request had arrived whole. */
  at: number
}

export interface Receiver {
  /** http://127.0.0.1:<port> */
  base: string
  requests: Received[]
  /** What the next requests get: a status, or 'never' (the connection stays open, unanswered). */
  answer: number | 'never'
  /** The JSON bodies received, parsed. */
  events(): Array<Record<string, unknown>>
  close(): Promise<void>
}

export async function startReceiver(answer: number | 'never' = 204): Promise<Receiver> {
  const requests: Received[] = []
  const state = { answer }
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => (body += chunk))
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body, at: Date.now() })
      if (state.answer === 'never') return
      res.writeHead(state.answer).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    get answer() {
      return state.answer
    },
    set answer(value) {
      state.answer = value
    },
    events: () => requests.map((r) => JSON.parse(r.body) as Record<string, unknown>),
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Checks X-MicroBima-Signature as a receiver would (README, "Hooks and notifications"): the
 * HMAC of "<t>.<body>" with the shared secret, compared in constant time, t recent. */
export function signatureValid(secret: string, header: string | string[] | undefined, body: string, toleranceS = 300): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(header ?? ''))
  if (!match) return false
  const expected = createHmac('sha256', secret).update(`${match[1]}.${body}`).digest()
  const given = Buffer.from(match[2], 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected) && Math.abs(Date.now() / 1000 - Number(match[1])) <= toleranceS
}
