'use strict'

// Decisions in the host's own OpenTelemetry setup (@opentelemetry/api, an
// optional peer dependency): `instrument(engine)` returns an engine that
// decides as `engine` does and makes one span `agentriage.decide` per
// decision, with the attributes the CLI's OTLP exporter writes, and counts
// and times it with the host's meter provider. This module loads without
// @opentelemetry/api installed; only `instrument` needs it.

const SPAN_NAME = 'agentriage.decide'
const SCOPE = 'agentriage'
const VERSION = require('./package.json').version

/** `agentriage.action` and `agentriage.principal.id` from a request (object or JSON text). */
function requestAttributes(request) {
  const req = asObject(request)
  const out = {}
  if (req === null) return out
  if (typeof req.action?.name === 'string') out['agentriage.action'] = req.action.name
  if (typeof req.principal?.id === 'string') out['agentriage.principal.id'] = req.principal.id
  return out
}

function asObject(request) {
  if (typeof request === 'string') {
    try {
      const parsed = JSON.parse(request)
      return parsed !== null && typeof parsed === 'object' ? parsed : null
    } catch {
      return null
    }
  }
  return request !== null && typeof request === 'object' ? request : null
}

/**
 * The span attributes of `decision` (made for `request`), named as the OTLP
 * exporter names them.
 */
function decisionAttributes(decision, request) {
  return {
    'agentriage.outcome': decision.outcome,
    'agentriage.decision_id': decision.decisionId,
    'agentriage.bundle.name': decision.bundle.name,
    'agentriage.bundle.revision': decision.bundle.revision,
    'agentriage.bundle.digest': decision.bundle.digest,
    'agentriage.policies': decision.reasons.map((r) => r.policy),
    'agentriage.duration_us': decision.durationUs,
    ...requestAttributes(request),
  }
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

function loadApi(api) {
  if (api !== undefined) return api
  try {
    return require('@opentelemetry/api')
  } catch (e) {
    const error = new Error(
      'agentriage/otel instrument() needs the OpenTelemetry API: npm install @opentelemetry/api ' +
        '(and the host\'s SDK setup, e.g. @opentelemetry/sdk-node)',
      { cause: e },
    )
    error.code = 'AGENTRIAGE_OTEL_API_MISSING'
    throw error
  }
}

class Telemetry {
  constructor(api, tracerProvider, meterProvider) {
    this.api = api
    this.tracer = (tracerProvider ?? api.trace.getTracerProvider()).getTracer(SCOPE, VERSION)
    const meter = (meterProvider ?? api.metrics.getMeterProvider()).getMeter(SCOPE, VERSION)
    this.counter = meter.createCounter('agentriage.decisions', {
      unit: '{decision}',
      description: 'decisions made, by outcome',
    })
    this.duration = meter.createHistogram('agentriage.decision.duration', {
      unit: 's',
      description: 'time of a decide call, request conversion included',
    })
  }

  /**
   * The context a decision span starts in: the active one when it has a
   * span, else the request's `traceparent` (when valid), else the active one.
   */
  parent(request) {
    const { trace, context, ROOT_CONTEXT, TraceFlags } = this.api
    const active = context.active()
    const current = trace.getSpanContext(active)
    if (current !== undefined && trace.isSpanContextValid(current)) return active
    const tp = asObject(request)?.traceparent
    const m = typeof tp === 'string' ? TRACEPARENT.exec(tp) : null
    if (m === null || m[1] === 'ff') return active
    const spanContext = {
      traceId: m[2],
      spanId: m[3],
      traceFlags: Number.parseInt(m[4], 16) & TraceFlags.SAMPLED,
      isRemote: true,
    }
    if (!trace.isSpanContextValid(spanContext)) return active
    return trace.setSpanContext(ROOT_CONTEXT, spanContext)
  }

  start(request, attributes, startTime) {
    const { SpanKind } = this.api
    return this.tracer.startSpan(
      SPAN_NAME,
      { kind: SpanKind.INTERNAL, attributes: { ...requestAttributes(request), ...attributes }, startTime },
      this.parent(request),
    )
  }

  fail(span, e) {
    const name = e?.constructor?.name ?? typeof e
    span.setAttribute('error.type', name)
    if (e instanceof Error) span.recordException(e)
    span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: `${name}: ${e?.message ?? String(e)}` })
    span.end()
    return { 'error.type': name }
  }

  record(attributes, seconds, count = 1) {
    this.counter.add(count, attributes)
    this.duration.record(seconds, attributes)
  }
}

