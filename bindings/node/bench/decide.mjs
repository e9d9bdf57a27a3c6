// Per-decision cost through Node: the typical request (the `reroute` base of
// the reference pack's suites, tests/bases.yaml) against the reference pack, sync and async, next
// to Cedar's own WASM package deciding the Cedar half of the same pack.
//
//   cd bindings/node && npm ci && npm run build && node bench/decide.mjs
//
// Options: --iterations N (default 10000), --json (one JSON object on stdout).
// With an addon built by `npm run build:test`, it also measures the value
// conversions the binding does not ship (napi serde in, napi objects out).
//
// A benchmark, not a test: figures depend on the machine and its load.

import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import { Engine } from 'agentriage'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..', '..', '..')
const bundleDir = join(repo, 'policies', 'a2a-supply-chain')

const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const at = args.indexOf(name)
  return at >= 0 ? Number(args[at + 1]) : fallback
}
const ITERATIONS = flag('--iterations', 10_000)
const WARMUP = Math.min(2_000, ITERATIONS)
const asJson = args.includes('--json')

const { parse: parseYaml } = require('yaml')
const request = parseYaml(
  readFileSync(join(repo, 'policies', 'a2a-supply-chain', 'tests', 'bases.yaml'), 'utf8'),
).bases.reroute
const requestText = JSON.stringify(request)

function percentiles(samplesNs) {
  const sorted = Float64Array.from(samplesNs).sort()
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1000
  return { p50: at(0.5), p99: at(0.99), n: sorted.length }
}

/** Times `fn` once per call; microseconds at p50 and p99. */
function timeSync(fn, iterations = ITERATIONS) {
  for (let i = 0; i < Math.min(WARMUP, iterations); i++) fn()
  const samples = new Float64Array(iterations)
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint()
    fn()
    samples[i] = Number(process.hrtime.bigint() - t0)
  }
  return percentiles(samples)
}

/** Times each awaited call (one in flight at a time). */
async function timeAsync(fn) {
  for (let i = 0; i < WARMUP; i++) await fn()
  const samples = new Float64Array(ITERATIONS)
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = process.hrtime.bigint()
    await fn()
    samples[i] = Number(process.hrtime.bigint() - t0)
  }
  return percentiles(samples)
}

/** Decisions per second with `inFlight` async decisions outstanding. */
async function throughput(fn, inFlight) {
  const total = ITERATIONS
  let started = 0
  const t0 = process.hrtime.bigint()
  const worker = async () => {
    while (started < total) {
      started++
      await fn()
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return { perSecond: total / seconds, usPerDecision: (seconds * 1e6) / total }
}

// --- agentriage -------------------------------------------------------------

const engine = Engine.fromBundle(bundleDir)
const check = engine.decideSync(request)
if (check.outcome !== 'execute') throw new Error(`typical request did not execute: ${check.outcome}`)

const results = {}
results.sync = timeSync(() => engine.decideSync(request))
results.syncText = timeSync(() => engine.decideSync(requestText))
results.async = await timeAsync(() => engine.decide(request))
results.asyncThroughput = await throughput(() => engine.decide(request), 64)
{
  const batch = Array.from({ length: 100 }, () => request)
  const t = timeSync(() => engine.decideBatchSync(batch), Math.ceil(ITERATIONS / batch.length))
  results.batchSyncPerDecision = { p50: t.p50 / batch.length, p99: t.p99 / batch.length, n: t.n }
}
// What the binding adds to a decision, measured per call and paired: the
// wall time of the call in JS minus the time the engine itself reports for
// that same call (`durationUs`: parsing the JSON text and deciding, inside
// Rust; truncated to whole µs, so the overhead reads up to 1 µs high). The
// pairing cancels the engine's own variance, which dwarfs the binding's.
function overhead(call) {
  for (let i = 0; i < WARMUP; i++) call()
  const inside = new Float64Array(ITERATIONS)
  const added = new Float64Array(ITERATIONS)
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = process.hrtime.bigint()
    const d = call()
    const wall = Number(process.hrtime.bigint() - t0)
    inside[i] = d.durationUs * 1000
    added[i] = wall - inside[i]
  }
  return { inside: percentiles(inside), added: percentiles(added) }
}
async function overheadAsync(call) {
  for (let i = 0; i < WARMUP; i++) await call()
  const added = new Float64Array(ITERATIONS)
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = process.hrtime.bigint()
    const d = await call()
    added[i] = Number(process.hrtime.bigint() - t0) - d.durationUs * 1000
  }
  return percentiles(added)
}
{
  const sync = overhead(() => engine.decideSync(request))
  results.insideEngine = sync.inside
  results.overheadSync = sync.added
  results.overheadSyncText = overhead(() => engine.decideSync(requestText)).added
  results.overheadAsync = await overheadAsync(() => engine.decide(request))
}

