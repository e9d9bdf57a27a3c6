'use strict'

// Shared by the tests: paths relative to this file, the shared test data,
// the reference pack's YAML suites, and JSON merge patch (RFC 7396).

const { readFileSync, readdirSync } = require('node:fs')
const { join } = require('node:path')
const YAML = require('yaml')

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

const suitesDir = join(bundleDir, 'tests')

function readYaml(path) {
  return YAML.parse(readFileSync(path, 'utf8'))
}

/**
 * The cases of the reference pack's YAML suites (tests/*.yaml), each with its
 * full request: the case's `request`, or its base (the case's, else the
 * suite's `defaults.base`) with the case's `patch` applied.
 */
function decisionCases() {
  const cases = []
  for (const file of readdirSync(suitesDir).sort()) {
    if (!/\.ya?ml$/.test(file)) continue
    const suite = readYaml(join(suitesDir, file))
    if (!suite.cases) continue
    const bases = {}
    for (const imported of suite.import ?? []) Object.assign(bases, readYaml(join(suitesDir, imported)).bases)
    Object.assign(bases, suite.bases ?? {})
    const defaults = suite.defaults ?? {}
    for (const c of suite.cases) {
      let request = c.request ?? bases[c.base ?? defaults.base]
      if (c.patch) request = mergePatch(request, c.patch)
      if (defaults.time && request.time === undefined) request = { ...request, time: defaults.time }
      // `prior`: decisions of the same request the case's decision follows,
      // in an engine of its own (quotas, used approvals).
      cases.push({ name: c.name, request, prior: c.prior ?? 0, outcome: c.expect.outcome, reasons: c.expect.reasons })
    }
  }
  return cases
}

/** The typical request: the `reroute` base of the suites (it executes). */
/** A base request of the pack's suites (`tests/bases.yaml`), by name. */
function baseRequest(name) {
  return readYaml(join(suitesDir, 'bases.yaml')).bases[name]
}

function typicalRequest() {
  return readYaml(join(suitesDir, 'bases.yaml')).bases.reroute
}

/** The requests of testdata/requests.jsonl. */
function sampleRequests() {
  return readFileSync(join(testdata, 'requests.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line))
}

module.exports = {
  repo,
  testdata,
  bundleDir,
  readJson,
  mergePatch,
  decisionCases,
  typicalRequest,
  baseRequest,
  sampleRequests,
}
