'use strict'

// JavaScript values reach the policies exactly, or the request is refused
// with an InvalidRequestError naming the path; nothing is dropped or
// replaced silently, and JSON text's limits hold for objects too.

const test = require('node:test')
const assert = require('node:assert/strict')
const { join } = require('node:path')
const { Engine, InvalidRequestError, MAX_REQUEST_BYTES, MAX_DEPTH } = require('..')
const { repo, bundleDir, baseRequest } = require('./helpers')

const pack = Engine.fromBundle(bundleDir)
// Reports, per context key, what its Rego policy received (shared with the Python tests).
const echo = Engine.fromBundle(join(repo, 'bindings', 'python', 'tests', 'bundles', 'echo'))
const probe = (context) => ({ principal: { id: 'agent' }, action: { name: 'probe' }, context })

function invalid(kind, path) {
  return (e) => {
    assert.ok(e instanceof InvalidRequestError, `${e?.name}: ${e?.message}`)
    assert.equal(e.code, 'AGENTRIAGE_INVALID_REQUEST')
    assert.equal(e.kind, kind, e.message)
    assert.equal(e.path, path, e.message)
    assert.ok(e.message.includes(`\`${path}\``), e.message)
    return true
  }
}

/** Refused the same way by every entry point. */
async function refused(engine, request, kind, path) {
  assert.throws(() => engine.decideSync(request), invalid(kind, path))
  await assert.rejects(engine.decide(request), invalid(kind, path))
  assert.throws(() => engine.decideBatchSync([request]), invalid(kind, path))
}

/** What the echo policy received for each context key. */
function received(context) {
  const seen = {}
  for (const o of echo.decideSync(probe(context)).obligations) seen[o.id.slice('echo:'.length)] = o.params
  return seen
}

test('the issue: a Map context is the object it holds, so R6 escalates', () => {
  const base = baseRequest('reroute')
  const plain = { ...base, context: { ...base.context, incident_mode: true } }
  const asMap = { ...base, context: new Map([...Object.entries(base.context), ['incident_mode', true]]) }
  const expected = pack.decideSync(plain)
  assert.equal(expected.outcome, 'escalate')
  assert.deepEqual(expected.policyIds, ['R6.incident_mode'])
  for (const decision of [pack.decideSync(asMap), pack.decideBatchSync([asMap])[0]]) {
    assert.equal(decision.outcome, 'escalate')
    assert.deepEqual(decision.policyIds, ['R6.incident_mode'])
  }
  // The issue's exact value: only `incident_mode`, nothing else in context.
  const issue = pack.decideSync({ ...base, context: new Map([['incident_mode', true]]) })
  assert.notEqual(issue.outcome, 'execute')
  assert.equal(issue.outcome, pack.decideSync({ ...base, context: { incident_mode: true } }).outcome)
})

test('values with no faithful JSON form name their path', async (t) => {
  class Point {
    constructor() {
      this.x = 1
    }
  }
  class List extends Array {}
  const sparse = [1, , 3] // eslint-disable-line no-sparse-arrays
  const extra = Object.assign([1], { note: 'lost' })
  const cases = [
    ['a Map with a number key', { incident_mode: new Map([[1, true]]) }, 'type', 'context.incident_mode'],
    ['a Map with an object key', new Map([[{}, true]]), 'type', 'context'],
    ['a Set', { tags: new Set(['a']) }, 'type', 'context.tags'],
    ['a WeakMap', { w: new WeakMap() }, 'type', 'context.w'],
    ['an ArrayBuffer', { b: new ArrayBuffer(4) }, 'type', 'context.b'],
    ['a SharedArrayBuffer', { b: new SharedArrayBuffer(4) }, 'type', 'context.b'],
    ['a Uint8Array', { b: new Uint8Array([1, 2]) }, 'type', 'context.b'],
    ['a Float64Array', { b: new Float64Array([1.5]) }, 'type', 'context.b'],
    ['a Buffer', { b: Buffer.from('text') }, 'type', 'context.b'],
    ['a DataView', { b: new DataView(new ArrayBuffer(2)) }, 'type', 'context.b'],
    ['a function', { f: () => true }, 'type', 'context.f'],
    ['a symbol', { s: Symbol('s') }, 'type', 'context.s'],
    ['a symbol key', { [Symbol('hidden')]: true }, 'type', 'context'],
    ['a BigInt', { n: 10n }, 'type', 'context.n'],
    ['a class instance', { p: new Point() }, 'type', 'context.p'],
    ['an Error', { e: new Error('x') }, 'type', 'context.e'],
    ['a Promise', { p: Promise.resolve(1) }, 'type', 'context.p'],
    ['a RegExp', { r: /x/ }, 'type', 'context.r'],
    ['a boxed boolean', { incident_mode: new Boolean(false) }, 'type', 'context.incident_mode'], // eslint-disable-line no-new-wrappers
    ['an Array subclass', { l: List.from([1]) }, 'type', 'context.l'],
    ['an array hole', { l: sparse }, 'type', 'context.l'],
    ['an array with a property', { l: extra }, 'type', 'context.l'],
    ['undefined in an array', { l: [1, undefined] }, 'type', 'context.l[1]'],
    ['an invalid Date', { when: new Date('not a date') }, 'value', 'context.when'],
    ['NaN', { n: NaN }, 'value', 'context.n'],
    ['a lone surrogate', { s: 'a\ud800' }, 'value', 'context.s'],
    ['a lone surrogate in a key', { ['\udc00']: 1 }, 'value', 'context.\udc00'],
    ['a nested Map value', new Map([['m', new Map([['s', new Set()]])]]), 'type', 'context.m.s'],
  ]
  for (const [name, context, kind, path] of cases) {
    await t.test(name, () => refused(pack, { ...baseRequest('reroute'), context }, kind, path))
  }
  await t.test('an invalid Date as the request time', () =>
    refused(pack, { ...baseRequest('reroute'), time: new Date(Number.NaN) }, 'value', 'time'),
  )
})

