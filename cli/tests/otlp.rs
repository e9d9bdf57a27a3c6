//! `agentriage eval --otlp-endpoint`: decisions reach an OTLP/HTTP receiver
//! the test starts on 127.0.0.1 (a free port), as spans in the request's
//! trace under its `traceparent`, as log records holding the decision, and
//! as decision counters; `http/json` is decoded here, `http/protobuf` and
//! `grpc` by the official generated classes in
//! bindings/python/tests/test_otlp_receivers.py.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

mod support;

/// One request the receiver got.
struct Received {
    path: String,
    content_type: String,
    /// Every header line, as sent (without its line break).
    headers: Vec<String>,
    body: Vec<u8>,
}

/// A receiver answering every request with `status`; each request's path,
/// content type and body go to the channel.
fn receiver(status: u16) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0usize;
            let mut content_type = String::new();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                headers.push(line.trim_end().to_owned());
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if let Some(v) = lower.strip_prefix("content-type:") {
                    v.trim().clone_into(&mut content_type);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let path = request_line.split_whitespace().nth(1).unwrap().to_owned();
            let _ = tx.send(Received {
                path,
                content_type,
                headers,
                body,
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{{}}"
            );
        }
    });
    (endpoint, rx)
}

fn received_raw(rx: &mpsc::Receiver<Received>) -> Vec<Received> {
    let mut all = Vec::new();
    // Generous watchdog against a hang; every message is already sent when
    // the CLI has exited.
    while let Ok(m) = rx.recv_timeout(Duration::from_secs(10)) {
        let last = m.path == "/v1/metrics";
        all.push(m);
        if last {
            break;
        }
    }
    all
}

