'use strict'

// index.d.ts is written by hand (the public API lives in index.js, which
// napi's type generation does not see): this test holds it to the API.
// 1. test/types.ts, a typical TypeScript user, must type-check;
// 2. every runtime export must be declared, and every declared class exist.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const agentriage = require('..')

const root = join(__dirname, '..')

test('test/types.ts type-checks against index.d.ts', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '-p', join(__dirname, 'tsconfig.json')], {
      encoding: 'utf8',
      stdio: 'pipe',
    })
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
  }
})

test('index.d.ts declares exactly the runtime exports', () => {
  const dts = readFileSync(join(root, 'index.d.ts'), 'utf8')
  const declared = new Set(
    [...dts.matchAll(/^export declare (?:class|const|function) (\w+)/gm)].map((m) => m[1]),
  )
  assert.deepEqual(new Set(Object.keys(agentriage)), declared)
})
