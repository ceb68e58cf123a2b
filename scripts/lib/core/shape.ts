// Values read from JSON or TOML the toolkit did not write itself (flyctl's answers, settings.json,
// a plan, fly.toml) are checked before use: one definition of "an object", one way of saying what
// a value is instead.

/** A plain object: not null, not a list. */
export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** What a value is, for messages: null, a list, an object, or its type. */
export const kindOf = (value: unknown): string => (value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : typeof value)