// A yardstick for the machine: pure V8 work the binding does per call.
{
  const decisionText = JSON.stringify({ ...check, bundle: undefined })
  results.v8Stringify = timeSync(() => JSON.stringify(request))
  results.v8Parse = timeSync(() => JSON.parse(decisionText))
}

// Conversions the binding does not ship (addon built with test-hooks only),
// against the shipped one: run round-robin, one call of each in turn, so
// that load on the machine hits all alike, and paired (wall time minus the
// engine's own durationUs of the same call), which removes the engine's
// variance.
const nativeFile = join(here, '..', `agentriage.${process.platform}-${process.arch}.node`)
const native = require(nativeFile)
if (typeof native.__decideValue === 'function') {
  const handle = native.NativeEngine.load(bundleDir)
  const variants = {
    hookJsonTextInTextOut: () => JSON.parse(handle.decideJson(JSON.stringify(request))),
    hookNapiValueInTextOut: () => JSON.parse(native.__decideValue(handle, request)),
    hookTextInNapiObjectOut: () => native.__decideToObject(handle, JSON.stringify(request)),
  }
  const names = Object.keys(variants)
  const samples = Object.fromEntries(names.map((n) => [n, new Float64Array(ITERATIONS)]))
  for (let i = 0; i < WARMUP; i++) for (const n of names) variants[n]()
  for (let i = 0; i < ITERATIONS; i++) {
    for (const n of names) {
      const t0 = process.hrtime.bigint()
      const d = variants[n]()
      samples[n][i] = Number(process.hrtime.bigint() - t0) - d.durationUs * 1000
    }
  }
  for (const n of names) results[n] = percentiles(samples[n])
}

// --- cedar-wasm: the Cedar half of the pack -----------------------------------

// The Cedar request core/src/cedar.rs builds for the typical request.
const policiesText = readFileSync(join(bundleDir, 'cedar', 'pack.cedar'), 'utf8')
const schemaText = readFileSync(join(bundleDir, 'cedar', 'pack.cedarschema'), 'utf8')
const principal = { type: 'Agent', id: request.principal.id }
const resource = { type: 'Resource', id: request.resource.id }
const t = Date.parse(request.time)
const cedarCall = {
  principal,
  action: { type: 'Action', id: request.action.name },
  resource,
  context: {
    workflow_id: request.context.workflow_id,
    incident_mode: request.context.incident_mode,
    site: request.context.site,
    delegation: [],
    facts: {
      time: { __extn: { fn: 'datetime', arg: new Date(t).toISOString().replace('.000Z', 'Z') } },
      time_unix: Math.floor(t / 1000),
      hour_utc: new Date(t).getUTCHours(),
      risk_class: 'transactional',
      credential_ttl_s: (Date.parse(request.principal.credential.expires_at) - t) / 1000,
      attestation_age_s: (t - Date.parse(request.principal.attestation.verified_at)) / 1000,
      anomaly_score: { __extn: { fn: 'decimal', arg: request.anomaly.score.toFixed(4) } },
    },
  },
  entities: [
    {
      uid: principal,
      attrs: { type: request.principal.type, trust_zone: request.principal.trust_zone },
      parents: [],
    },
    {
      uid: resource,
      attrs: { ...request.resource.attributes, type: request.resource.type, id: request.resource.id },
      parents: [],
    },
  ],
}
const preparsed = cedar.preparsePolicySet('pack', { staticPolicies: policiesText })
if (preparsed.type !== 'success') throw new Error(`cedar-wasm: ${JSON.stringify(preparsed.errors)}`)
const schemaParsed = cedar.preparseSchema('pack', schemaText)
if (schemaParsed.type !== 'success') throw new Error(`cedar-wasm schema: ${JSON.stringify(schemaParsed.errors)}`)
const statefulCall = { ...cedarCall, preparsedPolicySetId: 'pack' }
const statelessCall = { ...cedarCall, policies: { staticPolicies: policiesText } }
for (const answer of [cedar.statefulIsAuthorized(statefulCall), cedar.isAuthorized(statelessCall)]) {
  // No forbid matches and the Cedar half has no permit: deny, with no
  // reasons and no errors (the Rego half permits in the full decision).
  if (answer.type !== 'success') throw new Error(`cedar-wasm: ${JSON.stringify(answer.errors)}`)
  const { decision, diagnostics } = answer.response
  if (decision !== 'deny' || diagnostics.reason.length || diagnostics.errors.length) {
    throw new Error(`cedar-wasm decided unexpectedly: ${JSON.stringify(answer.response)}`)
  }
}
results.cedarWasmPreparsed = timeSync(() => cedar.statefulIsAuthorized(statefulCall))
results.cedarWasm = timeSync(() => cedar.isAuthorized(statelessCall))

