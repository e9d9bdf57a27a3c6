'use strict'

// Concurrency: many decisions in flight at once agree with the synchronous
// answers; abort signals; the event loop stays free while deciding.

const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('..')
const { bundleDir, decisionCases } = require('./helpers')

// Cases are decided many times; each signed intent verifies once, so no
// replay check here (replays are tested in intent.test.js).
const engine = Engine.fromBundle(bundleDir, { replayCheck: false })
const cases = decisionCases()

test('2 000 concurrent async decisions agree with decideSync', async () => {
  const expected = cases.map((c) => engine.decideSync(c.request))
  const pending = []
  for (let round = 0; round < 2000 / cases.length; round++) {
    for (const c of cases) pending.push(engine.decide(c.request))
  }
  const decisions = await Promise.all(pending)
  decisions.forEach((d, i) => {
    const want = expected[i % cases.length]
    assert.equal(d.outcome, want.outcome)
    assert.deepEqual(d.policyIds, want.policyIds)
  })
  // Every decision has its own id.
  assert.equal(new Set(decisions.map((d) => d.decisionId)).size, decisions.length)
})

test('concurrent batches and single decisions mix', async () => {
  const requests = cases.map((c) => c.request)
  const results = await Promise.all([
    engine.decideBatch(requests),
    engine.decideBatch(requests),
    ...requests.map((r) => engine.decide(r)),
  ])
  const [a, b, ...singles] = results
  assert.deepEqual(
    a.map((d) => d.outcome),
    b.map((d) => d.outcome),
  )
  assert.deepEqual(
    a.map((d) => d.outcome),
    singles.map((d) => d.outcome),
  )
})

test('an aborted signal rejects with an AbortError', async () => {
  const request = cases[0].request
  const already = AbortSignal.abort()
  await assert.rejects(engine.decide(request, { signal: already }), { name: 'AbortError' })
  await assert.rejects(engine.decideBatch([request], { signal: already }), { name: 'AbortError' })

  // Abort while many are queued: each promise settles, none hangs; the
  // aborted ones reject with AbortError, the rest decide.
  const controller = new AbortController()
  const pending = Array.from({ length: 200 }, () =>
    engine.decide(request, { signal: controller.signal }),
  )
  controller.abort()
  const settled = await Promise.allSettled(pending)
  for (const s of settled) {
    if (s.status === 'rejected') assert.equal(s.reason.name, 'AbortError')
    else assert.equal(s.value.outcome, cases[0].outcome)
  }
  assert.ok(settled.some((s) => s.status === 'rejected'))

  // A custom reason is passed through.
  const reason = new Error('operator cancelled')
  await assert.rejects(engine.decide(request, { signal: AbortSignal.abort(reason) }), reason)

  // A signal that never fires changes nothing.
  const d = await engine.decide(request, { signal: new AbortController().signal })
  assert.equal(d.outcome, cases[0].outcome)
})

test('the event loop keeps running while async decisions compute', async () => {
  let ticks = 0
  const timer = setInterval(() => ticks++, 0)
  const requests = Array.from({ length: 20 }, () => cases.map((c) => c.request)).flat()
  await Promise.all([engine.decideBatch(requests), engine.decideBatch(requests)])
  clearInterval(timer)
  assert.ok(ticks > 0, 'the timer never ran')
})

test("the caller's onabort handler survives a decision", async () => {
  const controller = new AbortController()
  let called = 0
  controller.signal.onabort = () => called++
  const d = await engine.decide(cases[0].request, { signal: controller.signal })
  assert.equal(d.outcome, cases[0].outcome)
  controller.abort()
  assert.equal(called, 1)
})