test('an invalid Date in `time` is refused, not taken as now', () => {
  const base = baseRequest('reroute')
  assert.throws(() => pack.decideSync({ ...base, time: new Date('2026-13-45') }), invalid('value', 'time'))
})

test('a valid Date is its ISO 8601 text, also as the request time', () => {
  const base = baseRequest('reroute')
  // The credential expires at 14:10: the time decides the outcome.
  const outcomes = new Set()
  for (const text of ['2026-11-21T14:05:00Z', '2026-11-21T14:20:00Z']) {
    const asText = pack.decideSync({ ...base, time: text })
    const asDate = pack.decideSync({ ...base, time: new Date(text) })
    assert.equal(asDate.outcome, asText.outcome)
    assert.deepEqual(asDate.policyIds, asText.policyIds)
    outcomes.add(asText.outcome)
  }
  assert.equal(outcomes.size, 2)
  assert.equal(received({ d: new Date(Date.UTC(2026, 10, 21, 14, 5)) }).d.value, '2026-11-21T14:05:00.000Z')
})

test('exact conversions reach the policy as documented', () => {
  const seen = received({
    m: new Map([
      ['b', 1],
      ['a', [false, null]],
    ]),
    empty: new Map(),
    nullProto: Object.assign(Object.create(null), { k: 'v' }),
    withJson: { v: new (class Money { toJSON() { return '12.50 EUR' } })() },
    f: false,
    z: -0,
  })
  assert.deepEqual(seen.m.value, { b: 1, a: [false, null] })
  assert.equal(seen.m.json, '{"a":[false,null],"b":1}')
  assert.deepEqual(seen.empty.value, {})
  assert.equal(seen.empty.type, 'object')
  assert.deepEqual(seen.nullProto.value, { k: 'v' })
  assert.deepEqual(seen.withJson.value, { v: '12.50 EUR' })
  assert.equal(seen.f.is_false, true)
  assert.equal(seen.z.is_zero, true)
})

test('an undefined member is a missing member; null is kept', () => {
  const seen = received({ u: undefined, n: null })
  assert.deepEqual(Object.keys(seen), ['n'])
  assert.equal(seen.n.is_null, true)
  // A required field given as undefined is missing.
  assert.throws(
    () => pack.decideSync({ ...baseRequest('reroute'), action: { name: undefined } }),
    invalid('missing', 'action.name'),
  )
})

test('a getter is read once: the checked value is the one sent', () => {
  let reads = 0
  const context = {
    get incident_mode() {
      reads += 1
      return reads === 1 ? true : () => 'dropped by JSON.stringify'
    },
  }
  const decision = pack.decideSync({ ...baseRequest('reroute'), context })
  assert.equal(reads, 1)
  assert.equal(decision.outcome, 'escalate')
})

test('JSON text limits hold for objects', async (t) => {
  const big = 'x'.repeat(50 * 1024 * 1024)
  const wide = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]))
  assert.ok(JSON.stringify(wide).length > MAX_REQUEST_BYTES)
  let deep = 0
  for (let i = 0; i < MAX_DEPTH; i++) deep = { d: deep }
  const cases = [
    ['a 50 MB string', { note: big }, 'too_large', '$'],
    ['a 50 MB Map value', new Map([['note', big]]), 'too_large', '$'],
    ['a million-element array', { items: new Array(1_000_000).fill(0) }, 'too_large', '$'],
    ['a 100k-key object', wide, 'too_large', '$'],
    ['a 100k-key Map', new Map(Object.entries(wide)), 'too_large', '$'],
    ['non-ASCII text over the limit in bytes', { w: '✓'.repeat(400_000) }, 'too_large', '$'],
    ['nesting one level too deep', deep, 'too_deep', 'context' + '.d'.repeat(MAX_DEPTH - 1)],
  ]
  for (const [name, context, kind, path] of cases) {
    await t.test(name, async () => {
      const request = { ...baseRequest('reroute'), context }
      await refused(pack, request, kind, path)
      // As JSON text (where it has one) the request is refused with the same kind.
      if (!(context instanceof Map)) {
        assert.throws(() => pack.decideSync(JSON.stringify(request)), (e) => e.kind === kind)
      }
    })
  }
  await t.test('one level less fits', () => {
    pack.decideSync({ ...baseRequest('reroute'), context: deep.d })
  })
})

test('the limit is the JSON text of the request, as for text', () => {
  const base = { principal: { id: 'agent' }, action: { name: 'probe' } }
  const padded = (total) => {
    const request = { ...base, context: { q: 'quote " and \\ and \n', pad: '' } }
    request.context.pad = 'p'.repeat(total - Buffer.byteLength(JSON.stringify(request)))
    assert.equal(Buffer.byteLength(JSON.stringify(request)), total)
    return request
  }
  const atLimit = padded(MAX_REQUEST_BYTES)
  assert.equal(echo.decideSync(atLimit).outcome, 'execute')
  assert.equal(echo.decideSync(JSON.stringify(atLimit)).outcome, 'execute')
  const over = padded(MAX_REQUEST_BYTES + 1)
  assert.throws(() => echo.decideSync(over), invalid('too_large', '$'))
  assert.throws(() => echo.decideSync(JSON.stringify(over)), invalid('too_large', '$'))
})
