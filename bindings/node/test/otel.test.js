'use strict'

// agentriage/otel: decisions as spans and metrics of the host's own
// OpenTelemetry setup, checked with the real SDK (@opentelemetry/sdk-trace-base's
// in-memory exporter, @opentelemetry/sdk-metrics' reader) and the async-hooks
// context manager a Node host registers.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const { join } = require('node:path')
const api = require('@opentelemetry/api')
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks')
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics')
const { Engine, InvalidRequestError } = require('..')
const otel = require('../otel')
const { bundleDir, decisionCases } = require('./helpers')

api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())

const engine = Engine.fromBundle(bundleDir, { replayCheck: false })
const cases = decisionCases()
const executeCase = cases.find((c) => c.outcome === 'execute' && c.request.action?.name && c.request.principal?.id)
const escalateCase = cases.find((c) => c.outcome === 'escalate' && c.request.action?.name && c.request.principal?.id)
const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PARENT = 'b7ad6b7169203331'
const TRACEPARENT = `00-${TRACE}-${PARENT}-01`

class Reader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

function host() {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new Reader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  return {
    tracer: tracerProvider.getTracer('host'),
    engine: otel.instrument(engine, { tracerProvider, meterProvider }),
    spans: () => exporter.getFinishedSpans().filter((s) => s.name === 'agentriage.decide'),
    async points(name) {
      const { resourceMetrics } = await reader.collect()
      const out = []
      for (const sm of resourceMetrics.scopeMetrics) {
        assert.equal(sm.scope.name, 'agentriage')
        for (const m of sm.metrics) if (m.descriptor.name === name) out.push(...m.dataPoints)
      }
      return out
    },
  }
}

function parentSpanId(span) {
  // sdk-trace-base 2.x: parentSpanContext; 1.x: parentSpanId.
  return span.parentSpanContext?.spanId ?? span.parentSpanId
}

function checkAttributes(span, decision, request) {
  const attrs = { ...span.attributes }
  const want = {
    'agentriage.outcome': decision.outcome,
    'agentriage.decision_id': decision.decisionId,
    'agentriage.bundle.name': decision.bundle.name,
    'agentriage.bundle.revision': decision.bundle.revision,
    'agentriage.bundle.digest': decision.bundle.digest,
    'agentriage.policies': decision.policyIds,
    'agentriage.duration_us': decision.durationUs,
    'agentriage.action': request.action.name,
    'agentriage.principal.id': request.principal.id,
  }
  if ('agentriage.batch.size' in attrs) want['agentriage.batch.size'] = attrs['agentriage.batch.size']
  assert.deepEqual(attrs, want)
}

test('the test cases exist', () => {
  assert.ok(executeCase && escalateCase)
})

test('a decision is a child span of the active one', async () => {
  const h = host()
  let parent
  const decision = await h.tracer.startActiveSpan('tool call', async (span) => {
    parent = span
    try {
      return await h.engine.decide(escalateCase.request)
    } finally {
      span.end()
    }
  })
  assert.equal(decision.outcome, 'escalate')
  const [span] = h.spans()
  assert.equal(h.spans().length, 1)
  assert.equal(parentSpanId(span), parent.spanContext().spanId)
  assert.equal(span.spanContext().traceId, parent.spanContext().traceId)
  assert.equal(span.kind, api.SpanKind.INTERNAL)
  assert.equal(span.status.code, api.SpanStatusCode.UNSET)
  checkAttributes(span, decision, escalateCase.request)
})

test('without an active span the request traceparent is the parent', () => {
  const h = host()
  const request = { ...executeCase.request, traceparent: TRACEPARENT }
  delete request.trace_id
  const decision = h.engine.decideSync(request)
  const [span] = h.spans()
  assert.equal(span.spanContext().traceId, TRACE)
  assert.equal(decision.traceId, TRACE)
  assert.equal(parentSpanId(span), PARENT)
  checkAttributes(span, decision, request)
  // JSON text gives the same.
  const h2 = host()
  const d2 = h2.engine.decideSync(JSON.stringify(request))
  assert.equal(h2.spans()[0].spanContext().traceId, TRACE)
  checkAttributes(h2.spans()[0], d2, request)
})

test('without either the span starts a trace', () => {
  const h = host()
  const request = { ...executeCase.request }
  delete request.traceparent
  h.engine.decideSync(request)
  const [span] = h.spans()
  assert.equal(parentSpanId(span), undefined)
  assert.match(span.spanContext().traceId, /^[0-9a-f]{32}$/)
})

