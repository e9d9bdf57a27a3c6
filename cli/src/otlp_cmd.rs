//! `agentriage eval --otlp-endpoint URL`: every decision exported as an
//! OpenTelemetry span and log record (OTLP/HTTP JSON), and the decision
//! counters as metrics when the input ends.

use std::time::SystemTime;

use agentriage::otlp::{DecisionRecord, OtlpExporter};
use agentriage::{Decision, Metrics};

/// Decisions are sent in batches of this many.
const BATCH: usize = 256;

/// Options of `eval` for OpenTelemetry export.
#[derive(clap::Args, Debug, Default)]
pub struct OtlpArgs {
    /// Export each decision as an OpenTelemetry span and log record, and the
    /// decision counters as metrics, to this OTLP/HTTP receiver
    /// (`http://host:port`, e.g. a local collector on port 4318).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the exported telemetry (default `agentriage`).
    #[arg(long, value_name = "NAME", requires = "otlp_endpoint")]
    pub otlp_service_name: Option<String>,
}

/// Decisions waiting to be exported, and the first export failure.
pub struct Sink {
    exporter: OtlpExporter,
    pending: Vec<(Decision, Option<String>, SystemTime)>,
    failure: Option<String>,
    start: SystemTime,
}

impl Sink {
    /// A sink for `args`, or `None` without an endpoint.
    pub fn new(args: &OtlpArgs) -> Result<Option<Sink>, String> {
        let Some(endpoint) = &args.otlp_endpoint else {
            return Ok(None);
        };
        let exporter = OtlpExporter::new(endpoint)
            .map_err(|e| e.to_string())?
            .with_service_name(args.otlp_service_name.as_deref().unwrap_or("agentriage"));
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
        let traceparent = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("traceparent")?.as_str().map(str::to_owned));
        self.pending
            .push((decision.clone(), traceparent, SystemTime::now()));
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let records: Vec<DecisionRecord<'_>> = self
            .pending
            .iter()
            .map(|(decision, traceparent, time)| DecisionRecord {
                decision,
                traceparent: traceparent.as_deref(),
                time: *time,
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
