// Side by side, in one Node process: the agentriage Node module against
// Cedar's own WASM package (bench/compare/README.md).
//
// On the reference pack (policies/a2a-supply-chain) and its typical request
// (the `baseline reroute executes` case of the pack's suites: both halves
// run, it executes), it times one call at a time:
//
// - agentriage `decideSync(object)`: the whole decision (facts, Rego half,
//   Cedar half, combination);
// - `@cedar-policy/cedar-wasm` on the pack's Cedar half (policies and schema
//   preparsed once; the Cedar request agentriage builds, precomputed once):
//   `statefulIsAuthorized`, and `isAuthorized` (parses the policies per call).
//
// Before timing, cedar-wasm must give the answer agentriage's Cedar half gives
// (no forbid matches, no error: deny, no reason). Prints p50 and p99, each
// peer's p50 over agentriage's and the load average.
//
//   (cd bench/compare/node && npm ci) && node bench/compare/node/compare.mjs [--n 20000] [--json]
//
// Needs the Node module built (scripts/test-node.sh, or `npm run build` in
// bindings/node).

import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import * as cedar from '@cedar-policy/cedar-wasm/nodejs'
import { parse as parseYaml } from 'yaml'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..', '..', '..')
const pack = join(repo, 'policies', 'a2a-supply-chain')
const { Engine } = require(join(repo, 'bindings', 'node'))

const args = process.argv.slice(2)
const at = args.indexOf('--n')
const N = at >= 0 ? Number(args[at + 1]) : 20_000
const asJson = args.includes('--json')
const CASE = 'baseline reroute executes'

/** RFC 7386, as the pack's suites apply a case's `patch` to its base. */
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch)
  const out = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v)
  }
  return out
}

const suite = parseYaml(readFileSync(join(pack, 'tests', 'baseline.yaml'), 'utf8'))
const bases = parseYaml(readFileSync(join(pack, 'tests', 'bases.yaml'), 'utf8')).bases
const testCase = suite.cases.find((c) => c.name === CASE)
if (!testCase || testCase.expect.outcome !== 'execute') throw new Error(`suite case \`${CASE}\` not found`)
const request = mergePatch(bases[testCase.base ?? suite.defaults.base], testCase.patch ?? {})

// --- agentriage ---------------------------------------------------------------

const engine = Engine.fromBundle(pack)
const ours = engine.decideSync(request)
if (ours.outcome !== 'execute') throw new Error(`agentriage: ${ours.outcome}`)
if (ours.reasons.some((r) => r.effect === 'reject' || r.effect === 'escalate')) {
  throw new Error(`agentriage: reasons ${JSON.stringify(ours.reasons)}`)
}

// --- cedar-wasm: the Cedar request agentriage builds (docs/policy-authoring.md) --