function seconds(start) {
  return Number(process.hrtime.bigint() - start) / 1e9
}

function instrumentWith(engine, t) {
  function single(request, run) {
    const start = process.hrtime.bigint()
    const span = t.start(request, {})
    const done = (decision) => {
      span.setAttributes(decisionAttributes(decision))
      span.end()
      t.record({ outcome: decision.outcome }, seconds(start))
      return decision
    }
    const failed = (e) => {
      t.record(t.fail(span, e), seconds(start))
      throw e
    }
    let out
    try {
      out = run()
    } catch (e) {
      failed(e)
    }
    return out instanceof Promise ? out.then(done, failed) : done(out)
  }

  function batch(requests, run) {
    const list = Array.from(requests)
    const start = process.hrtime.bigint()
    const startTime = new Date()
    const done = (decisions) => {
      const share = seconds(start) / Math.max(list.length, 1)
      decisions.forEach((decision, i) => {
        const span = t.start(list[i], { ...decisionAttributes(decision), 'agentriage.batch.size': list.length }, startTime)
        span.end()
        t.record({ outcome: decision.outcome }, share)
      })
      return decisions
    }
    const failed = (e) => {
      const index = Number.isInteger(e?.index) && e.index >= 0 && e.index < list.length ? e.index : undefined
      const attributes = { 'agentriage.batch.size': list.length }
      if (index !== undefined) attributes['agentriage.batch.index'] = index
      const span = t.start(index === undefined ? undefined : list[index], attributes, startTime)
      t.record(t.fail(span, e), seconds(start))
      throw e
    }
    let out
    try {
      out = run(list)
    } catch (e) {
      failed(e)
    }
    return out instanceof Promise ? out.then(done, failed) : done(out)
  }

  const overrides = {
    decideSync: (request) => single(request, () => engine.decideSync(request)),
    decide: (request, options) => single(request, () => engine.decide(request, options)),
    decideBatchSync: (requests) => batch(requests, (list) => engine.decideBatchSync(list)),
    decideBatch: (requests, options) => batch(requests, (list) => engine.decideBatch(list, options)),
  }
  return new Proxy(engine, {
    get(target, key) {
      if (key === INSTRUMENTED) return true
      if (Object.prototype.hasOwnProperty.call(overrides, key)) return overrides[key]
      const value = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

const INSTRUMENTED = Symbol('agentriage.otel.instrumented')

/**
 * `engine` with a span and metrics per decision, through the host's
 * OpenTelemetry providers (the global ones unless `options.tracerProvider` /
 * `options.meterProvider` are given). The result decides as `engine` does
 * (same decisions, same errors), is still `instanceof Engine` and has all of
 * its methods. Throws (code `AGENTRIAGE_OTEL_API_MISSING`) without
 * @opentelemetry/api.
 */
function instrument(engine, options = {}) {
  if (engine === null || typeof engine !== 'object' || typeof engine.decideSync !== 'function') {
    throw new TypeError('instrument takes an agentriage Engine')
  }
  if (engine[INSTRUMENTED] === true) throw new TypeError('this engine is already instrumented')
  const api = loadApi(options.api)
  return instrumentWith(engine, new Telemetry(api, options.tracerProvider, options.meterProvider))
}

module.exports = { instrument, decisionAttributes, SPAN_NAME }
