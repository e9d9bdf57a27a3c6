// Builds the native addon with cargo and copies it next to index.js.
//
//   node scripts/build.mjs [--debug] [--features f1,f2]
//
// Plain `cargo build --release -p agentriage-node` in the workspace, so the
// addon shares target/ and its release artifacts with the rest of the
// workspace (`napi build` would pass --target and rebuild every dependency
// in target/<triple>/). The cdylib's path comes from cargo's own
// `compiler-artifact` message, so CARGO_TARGET_DIR and profiles just work.

import { spawnSync } from 'node:child_process'
import { copyFileSync, renameSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const packageDir = join(here, '..')
const workspace = join(packageDir, '..', '..')
const args = process.argv.slice(2)
const debug = args.includes('--debug')
const featureAt = args.indexOf('--features')
const features = featureAt >= 0 ? args[featureAt + 1] : undefined

const cargoArgs = ['build', '-p', 'agentriage-node', '--message-format=json-render-diagnostics']
if (!debug) cargoArgs.push('--release')
if (features) cargoArgs.push('--features', features)

const cargo = spawnSync(process.env.CARGO ?? 'cargo', cargoArgs, {
  cwd: workspace,
  stdio: ['ignore', 'pipe', 'inherit'],
  maxBuffer: 256 * 1024 * 1024,
  encoding: 'utf8',
})
if (cargo.error) {
  console.error(`could not run cargo: ${cargo.error.message}`)
  process.exit(1)
}
if (cargo.status !== 0) process.exit(cargo.status ?? 1)

let library
for (const line of cargo.stdout.split('\n')) {
  if (!line.startsWith('{')) continue
  const message = JSON.parse(line)
  if (message.reason === 'compiler-artifact' && message.target?.name === 'agentriage_node') {
    library = message.filenames.find((f) => /\.(so|dylib|dll)$/.test(f))
  }
}
if (!library) {
  console.error('cargo built no agentriage_node library')
  process.exit(1)
}

// Copy then rename, so a running process never sees a half-written addon.
const target = join(packageDir, `agentriage.${process.platform}-${process.arch}.node`)
copyFileSync(library, `${target}.tmp`)
renameSync(`${target}.tmp`, target)
console.error(`built ${target}${features ? ` (features: ${features})` : ''}`)
