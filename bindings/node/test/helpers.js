'use strict'

// Shared by the tests: paths relative to this file, the shared test data,
// and JSON merge patch (RFC 7396).

const { readFileSync } = require('node:fs')
const { join } = require('node:path')

const repo = join(__dirname, '..', '..', '..')
const testdata = join(repo, 'testdata')
const bundleDir = join(repo, 'policies', 'a2a-supply-chain')

function readJson(name) {
  return JSON.parse(readFileSync(join(testdata, name), 'utf8'))
}

/** RFC 7396: null deletes a key, objects merge recursively, anything else replaces. */
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch
  const out =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key]
    else out[key] = mergePatch(out[key], value)
  }
  return out
}

/** The decision cases of testdata/decisions.json, each with its full request. */
function decisionCases() {
  const data = readJson('decisions.json')
  return data.cases.map((c) => ({ ...c, request: mergePatch(data.bases[c.base], c.patch) }))
}

/** The requests of testdata/requests.jsonl. */
function sampleRequests() {
  return readFileSync(join(testdata, 'requests.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line))
}

module.exports = { repo, testdata, bundleDir, readJson, mergePatch, decisionCases, sampleRequests }
