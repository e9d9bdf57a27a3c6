// Adds the platform packages a registry mirror did not serve to
// package-lock.json, so that `npm ci` accepts the lockfile everywhere.
//
//   node scripts/complete-lockfile.mjs   (after `npm install` changed the lockfile)
//
// napi-rs tools (@napi-rs/lzma, @napi-rs/tar, … under @napi-rs/cli) list one
// optional package per platform. A mirror that serves only some of them
// makes `npm install` leave the others out of the lockfile, and `npm ci`
// then refuses it ("Missing: … from lock file"). Each missing entry is added
// as npm writes it for a foreign platform — optional, with its os/cpu/libc —
// so npm skips it on other platforms and fetches it by name and version on
// its own (without an integrity hash, which the mirror could not provide).

import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'package-lock.json')
const lock = JSON.parse(readFileSync(file, 'utf8'))

const platforms = {
  'android-arm-eabi': { os: ['android'], cpu: ['arm'] },
  'android-arm64': { os: ['android'], cpu: ['arm64'] },
  'darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'darwin-universal': { os: ['darwin'] },
  'freebsd-x64': { os: ['freebsd'], cpu: ['x64'] },
  'freebsd-arm64': { os: ['freebsd'], cpu: ['arm64'] },
  'linux-arm-gnueabihf': { os: ['linux'], cpu: ['arm'], libc: ['glibc'] },
  'linux-arm-musleabihf': { os: ['linux'], cpu: ['arm'], libc: ['musl'] },
  'linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  'linux-arm64-musl': { os: ['linux'], cpu: ['arm64'], libc: ['musl'] },
  'linux-ppc64-gnu': { os: ['linux'], cpu: ['ppc64'], libc: ['glibc'] },
  'linux-riscv64-gnu': { os: ['linux'], cpu: ['riscv64'], libc: ['glibc'] },
  'linux-s390x-gnu': { os: ['linux'], cpu: ['s390x'], libc: ['glibc'] },
  'linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
  'linux-x64-musl': { os: ['linux'], cpu: ['x64'], libc: ['musl'] },
  'wasm32-wasi': { cpu: ['wasm32'] },
  'win32-arm64-msvc': { os: ['win32'], cpu: ['arm64'] },
  'win32-ia32-msvc': { os: ['win32'], cpu: ['ia32'] },
  'win32-x64-msvc': { os: ['win32'], cpu: ['x64'] },
}

let added = 0
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`
    if (lock.packages[key] || lock.packages[`${path}/${key}`]) continue
    const platform = Object.entries(platforms).find(([suffix]) => name.endsWith(`-${suffix}`))
    if (!platform) {
      console.error(`left out: ${name}@${version} (no known platform suffix)`)
      continue
    }
    lock.packages[key] = { version, dev: entry.dev, optional: true, ...platform[1] }
    if (!entry.dev) delete lock.packages[key].dev
    added++
  }
}
// npm keeps packages sorted by path.
const [root, ...rest] = Object.entries(lock.packages)
lock.packages = Object.fromEntries([root, ...rest.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))])
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`)
console.error(`added ${added} platform package entries to package-lock.json`)
