'use strict'

// Time fields of the contract: Date objects accepted, invalid Dates and epoch
// numbers refused. The Python module runs the same cases with datetimes
// (bindings/python/tests/test_time_values.py) and gives the same errors.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, InvalidRequestError } = require('..')
const { bundleDir } = require('./helpers')

const engine = Engine.fromBundle(bundleDir)
const T = new Date('2026-11-24T10:30:00Z')
const minutes = (m) => new Date(T.getTime() + m * 60_000)

function request({ time = '2026-11-24T10:30:00Z', expires = '2026-11-24T10:35:00Z', verified = '2026-11-24T10:25:00Z' } = {}) {
  return {
    time,
    principal: {
      id: 'spiffe://acme.example/ns/logistics/sa/router',
      type: 'agent',
      trust_zone: 'cloud',
      credential: { issuer: 'spiffe://acme.example/spire', expires_at: expires },
      attestation: { status: 'verified', kind: 'tpm', verified_at: verified },
    },
    action: { name: 'shipment.reroute' },
    resource: { type: 'shipment', id: 'SH-1', attributes: { value_usd: 12_000, state: 'in_transit' } },
    context: { workflow_id: 'wf-1', incident_mode: false, site: 'dc-1' },
  }
}

const FIELDS = {
  time: 'time',
  expires: 'principal.credential.expires_at',
  verified: 'principal.attestation.verified_at',
}

test('Dates decide as their RFC 3339 text', async () => {
  const asText = engine.decideSync(request())
  const asDates = await engine.decide(request({ time: T, expires: minutes(5), verified: minutes(-5) }))
  assert.equal(asText.outcome, 'execute')
  assert.equal(asDates.outcome, asText.outcome)
  assert.deepEqual(asDates.policyIds, asText.policyIds)
})

test('an expired credential given as a Date is seen as expired', () => {
  assert.equal(engine.decideSync(request({ time: T, expires: new Date(T.getTime() - 1000) })).outcome, 'reject')
})

for (const [field, path] of Object.entries(FIELDS)) {
  test(`an invalid Date at ${path} is refused`, () => {
    assert.throws(
      () => engine.decideSync(request({ [field]: new Date('not a date') })),
      (e) => e instanceof InvalidRequestError && e.kind === 'value' && e.path === path && /invalid Date/.test(e.message),
    )
  })

  test(`epoch seconds at ${path} are refused with a hint`, async () => {
    const check = (e) =>
      e instanceof InvalidRequestError &&
      e.kind === 'type' &&
      e.path === path &&
      e.reason === 'expected an RFC 3339 string; got 1764611100 \u2014 seconds since epoch?'
    assert.throws(() => engine.decideSync(request({ [field]: 1764611100 })), check)
    await assert.rejects(engine.decide(request({ [field]: 1764611100 })), check)
  })
}

test('epoch milliseconds (Date.now()) and fractions get their unit', () => {
  assert.throws(
    () => engine.decideSync(request({ time: 1764611100000 })),
    (e) => e.reason === 'expected an RFC 3339 string; got 1764611100000 \u2014 milliseconds since epoch?',
  )
  assert.throws(
    () => engine.decideSync(request({ time: 1764611100.5 })),
    (e) => e.reason === 'expected an RFC 3339 string; got 1764611100.5 \u2014 seconds since epoch?',
  )
})
