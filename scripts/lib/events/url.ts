import { registerSecret } from '../secrets/mask.js'

// The notification receiver's URL: where it may point, and how output shows it. A webhook URL is
// a credential more often than not (Slack's carries its secret in the path, others a token in the
// query), so the toolkit only ever shows scheme://host/…, and registers the rest with the masker.

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i

/** scheme://host[:port]/… : the only part of a receiver URL that output, errors and the ledger show. */
export function displayUrl(raw: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return '(not a URL)'
  }
  const hidden = url.pathname !== '/' || url.search !== '' || url.hash !== ''
  return `${url.protocol}//${url.host}/${hidden ? '…' : ''}`
}

/** Why a receiver URL is refused (exit 2), in words that never show its path or query. */
export function receiverProblem(raw: string, where: string): string | undefined {
  if (raw.trim() === '') return `${where} is empty: give it the receiver's https:// URL, or leave it unset for no notifications`
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return `${where} is not a URL: give it the receiver's https:// URL`
  }
  // Plain http would carry the events (and the signature's replayable proof) in clear across the
  // network: only a receiver on this machine (a local relay, a test) may use it.
  if (url.protocol === 'https:') return undefined
  if (url.protocol === 'http:' && LOOPBACK.test(url.hostname)) return undefined
  if (url.protocol === 'http:') return `${where}=${displayUrl(raw)} uses http to another machine: use https (http only to a loopback address such as 127.0.0.1)`
  return `${where}=${displayUrl(raw)} is not an http(s) URL: use https://…`
}

/** The receiver's secret parts, masked wherever they might be printed: the whole URL, its query
 * and a long path (a Slack webhook's), and the signing secret. */
export function registerNotifySecrets(env: NodeJS.ProcessEnv = process.env, settingsUrl?: string): void {
  registerSecret(env.NOTIFY_SECRET)
  for (const raw of [env.NOTIFY_URL, settingsUrl]) {
    if (!raw) continue
    registerSecret(raw)
    try {
      const url = new URL(raw)
      if (url.search.length > 1) registerSecret(url.search.slice(1))
      // Short paths (/notify) are ordinary words the toolkit prints elsewhere; long ones are tokens.
      if (url.pathname.length >= 16) registerSecret(url.pathname)
    } catch {
      // not a URL: refused by the knobs' check
    }
  }
}
