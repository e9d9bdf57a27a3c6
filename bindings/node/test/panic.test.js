'use strict'

// A Rust panic inside the addon never crashes the process: it becomes an
// InternalError with code AGENTRIAGE_INTERNAL. The hook that panics is
// compiled only with the addon's `test-hooks` cargo feature
// (`npm run build:test`); scripts/test-node.sh sets
// AGENTRIAGE_REQUIRE_TEST_HOOKS=1 so the test cannot silently skip there.

const test = require('node:test')
const assert = require('node:assert/strict')
const agentriage = require('..')

const hooks = agentriage.__testHooks
const required = process.env.AGENTRIAGE_REQUIRE_TEST_HOOKS === '1'

test('a panic becomes AGENTRIAGE_INTERNAL, sync and async', { skip: !hooks && !required && 'addon built without test-hooks' }, async () => {
  assert.ok(hooks, 'the addon was built without --features test-hooks')
  const internal = (e) => {
    assert.ok(e instanceof agentriage.InternalError, e?.message)
    assert.ok(e instanceof agentriage.AgentriageError)
    assert.equal(e.code, 'AGENTRIAGE_INTERNAL')
    assert.match(e.message, /panicked: boom/)
    return true
  }
  assert.throws(() => hooks.panic('boom'), internal)
  await assert.rejects(hooks.panicAsync('boom'), internal)
  // The engine still works afterwards.
  const { Engine } = agentriage
  const { bundleDir } = require('./helpers')
  const engine = Engine.fromBundle(bundleDir)
  const d = await engine.decide({ principal: { id: 'spiffe://x.example/a' }, action: { name: 'shipment.read' } })
  assert.equal(d.outcome, 'reject')
})