/// What the receiver got, each body decoded as JSON (which it must be).
fn received(rx: &mpsc::Receiver<Received>) -> Vec<(String, Value)> {
    received_raw(rx)
        .into_iter()
        .map(|r| {
            assert_eq!(r.content_type, "application/json", "{}", r.path);
            (r.path, serde_json::from_slice(&r.body).unwrap())
        })
        .collect()
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

#[test]
fn decisions_are_exported_as_spans_logs_and_metrics_under_the_traceparent() {
    let (endpoint, rx) = receiver(200);
    let pack = support::repo().join("policies/a2a-supply-chain");
    let requests =
        std::fs::read_to_string(support::repo().join("testdata/requests.jsonl")).unwrap();
    let mut lines: Vec<String> = requests
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    // The first request continues the caller's trace.
    let mut first: Value = serde_json::from_str(&lines[0]).unwrap();
    first.as_object_mut().unwrap().remove("trace_id");
    first["traceparent"] = Value::from(format!("00-{TRACE}-{PARENT}-01"));
    lines[0] = first.to_string();
    let input = lines.join("\n") + "\n";
    let out = support::agentriage(
        &[
            "eval",
            "--bundle",
            pack.to_str().unwrap(),
            "--otlp-endpoint",
            &endpoint,
            "--otlp-service-name",
            "payments-gateway",
            "--otlp-protocol",
            "http/json",
        ],
        &input,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), lines.len());

    let all = received(&rx);
    let paths: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/v1/traces", "/v1/logs", "/v1/metrics"]);
    let body = |p: &str| &all.iter().find(|(q, _)| q == p).unwrap().1;

    let traces = body("/v1/traces");
    let rs = &traces["resourceSpans"][0];
    assert_eq!(
        rs["resource"]["attributes"][0]["value"]["stringValue"],
        "payments-gateway"
    );
    let spans = rs["scopeSpans"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), decisions.len());
    // Under the caller's span, in the caller's trace.
    assert_eq!(spans[0]["traceId"], TRACE);
    assert_eq!(spans[0]["parentSpanId"], PARENT);
    assert_eq!(decisions[0]["trace_id"], TRACE);
    for (span, decision) in spans.iter().zip(&decisions) {
        assert_eq!(span["name"], "agentriage.decide");
        assert_eq!(span["traceId"], decision["trace_id"]);
        let id = span["spanId"].as_str().unwrap();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let attr = |k: &str| {
            span["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == k)
                .unwrap()["value"]
                .clone()
        };
        assert_eq!(
            attr("agentriage.outcome")["stringValue"],
            decision["outcome"]
        );
        assert_eq!(
            attr("agentriage.decision_id")["stringValue"],
            decision["decision_id"]
        );
        assert_eq!(
            attr("agentriage.bundle.digest")["stringValue"],
            decision["bundle"]["digest"]
        );
        let policies: Vec<Value> = decision["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::json!({"stringValue": r["policy"]}))
            .collect();
        assert_eq!(
            attr("agentriage.policies")["arrayValue"]["values"],
            Value::from(policies)
        );
        let start: u128 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u128 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(start <= end && start > 1_700_000_000_000_000_000);
    }
    // The request's action and principal, as every line of the input has them.
    for (span, line) in spans.iter().zip(&lines) {
        let request: Value = serde_json::from_str(line).unwrap();
        let attrs = span["attributes"].as_array().unwrap();
        let get = |k: &str| {
            attrs
                .iter()
                .find(|a| a["key"] == k)
                .map(|a| a["value"]["stringValue"].clone())
        };
        assert_eq!(
            get("agentriage.action"),
            request["action"]["name"].as_str().map(Value::from)
        );
        assert_eq!(
            get("agentriage.principal.id"),
            request["principal"]["id"].as_str().map(Value::from)
        );
    }
    // Requests without a traceparent have no parent span.
    assert!(spans[1].get("parentSpanId").is_none());

    let logs = body("/v1/logs");
    let records = logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array()
        .unwrap();
    assert_eq!(records.len(), decisions.len());
    for ((record, decision), span) in records.iter().zip(&decisions).zip(spans) {
        let logged: Value =
            serde_json::from_str(record["body"]["stringValue"].as_str().unwrap()).unwrap();
        assert_eq!(&logged, decision);
        assert_eq!(record["traceId"], span["traceId"]);
        assert_eq!(record["spanId"], span["spanId"]);
    }

    let metrics = body("/v1/metrics");
    let metric = &metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
    assert_eq!(metric["name"], "agentriage.decisions");
    for point in metric["sum"]["dataPoints"].as_array().unwrap() {
        let outcome = point["attributes"][0]["value"]["stringValue"]
            .as_str()
            .unwrap();
        let expected = decisions.iter().filter(|d| d["outcome"] == outcome).count();
        assert_eq!(point["asInt"], expected.to_string(), "{outcome}");
    }
}

#[test]
fn a_receiver_that_refuses_the_export_makes_eval_exit_4_with_decisions_printed() {
    let (endpoint, rx) = receiver(503);
    let pack = support::repo().join("policies/a2a-supply-chain");
    let request = std::fs::read_to_string(support::repo().join("testdata/requests.jsonl")).unwrap();
    let first = request.lines().next().unwrap();
    let out = support::agentriage(
        &[
            "eval",
            "--bundle",
            pack.to_str().unwrap(),
            "--otlp-endpoint",
            &endpoint,
        ],
        first,
    );
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("answered HTTP 503"), "{err}");
    // The decision itself is still printed: telemetry never changes it.
    let d: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert!(d["outcome"].is_string());
    assert!(!received_raw(&rx).is_empty());

    // No receiver at all: the same, and a bad endpoint is a usage error.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let out = support::agentriage(
        &[
            "eval",
            "--bundle",
            pack.to_str().unwrap(),
            "--otlp-endpoint",
            &closed,
        ],
        first,
    );
    assert_eq!(out.status.code(), Some(4));
    let out = support::agentriage(
        &[
            "eval",
            "--bundle",
            pack.to_str().unwrap(),
            "--otlp-endpoint",
            "https://x:1",
        ],
        first,
    );
    assert_eq!(out.status.code(), Some(2));
}

