'use strict'
// Approvals from Node: an escalation approved by the right role, exactly
// once, for exactly that action (docs/escalation.md).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { Engine, approval } = require('..')
const { bundleDir, decisionCases } = require('./helpers')

const keys = join(__dirname, '..', '..', '..', 'testdata', 'approvals', 'keys')
const lee = { pem: readFileSync(join(keys, 'lee-logistics.pem'), 'utf8'), alg: 'ES256', kid: 'lee-2026-11', iss: 'mailto:lee.brandt@acme.example' }
const sam = { pem: readFileSync(join(keys, 'sam-analyst.pem'), 'utf8'), alg: 'EdDSA', kid: 'sam-2026-11', iss: 'mailto:sam.ito@acme.example' }
const iat = new Date('2026-11-21T14:05:00Z')

function reroute(value) {
  const base = decisionCases().find((c) => c.name === 'R9 reroute value 1 above the limit escalates').request
  return { ...base, resource: { ...base.resource, attributes: { ...base.resource.attributes, value_usd: value } } }
}

function signAs(who, request) {
  return approval.sign(who.pem, { alg: who.alg, kid: who.kid, iss: who.iss, request, iat })
}

test('an escalation is approved once, by the right role, for exactly that action', () => {
  const engine = Engine.fromBundle(bundleDir)
  const request = reroute(250000)
  const escalated = engine.decideSync(request)
  assert.equal(escalated.outcome, 'escalate')
  assert.equal(escalated.approvalRequest.action_digest, approval.digest(request, { contextFields: ['workflow_id'] }))
  assert.deepEqual(escalated.approvalRequest.reasons, [
    { policy: 'R9.value_threshold', roles: ['finance-approver', 'logistics-supervisor'] },
  ])

  const token = signAs(lee, escalated)
  const other = engine.decideSync({ ...reroute(250001), approval: token })
  assert.equal(other.outcome, 'reject')
  assert.ok(other.policyIds.includes('approval.action_mismatch'), other.policyIds)
  const byAnalyst = engine.decideSync({ ...request, approval: signAs(sam, escalated) })
  assert.ok(byAnalyst.policyIds.includes('approval.role'), byAnalyst.policyIds)

  const approved = engine.decideSync({ ...request, approval: token })
  assert.equal(approved.outcome, 'execute', JSON.stringify(approved.reasons))
  assert.equal(approved.approval.status, 'used')
  assert.equal(approved.approval.approver, lee.iss)
  const again = engine.decideSync({ ...request, approval: token })
  assert.deepEqual([again.outcome, again.policyIds], ['reject', ['approval.reused']])
})

test('signing needs an approval request or explicit claims', () => {
  const engine = Engine.fromBundle(bundleDir)
  const executed = engine.decideSync(reroute(10))
  assert.equal(executed.approvalRequest, null)
  assert.throws(() => signAs(lee, executed), /approvalRequest/)
  assert.throws(() => approval.sign(lee.pem, { alg: 'ES256', kid: lee.kid, iss: lee.iss }), /actionDigest/)
})
