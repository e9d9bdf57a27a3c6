//! The OTLP protobuf encoding of the payloads [`super`] builds as OTLP/JSON.
//!
//! OTLP/JSON is the protobuf JSON mapping of the same messages (with hex
//! trace and span ids, and 64-bit integers as strings), so one schema
//! table per message, with the field numbers of `opentelemetry-proto`
//! (`opentelemetry/proto/{common,resource,trace,logs,metrics}/v1/*.proto`),
//! turns each JSON payload into its protobuf bytes. Only the fields the
//! exporter writes are in the tables; anything else is an error, so a
//! payload the tables do not describe is never sent half-encoded.

use serde_json::{Map, Value};

/// How a field is written.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A nested message (length-delimited).
    Message(&'static [Field]),
    /// A UTF-8 string.
    String,
    /// `bytes` given in JSON as hex (trace and span ids).
    HexBytes,
    /// `fixed64`, in JSON a decimal string.
    Fixed64,
    /// `sfixed64`, in JSON a decimal string.
    Sfixed64,
    /// `int64` (varint), in JSON a decimal string.
    Int64,
    /// An enum or `uint32` (varint), in JSON a number.
    Varint,
    /// `bool`.
    Bool,
    /// `double`.
    Double,
    /// `fixed32`, in JSON a number.
    Fixed32,
}

/// One field of a message: its OTLP/JSON name, its number, its kind. A JSON
/// array is a repeated field.
#[derive(Debug, Clone, Copy)]
struct Field {
    json: &'static str,
    number: u32,
    kind: Kind,
}

const fn f(json: &'static str, number: u32, kind: Kind) -> Field {
    Field { json, number, kind }
}

// common/v1/common.proto
static ANY_VALUE: [Field; 6] = [
    f("stringValue", 1, Kind::String),
    f("boolValue", 2, Kind::Bool),
    f("intValue", 3, Kind::Int64),
    f("doubleValue", 4, Kind::Double),
    f("arrayValue", 5, Kind::Message(&ARRAY_VALUE)),
    f("kvlistValue", 6, Kind::Message(&KEY_VALUE_LIST)),
];
static ARRAY_VALUE: [Field; 1] = [f("values", 1, Kind::Message(&ANY_VALUE))];
static KEY_VALUE_LIST: [Field; 1] = [f("values", 1, Kind::Message(&KEY_VALUE))];
static KEY_VALUE: [Field; 2] = [
    f("key", 1, Kind::String),
    f("value", 2, Kind::Message(&ANY_VALUE)),
];
static SCOPE: [Field; 3] = [
    f("name", 1, Kind::String),
    f("version", 2, Kind::String),
    f("attributes", 3, Kind::Message(&KEY_VALUE)),
];
// resource/v1/resource.proto
static RESOURCE: [Field; 1] = [f("attributes", 1, Kind::Message(&KEY_VALUE))];

// trace/v1/trace.proto
static STATUS: [Field; 2] = [f("message", 2, Kind::String), f("code", 3, Kind::Varint)];
static SPAN: [Field; 11] = [
    f("traceId", 1, Kind::HexBytes),
    f("spanId", 2, Kind::HexBytes),
    f("traceState", 3, Kind::String),
    f("parentSpanId", 4, Kind::HexBytes),
    f("name", 5, Kind::String),
    f("kind", 6, Kind::Varint),
    f("startTimeUnixNano", 7, Kind::Fixed64),
    f("endTimeUnixNano", 8, Kind::Fixed64),
    f("attributes", 9, Kind::Message(&KEY_VALUE)),
    f("status", 15, Kind::Message(&STATUS)),
    f("flags", 16, Kind::Fixed32),
];
static SCOPE_SPANS: [Field; 2] = [
    f("scope", 1, Kind::Message(&SCOPE)),
    f("spans", 2, Kind::Message(&SPAN)),
];
static RESOURCE_SPANS: [Field; 2] = [
    f("resource", 1, Kind::Message(&RESOURCE)),
    f("scopeSpans", 2, Kind::Message(&SCOPE_SPANS)),
];
/// `collector/trace/v1` `ExportTraceServiceRequest`.
static EXPORT_TRACES: [Field; 1] = [f("resourceSpans", 1, Kind::Message(&RESOURCE_SPANS))];

