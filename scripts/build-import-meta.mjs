// Put by esbuild into each CommonJS script it compiles (scripts/build.mjs): import.meta's values in
// such a file are the compiled file's own, as they are in an ES module.
export const importMetaUrl = require('node:url').pathToFileURL(__filename).href
export const importMetaDirname = __dirname
export const importMetaFilename = __filename
