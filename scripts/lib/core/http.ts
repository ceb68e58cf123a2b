import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'

// One HTTP request through Node's own http and https modules, not fetch: on Node 20 the first fetch
// of a process loads undici and compiles its WebAssembly HTTP parser, about 0.3 s of CPU in every
// deploy, health or rollback run, for a probe or a webhook that node:http sends in 30 ms.
// Redirects are never followed (the answer is the status) and each request has its own
// connection. A rejection is the socket's error (err.code: ECONNREFUSED, ENOTFOUND…) or, once the
// signal aborts, its reason (a TimeoutError).

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

export function sendRequest(url: string, options: HttpOptions = {}): Promise<HttpAnswer> {
  const { method = 'GET', headers = {}, body, signal, limit = 64 * 1024 } = options
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    let target: URL
    try {
      target = new URL(url)
    } catch (error) {
      return reject(error)
    }
    const send = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : undefined
    if (!send) return reject(new Error(`unsupported protocol ${target.protocol}`))
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