// logs/v1/logs.proto
static LOG_RECORD: [Field; 10] = [
    f("timeUnixNano", 1, Kind::Fixed64),
    f("severityNumber", 2, Kind::Varint),
    f("severityText", 3, Kind::String),
    f("body", 5, Kind::Message(&ANY_VALUE)),
    f("attributes", 6, Kind::Message(&KEY_VALUE)),
    f("flags", 8, Kind::Fixed32),
    f("traceId", 9, Kind::HexBytes),
    f("spanId", 10, Kind::HexBytes),
    f("observedTimeUnixNano", 11, Kind::Fixed64),
    f("eventName", 12, Kind::String),
];
static SCOPE_LOGS: [Field; 2] = [
    f("scope", 1, Kind::Message(&SCOPE)),
    f("logRecords", 2, Kind::Message(&LOG_RECORD)),
];
static RESOURCE_LOGS: [Field; 2] = [
    f("resource", 1, Kind::Message(&RESOURCE)),
    f("scopeLogs", 2, Kind::Message(&SCOPE_LOGS)),
];
/// `collector/logs/v1` `ExportLogsServiceRequest`.
static EXPORT_LOGS: [Field; 1] = [f("resourceLogs", 1, Kind::Message(&RESOURCE_LOGS))];

// metrics/v1/metrics.proto
static NUMBER_DATA_POINT: [Field; 6] = [
    f("startTimeUnixNano", 2, Kind::Fixed64),
    f("timeUnixNano", 3, Kind::Fixed64),
    f("asDouble", 4, Kind::Double),
    f("asInt", 6, Kind::Sfixed64),
    f("attributes", 7, Kind::Message(&KEY_VALUE)),
    f("flags", 8, Kind::Varint),
];
static SUM: [Field; 3] = [
    f("dataPoints", 1, Kind::Message(&NUMBER_DATA_POINT)),
    f("aggregationTemporality", 2, Kind::Varint),
    f("isMonotonic", 3, Kind::Bool),
];
static GAUGE: [Field; 1] = [f("dataPoints", 1, Kind::Message(&NUMBER_DATA_POINT))];
static METRIC: [Field; 5] = [
    f("name", 1, Kind::String),
    f("description", 2, Kind::String),
    f("unit", 3, Kind::String),
    f("gauge", 5, Kind::Message(&GAUGE)),
    f("sum", 7, Kind::Message(&SUM)),
];
static SCOPE_METRICS: [Field; 2] = [
    f("scope", 1, Kind::Message(&SCOPE)),
    f("metrics", 2, Kind::Message(&METRIC)),
];
static RESOURCE_METRICS: [Field; 2] = [
    f("resource", 1, Kind::Message(&RESOURCE)),
    f("scopeMetrics", 2, Kind::Message(&SCOPE_METRICS)),
];
/// `collector/metrics/v1` `ExportMetricsServiceRequest`.
static EXPORT_METRICS: [Field; 1] = [f("resourceMetrics", 1, Kind::Message(&RESOURCE_METRICS))];

/// Which export request a payload is: one of OpenTelemetry's signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `ExportTraceServiceRequest`.
    Traces,
    /// `ExportLogsServiceRequest`.
    Logs,
    /// `ExportMetricsServiceRequest`.
    Metrics,
}

impl Signal {
    fn schema(self) -> &'static [Field] {
        match self {
            Signal::Traces => &EXPORT_TRACES,
            Signal::Logs => &EXPORT_LOGS,
            Signal::Metrics => &EXPORT_METRICS,
        }
    }
}

/// The protobuf bytes of an OTLP/JSON export request; `Err` names the
/// field the schema does not describe or whose value has the wrong form.
pub(crate) fn encode(signal: Signal, payload: &Value) -> Result<Vec<u8>, String> {
    let object = payload
        .as_object()
        .ok_or_else(|| "the payload is not a JSON object".to_owned())?;
    let mut out = Vec::new();
    message(signal.schema(), object, "$", &mut out)?;
    Ok(out)
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(number: u32, wire: u8, out: &mut Vec<u8>) {
    varint(u64::from(number) << 3 | u64::from(wire), out);
}

fn length_delimited(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    key(number, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn message(
    schema: &'static [Field],
    object: &Map<String, Value>,
    path: &str,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if let Some(unknown) = object.keys().find(|k| !schema.iter().any(|f| f.json == *k)) {
        return Err(format!("`{path}.{unknown}` has no protobuf field here"));
    }
    for field in schema {
        let Some(value) = object.get(field.json) else {
            continue;
        };
        let path = format!("{path}.{}", field.json);
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    one(field, item, &format!("{path}[{i}]"), out)?;
                }
            }
            Value::Null => {}
            item => one(field, item, &path, out)?,
        }
    }
    Ok(())
}