const policiesText = readFileSync(join(pack, 'cedar', 'pack.cedar'), 'utf8')
const schemaText = readFileSync(join(pack, 'cedar', 'pack.cedarschema'), 'utf8')
// What the schema declares, for the attributes it drops (undeclared
// attributes are left out of what Cedar sees, as agentriage does).
const declared = {
  Agent: new Set(['type', 'trust_zone']),
  Resource: new Set(['type', 'id', 'state']),
  context: new Set(['facts', 'delegation', 'on_behalf_of', 'incident_mode', 'site', 'workflow_id']),
}
for (const [entity, names] of [['Agent', declared.Agent], ['Resource', declared.Resource]]) {
  const body = schemaText.match(new RegExp(`entity ${entity} \\{([^}]*)\\}`))?.[1] ?? ''
  for (const name of names) {
    if (!new RegExp(`"?${name}"?\\??\\s*:`).test(body)) throw new Error(`schema: ${entity}.${name} is not declared`)
  }
}
const pick = (obj, keys) => Object.fromEntries(Object.entries(obj ?? {}).filter(([k]) => keys.has(k)))
// The action's risk class from the manifest's `[risk_classes]` table.
function riskClass(action) {
  const manifest = readFileSync(join(pack, 'bundle.toml'), 'utf8')
  const table = manifest.split(/^\[risk_classes\]$/m)[1]?.split(/^\[/m)[0] ?? ''
  for (const m of table.matchAll(/^(\w+)\s*=\s*\[([^\]]*)\]/gm)) {
    if ([...m[2].matchAll(/"([^"]+)"/g)].some((a) => a[1] === action)) return m[1]
  }
  return 'unknown'
}
const risk = riskClass(request.action.name)
if (risk !== 'transactional') throw new Error(`risk class of ${request.action.name}: ${risk}`)
/** A score as Cedar's decimal, rounded up to four fraction digits (written for scores with at most four). */
function decimalUp(x) {
  const [int, frac = ''] = String(x).split('.')
  if (frac.length > 4 || /e/i.test(String(x))) throw new Error(`score ${x}: more than four fraction digits`)
  return `${int}.${frac.padEnd(4, '0')}`
}
const t = Date.parse(request.time)
const principal = { type: 'Agent', id: request.principal.id }
const resource = { type: 'Resource', id: request.resource.id }
const cedarCall = {
  principal,
  action: { type: 'Action', id: request.action.name },
  resource,
  context: {
    ...pick(request.context, declared.context),
    delegation: request.principal.delegation ?? [],
    facts: {
      time: { __extn: { fn: 'datetime', arg: new Date(t).toISOString().replace('.000Z', 'Z') } },
      time_unix: Math.floor(t / 1000),
      hour_utc: new Date(t).getUTCHours(),
      risk_class: risk,
      credential_ttl_s: Math.floor((Date.parse(request.principal.credential.expires_at) - t) / 1000),
      attestation_age_s: Math.ceil((t - Date.parse(request.principal.attestation.verified_at)) / 1000),
      anomaly_score: { __extn: { fn: 'decimal', arg: decimalUp(request.anomaly.score) } },
      intent: { status: 'absent' },
    },
  },
  entities: [
    {
      uid: principal,
      attrs: pick({ ...request.principal.attributes, type: request.principal.type, trust_zone: request.principal.trust_zone }, declared.Agent),
      parents: [],
    },
    {
      uid: resource,
      attrs: pick({ ...request.resource.attributes, type: request.resource.type, id: request.resource.id }, declared.Resource),
      parents: [],
    },
  ],
}
const preparsed = cedar.preparsePolicySet('pack', { staticPolicies: policiesText })
if (preparsed.type !== 'success') throw new Error(`cedar-wasm: ${JSON.stringify(preparsed.errors)}`)
const schemaParsed = cedar.preparseSchema('pack', schemaText)
if (schemaParsed.type !== 'success') throw new Error(`cedar-wasm schema: ${JSON.stringify(schemaParsed.errors)}`)
const statefulCall = { ...cedarCall, preparsedPolicySetId: 'pack', preparsedSchemaName: 'pack' }
const statelessCall = { ...cedarCall, policies: { staticPolicies: policiesText }, schema: schemaText }
for (const answer of [cedar.statefulIsAuthorized(statefulCall), cedar.isAuthorized(statelessCall)]) {
  // The pack's Cedar half only forbids: agreeing means no policy matched and
  // no error (deny, no reason), as agentriage's Cedar half found.
  if (answer.type !== 'success') throw new Error(`cedar-wasm: ${JSON.stringify(answer.errors)}`)
  const { decision, diagnostics } = answer.response
  if (decision !== 'deny' || diagnostics.reason.length || diagnostics.errors.length) {
    throw new Error(`cedar-wasm disagrees: ${JSON.stringify(answer.response)}`)
  }
}

// --- timing ----------------------------------------------------------------------

function timeSync(fn) {
  for (let i = 0; i < Math.max(1, Math.floor(N / 10)); i++) fn()
  const samples = new Float64Array(N)
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint()
    fn()
    samples[i] = Number(process.hrtime.bigint() - t0)
  }
  samples.sort()
  const q = (p) => samples[Math.min(N - 1, Math.floor(p * N))] / 1000
  return { p50_us: q(0.5), p99_us: q(0.99) }
}

const load = () => `${loadavg().map((x) => x.toFixed(2)).join(' ')} (1/5/15 min, ${cpus().length} CPUs)`
const loadStart = load()
const results = {
  agentriage: timeSync(() => engine.decideSync(request)),
  cedar_wasm_preparsed: timeSync(() => cedar.statefulIsAuthorized(statefulCall)),
  cedar_wasm: timeSync(() => cedar.isAuthorized(statelessCall)),
}
for (const [k, r] of Object.entries(results)) {
  if (k !== 'agentriage') r.ratio_p50 = r.p50_us / results.agentriage.p50_us
}
const loadEnd = load()

if (asJson) {
  console.log(JSON.stringify({ node: process.version, cedarWasm: cedar.getCedarVersion?.() ?? null, load: loadavg(), results, agree: true }))
} else {
  const row = (name, r) => console.log(`${name.padEnd(56)} p50 ${r.p50_us.toFixed(2).padStart(9)} µs   p99 ${r.p99_us.toFixed(2).padStart(9)} µs`)
  console.log(`# node ${process.version}, cedar-wasm ${cedar.getCedarVersion?.() ?? '?'}; suite case \`${CASE}\`; ${N} timed calls each`)
  console.log(`# load average at start: ${loadStart}`)
  row('agentriage decideSync(object), whole decision', results.agentriage)
  row('cedar-wasm statefulIsAuthorized, Cedar half (preparsed)', results.cedar_wasm_preparsed)
  row('cedar-wasm isAuthorized, Cedar half (parses per call)', results.cedar_wasm)
  console.log('\n# p50 of each over agentriage\'s (> 1: agentriage is faster)')
  for (const [k, r] of Object.entries(results)) if (k !== 'agentriage') console.log(`${k.padEnd(24)} ${r.ratio_p50.toFixed(2).padStart(8)}x`)
  console.log('# agreement: cedar-wasm gave the Cedar half\'s answer (no forbid matched, no error)')
  console.log(`# load average at end: ${loadEnd}`)
}
