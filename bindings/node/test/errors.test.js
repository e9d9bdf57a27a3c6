'use strict'

// Invalid requests (testdata/invalid-requests.json), bad JavaScript values,
// and bundle errors: always a thrown, typed error; never a decision.

const test = require('node:test')
const assert = require('node:assert/strict')
const { mkdtempSync, writeFileSync, mkdirSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const {
  Engine,
  AgentriageError,
  InvalidRequestError,
  BundleError,
  MAX_REQUEST_BYTES,
} = require('..')
const { bundleDir, readJson } = require('./helpers')

const engine = Engine.fromBundle(bundleDir)
const valid = {
  time: '2026-11-21T14:05:00Z',
  principal: { id: 'spiffe://acme.example/ns/analytics/sa/reporter' },
  action: { name: 'shipment.read' },
  resource: { type: 'shipment', id: 'SH-1001' },
}

function invalid(kind, path) {
  return (e) => {
    assert.ok(e instanceof InvalidRequestError, `${e?.name}: ${e?.message}`)
    assert.ok(e instanceof AgentriageError)
    assert.ok(e instanceof Error)
    assert.equal(e.code, 'AGENTRIAGE_INVALID_REQUEST')
    if (kind !== undefined) assert.equal(e.kind, kind, e.message)
    if (path !== undefined) assert.equal(e.path, path, e.message)
    return true
  }
}

test('the valid request used below executes', () => {
  assert.equal(engine.decideSync(valid).outcome, 'execute')
})

test('every shared invalid request throws its kind and path', async (t) => {
  for (const c of readJson('invalid-requests.json').cases) {
    const request = 'text' in c ? c.text : c.request
    await t.test(c.name, async () => {
      assert.throws(() => engine.decideSync(request), invalid(c.kind, c.path))
      await assert.rejects(engine.decide(request), invalid(c.kind, c.path))
    })
  }
})

test('bad JavaScript values throw typed errors', async (t) => {
  const circular = { ...valid, context: {} }
  circular.context.self = circular
  const deep = { ...valid, context: {} }
  let node = deep.context
  for (let i = 0; i < 100_000; i++) node = node.next = {}
  const cases = [
    ['undefined', undefined, 'type', '$'],
    ['null', null, 'type', '$'],
    ['a number', 42, 'type', '$'],
    ['a boolean', true, 'type', '$'],
    ['a BigInt at the top', 10n, 'type', '$'],
    ['a symbol', Symbol('x'), 'type', '$'],
    ['a function', () => valid, 'type', '$'],
    ['a circular object', circular, 'too_deep', undefined],
    ['an object nested 100 000 deep', deep, 'too_deep', undefined],
    ['a BigInt score', { ...valid, anomaly: { score: 1n } }, 'type', 'anomaly.score'],
    [
      'a BigInt attribute',
      { ...valid, resource: { ...valid.resource, attributes: { value_usd: 12000n } } },
      'type',
      'resource.attributes.value_usd',
    ],
    ['a NaN score', { ...valid, anomaly: { score: NaN } }, 'value', 'anomaly.score'],
    ['an infinite attribute', { ...valid, context: { n: -Infinity } }, 'value', 'context.n'],
    ['a function in context', { ...valid, context: { f() {} } }, 'type', 'context.f'],
    ['a symbol in an array', { ...valid, context: { s: [1, Symbol('s')] } }, 'type', 'context.s[1]'],
    ['a huge string', 'x'.repeat(64 * 1024 * 1024), 'too_large', '$'],
    [
      'a huge string inside',
      { ...valid, context: { note: 'x'.repeat(MAX_REQUEST_BYTES) } },
      'too_large',
      '$',
    ],
    ['an empty string', '', 'syntax', '$'],
    ['deep JSON text', '['.repeat(100_000), 'too_deep', undefined],
  ]
  for (const [name, value, kind, path] of cases) {
    await t.test(name, async () => {
      assert.throws(() => engine.decideSync(value), invalid(kind, path))
      await assert.rejects(engine.decide(value), invalid(kind, path))
      assert.throws(() => engine.decideBatchSync([valid, value]), (e) => {
        invalid(kind, path)(e)
        assert.equal(e.index, 1)
        return true
      })
      await assert.rejects(engine.decideBatch([valid, value]), invalid(kind, path))
    })
  }
})

test('an invalid request found by the engine in a batch names its index', async () => {
  const bad = { ...valid, anomaly: { score: 2 } }
  const check = (e) => {
    invalid('value', 'anomaly.score')(e)
    assert.equal(e.index, 2)
    assert.match(e.message, /^request 2: /)
    return true
  }
  assert.throws(() => engine.decideBatchSync([valid, valid, bad]), check)
  await assert.rejects(engine.decideBatch([valid, valid, bad]), check)
  assert.throws(() => engine.decideBatchSync('not a list'), TypeError)
})

test('bundle errors name the file and line', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agentriage-node-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))

  assert.throws(() => Engine.fromBundle(join(dir, 'missing')), (e) => {
    assert.ok(e instanceof BundleError)
    assert.ok(e instanceof AgentriageError)
    assert.equal(e.code, 'AGENTRIAGE_BUNDLE')
    assert.equal(e.kind, 'io')
    assert.equal(typeof e.file, 'string')
    return true
  })

  mkdirSync(join(dir, 'rego'))
  writeFileSync(
    join(dir, 'bundle.toml'),
    'name = "broken"\nrevision = "1"\n[rego]\npackage = "agentriage"\nmodules = ["rego/a.rego"]\n',
  )
  writeFileSync(join(dir, 'rego', 'a.rego'), 'package agentriage\n\nallow if {\n  input.x ==\n}\n')
  assert.throws(() => Engine.fromBundle(dir), (e) => {
    assert.ok(e instanceof BundleError, e.message)
    assert.equal(e.kind, 'rego')
    assert.match(e.file, /a\.rego$/)
    assert.equal(typeof e.line, 'number')
    assert.ok(e.line >= 3, `line ${e.line}`)
    assert.match(e.message, /a\.rego:\d+: /)
    return true
  })

  assert.throws(() => Engine.fromBundle(42), TypeError)
  assert.throws(() => new Engine(), TypeError)
})
