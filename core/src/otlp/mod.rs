//! OpenTelemetry export of decisions: OTLP over HTTP (`/v1/traces`,
//! `/v1/logs`, `/v1/metrics`) with the protobuf or the JSON encoding, what
//! an OpenTelemetry Collector, Jaeger, Grafana Tempo/Loki or any OTLP
//! receiver accepts on port 4318, and OTLP over gRPC (port 4317) with the
//! `otlp-grpc` feature. [`Protocol`] names them as
//! `OTEL_EXPORTER_OTLP_PROTOCOL` does.
//!
//! Each decision becomes a span `agentriage.decide` in the request's trace
//! (the `traceparent`'s trace id and, as parent span, its parent id, so the
//! span sits under the caller's), and a log record carrying the decision as
//! the public contract's JSON (the decision-log record OPA users export as
//! OTLP logs). Metrics are the engine's decision counters as cumulative
//! sums. Only `http://` endpoints are spoken to (no TLS): send to a local
//! collector, which forwards wherever the host's telemetry goes.
//!
//! No OpenTelemetry SDK is linked: the payloads are built with
//! `serde_json` (the OTLP/JSON form), encoded as protobuf by a small
//! schema-driven encoder (`proto`, field numbers from `opentelemetry-proto`)
//! and written by [`OtlpExporter`] with one HTTP/1.1 request each over
//! `std::net`.

#[cfg(feature = "otlp-grpc")]
mod grpc;
mod proto;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Decision, Metrics, Outcome};

pub use proto::Signal;

/// The instrumentation scope named in every payload.
pub const SCOPE: &str = "agentriage";

/// Why an export failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// The endpoint is not an `http://host:port` URL.
    #[error("`{endpoint}` is not an OTLP/HTTP endpoint: {why}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        why: String,
    },
    /// A header to send is not one HTTP and gRPC can carry.
    #[error("OTLP header `{name}`: {why}")]
    Header {
        /// The header's name as given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// The receiver could not be reached, or the exchange failed.
    #[error("cannot export to `{url}`: {message}")]
    Transport {
        /// The URL of the request.
        url: String,
        /// What failed.
        message: String,
    },
    /// The receiver answered with a status other than 2xx.
    #[error("`{url}` answered HTTP {status}")]
    Status {
        /// The URL of the request.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The gRPC receiver answered with a status other than `OK` (0).
    #[error("`{url}` answered gRPC status {code}: {message}")]
    GrpcStatus {
        /// The URL of the call (`http://host:port/service/Export`).
        url: String,
        /// The `grpc-status` code.
        code: u32,
        /// The `grpc-message`, if any.
        message: String,
    },
    /// A payload could not be encoded as protobuf (a defect of the exporter).
    #[error("cannot encode the OTLP payload as protobuf: {0}")]
    Encode(String),
    /// The protocol is not one of `http/protobuf`, `http/json`, `grpc`, or
    /// this build does not have it.
    #[error("`{protocol}` is not an OTLP protocol this build speaks: {why}")]
    Protocol {
        /// The protocol as given.
        protocol: String,
        /// Why not.
        why: String,
    },
}

/// How the exporter speaks to the receiver, named as
/// `OTEL_EXPORTER_OTLP_PROTOCOL` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// `http/protobuf`: OTLP/HTTP with the protobuf encoding
    /// (`application/x-protobuf`), the default of OTLP/HTTP.
    #[default]
    HttpProtobuf,
    /// `http/json`: OTLP/HTTP with the JSON encoding (`application/json`).
    HttpJson,
    /// `grpc`: OTLP/gRPC (HTTP/2 without TLS), with the `otlp-grpc` feature.
    Grpc,
}