// --- report -------------------------------------------------------------------

const env = {
  node: process.version,
  cedarWasm: cedar.getCedarSDKVersion?.() ?? 'unknown',
  iterations: ITERATIONS,
}
if (asJson) {
  console.log(JSON.stringify({ env, results }))
} else {
  const us = (x) => x.toFixed(1).padStart(8)
  const row = (name, r) => console.log(`${name.padEnd(62)} ${us(r.p50)} ${us(r.p99)}`)
  console.log(`node ${env.node}, cedar-wasm ${env.cedarWasm}, ${ITERATIONS} timed calls each\n`)
  console.log(`${'per decision, µs'.padEnd(62)} ${'p50'.padStart(8)} ${'p99'.padStart(8)}`)
  row('agentriage decideSync(object)   [Rego + Cedar, full decision]', results.sync)
  row('agentriage decideSync(JSON text)', results.syncText)
  row('agentriage decide(object), awaited one at a time', results.async)
  row('agentriage decideBatchSync, 100 per call, per decision', results.batchSyncPerDecision)
  row('  inside the engine (Decision.durationUs: parse + decide, whole µs)', results.insideEngine)
  row('  added by the binding, decideSync(object) [paired: wall - inside]', results.overheadSync)
  row('  added by the binding, decideSync(JSON text)', results.overheadSyncText)
  row('  added by the binding, decide(object), awaited', results.overheadAsync)
  if (results.hookNapiValueInTextOut) {
    row('  added by conversion: JSON text in and out (shipped) [paired]', results.hookJsonTextInTextOut)
    row('  added by conversion: napi serde value in, JSON text out', results.hookNapiValueInTextOut)
    row('  added by conversion: JSON text in, napi serde object out', results.hookTextInNapiObjectOut)
  }
  row('  yardstick: V8 JSON.stringify(request) alone', results.v8Stringify)
  row('  yardstick: V8 JSON.parse(decision text) alone', results.v8Parse)
  row('cedar-wasm statefulIsAuthorized [Cedar half only, preparsed]', results.cedarWasmPreparsed)
  row('cedar-wasm isAuthorized         [Cedar half only, parses policies]', results.cedarWasm)
  const tp = results.asyncThroughput
  console.log(
    `\nasync throughput, 64 in flight: ${Math.round(tp.perSecond)} decisions/s ` +
      `(${tp.usPerDecision.toFixed(1)} µs per decision, ${process.env.UV_THREADPOOL_SIZE ?? 4} libuv threads)`,
  )
  console.log(
    `cedar-wasm (preparsed) p50 / agentriage decideSync p50: ` +
      `${(results.cedarWasmPreparsed.p50 / results.sync.p50).toFixed(1)}×`,
  )
}
