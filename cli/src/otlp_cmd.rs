//! `agentriage eval --otlp-endpoint URL` (or `--otlp`): every decision
//! exported as an OpenTelemetry span and log record (OTLP over HTTP with
//! protobuf or JSON, or over gRPC), and the decision counters as metrics
//! when the input ends.

use std::time::SystemTime;

use agentriage::otlp::{DecisionRecord, OtlpExporter, Protocol, Signal, parse_headers};
use agentriage::{Decision, Metrics};

/// Decisions are sent in batches of this many.
const BATCH: usize = 256;

/// Options of `eval` for OpenTelemetry export.
#[derive(clap::Args, Debug, Default)]
pub struct OtlpArgs {
    /// Export each decision as an OpenTelemetry span and log record, and the
    /// decision counters as metrics, to this OTLP receiver
    /// (`http://host:port`, e.g. a local collector on port 4318, or 4317
    /// for gRPC).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Export as --otlp-endpoint does, to `OTEL_EXPORTER_OTLP_ENDPOINT`, or
    /// the protocol's default (`http://localhost:4318`, `:4317` for gRPC).
    #[arg(long, conflicts_with = "otlp_endpoint")]
    pub otlp: bool,
    /// `http/protobuf` (the default), `http/json` or `grpc`; without it,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` when set.
    #[arg(long, value_name = "PROTOCOL")]
    pub otlp_protocol: Option<String>,
    /// The `service.name` of the exported telemetry (default `agentriage`).
    #[arg(long, value_name = "NAME")]
    pub otlp_service_name: Option<String>,
    /// A header sent with every export (gRPC metadata under `grpc`),
    /// e.g. `authorization=Bearer …`; repeatable. Added to those of
    /// `OTEL_EXPORTER_OTLP_HEADERS` (a name given here replaces the
    /// variable's).
    #[arg(long, value_name = "NAME=VALUE")]
    pub otlp_header: Vec<String>,
}

/// A variable of the environment, when set and not empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A decision waiting to be exported, with what its request said.
struct Pending {
    decision: Decision,
    traceparent: Option<String>,
    action: Option<String>,
    principal: Option<String>,
    time: SystemTime,
}

/// Decisions waiting to be exported, and the first export failure.
pub struct Sink {
    exporter: OtlpExporter,
    pending: Vec<Pending>,
    failure: Option<String>,
    start: SystemTime,
}

impl Sink {
    /// A sink for `args`, or `None` without an endpoint.
    pub fn new(args: &OtlpArgs) -> Result<Option<Sink>, String> {
        if args.otlp_endpoint.is_none() && !args.otlp {
            if args.otlp_protocol.is_some()
                || args.otlp_service_name.is_some()
                || !args.otlp_header.is_empty()
            {
                return Err(
                    "--otlp-protocol, --otlp-service-name and --otlp-header need --otlp-endpoint or --otlp"
                        .to_owned(),
                );
            }
            return Ok(None);
        }
        let protocol = match args
            .otlp_protocol
            .clone()
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        {
            Some(p) => p.parse::<Protocol>().map_err(|e| e.to_string())?,
            None => Protocol::default(),
        };
        let endpoint = match &args.otlp_endpoint {
            Some(e) => e.clone(),
            None => env("OTEL_EXPORTER_OTLP_ENDPOINT")
                .unwrap_or_else(|| protocol.default_endpoint().to_owned()),
        };
        let mut exporter = OtlpExporter::new(&endpoint)
            .map_err(|e| e.to_string())?
            .with_protocol(protocol)
            .with_service_name(args.otlp_service_name.as_deref().unwrap_or("agentriage"));
        if args.otlp_endpoint.is_none() {
            // Taken from the environment: a signal's own endpoint wins, as
            // the OpenTelemetry specification says (used as is, path included).
            for (signal, name) in [
                (Signal::Traces, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                (Signal::Logs, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
                (Signal::Metrics, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
            ] {
                if let Some(url) = env(name) {
                    exporter = exporter
                        .with_signal_endpoint(signal, &url)
                        .map_err(|e| format!("{name}: {e}"))?;
                }
            }
        }
        if let Some(text) = env("OTEL_EXPORTER_OTLP_HEADERS") {
            for (name, value) in
                parse_headers(&text).map_err(|e| format!("OTEL_EXPORTER_OTLP_HEADERS: {e}"))?
            {
                exporter = exporter
                    .with_header(&name, &value)
                    .map_err(|e| e.to_string())?;
            }
        }
        for given in &args.otlp_header {
            let (name, value) = given
                .split_once('=')
                .ok_or_else(|| format!("--otlp-header `{given}`: expected NAME=VALUE"))?;
            exporter = exporter
                .with_header(name.trim(), value.trim())
                .map_err(|e| format!("--otlp-header: {e}"))?;
        }
        Ok(Some(Sink {
            exporter,
            pending: Vec::new(),
            failure: None,
            start: SystemTime::now(),
        }))
    }

    /// Queues `decision`, made for the request `text` (its `traceparent`
    /// becomes the span's parent).
    pub fn record(&mut self, text: &str, decision: &Decision) {
        let request = serde_json::from_str::<serde_json::Value>(text).ok();
        let string = |pointer: &str| {
            request
                .as_ref()
                .and_then(|v| v.pointer(pointer)?.as_str().map(str::to_owned))
        };
        self.pending.push(Pending {
            decision: decision.clone(),
            traceparent: string("/traceparent"),
            action: string("/action/name"),
            principal: string("/principal/id"),
            time: SystemTime::now(),
        });
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let records: Vec<DecisionRecord<'_>> = self
            .pending
            .iter()
            .map(|p| DecisionRecord {
                decision: &p.decision,
                traceparent: p.traceparent.as_deref(),
                action: p.action.as_deref(),
                principal: p.principal.as_deref(),
                time: p.time,
            })
            .collect();
        let result = self.exporter.export_decisions(&records);
        self.pending.clear();
        if let Err(e) = result
            && self.failure.is_none()
        {
            self.failure = Some(e.to_string());
        }
    }

    /// Sends what is pending and the metrics; the first failure, if any.
    pub fn finish(mut self, metrics: &Metrics) -> Result<(), String> {
        self.flush();
        if let Err(e) = self.exporter.export_metrics(metrics, self.start)
            && self.failure.is_none()
        {
            self.failure = Some(e.to_string());
        }
        match self.failure {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}