impl Protocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
            Protocol::Grpc => "grpc",
        }
    }

    /// The endpoint a receiver listens on by default for this protocol
    /// (`http://localhost:4318`, or `:4317` for gRPC).
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf | Protocol::HttpJson => "http://localhost:4318",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Protocol {
    type Err = OtlpError;

    fn from_str(s: &str) -> Result<Protocol, OtlpError> {
        let protocol = match s.trim() {
            "http/protobuf" => Protocol::HttpProtobuf,
            "http/json" => Protocol::HttpJson,
            "grpc" => Protocol::Grpc,
            other => {
                return Err(OtlpError::Protocol {
                    protocol: other.to_owned(),
                    why: "expected `http/protobuf`, `http/json` or `grpc`".to_owned(),
                });
            }
        };
        if protocol == Protocol::Grpc && !cfg!(feature = "otlp-grpc") {
            return Err(OtlpError::Protocol {
                protocol: s.to_owned(),
                why: "this build has no gRPC (the `otlp-grpc` feature); use `http/protobuf`"
                    .to_owned(),
            });
        }
        Ok(protocol)
    }
}

/// One decision to export, with what the request said about its trace.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRecord<'a> {
    /// The decision.
    pub decision: &'a Decision,
    /// The request's `traceparent`, if it had one: the span's parent.
    pub traceparent: Option<&'a str>,
    /// The request's `action.name`, if it had one (`agentriage.action`).
    pub action: Option<&'a str>,
    /// The request's `principal.id`, if it had one (`agentriage.principal.id`).
    pub principal: Option<&'a str>,
    /// When the decision was made (its end).
    pub time: SystemTime,
}

fn unix_nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// The parent span id of a W3C `traceparent` (`00-<trace>-<parent>-<flags>`),
/// when it is well formed.
fn parent_span_id(traceparent: &str) -> Option<&str> {
    let parent = traceparent.get(36..52)?;
    let well_formed = crate::traceparent::parse(traceparent).is_ok();
    well_formed.then_some(parent)
}

/// A span id (16 hex digits, never all zeros) derived from the decision id:
/// the same decision gives the same span in traces and logs.
fn span_id(decision: &Decision) -> String {
    let digest = Sha256::digest(decision.decision_id.as_bytes());
    let mut id: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if id.bytes().all(|b| b == b'0') {
        id.replace_range(15.., "1");
    }
    id
}

fn string_attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// The attributes of a decision's span and log record; the Python and Node
/// `otel` modules write the same names.
fn attributes(r: &DecisionRecord<'_>) -> Vec<Value> {
    let d = r.decision;
    let policies: Vec<Value> = d.policy_ids().map(|p| json!({"stringValue": p})).collect();
    let mut out = vec![
        string_attribute("agentriage.outcome", d.outcome.as_str()),
        string_attribute("agentriage.decision_id", &d.decision_id),
        string_attribute("agentriage.bundle.name", &d.bundle.name),
        string_attribute("agentriage.bundle.revision", &d.bundle.revision),
        string_attribute("agentriage.bundle.digest", &d.bundle.digest),
        json!({"key": "agentriage.policies", "value": {"arrayValue": {"values": policies}}}),
        json!({"key": "agentriage.duration_us", "value": {"intValue": d.duration_us.to_string()}}),
    ];
    if let Some(action) = r.action {
        out.push(string_attribute("agentriage.action", action));
    }
    if let Some(principal) = r.principal {
        out.push(string_attribute("agentriage.principal.id", principal));
    }
    out
}

fn resource(service_name: &str) -> Value {
    json!({"attributes": [string_attribute("service.name", service_name)]})
}

fn scope() -> Value {
    json!({"name": SCOPE, "version": env!("CARGO_PKG_VERSION")})
}

/// An OTLP `ExportTraceServiceRequest` (JSON): one `agentriage.decide`
/// span per decision, in the decision's trace, child of the request's
/// `traceparent` parent when there is one.
pub fn traces_json(service_name: &str, records: &[DecisionRecord<'_>]) -> Value {
    let spans: Vec<Value> = records
        .iter()
        .map(|r| {
            let end = unix_nanos(r.time);
            let start = end.saturating_sub(u128::from(r.decision.duration_us) * 1000);
            let mut span = json!({
                "traceId": r.decision.trace_id,
                "spanId": span_id(r.decision),
                "name": "agentriage.decide",
                "kind": 1,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": end.to_string(),
                "attributes": attributes(r),
            });
            if let (Some(parent), Value::Object(map)) =
                (r.traceparent.and_then(parent_span_id), &mut span)
            {
                map.insert("parentSpanId".into(), parent.into());
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": resource(service_name),
        "scopeSpans": [{"scope": scope(), "spans": spans}],
    }]})
}