test('an engine error ends the span with status error and is thrown as before', async () => {
  const h = host()
  const bad = { ...executeCase.request }
  delete bad.principal
  await assert.rejects(h.engine.decide(bad), InvalidRequestError)
  assert.throws(() => h.engine.decideSync(bad), InvalidRequestError)
  const spans = h.spans()
  assert.equal(spans.length, 2)
  for (const span of spans) {
    assert.equal(span.status.code, api.SpanStatusCode.ERROR)
    assert.match(span.status.message, /principal/)
    assert.equal(span.attributes['error.type'], 'InvalidRequestError')
    assert.equal(span.attributes['agentriage.action'], bad.action.name)
    assert.equal(span.events[0].name, 'exception')
  }
  const [point] = await h.points('agentriage.decisions')
  assert.deepEqual(point.attributes, { 'error.type': 'InvalidRequestError' })
  assert.equal(point.value, 2)
})

test('metrics count decisions by outcome and time them', async () => {
  const h = host()
  h.engine.decideSync(executeCase.request)
  await h.engine.decide(escalateCase.request)
  await h.engine.decide(executeCase.request)
  const counts = Object.fromEntries((await h.points('agentriage.decisions')).map((p) => [p.attributes.outcome, p.value]))
  assert.deepEqual(counts, { execute: 2, escalate: 1 })
  const durations = Object.fromEntries(
    (await h.points('agentriage.decision.duration')).map((p) => [p.attributes.outcome, p.value]),
  )
  assert.equal(durations.execute.count, 2)
  assert.equal(durations.escalate.count, 1)
  assert.ok(durations.execute.sum > 0)
})

test('batches make a span per decision under the active span', async () => {
  const h = host()
  const requests = [executeCase.request, escalateCase.request, executeCase.request]
  let parentId
  const [a, b] = await h.tracer.startActiveSpan('batch', async (span) => {
    parentId = span.spanContext().spanId
    const out = [h.engine.decideBatchSync(requests), await h.engine.decideBatch(requests.slice(0, 2))]
    span.end()
    return out
  })
  const spans = new Map(h.spans().map((s) => [s.attributes['agentriage.decision_id'], s]))
  assert.equal(spans.size, 5)
  ;[...a, ...b].forEach((d, i) => {
    const span = spans.get(d.decisionId)
    checkAttributes(span, d, requests[i % 3])
    assert.equal(parentSpanId(span), parentId)
  })
  const counts = Object.fromEntries((await h.points('agentriage.decisions')).map((p) => [p.attributes.outcome, p.value]))
  assert.deepEqual(counts, { execute: 3, escalate: 2 })
})

test('a failed batch makes one error span naming the request', async () => {
  const h = host()
  const bad = { ...executeCase.request, action: { name: 7 } }
  await assert.rejects(h.engine.decideBatch([executeCase.request, bad]), (e) => e instanceof InvalidRequestError && e.index === 1)
  const [span] = h.spans()
  assert.equal(h.spans().length, 1)
  assert.equal(span.status.code, api.SpanStatusCode.ERROR)
  assert.equal(span.attributes['agentriage.batch.index'], 1)
  assert.equal(span.attributes['agentriage.batch.size'], 2)
})

test('the instrumented engine is the engine for everything else', () => {
  const h = host()
  assert.ok(h.engine instanceof Engine)
  assert.deepEqual(h.engine.bundle, engine.bundle)
  assert.equal(h.engine.decideSync(escalateCase.request).outcome, engine.decideSync(escalateCase.request).outcome)
  assert.throws(() => otel.instrument(h.engine), /already instrumented/)
  assert.throws(() => otel.instrument({}), TypeError)
})

test('the module loads without @opentelemetry/api; instrument says what is missing', () => {
  // A child process where resolving @opentelemetry/api fails.
  const script = `
    const Module = require('node:module')
    const resolve = Module._resolveFilename
    Module._resolveFilename = function (request, ...rest) {
      if (request.startsWith('@opentelemetry/')) { const e = new Error('not found'); e.code = 'MODULE_NOT_FOUND'; throw e }
      return resolve.call(this, request, ...rest)
    }
    const otel = require(${JSON.stringify(join(__dirname, '..', 'otel.js'))})
    const { Engine } = require(${JSON.stringify(join(__dirname, '..'))})
    const engine = Engine.fromBundle(${JSON.stringify(bundleDir)})
    try { otel.instrument(engine); console.log('instrumented') } catch (e) { console.log(e.code, e.message) }
  `
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })
  assert.match(out, /^AGENTRIAGE_OTEL_API_MISSING .*npm install @opentelemetry\/api/)
})
