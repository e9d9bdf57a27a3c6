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

function segments(dir) {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => path.join(dir, f))
}

// Drops checkpoints from line `start` on, edits decisions, re-chains: what
// a forger without the checkpoint key can do.
function forge(lines, start, edit) {
  const crypto = require('node:crypto')
  const canon = (v) => {
    if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']'
    if (v && typeof v === 'object') {
      return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
    }
    return JSON.stringify(v)
  }
  const out = lines.slice(0, start)
  const before = JSON.parse(out[out.length - 1])
  let prev = before.hash
  let seq = before.seq + 1
  for (const line of lines.slice(start)) {
    const r = JSON.parse(line)
    if (r.kind === 'checkpoint') continue
    if (r.kind === 'decision') edit(r)
    r.prev = prev
    r.seq = seq
    delete r.hash
    prev = 'sha256:' + crypto.createHash('sha256').update(canon(r)).digest('hex')
    r.hash = prev
    seq += 1
    out.push(canon(r))
  }
  return out
}

test('a rewritten log without its checkpoints is not intact; without a key nothing is', () => {
  const dir = tmp()
  const { privateKey, publicKey } = generateSigningKey()
  const engine = Engine.fromBundle(bundleDir)
  engine.enableDecisionLog(dir, { key: privateKey, checkpointEvery: 5, flushMs: 0 })
  for (const r of requests.concat(requests, requests)) engine.decideSync(r)
  engine.closeDecisionLog()
  const files = segments(dir)
  const lines = fs.readFileSync(files[0], 'utf8').split('\n').filter((l) => l.length > 0)
  const execute = (r) => {
    r.decision.outcome = 'execute'
  }
  fs.writeFileSync(files[0], forge(lines, 1, execute).join('\n') + '\n')
  const report = verifyLog(files, { key: publicKey })
  assert.equal(report.intact, false)
  assert.equal(report.proven, false)
  assert.equal(report.problem.kind, 'unsigned_tail')
  assert.equal(report.checkpoints, 0)
  assert.equal(verifyLog(files, { key: publicKey, allowUnsignedTail: true }).intact, false)
  const unkeyed = verifyLog(files)
  assert.equal(unkeyed.chainVerifies, true)
  assert.equal(unkeyed.intact, false)
  assert.equal(unkeyed.integrity, 'unproven')
  assert.throws(() => verifyLog(files, { key: publicKey, allowUnsignedTail: 'yes' }), TypeError)

  // One record edited after the last checkpoint kept: accepted only with the option.
  let last = 0
  lines.forEach((l, i) => {
    if (l.includes('"kind":"checkpoint"') && i < lines.length - 8) last = i
  })
  const forged = forge(lines, last + 1, execute)
  fs.writeFileSync(files[0], forged.join('\n') + '\n')
  assert.equal(verifyLog(files, { key: publicKey }).problem.kind, 'unsigned_tail')
  const accepted = verifyLog(files, { key: publicKey, allowUnsignedTail: true })
  assert.equal(accepted.intact, true)
  assert.equal(accepted.integrity, 'proven_except_tail')
  assert.deepEqual(accepted.unsignedTailSeq, { first: last + 1, last: forged.length - 1 })
})

test('a repeated member is a problem', () => {
  const dir = tmp()
  const { privateKey, publicKey } = generateSigningKey()
  const engine = Engine.fromBundle(bundleDir)
  engine.enableDecisionLog(dir, { key: privateKey })
  engine.decideSync(requests[0])
  engine.closeDecisionLog()
  const files = segments(dir)
  const lines = fs.readFileSync(files[0], 'utf8').split('\n')
  const at = lines.findIndex((l) => l.includes('"kind":"decision"'))
  lines[at] = lines[at].replace('{', '{"decision":{"outcome":"execute"},')
  fs.writeFileSync(files[0], lines.join('\n'))
  const report = verifyLog(files, { key: publicKey })
  assert.equal(report.problem.kind, 'duplicate_member')
  assert.equal(report.problem.line, at + 1)
})

test('after closeDecisionLog a mandatory log rejects every decision', () => {
  const dir = tmp()
  const engine = Engine.fromBundle(bundleDir)
  engine.enableDecisionLog(dir, { mandatory: true })
  assert.equal(engine.decideSync(requests[0]).outcome, 'execute')
  assert.equal(engine.closeDecisionLog(), true)
  const after = engine.decideSync(requests[0])
  assert.equal(after.outcome, 'reject')
  assert.equal(after.reasons[0].policy, 'decision-log')
  assert.equal(engine.closeDecisionLog(), false)
})