fn eval_with_env(args: &[&str], env: &[(&str, &str)], stdin: &str) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_agentriage"));
    command
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_EXPORTER_OTLP_HEADERS")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_default_protocol_is_http_protobuf() {
    let (endpoint, rx) = receiver(200);
    let pack = support::repo().join("policies/a2a-supply-chain");
    let request = std::fs::read_to_string(support::repo().join("testdata/requests.jsonl")).unwrap();
    let first = request.lines().next().unwrap();
    let out = eval_with_env(
        &[
            "eval",
            "--bundle",
            pack.to_str().unwrap(),
            "--otlp-endpoint",
            &endpoint,
        ],
        &[],
        first,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = received_raw(&rx);
    let paths: Vec<&str> = all.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/v1/traces", "/v1/logs", "/v1/metrics"]);
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    for r in &all {
        assert_eq!(r.content_type, "application/x-protobuf", "{}", r.path);
        // Protobuf: binary, not JSON, and strings are carried as they are.
        assert!(serde_json::from_slice::<Value>(&r.body).is_err());
        assert!(contains(&r.body, "agentriage"));
    }
    let id = decision["decision_id"].as_str().unwrap();
    assert!(contains(&all[0].body, "agentriage.decide"));
    assert!(contains(&all[0].body, id));
    // The log record's body is the decision's JSON text.
    assert!(contains(&all[1].body, &format!("\"decision_id\":\"{id}\"")));
}

#[test]
fn the_environment_names_endpoint_and_protocol_for_otlp() {
    let (endpoint, rx) = receiver(200);
    let pack = support::repo().join("policies/a2a-supply-chain");
    let request = std::fs::read_to_string(support::repo().join("testdata/requests.jsonl")).unwrap();
    let first = request.lines().next().unwrap();
    let out = eval_with_env(
        &["eval", "--bundle", pack.to_str().unwrap(), "--otlp"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ],
        first,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = received(&rx);
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0].1["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"],
        "agentriage.decide"
    );

    // --otlp-protocol wins over the environment; a bad one is a usage error
    // naming the choices.
    let out = eval_with_env(
        &[
            "eval",
            "--bundle",
            pack.to_str().unwrap(),
            "--otlp",
            "--otlp-protocol",
            "http/xml",
        ],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
        first,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`http/xml`") && err.contains("http/protobuf"),
        "{err}"
    );
    let out = eval_with_env(
        &["eval", "--bundle", pack.to_str().unwrap(), "--otlp"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
        ],
        first,
    );
    assert_eq!(out.status.code(), Some(2));
    // Options of the export without an export are refused, not ignored.
    let out = eval_with_env(
        &[
            "eval",
            "--bundle",
            pack.to_str().unwrap(),
            "--otlp-protocol",
            "http/json",
        ],
        &[],
        first,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn headers_and_a_signals_own_endpoint_come_from_flags_and_the_environment() {
    let (endpoint, rx) = receiver(200);
    let pack = support::repo().join("policies/a2a-supply-chain");
    let request = std::fs::read_to_string(support::repo().join("testdata/requests.jsonl")).unwrap();
    let first = request.lines().next().unwrap();
    let out = eval_with_env(
        &[
            "eval",
            "--bundle",
            pack.to_str().unwrap(),
            "--otlp",
            "--otlp-header",
            "x-tenant=blue",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                &format!("{endpoint}/collector/spans"),
            ),
            // Percent-decoded; the flag replaces the variable's `x-tenant`.
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20t0k3n, x-tenant=red",
            ),
        ],
        first,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = received_raw(&rx);
    let paths: Vec<&str> = all.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/collector/spans", "/v1/logs", "/v1/metrics"]);
    for r in &all {
        assert!(
            r.headers.iter().any(|h| h == "authorization: Bearer t0k3n"),
            "{:?}",
            r.headers
        );
        let tenants: Vec<&String> = r
            .headers
            .iter()
            .filter(|h| h.starts_with("x-tenant"))
            .collect();
        assert_eq!(tenants, ["x-tenant: blue"], "{}", r.path);
    }

    // A header that would split the request, or one the exporter sets
    // itself, is a usage error naming it; nothing is sent.
    for (flag, env_headers, named) in [
        ("x-a=b", "x-evil=a%0D%0AX-Injected: 1", "x-evil"),
        ("content-type=text/plain", "", "content-type"),
        ("no-equals-sign", "", "no-equals-sign"),
    ] {
        let out = eval_with_env(
            &[
                "eval",
                "--bundle",
                pack.to_str().unwrap(),
                "--otlp",
                "--otlp-header",
                flag,
            ],
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_EXPORTER_OTLP_HEADERS", env_headers),
            ],
            first,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains(named), "{err}");
        assert!(out.stdout.is_empty());
    }
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}