/// An OTLP `ExportLogsServiceRequest` (JSON): one record per decision, its
/// body the decision as the contract's JSON text, linked to the decision's
/// span.
pub fn logs_json(service_name: &str, records: &[DecisionRecord<'_>]) -> Value {
    let logs: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut attrs = attributes(r);
            attrs.insert(0, string_attribute("event.name", "agentriage.decision"));
            let time = unix_nanos(r.time).to_string();
            json!({
                "timeUnixNano": time,
                "observedTimeUnixNano": time,
                "severityNumber": 9,
                "severityText": "INFO",
                "body": {"stringValue": r.decision.to_json()},
                "attributes": attrs,
                "traceId": r.decision.trace_id,
                "spanId": span_id(r.decision),
            })
        })
        .collect();
    json!({"resourceLogs": [{
        "resource": resource(service_name),
        "scopeLogs": [{"scope": scope(), "logRecords": logs}],
    }]})
}

/// An OTLP `ExportMetricsServiceRequest` (JSON): `agentriage.decisions`, a
/// cumulative monotonic sum by `outcome`, counted since `start`.
pub fn metrics_json(service_name: &str, metrics: &Metrics, start: SystemTime) -> Value {
    let now = unix_nanos(SystemTime::now()).to_string();
    let start = unix_nanos(start).to_string();
    let points: Vec<Value> = [Outcome::Execute, Outcome::Escalate, Outcome::Reject]
        .iter()
        .map(|&o| {
            json!({
                "attributes": [string_attribute("outcome", o.as_str())],
                "startTimeUnixNano": start,
                "timeUnixNano": now,
                "asInt": metrics.decisions(o).to_string(),
            })
        })
        .collect();
    json!({"resourceMetrics": [{
        "resource": resource(service_name),
        "scopeMetrics": [{"scope": scope(), "metrics": [{
            "name": "agentriage.decisions",
            "description": "decisions made, by outcome",
            "unit": "{decision}",
            "sum": {"dataPoints": points, "aggregationTemporality": 2, "isMonotonic": true},
        }]}],
    }]})
}

/// Sends OTLP payloads to one receiver (`http://host:port`, for OTLP/HTTP
/// an optional path prefix before `/v1/...`), by default as
/// `http/protobuf`.
#[derive(Debug, Clone)]
pub struct OtlpExporter {
    host: String,
    port: u16,
    prefix: String,
    service_name: String,
    timeout: Duration,
    protocol: Protocol,
    headers: Vec<(String, String)>,
    /// Per signal (traces, logs, metrics): a URL of its own, used as is.
    signal_urls: [Option<Target>; 3],
}

/// Where one signal is sent: `http://host:port/path`.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    path: String,
}

