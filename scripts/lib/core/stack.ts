import { readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// A bug's stack in TypeScript positions. The scripts run compiled (dist/*.cjs, *.mjs) without
// --enable-source-maps, which would read and parse each script's source map at every start (about
// 25 ms of every run) for the rare run that hits a bug; the map is read here instead, only then,
// with Node's own SourceMap.

const maps = new Map<string, SourceMap | undefined>()

function mapOf(file: string): SourceMap | undefined {
  if (!maps.has(file)) {
    try {
      maps.set(file, new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))))
    } catch {
      maps.set(file, undefined) // no map beside it (run from source, or not ours): left as it is
    }
  }
  return maps.get(file)
}

/** Each `file:line:column` of a compiled script in the stack, as its TypeScript source's. A CommonJS
 * script's frames name plain paths, spaces and all; an ES module's, file:// URLs. */
export function originalStack(stack: string): string {
  return stack.replace(/(file:\/\/[^\s():]+\.[cm]js|\/[^():\n]+?\.[cm]js):(\d+):(\d+)/g, (whole, where: string, line: string, column: string) => {
    const file = where.startsWith('file://') ? fileURLToPath(where) : where
    const entry = mapOf(file)?.findEntry(Number(line) - 1, Number(column) - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number } | undefined
    if (!entry?.originalSource || entry.originalLine === undefined || entry.originalColumn === undefined) return whole
    const source = relative(process.cwd(), resolve(dirname(file), entry.originalSource))
    return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`
  })
}
