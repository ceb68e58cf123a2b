import type { IncomingMessage, request as httpRequest } from 'node:http'

// One HTTP request through Node's own http and https modules, not fetch: on Node 20 the first fetch
// of a process loads undici and compiles its WebAssembly HTTP parser, about 0.3 s of CPU in every
// deploy, health or rollback run, for a probe or a webhook that node:http sends in 30 ms.
// Redirects are never followed (the answer is the status) and each request has its own
// connection. A rejection is the socket's error (err.code: ECONNREFUSED, ENOTFOUND…) or, once the
// signal aborts, its reason (a TimeoutError). http and https (with tls) are loaded at the first
// request of their kind: most runs send none, and loading them cost every start 10-15 ms.

export interface HttpAnswer {
  status: number
  /** The body, up to `limit` bytes (the rest is read and dropped). */
  body: string
}

export interface HttpOptions {
  method?: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  signal?: AbortSignal
  limit?: number
}

async function requestFor(protocol: string): Promise<typeof httpRequest | undefined> {
  if (protocol === 'https:') return (await import('node:https')).request
  if (protocol === 'http:') return (await import('node:http')).request
  return undefined
}

export async function sendRequest(url: string, options: HttpOptions = {}): Promise<HttpAnswer> {
  const { method = 'GET', headers = {}, body, signal, limit = 64 * 1024 } = options
  if (signal?.aborted) throw signal.reason
  const target = new URL(url)
  const send = await requestFor(target.protocol)
  if (!send) throw new Error(`unsupported protocol ${target.protocol}`)
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const withLength = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) }
    // agent: false: a connection of its own, closed after the answer (no pooled socket kept alive).
    const req = send(target, { method, headers: withLength, agent: false }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        if (size < limit) chunks.push(chunk)
        size += chunk.length
      })
      res.on('end', () => {
        signal?.removeEventListener('abort', onAbort)
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, limit).toString('utf8') })
      })
      res.on('error', fail)
    })
    function fail(error: Error) {
      signal?.removeEventListener('abort', onAbort)
      reject(signal?.aborted ? signal.reason : error)
    }
    function onAbort() {
      req.destroy()
      fail(signal!.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    req.on('error', fail)
    req.end(body)
  })
}
