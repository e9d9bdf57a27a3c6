'use strict'

// Every expected decision of the reference pack's YAML suites, through every entry
// point: the Rust and Python suites check the same cases.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, Decision } = require('..')
const { bundleDir, decisionCases, mergePatch } = require('./helpers')

// Cases are decided many times; each signed intent verifies once, so no
// replay check here (replays are tested in intent.test.js).
const engine = Engine.fromBundle(bundleDir, { replayCheck: false })
const allCases = decisionCases()
// Cases with `prior` decisions need state of their own (quotas, used
// approvals): they are decided on engines of their own, below; the shared
// engine, which remembers nothing, decides every other case.
const cases = allCases.filter((c) => c.prior === 0)
const stateful = allCases.filter((c) => c.prior > 0)

function expectDecision(c, decision) {
  assert.ok(decision instanceof Decision)
  assert.equal(decision.outcome, c.outcome, `${c.name}: ${JSON.stringify(decision.reasons)}`)
  if (c.reasons !== undefined && c.outcome !== 'execute') {
    assert.deepEqual(new Set(decision.policyIds), new Set(c.reasons), c.name)
  }
}

test('merge patch follows RFC 7396', () => {
  assert.deepEqual(mergePatch({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: null, e: 3 }, d: 5 }), {
    a: { c: 2, e: 3 },
    d: 5,
  })
})

test('the shared cases cover every outcome', () => {
  const outcomes = new Set(cases.map((c) => c.outcome))
  assert.deepEqual(outcomes, new Set(['execute', 'reject', 'escalate']))
  assert.ok(cases.length >= 50)
})

test('cases with prior decisions hold on an engine of their own', () => {
  assert.ok(stateful.length >= 3)
  for (const c of stateful) {
    const own = Engine.fromBundle(bundleDir)
    for (let i = 0; i < c.prior; i++) own.decideSync(c.request)
    expectDecision(c, own.decideSync(c.request))
  }
})

test('decideSync on objects', async (t) => {
  for (const c of cases) {
    await t.test(c.name, () => expectDecision(c, engine.decideSync(c.request)))
  }
})

test('decideSync on JSON text', () => {
  for (const c of cases) expectDecision(c, engine.decideSync(JSON.stringify(c.request)))
})

test('decide (async)', async () => {
  for (const c of cases) expectDecision(c, await engine.decide(c.request))
})

test('decideBatchSync and decideBatch keep the order', async () => {
  const requests = cases.map((c) => c.request)
  const sync = engine.decideBatchSync(requests)
  const async_ = await engine.decideBatch(requests)
  assert.equal(sync.length, cases.length)
  assert.equal(async_.length, cases.length)
  cases.forEach((c, i) => {
    expectDecision(c, sync[i])
    expectDecision(c, async_[i])
  })
  assert.deepEqual(engine.decideBatchSync([]), [])
})

test('a decision carries everything the contract names', () => {
  const c = cases.find((x) => x.name === 'R9 reroute value 1 above the limit escalates')
  const d = engine.decideSync(c.request)
  assert.deepEqual(Object.keys(d).sort(), [
    'approval',
    'approvalRequest',
    'bundle',
    'decisionId',
    'durationUs',
    'obligations',
    'outcome',
    'reasons',
    'traceId',
  ])
  assert.equal(d.traceId, c.request.trace_id ?? d.traceId)
  assert.match(d.traceId, /^[0-9a-f]{32}$/)
  assert.match(d.decisionId, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/)
  assert.deepEqual(d.bundle, engine.bundle)
  assert.equal(d.bundle.name, 'a2a-supply-chain')
  assert.match(d.bundle.digest, /^sha256:[0-9a-f]{64}$/)
  assert.equal(typeof d.durationUs, 'number')
  assert.equal(d.isExecute, false)
  for (const r of d.reasons) {
    assert.deepEqual(Object.keys(r).sort(), ['effect', 'engine', 'message', 'policy'])
    assert.ok(['rego', 'cedar', 'agentriage'].includes(r.engine))
  }
  // The decision is plain data; as JSON it is the contract's snake_case form.
  // (`approval` and `approval_request` appear only when there is one.)
  const { traceId, decisionId, durationUs, approvalRequest, approval, ...rest } = d
  assert.equal(approval, null)
  assert.deepEqual(JSON.parse(JSON.stringify(d)), {
    ...rest,
    trace_id: traceId,
    decision_id: decisionId,
    duration_us: durationUs,
    approval_request: approvalRequest,
  })
})

test('a Date is accepted where a timestamp is expected', () => {
  const c = cases.find((x) => x.name === 'baseline read executes')
  const request = { ...c.request, time: new Date(c.request.time) }
  assert.equal(engine.decideSync(request).outcome, 'execute')
})
