// App log lines as the simulator keeps them for `fly logs`.

/** An app log entry as the simulator stores it (tab-separated, so messages keep their spaces). */
export function logLine(instance: string, region: string, level: string, message: string, at = Date.now()): string {
  return [new Date(at).toISOString().replace(/\.\d+Z$/, 'Z'), instance, region, level, message].join('\t')
}
