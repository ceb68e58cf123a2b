import { OperationError } from '../core/errors.js'
import { isObject, kindOf } from '../core/shape.js'

// flyctl's --json answers, parsed from stdout only (flyctl prints notices on stderr) and checked
// for the shape the toolkit reads: anything else is one operation failure, never a crash later.

/** The fields each item of a flyctl JSON list must have for the toolkit to read it: a missing or
 * mistyped one is flyctl's answer to another question (or a broken one), never a crash later. */
type Field = 'string' | 'number' | 'date' | 'string?'
type ItemShape = Record<string, Field>
const ITEMS: Record<string, ItemShape> = {
  'apps list': { Name: 'string' },
  releases: { Version: 'number', Status: 'string', ImageRef: 'string', CreatedAt: 'date', Description: 'string?' },
  'secrets list': { name: 'string', digest: 'string', status: 'string?' },
  'volumes list': { id: 'string', state: 'string' },
  'volumes snapshots list': { id: 'string', created_at: 'date', status: 'string' },
  'ips list': { Address: 'string', Type: 'string' },
  'platform regions': { code: 'string' },
  'mpg list': { id: 'string', name: 'string', status: 'string' },
  'mpg backup list': { id: 'string', status: 'string' },
}

function itemProblem(item: unknown, shape: ItemShape): string | undefined {
  if (!isObject(item)) return `is ${kindOf(item)}, not an object`
  for (const [key, field] of Object.entries(shape)) {
    const value = item[key]
    if (field === 'string?' && (value === undefined || value === null)) continue
    const ok = field === 'number' ? typeof value === 'number' && Number.isFinite(value) : typeof value === 'string' && (field !== 'date' || !Number.isNaN(Date.parse(value)))
    if (!ok) return value === undefined ? `has no ${key}` : `has ${key} ${JSON.stringify(value)?.slice(0, 60)}, not ${field === 'date' ? 'a date' : `a ${field.replace('?', '')}`}`
  }
  return undefined
}

export function parseJson<T>(stdout: string, what: string, empty?: T): T {
  let value: unknown
  try {
    value = JSON.parse(stdout)
  } catch {
    throw new OperationError(`flyctl ${what} did not print JSON on stdout`, [stdout.slice(0, 400)])
  }
  // Go renders a nil slice as null: the toolkit reads it as an empty list.
  if (value === null && empty !== undefined) return empty
  // Any other shape than the one asked for is flyctl's answer to another question: one line, not a crash.
  const wanted = empty === undefined ? 'an object' : kindOf(empty)
  if (kindOf(value) !== wanted) throw new OperationError(`flyctl ${what} printed ${kindOf(value)} where it prints ${wanted}: is this flyctl too old or too new? (flyctl version)`, [stdout.slice(0, 200)])
  const items = ITEMS[what]
  if (items && Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const problem = itemProblem(item, items)
      if (problem) throw new OperationError(`flyctl ${what} --json answered unexpected JSON: item ${i} ${problem}`, [stdout.slice(0, 200)])
    }
  }
  return value as T
}
