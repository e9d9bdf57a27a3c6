// Types of agentriage/otel: decisions in the host's own OpenTelemetry setup.
import type { Decision, Engine, Request } from './index'

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /** The tracer provider (default: the global one of @opentelemetry/api). */
  tracerProvider?: { getTracer(name: string, version?: string): any }
  /** The meter provider (default: the global one of @opentelemetry/api). */
  meterProvider?: { getMeter(name: string, version?: string): any }
  /** The @opentelemetry/api module to use (default: `require('@opentelemetry/api')`). */
  api?: any
}

/** The name of every decision span: `agentriage.decide`. */
export declare const SPAN_NAME: 'agentriage.decide'

/**
 * `engine` with one span `agentriage.decide` and metrics per decision,
 * through the host's OpenTelemetry providers. Decides as `engine` does.
 */
export declare function instrument(engine: Engine, options?: InstrumentOptions): Engine

/** The span attributes of a decision, named as the OTLP exporter names them. */
export declare function decisionAttributes(
  decision: Decision,
  request?: Request | string,
): Record<string, string | number | string[]>