impl Target {
    /// Parses `http://host:port[/path]`; the path without its trailing `/`.
    fn parse(endpoint: &str) -> Result<Target, OtlpError> {
        let bad = |why: &str| OtlpError::Endpoint {
            endpoint: endpoint.to_owned(),
            why: why.to_owned(),
        };
        let rest = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| bad("only `http://` is supported (send to a local collector)"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| bad("expected `http://host:port`"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port is not a number from 1 to 65535"))?;
        if port == 0 || host.is_empty() {
            return Err(bad("expected `http://host:port`"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
        {
            return Err(bad("the host has characters a host name cannot have"));
        }
        if !path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#'))
        {
            return Err(bad("the path has characters a URL path cannot have"));
        }
        let path = path.trim_end_matches('/');
        Ok(Target {
            host: host.to_owned(),
            port,
            path: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
        })
    }
}

/// The slot of `signal` in per-signal arrays.
fn signal_index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Logs => 1,
        Signal::Metrics => 2,
    }
}

/// Parses `OTEL_EXPORTER_OTLP_HEADERS`: `name=value` pairs separated by
/// commas, each part trimmed and percent-decoded (the W3C baggage form the
/// OpenTelemetry specification names). An empty text is no header.
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, OtlpError> {
    let mut headers = Vec::new();
    for item in text.split(',') {
        if item.trim().is_empty() {
            continue;
        }
        let (name, value) = item.split_once('=').ok_or_else(|| OtlpError::Header {
            name: item.trim().to_owned(),
            why: "expected `name=value`".to_owned(),
        })?;
        let name = percent_decode(name.trim(), name)?;
        let value = percent_decode(value.trim(), &name)?;
        check_header(&name, &value)?;
        headers.push((name, value));
    }
    Ok(headers)
}

/// `%XX` escapes decoded; the result must be UTF-8.
fn percent_decode(text: &str, name: &str) -> Result<String, OtlpError> {
    let bad = |why: &str| OtlpError::Header {
        name: name.to_owned(),
        why: why.to_owned(),
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("a `%` is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad("the decoded text is not UTF-8"))
}

/// A header name must be an HTTP token; a value visible ASCII, spaces
/// and tabs (no line breaks: nothing can be smuggled into the request).
fn check_header(name: &str, value: &str) -> Result<(), OtlpError> {
    let bad = |why: &str| OtlpError::Header {
        name: name.to_owned(),
        why: why.to_owned(),
    };
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(bad(
            "a header name is letters, digits and `!#$%&'*+-.^_`|~`",
        ));
    }
    if name.starts_with(':')
        || [
            "content-type",
            "content-length",
            "host",
            "connection",
            "te",
            "transfer-encoding",
        ]
        .iter()
        .any(|reserved| name.eq_ignore_ascii_case(reserved))
    {
        return Err(bad("the exporter sets this header itself"));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(bad("a value is visible ASCII, spaces and tabs"));
    }
    Ok(())
}

impl OtlpExporter {
    /// An exporter for `endpoint`, e.g. `http://127.0.0.1:4318`; the
    /// resource's `service.name` is `agentriage` until
    /// [`with_service_name`](Self::with_service_name).
    pub fn new(endpoint: &str) -> Result<OtlpExporter, OtlpError> {
        let target = Target::parse(endpoint)?;
        Ok(OtlpExporter {
            host: target.host,
            port: target.port,
            prefix: target.path,
            service_name: "agentriage".to_owned(),
            timeout: Duration::from_secs(10),
            protocol: Protocol::default(),
            headers: Vec::new(),
            signal_urls: [None, None, None],
        })
    }

    /// Sends `signal` to `url` instead, used as is (as
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and its siblings are: for
    /// HTTP the whole URL, path included; for gRPC its host and port).
    pub fn with_signal_endpoint(
        mut self,
        signal: Signal,
        url: &str,
    ) -> Result<OtlpExporter, OtlpError> {
        let target = Target::parse(url)?;
        if let Some(slot) = self.signal_urls.get_mut(signal_index(signal)) {
            *slot = Some(target);
        }
        Ok(self)
    }

    /// Adds a header sent with every export (gRPC metadata under
    /// `grpc`), e.g. a collector's `authorization`. The name must be an
    /// HTTP token, the value visible ASCII; the exporter's own headers
    /// (`content-type`, `host`, …) cannot be replaced.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<OtlpExporter, OtlpError> {
        check_header(name, value)?;
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// How to speak to the receiver (default `http/protobuf`). With
    /// [`Protocol::Grpc`] the endpoint's path, if any, is not used: the
    /// calls go to `/opentelemetry.proto.collector.<signal>.v1.<Signal>Service/Export`.
    pub fn with_protocol(mut self, protocol: Protocol) -> OtlpExporter {
        self.protocol = protocol;
        self
    }

    /// The protocol spoken.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The resource's `service.name`.
    pub fn with_service_name(mut self, name: impl Into<String>) -> OtlpExporter {
        self.service_name = name.into();
        self
    }

    /// How long connecting, sending and reading the answer may take each.
    pub fn with_timeout(mut self, timeout: Duration) -> OtlpExporter {
        self.timeout = timeout;
        self
    }

    /// Exports the decisions' spans and log records (two requests). Nothing
    /// is sent for an empty slice.
    pub fn export_decisions(&self, records: &[DecisionRecord<'_>]) -> Result<(), OtlpError> {
        if records.is_empty() {
            return Ok(());
        }
        self.send(Signal::Traces, &traces_json(&self.service_name, records))?;
        self.send(Signal::Logs, &logs_json(&self.service_name, records))
    }

    /// Exports the engine's decision counters (counted since `start`).
    pub fn export_metrics(&self, metrics: &Metrics, start: SystemTime) -> Result<(), OtlpError> {
        self.send(
            Signal::Metrics,
            &metrics_json(&self.service_name, metrics, start),
        )
    }

    /// Sends one export request in the exporter's protocol.
    fn send(&self, signal: Signal, payload: &Value) -> Result<(), OtlpError> {
        let target = match self.signal_urls.get(signal_index(signal)) {
            Some(Some(own)) => own.clone(),
            _ => Target {
                host: self.host.clone(),
                port: self.port,
                path: format!(
                    "{}{}",
                    self.prefix,
                    match signal {
                        Signal::Traces => "/v1/traces",
                        Signal::Logs => "/v1/logs",
                        Signal::Metrics => "/v1/metrics",
                    }
                ),
            },
        };
        match self.protocol {
            Protocol::HttpJson => {
                self.post(&target, "application/json", payload.to_string().as_bytes())
            }
            Protocol::HttpProtobuf => {
                let body = proto::encode(signal, payload).map_err(OtlpError::Encode)?;
                self.post(&target, "application/x-protobuf", &body)
            }
            Protocol::Grpc => self.grpc(&target, signal, payload),
        }
    }

    #[cfg(feature = "otlp-grpc")]
    fn grpc(&self, target: &Target, signal: Signal, payload: &Value) -> Result<(), OtlpError> {
        let body = proto::encode(signal, payload).map_err(OtlpError::Encode)?;
        let address = self.address(target, &format!("http://{}:{}", target.host, target.port))?;
        grpc::export(
            &target.host,
            target.port,
            address,
            self.timeout,
            &self.headers,
            signal,
            &body,
        )
    }

    #[cfg(not(feature = "otlp-grpc"))]
    fn grpc(&self, _target: &Target, _signal: Signal, _payload: &Value) -> Result<(), OtlpError> {
        Err(OtlpError::Protocol {
            protocol: "grpc".to_owned(),
            why: "this build has no gRPC (the `otlp-grpc` feature)".to_owned(),
        })
    }

    /// The socket address of the endpoint's host.
    fn address(&self, target: &Target, url: &str) -> Result<std::net::SocketAddr, OtlpError> {
        let fail = |message: String| OtlpError::Transport {
            url: url.to_owned(),
            message,
        };
        let host = target.host.trim_start_matches('[').trim_end_matches(']');
        (host, target.port)
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve the host: {e}")))?
            .next()
            .ok_or_else(|| fail("the host resolves to no address".to_owned()))
    }

    /// POSTs `body` to `target`; `Ok` on 2xx.
    fn post(&self, target: &Target, content_type: &str, body: &[u8]) -> Result<(), OtlpError> {
        let url = format!("http://{}:{}{}", target.host, target.port, target.path);
        let fail = |message: String| OtlpError::Transport {
            url: url.clone(),
            message,
        };
        let address = self.address(target, &url)?;
        let mut stream =
            TcpStream::connect_timeout(&address, self.timeout).map_err(|e| fail(e.to_string()))?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| fail(e.to_string()))?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            if target.path.is_empty() {
                "/"
            } else {
                &target.path
            },
            target.host,
            target.port,
            body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush())
            .map_err(|e| fail(e.to_string()))?;
        // The status line is all that matters; read at most a little.
        let mut answer = Vec::new();
        stream
            .take(64 * 1024)
            .read_to_end(&mut answer)
            .map_err(|e| fail(e.to_string()))?;
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .strip_prefix("HTTP/1.")
            .and_then(|s| s.get(2..5))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| fail("the answer is not HTTP".to_owned()))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(OtlpError::Status { url, status })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_host_port_with_an_optional_prefix() {
        let e = OtlpExporter::new("http://127.0.0.1:4318").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (e.host.as_str(), e.port, e.prefix.as_str()),
            ("127.0.0.1", 4318, "")
        );
        let e = OtlpExporter::new("http://collector:4318/otlp/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.prefix, "/otlp");
        for bad in [
            "https://collector:4318",
            "collector:4318",
            "http://collector",
            "http://collector:0",
            "http://collector:99999",
            "http://:4318",
            "http://a b:4318",
            "http://collector:4318/a\r\nX: y",
        ] {
            assert!(OtlpExporter::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_parsed_as_otel_exporter_otlp_headers_and_checked() {
        assert_eq!(
            parse_headers(" authorization = Bearer%20a%2Cb ,x-tenant=blue,, ").unwrap(),
            [
                ("authorization".to_owned(), "Bearer a,b".to_owned()),
                ("x-tenant".to_owned(), "blue".to_owned())
            ]
        );
        assert_eq!(parse_headers("").unwrap(), []);
        for (bad, why) in [
            ("novalue", "name=value"),
            ("x=%0D%0AX-Injected: 1", "visible ASCII"),
            ("x=%zz", "two hex digits"),
            ("x=%C3", "UTF-8"),
            ("a b=c", "header name"),
            ("Host=evil", "itself"),
            ("content-length=1", "itself"),
        ] {
            let e = parse_headers(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = OtlpExporter::new("http://127.0.0.1:4318").unwrap();
        let e = e
            .with_header("X-A", "1")
            .unwrap()
            .with_header("x-a", "2")
            .unwrap();
        assert_eq!(e.headers, [("x-a".to_owned(), "2".to_owned())]);
        assert!(e.clone().with_header("x-b", "a\nb").is_err());
        let e = e
            .with_signal_endpoint(Signal::Logs, "http://collector:4318/own/logs/")
            .unwrap();
        let own = e.signal_urls[1].as_ref().unwrap();
        assert_eq!(
            (own.host.as_str(), own.path.as_str()),
            ("collector", "/own/logs")
        );
        assert!(e.signal_urls[0].is_none() && e.signal_urls[2].is_none());
        assert!(
            e.with_signal_endpoint(Signal::Traces, "https://x:1")
                .is_err()
        );
    }

    #[test]
    fn protocols_are_named_as_otel_exporter_otlp_protocol_names_them() {
        assert_eq!(Protocol::default(), Protocol::HttpProtobuf);
        for p in [Protocol::HttpProtobuf, Protocol::HttpJson] {
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(p));
            assert_eq!(p.default_endpoint(), "http://localhost:4318");
        }
        let grpc = "grpc".parse::<Protocol>();
        if cfg!(feature = "otlp-grpc") {
            assert_eq!(grpc, Ok(Protocol::Grpc));
        } else {
            assert!(grpc.unwrap_err().to_string().contains("otlp-grpc"));
        }
        let e = "http/xml".parse::<Protocol>().unwrap_err().to_string();
        assert!(
            e.contains("`http/xml`") && e.contains("http/protobuf"),
            "{e}"
        );
    }

    #[test]
    fn the_parent_span_comes_from_a_well_formed_traceparent_only() {
        assert_eq!(
            parent_span_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(
            parent_span_id("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            None
        );
        assert_eq!(parent_span_id("garbage"), None);
    }
}
