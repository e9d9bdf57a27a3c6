'use strict'

// JSON.stringify(decision) writes the public contract (snake_case keys, in
// the order of the core's Decision: what the CLI and the Python module's
// Decision.to_json write).

const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('..')
const { bundleDir } = require('./helpers')

const engine = Engine.fromBundle(bundleDir)

const request = {
  time: '2026-11-24T10:30:00Z',
  principal: {
    id: 'spiffe://acme.example/ns/logistics/sa/router',
    type: 'agent',
    trust_zone: 'cloud',
    credential: { issuer: 'spiffe://acme.example/spire', expires_at: '2026-11-24T10:35:00Z' },
    attestation: { status: 'verified', kind: 'tpm', verified_at: '2026-11-24T10:25:00Z' },
  },
  action: { name: 'shipment.reroute' },
  resource: { type: 'shipment', id: 'SH-1002', attributes: { value_usd: 240_000, state: 'in_transit' } },
  context: { workflow_id: 'wf-1', incident_mode: false, site: 'dc-1' },
}

test('JSON.stringify(decision) has the snake_case keys of the contract', async () => {
  const d = await engine.decide(request)
  assert.equal(d.outcome, 'escalate')
  const json = JSON.parse(JSON.stringify(d))
  // An escalation an approval can settle also carries what the approver needs.
  assert.deepEqual(Object.keys(json), [
    'outcome',
    'reasons',
    'obligations',
    'trace_id',
    'decision_id',
    'bundle',
    'duration_us',
    'approval_request',
  ])
  assert.deepEqual(json.approval_request, d.approvalRequest)
  assert.equal(json.trace_id, d.traceId)
  assert.equal(json.decision_id, d.decisionId)
  assert.equal(json.duration_us, d.durationUs)
  assert.deepEqual(json.bundle, { name: d.bundle.name, revision: d.bundle.revision, digest: d.bundle.digest })
  assert.deepEqual(json.reasons, d.reasons)
  assert.deepEqual(json.reasons.map((r) => r.policy), ['R9.value_threshold'])
  for (const key of ['traceId', 'decisionId', 'durationUs', 'isExecute', 'policyIds']) assert.ok(!(key in json), key)
})