fn decimal<T: std::str::FromStr>(value: &Value, path: &str) -> Result<T, String> {
    let parsed = match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| format!("`{path}` is not an integer of its type"))
}

fn hex(text: &str, path: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("`{path}` is not hex");
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

fn one(field: &Field, value: &Value, path: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let n = field.number;
    match field.kind {
        Kind::Message(schema) => {
            let object = value
                .as_object()
                .ok_or_else(|| format!("`{path}` is not an object"))?;
            let mut inner = Vec::new();
            message(schema, object, path, &mut inner)?;
            length_delimited(n, &inner, out);
        }
        Kind::String => {
            let s = value
                .as_str()
                .ok_or_else(|| format!("`{path}` is not a string"))?;
            length_delimited(n, s.as_bytes(), out);
        }
        Kind::HexBytes => {
            let s = value
                .as_str()
                .ok_or_else(|| format!("`{path}` is not a string"))?;
            length_delimited(n, &hex(s, path)?, out);
        }
        Kind::Fixed64 => {
            key(n, 1, out);
            out.extend_from_slice(&decimal::<u64>(value, path)?.to_le_bytes());
        }
        Kind::Sfixed64 => {
            key(n, 1, out);
            out.extend_from_slice(&decimal::<i64>(value, path)?.to_le_bytes());
        }
        Kind::Int64 => {
            key(n, 0, out);
            // Two's complement, as protobuf writes a negative int64.
            varint(decimal::<i64>(value, path)? as u64, out);
        }
        Kind::Varint => {
            key(n, 0, out);
            varint(decimal::<u64>(value, path)?, out);
        }
        Kind::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| format!("`{path}` is not a boolean"))?;
            key(n, 0, out);
            out.push(u8::from(b));
        }
        Kind::Double => {
            let d = value
                .as_f64()
                .ok_or_else(|| format!("`{path}` is not a number"))?;
            key(n, 1, out);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Kind::Fixed32 => {
            key(n, 5, out);
            out.extend_from_slice(&decimal::<u32>(value, path)?.to_le_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_written_with_their_numbers_and_wire_types() {
        let payload = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "0102",
            "name": "a",
            "kind": 1,
            "startTimeUnixNano": "1",
            "attributes": [{"key": "k", "value": {"intValue": "-1"}}],
        }]}]}]});
        let bytes = encode(Signal::Traces, &payload).unwrap_or_else(|e| panic!("{e}"));
        let attribute: Vec<u8> = [
            &[0x0a, 1, b'k'][..],
            &[0x12, 11, 0x18],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ]
        .concat();
        let mut span = vec![0x0a, 2, 1, 2, 0x2a, 1, b'a', 0x30, 1, 0x39];
        span.extend_from_slice(&1u64.to_le_bytes());
        span.extend_from_slice(&[0x4a, attribute.len() as u8]);
        span.extend_from_slice(&attribute);
        let scope_spans = [&[0x12, span.len() as u8][..], &span].concat();
        let resource_spans = [&[0x12, scope_spans.len() as u8][..], &scope_spans].concat();
        let request = [&[0x0a, resource_spans.len() as u8][..], &resource_spans].concat();
        assert_eq!(bytes, request);
    }

    #[test]
    fn what_the_schema_does_not_describe_is_an_error() {
        let bad = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"bogus": 1}]}]}]});
        let e = encode(Signal::Traces, &bad).unwrap_err();
        assert!(
            e.contains("resourceSpans[0].scopeSpans[0].spans[0].bogus"),
            "{e}"
        );
        let bad = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]});
        assert!(
            encode(Signal::Traces, &bad)
                .unwrap_err()
                .contains("not hex")
        );
    }
}
