'use strict'

// Decision log, verification, metrics and hot reload from Node.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Engine, DecisionLogError, BundleError, verifyLog, generateSigningKey } = require('..')
const { bundleDir, repo } = require('./helpers')

const requests = fs
  .readFileSync(path.join(repo, 'testdata', 'requests.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.length > 0)

function tmp() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'agentriage-node-'))
}

function candidateBundle() {
  const dir = path.join(tmp(), 'candidate')
  fs.cpSync(bundleDir, dir, { recursive: true })
  const manifest = path.join(dir, 'bundle.toml')
  const text = fs.readFileSync(manifest, 'utf8')
  const changed = text
    .replace('revision = "2026.11.0"', 'revision = "candidate"')
    .replace('    "shipment.reroute",\n', '')
  assert.notEqual(changed.length, text.length)
  fs.writeFileSync(manifest, changed)
  return dir
}

test('a decision log verifies, and a modified record is found', () => {
  const dir = tmp()
  const { privateKey, publicKey } = generateSigningKey()
  const engine = Engine.fromBundle(bundleDir)
  engine.enableDecisionLog(dir, { key: privateKey, checkpointEvery: 5, flushMs: 0 })
  const decided = requests.concat(requests).map((r) => engine.decideSync(r))
  assert.equal(engine.closeDecisionLog(), true)
  assert.equal(engine.closeDecisionLog(), false)
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => path.join(dir, f))
  const report = verifyLog(files, { key: publicKey })
  assert.equal(report.intact, true)
  assert.equal(report.decisions, decided.length)
  assert.equal(report.keyChecked, true)
  assert.equal(report.closed, true)

  const lines = fs.readFileSync(files[0], 'utf8').split('\n')
  lines[2] = lines[2].replace('"v":1', '"v":1,"x":0')
  fs.writeFileSync(files[0], lines.join('\n'))
  const bad = verifyLog(files, { key: publicKey })
  assert.equal(bad.intact, false)
  assert.equal(bad.problem.kind, 'modified')
  assert.equal(bad.problem.line, 3)
})

test('decision log errors are typed', () => {
  const engine = Engine.fromBundle(bundleDir)
  assert.throws(
    () => engine.enableDecisionLog(tmp(), { key: Buffer.from('nope') }),
    (e) => e instanceof DecisionLogError && e.kind === 'key',
  )
  assert.throws(() => engine.enableDecisionLog(tmp(), { bogus: 1 }), TypeError)
  assert.throws(
    () => verifyLog([path.join(tmp(), 'missing.jsonl')]),
    (e) => e instanceof DecisionLogError && e.kind === 'io',
  )
})

test('reload swaps the bundle, and each decision names the bundle that decided', async () => {
  const candidate = candidateBundle()
  const engine = Engine.fromBundle(bundleDir)
  const original = engine.bundle
  const reroute = requests[0]
  const before = engine.decideSync(reroute)
  assert.equal(before.outcome, 'execute')
  assert.equal(before.bundle.digest, original.digest)

  const previous = engine.reload(candidate)
  assert.equal(previous.digest, original.digest)
  assert.equal(engine.bundle.revision, 'candidate')
  const after = engine.decideSync(reroute)
  assert.equal(after.outcome, 'reject')
  assert.equal(after.bundle.revision, 'candidate')
  assert.ok(after.policyIds.includes('R2.unknown_action'))
  const [a, b] = await Promise.all([engine.decide(reroute), engine.decideBatch([reroute])])
  assert.equal(a.bundle.revision, 'candidate')
  assert.equal(b[0].bundle, a.bundle, 'one frozen bundle object per digest')
  // The decision made before the reload still names the old bundle.
  assert.equal(before.bundle.revision, '2026.11.0')

  assert.throws(() => engine.reload(tmp()), BundleError)
  assert.equal(engine.bundle.revision, 'candidate')
})

test('reloadAsync swaps the bundle on a worker thread while the event loop keeps running', async () => {
  const candidate = candidateBundle()
  const engine = Engine.fromBundle(bundleDir)
  const original = engine.bundle
  let ticks = 0
  const timer = setInterval(() => ticks++, 0)
  const pending = engine.reloadAsync(candidate)
  assert.ok(pending instanceof Promise)
  const previous = await pending
  clearInterval(timer)
  // The event loop ran timers while the bundle compiled (tens of ms).
  assert.ok(ticks > 0, 'the event loop was blocked during reloadAsync')
  assert.equal(previous.digest, original.digest)
  assert.equal(engine.bundle.revision, 'candidate')
  assert.equal(engine.decideSync(requests[0]).outcome, 'reject')

  await assert.rejects(engine.reloadAsync(tmp()), BundleError)
  await assert.rejects(engine.reloadAsync(42), TypeError)
  assert.equal(engine.bundle.revision, 'candidate')
  assert.match(engine.metricsText(), /^agentriage_reload_failures_total 1$/m)
  assert.match(engine.metricsText(), /^agentriage_reloads_total 1$/m)
})

test('metricsText is Prometheus text counting decisions', () => {
  const engine = Engine.fromBundle(bundleDir)
  for (const r of requests) engine.decideSync(r)
  const samples = new Map()
  for (const line of engine.metricsText().split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  let total = 0
  for (const [name, value] of samples) if (name.startsWith('agentriage_decisions_total{')) total += value
  assert.equal(total, requests.length)
  assert.equal(samples.get('agentriage_decision_duration_seconds_count'), requests.length)
})
