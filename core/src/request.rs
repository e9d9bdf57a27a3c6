//! The request: who wants to do what, on what, in which context.
//!
//! A request is parsed from JSON text with [`Request::from_json`], from a
//! [`serde_json::Value`] with [`Request::from_value`], or built in Rust with
//! [`Request::new`]. Parsing validates the public contract and names the JSON
//! path of the first field that is wrong.

pub(crate) mod features;
mod typed;

use std::fmt;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{RequestError, RequestErrorKind};

/// Largest request accepted as JSON text, in bytes (1 MiB).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Deepest nesting of arrays and objects accepted in a request.
pub const MAX_DEPTH: usize = 64;

/// Key of the request context that the engine reserves for derived facts.
pub const RESERVED_CONTEXT_KEY: &str = "facts";

/// Text that [`Timestamp::parse`] could not read as RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError {
    text: String,
}

impl TimestampError {
    /// The text that was refused.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = &self.text;
        let digits = text.strip_prefix('-').unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            write!(
                f,
                "expected an RFC 3339 string (e.g. 2026-11-21T14:05:00Z); got `{text}` — seconds since epoch?"
            )
        } else {
            write!(
                f,
                "`{text}` is not an RFC 3339 timestamp (e.g. 2026-11-21T14:05:00Z)"
            )
        }
    }
}

impl std::error::Error for TimestampError {}

/// An instant, parsed from an RFC 3339 timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Parses an RFC 3339 timestamp such as `2026-11-21T14:05:00Z`.
    ///
    /// Text that is not RFC 3339 is an error, never "now": a typo in a
    /// time must not silently become the evaluation time.
    ///
    /// ```
    /// let t = agentriage::Timestamp::parse("2026-11-21T14:05:00+01:00")?;
    /// assert_eq!(t.to_string(), "2026-11-21T13:05:00Z");
    /// let e = agentriage::Timestamp::parse("1764611100").unwrap_err();
    /// assert!(e.to_string().contains("seconds since epoch?"));
    /// # Ok::<(), agentriage::TimestampError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Timestamp, TimestampError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Timestamp(t.to_offset(time::UtcOffset::UTC)))
            .map_err(|_| TimestampError {
                text: text.to_owned(),
            })
    }

    /// The instant `seconds` after the Unix epoch, if representable.
    pub fn from_unix_seconds(seconds: i64) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(Timestamp)
    }

    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp(OffsetDateTime::now_utc())
    }

    /// Nanoseconds since the Unix epoch.
    pub fn unix_nanos(&self) -> i128 {
        self.0.unix_timestamp_nanos()
    }

    /// The instant `nanos` nanoseconds after the Unix epoch, if representable.
    pub fn from_unix_nanos(nanos: i128) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .map(Timestamp)
    }

    /// The hour of the day in UTC, 0–23.
    pub fn hour_utc(&self) -> u8 {
        self.0.hour()
    }

    /// RFC 3339 in UTC with at most millisecond precision, the form Cedar's
    /// `datetime` accepts.
    pub(crate) fn to_millis_string(self) -> String {
        let t = self.0;
        let ms = t.millisecond();
        let base = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        if ms == 0 {
            format!("{base}Z")
        } else {
            format!("{base}.{ms:03}Z")
        }
    }
}

/// RFC 3339 in UTC (`Z`), with as many fraction digits as needed.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Timestamp {
    /// RFC 3339 in UTC, written digit by digit: this runs for every
    /// timestamp of every request, and `fmt` machinery costs several times more.
    pub(crate) fn rfc3339(&self) -> String {
        fn push(out: &mut String, value: u32, width: usize) {
            let mut digits = [b'0'; 10];
            let mut v = value;
            for slot in digits.iter_mut().take(width).rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
            for &d in digits.iter().take(width) {
                out.push(char::from(d));
            }
        }
        let (year, month, day) = self.0.to_calendar_date();
        let (hour, minute, second, nanos) = self.0.to_hms_nano();
        let mut out = String::with_capacity(32);
        if year < 0 {
            out.push('-');
        }
        push(&mut out, year.unsigned_abs(), 4);
        out.push('-');
        push(&mut out, u32::from(u8::from(month)), 2);
        out.push('-');
        push(&mut out, u32::from(day), 2);
        out.push('T');
        push(&mut out, u32::from(hour), 2);
        out.push(':');
        push(&mut out, u32::from(minute), 2);
        out.push(':');
        push(&mut out, u32::from(second), 2);
        if nanos != 0 {
            let mut n = nanos;
            let mut width = 9;
            while n % 10 == 0 {
                n /= 10;
                width -= 1;
            }
            out.push('.');
            push(&mut out, n, width);
        }
        out.push('Z');
        out
    }
}

/// A request for a decision. Only `principal.id` and `action.name` are required.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// W3C trace id (32 lowercase hex digits); a new one is made when absent.
    pub trace_id: Option<String>,
    /// A W3C Trace Context `traceparent` header value
    /// (`00-<trace id>-<parent id>-<flags>`). Its trace id becomes the
    /// decision's when `trace_id` is absent; when both are given they must
    /// name the same trace.
    pub traceparent: Option<String>,
    /// The evaluation time; the engine uses the current time when absent.
    pub time: Option<Timestamp>,
    /// The agent asking.
    pub principal: Principal,
    /// What it wants to do.
    pub action: Action,
    /// What it wants to do it on.
    pub resource: Option<Resource>,
    /// Free-form context (workflow, site, incident mode, …). The key `facts`
    /// is reserved for the facts the engine derives.
    pub context: Map<String, Value>,
    /// The anomaly score of this request, if one was computed.
    pub anomaly: Option<Anomaly>,
    /// A signed intent (compact JWS), carried through to policies as given.
    pub intent: Option<String>,
    /// A signed approval (compact JWS, `typ` `approval+jwt`) of this exact
    /// action by a human approver: it settles the escalations it names
    /// (see [`crate::approval`]). Policies do not see it.
    pub approval: Option<String>,
}

/// The agent asking for a decision.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Principal {
    /// Its identity, typically a SPIFFE ID.
    pub id: String,
    /// Its kind (`agent`, `human`, …): the request's `principal.type`
    /// (`type` is a Rust keyword, hence `kind`).
    pub kind: Option<String>,
    /// The trust zone it runs in.
    pub trust_zone: Option<String>,
    /// Roles it claims. Bundles decide whether to trust them.
    pub roles: Vec<String>,
    /// The principals it acts for, nearest first.
    pub delegation: Vec<String>,
    /// Its credential.
    pub credential: Option<Credential>,
    /// Its runtime attestation.
    pub attestation: Option<Attestation>,
    /// The person or upstream service it acts for, from the request's
    /// `on_behalf_of` (see [`Subject`]).
    pub on_behalf_of: Option<Subject>,
    /// Further attributes.
    pub attributes: Map<String, Value>,
}

/// The principal's credential.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Credential {
    /// Who issued it.
    pub issuer: Option<String>,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
}

/// The principal's runtime attestation.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Attestation {
    /// `verified`, `failed`, or another status.
    pub status: Option<String>,
    /// The attestation mechanism (`tpm`, `sev-snp`, …).
    pub kind: Option<String>,
    /// When it was last verified.
    pub verified_at: Option<Timestamp>,
}

/// The action asked for.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Action {
    /// Its name, e.g. `shipment.reroute`.
    pub name: String,
    /// Further attributes.
    pub attributes: Map<String, Value>,
}

/// The resource acted on.
///
/// Rust names its type `kind` because `type` is a keyword; in JSON, in
/// Rego (`input.resource.type`) and in Cedar (`resource.type`) it is `type`.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Resource {
    /// Its type, e.g. `shipment`: the request's `resource.type` (`type` is a
    /// Rust keyword, hence `kind`).
    pub kind: String,
    /// Its id.
    pub id: Option<String>,
    /// Its attributes.
    pub attributes: Map<String, Value>,
}

/// The request's anomaly information.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Anomaly {
    /// Anomaly score in [0, 1]; higher is more anomalous.
    pub score: Option<f64>,
    /// Feature values for the bundle's anomaly model, which then computes
    /// the score (instead of `score`, not with it).
    pub features: Option<std::collections::BTreeMap<String, f64>>,
}

impl Request {
    /// A request with only the required fields.
    ///
    /// ```
    /// let mut request = agentriage::Request::new(
    ///     "spiffe://acme.example/ns/logistics/sa/router",
    ///     "shipment.read",
    /// );
    /// request.context.insert("site".into(), "dc-1".into());
    /// assert_eq!(request.action.name, "shipment.read");
    /// ```
    pub fn new(principal_id: impl Into<String>, action_name: impl Into<String>) -> Request {
        Request {
            trace_id: None,
            traceparent: None,
            time: None,
            principal: Principal {
                id: principal_id.into(),
                ..Principal::default()
            },
            action: Action {
                name: action_name.into(),
                attributes: Map::new(),
            },
            resource: None,
            context: Map::new(),
            anomaly: None,
            intent: None,
            approval: None,
        }
    }

    /// Parses and validates a request from JSON text.
    ///
    /// Text over [`MAX_REQUEST_BYTES`] or nesting deeper than [`MAX_DEPTH`] is
    /// refused before it is parsed.
    pub fn from_json(text: &str) -> Result<Request, RequestError> {
        if text.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::new(
                RequestErrorKind::TooLarge,
                "$",
                format!(
                    "request is {} bytes, more than the limit of {MAX_REQUEST_BYTES}",
                    text.len()
                ),
            ));
        }
        let oversized_integer = check_text_depth(text)?;
        // The plain shape straight into the typed request; anything else,
        // and every error, the general way.
        if !oversized_integer && let Some(request) = typed::from_json(text) {
            return Ok(request);
        }
        Request::from_json_values(text, oversized_integer)
    }

    /// [`Request::from_json`] through JSON values: the text parsed into
    /// values, which are then read into the request.
    fn from_json_values(text: &str, oversized_integer: bool) -> Result<Request, RequestError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            RequestError::new(
                RequestErrorKind::Syntax,
                "$",
                format!(
                    "not valid JSON: {} (line {}, column {})",
                    strip_position(&e.to_string()),
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if oversized_integer {
            check_numbers(&value, "")?;
        }
        Request::try_from(value)
    }

    /// Validates a request given as a JSON value. `Request::try_from(value)`
    /// does the same with a value it may take apart: it moves the value's
    /// strings and maps into the request instead of copying them.
    pub fn from_value(value: &Value) -> Result<Request, RequestError> {
        check_value_depth(value, "$", 0)?;
        parse_request(value.clone())
    }

    /// The request as JSON, in the shape of the public contract.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        if let Some(t) = &self.trace_id {
            out.insert("trace_id".into(), t.clone().into());
        }
        if let Some(t) = &self.traceparent {
            out.insert("traceparent".into(), t.clone().into());
        }
        if let Some(t) = &self.time {
            out.insert("time".into(), t.to_string().into());
        }
        out.insert("principal".into(), self.principal.to_json());
        let mut action = self.action.attributes_json();
        action.insert("name".into(), self.action.name.clone().into());
        out.insert("action".into(), Value::Object(action));
        if let Some(r) = &self.resource {
            let mut m = Map::new();
            m.insert("type".into(), r.kind.clone().into());
            if let Some(id) = &r.id {
                m.insert("id".into(), id.clone().into());
            }
            m.insert("attributes".into(), Value::Object(r.attributes.clone()));
            out.insert("resource".into(), Value::Object(m));
        }
        out.insert("context".into(), Value::Object(self.context.clone()));
        if let Some(a) = &self.anomaly {
            let mut m = Map::new();
            if let Some(s) = a.score {
                m.insert("score".into(), number(s));
            }
            if let Some(f) = &a.features {
                m.insert("features".into(), features::features_json(f));
            }
            out.insert("anomaly".into(), Value::Object(m));
        }
        if let Some(i) = &self.intent {
            out.insert("intent".into(), i.clone().into());
        }
        if let Some(a) = &self.approval {
            out.insert("approval".into(), a.clone().into());
        }
        Value::Object(out)
    }

    /// Checks what a request built in Rust must satisfy: the same rules
    /// [`Request::from_value`] applies to JSON.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.principal.id.is_empty() {
            return Err(empty("principal.id"));
        }
        if self.action.name.is_empty() {
            return Err(empty("action.name"));
        }
        if let Some(subject) = &self.principal.on_behalf_of {
            subject.validate()?;
        }
        if let Some(t) = &self.trace_id {
            check_trace_id(t, "trace_id")?;
        }
        crate::traceparent::check(self.traceparent.as_deref(), self.trace_id.as_deref())?;
        if let Some(score) = self.anomaly.as_ref().and_then(|a| a.score) {
            check_score(score, "anomaly.score")?;
        }
        if let Some(a) = &self.anomaly {
            features::check(a.score, a.features.as_ref())?;
        }
        if self.context.contains_key(RESERVED_CONTEXT_KEY) {
            return Err(reserved_facts());
        }
        for (path, map) in [
            ("principal.attributes", &self.principal.attributes),
            ("action.attributes", &self.action.attributes),
            ("context", &self.context),
        ] {
            check_map_depth(map, path, 2)?;
        }
        if let Some(r) = &self.resource {
            if r.kind.is_empty() {
                return Err(empty("resource.type"));
            }
            check_map_depth(&r.attributes, "resource.attributes", 3)?;
        }
        Ok(())
    }
}

impl TryFrom<Value> for Request {
    type Error = RequestError;

    /// Validates a request given as a JSON value, as [`Request::from_value`]
    /// does, moving the value's strings and maps into the request.
    fn try_from(value: Value) -> Result<Request, RequestError> {
        check_value_depth(&value, "$", 0)?;
        parse_request(value)
    }
}

impl Principal {
    /// The principal as JSON, in the shape of the request's `principal`
    /// (what the [`crate::identity`] helpers hand to other languages).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        if let Some(k) = &self.kind {
            m.insert("type".into(), k.clone().into());
        }
        if let Some(z) = &self.trust_zone {
            m.insert("trust_zone".into(), z.clone().into());
        }
        m.insert("roles".into(), strings(&self.roles));
        m.insert("delegation".into(), strings(&self.delegation));
        if let Some(c) = &self.credential {
            let mut cm = Map::new();
            if let Some(i) = &c.issuer {
                cm.insert("issuer".into(), i.clone().into());
            }
            if let Some(e) = &c.expires_at {
                cm.insert("expires_at".into(), e.to_string().into());
            }
            m.insert("credential".into(), Value::Object(cm));
        }
        if let Some(a) = &self.attestation {
            let mut am = Map::new();
            if let Some(s) = &a.status {
                am.insert("status".into(), s.clone().into());
            }
            if let Some(k) = &a.kind {
                am.insert("kind".into(), k.clone().into());
            }
            if let Some(v) = &a.verified_at {
                am.insert("verified_at".into(), v.to_string().into());
            }
            m.insert("attestation".into(), Value::Object(am));
        }
        if let Some(subject) = &self.on_behalf_of {
            m.insert("on_behalf_of".into(), subject.to_json());
        }
        m.insert("attributes".into(), Value::Object(self.attributes.clone()));
        Value::Object(m)
    }
}

impl Action {
    fn attributes_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if !self.attributes.is_empty() {
            m.insert("attributes".into(), Value::Object(self.attributes.clone()));
        }
        m
    }
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn strip_position(msg: &str) -> &str {
    msg.find(" at line ")
        .map_or(msg, |i| msg.get(..i).unwrap_or(msg))
}

fn empty(path: &str) -> RequestError {
    RequestError::new(RequestErrorKind::Missing, path, "must not be empty")
}

fn reserved_facts() -> RequestError {
    RequestError::new(
        RequestErrorKind::Value,
        "context.facts",
        "`facts` is reserved for the facts the engine derives",
    )
}

/// Refuses text whose arrays and objects nest deeper than [`MAX_DEPTH`],
/// before any parser recurses into it.
///
/// Returns whether the text holds an integer literal beyond 64 bits, which
/// JSON parsing would round to a binary float (see [`MAX_EXACT_MAGNITUDE`]).
fn check_text_depth(text: &str) -> Result<bool, RequestError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut oversized = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep("$"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                // A number token: an integer when it has no fraction or exponent.
                let start = i - 1;
                while bytes.get(i).is_some_and(|c| {
                    c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')
                }) {
                    i += 1;
                }
                let token = text.get(start..i).unwrap_or_default();
                if !token.contains(['.', 'e', 'E']) && integer_beyond_64_bits(token) {
                    oversized = true;
                }
            }
            _ => {}
        }
    }
    Ok(oversized)
}

/// An integer literal outside `i64::MIN..=u64::MAX`.
fn integer_beyond_64_bits(token: &str) -> bool {
    let digits = token.trim_start_matches('-').trim_start_matches('0');
    if digits.len() > 20 {
        return true;
    }
    match token.parse::<i128>() {
        Ok(v) => v < i128::from(i64::MIN) || v > i128::from(u64::MAX),
        Err(_) => true,
    }
}

fn too_deep(path: &str) -> RequestError {
    RequestError::new(
        RequestErrorKind::TooDeep,
        path,
        format!("nests deeper than {MAX_DEPTH} levels"),
    )
}

fn check_value_depth(value: &Value, path: &str, depth: usize) -> Result<(), RequestError> {
    match value {
        Value::Array(items) => {
            if depth + 1 > MAX_DEPTH {
                return Err(too_deep(path));
            }
            items
                .iter()
                .try_for_each(|v| check_value_depth(v, path, depth + 1))
        }
        Value::Object(map) => {
            if depth + 1 > MAX_DEPTH {
                return Err(too_deep(path));
            }
            map.values()
                .try_for_each(|v| check_value_depth(v, path, depth + 1))
        }
        _ => Ok(()),
    }
}

/// `depth` is the nesting level of `map` itself inside the request.
fn check_map_depth(map: &Map<String, Value>, path: &str, depth: usize) -> Result<(), RequestError> {
    map.values()
        .try_for_each(|v| check_value_depth(v, path, depth))
}

/// Integers written beyond 64 bits in JSON text reach serde_json as binary
/// floats, rounded (`18446744073709551617` becomes `1.8446744073709552e19`),
/// while a Rego literal keeps its exact value: an equality with it would
/// silently fail. Such a request is refused rather than rounded; the number
/// is found again, after parsing, as a whole float of at least this
/// magnitude.
const MAX_EXACT_MAGNITUDE: f64 = 9_223_372_036_854_775_808.0; // 2^63

/// True when some number in `value` cannot reach the policies exactly.
fn has_inexact_number(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.as_i64().is_none()
                && n.as_u64().is_none()
                && n.as_f64()
                    .is_none_or(|f| f.fract() == 0.0 && f.abs() >= MAX_EXACT_MAGNITUDE)
        }
        Value::Array(items) => items.iter().any(has_inexact_number),
        Value::Object(map) => map.values().any(has_inexact_number),
        _ => false,
    }
}

/// Refuses numbers that cannot reach the policies exactly (see
/// [`MAX_EXACT_MAGNITUDE`]), naming the path of the first one. The walk that
/// builds paths runs only once such a number is known to be there.
fn check_numbers(value: &Value, path: &str) -> Result<(), RequestError> {
    if !has_inexact_number(value) {
        return Ok(());
    }
    number_paths(value, path)
}

fn number_paths(value: &Value, path: &str) -> Result<(), RequestError> {
    match value {
        Value::Number(n) => {
            if has_inexact_number(value) {
                return Err(RequestError::new(
                    RequestErrorKind::Value,
                    if path.is_empty() { "$" } else { path },
                    format!(
                        "an integer beyond 64 bits (read as `{n}`) would reach the policies rounded: refused rather than rounded; send it as a string"
                    ),
                ));
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter(|(_, v)| has_inexact_number(v))
            .try_for_each(|(i, v)| number_paths(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| has_inexact_number(v))
            .try_for_each(|(k, v)| number_paths(v, &join(path, k))),
        _ => Ok(()),
    }
}

/// `null`, `a boolean`, …: what a JSON value is, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(path: &str, expected: &str, got: &Value) -> RequestError {
    RequestError::new(
        RequestErrorKind::Type,
        path,
        format!("expected {expected}, found {}", type_name(got)),
    )
}

/// A number where the contract says time: refused (a bare number does not
/// say its unit or that it is UTC), with a hint at the unit it most likely
/// is. Values from 10^11 on are read as milliseconds (JavaScript's
/// `Date.now()`), smaller ones as seconds (Unix time, Python's `time.time()`).
fn epoch_number(path: &str, n: &serde_json::Number) -> RequestError {
    let unit = match n.as_f64() {
        Some(x) if x.abs() >= 1e11 => "milliseconds",
        _ => "seconds",
    };
    RequestError::new(
        RequestErrorKind::Type,
        path,
        format!("expected an RFC 3339 string; got {n} \u{2014} {unit} since epoch?"),
    )
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The most members an object of the contract has (the request's own).
const MAX_FIELDS: usize = 10;

/// A JSON object being read field by field; unknown fields are refused.
/// Its members are moved into one slot per allowed name (no hashing, no
/// copy) and taken from there, so a request parsed from a value it owns
/// copies no string or map.
struct Fields<'a> {
    path: &'a str,
    allowed: &'a [&'a str],
    slots: [Option<Value>; MAX_FIELDS],
}

impl<'a> Fields<'a> {
    fn new(value: Value, path: &'a str, allowed: &'a [&'a str]) -> Result<Self, RequestError> {
        debug_assert!(allowed.len() <= MAX_FIELDS, "{path} has too many fields");
        let Value::Object(map) = value else {
            return Err(wrong_type(
                if path.is_empty() { "$" } else { path },
                "an object",
                &value,
            ));
        };
        let mut slots = [const { None }; MAX_FIELDS];
        for (k, v) in map {
            let slot = allowed
                .iter()
                .position(|a| *a == k)
                .and_then(|i| slots.get_mut(i));
            let Some(slot) = slot else {
                return Err(RequestError::new(
                    RequestErrorKind::Unknown,
                    join(path, &k),
                    format!(
                        "unknown field `{k}`; expected one of {}",
                        allowed.join(", ")
                    ),
                ));
            };
            *slot = Some(v);
        }
        Ok(Fields {
            path,
            allowed,
            slots,
        })
    }

    fn slot(&mut self, key: &str) -> Option<&mut Option<Value>> {
        let i = self.allowed.iter().position(|a| *a == key)?;
        self.slots.get_mut(i)
    }

    /// The field, moved out, treating `null` as absent.
    fn take(&mut self, key: &str) -> Option<Value> {
        self.slot(key)?.take().filter(|v| !v.is_null())
    }

    fn path(&self, key: &str) -> String {
        join(self.path, key)
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, RequestError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong_type(&self.path(key), "a string", &v)),
        }
    }

    fn required_string(&mut self, key: &str) -> Result<String, RequestError> {
        match self.string(key)? {
            None => Err(RequestError::new(
                RequestErrorKind::Missing,
                self.path(key),
                "required field is missing",
            )),
            Some(s) if s.is_empty() => Err(empty(&self.path(key))),
            Some(s) => Ok(s),
        }
    }

    fn timestamp(&mut self, key: &str) -> Result<Option<Timestamp>, RequestError> {
        let number = match self.slot(key) {
            Some(Some(Value::Number(n))) => Some(n.clone()),
            _ => None,
        };
        if let Some(n) = number {
            return Err(epoch_number(&self.path(key), &n));
        }
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        Timestamp::parse(&text)
            .map(Some)
            .map_err(|e| RequestError::new(RequestErrorKind::Value, self.path(key), e.to_string()))
    }

    fn object(&mut self, key: &str) -> Result<Map<String, Value>, RequestError> {
        match self.take(key) {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(v) => Err(wrong_type(&self.path(key), "an object", &v)),
        }
    }

    fn string_list(&mut self, key: &str) -> Result<Vec<String>, RequestError> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) if !s.is_empty() => Ok(s),
                    Value::String(_) => Err(empty(&format!("{}[{i}]", self.path(key)))),
                    other => Err(wrong_type(
                        &format!("{}[{i}]", self.path(key)),
                        "a string",
                        &other,
                    )),
                })
                .collect(),
            Some(v) => Err(wrong_type(&self.path(key), "an array of strings", &v)),
        }
    }
}

fn check_trace_id(t: &str, path: &str) -> Result<(), RequestError> {
    let hex = t.len() == 32
        && t.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex || t.bytes().all(|b| b == b'0') {
        return Err(RequestError::new(
            RequestErrorKind::Value,
            path,
            format!("`{t}` is not a W3C trace id (32 lowercase hex digits, not all zero)"),
        ));
    }
    Ok(())
}

fn check_score(score: f64, path: &str) -> Result<(), RequestError> {
    if !score.is_finite() || !(0.0..=1.0).contains(&score) {
        return Err(RequestError::new(
            RequestErrorKind::Value,
            path,
            format!("anomaly score must be a number in [0, 1], found {score}"),
        ));
    }
    Ok(())
}

/// The request's top-level members, as the contract names them.
pub(crate) const TOP_LEVEL_FIELDS: &[&str] = &[
    "trace_id",
    "traceparent",
    "time",
    "principal",
    "action",
    "resource",
    "context",
    "anomaly",
    "intent",
    "approval",
];

fn parse_request(value: Value) -> Result<Request, RequestError> {
    let mut top = Fields::new(value, "", TOP_LEVEL_FIELDS)?;
    let trace_id = top.string("trace_id")?;
    if let Some(t) = &trace_id {
        check_trace_id(t, "trace_id")?;
    }
    let traceparent = top.string("traceparent")?;
    crate::traceparent::check(traceparent.as_deref(), trace_id.as_deref())?;
    let principal = match top.take("principal") {
        Some(v) => parse_principal(v)?,
        None => {
            return Err(RequestError::new(
                RequestErrorKind::Missing,
                "principal",
                "required field is missing",
            ));
        }
    };
    let action = match top.take("action") {
        Some(v) => {
            let mut f = Fields::new(v, "action", &["name", "attributes"])?;
            Action {
                name: f.required_string("name")?,
                attributes: f.object("attributes")?,
            }
        }
        None => {
            return Err(RequestError::new(
                RequestErrorKind::Missing,
                "action",
                "required field is missing",
            ));
        }
    };
    let resource = match top.take("resource") {
        None => None,
        Some(v) => {
            let mut f = Fields::new(v, "resource", &["type", "id", "attributes"])?;
            Some(Resource {
                kind: f.required_string("type")?,
                id: f.string("id")?,
                attributes: f.object("attributes")?,
            })
        }
    };
    let context = top.object("context")?;
    if context.contains_key(RESERVED_CONTEXT_KEY) {
        return Err(reserved_facts());
    }
    let anomaly = match top.take("anomaly") {
        None => None,
        Some(v) => {
            let mut f = Fields::new(v, "anomaly", &["score", "features"])?;
            let score = match f.take("score") {
                None => None,
                Some(Value::Number(n)) => {
                    let s = n.as_f64().unwrap_or(f64::NAN);
                    check_score(s, "anomaly.score")?;
                    Some(s)
                }
                Some(other) => return Err(wrong_type("anomaly.score", "a number", &other)),
            };
            let features = f
                .take("features")
                .map(|v| features::parse_features(&v))
                .transpose()?;
            features::check(score, features.as_ref())?;
            Some(Anomaly { score, features })
        }
    };
    let time = top.timestamp("time")?;
    Ok(Request {
        trace_id,
        traceparent,
        time,
        principal,
        action,
        resource,
        context,
        anomaly,
        intent: top.string("intent")?,
        approval: top.string("approval")?,
    })
}

fn parse_principal(v: Value) -> Result<Principal, RequestError> {
    let mut f = Fields::new(
        v,
        "principal",
        &[
            "id",
            "type",
            "trust_zone",
            "roles",
            "delegation",
            "credential",
            "attestation",
            "on_behalf_of",
            "attributes",
        ],
    )?;
    let credential = match f.take("credential") {
        None => None,
        Some(c) => {
            let mut cf = Fields::new(c, "principal.credential", &["issuer", "expires_at"])?;
            Some(Credential {
                issuer: cf.string("issuer")?,
                expires_at: cf.timestamp("expires_at")?,
            })
        }
    };
    let attestation = match f.take("attestation") {
        None => None,
        Some(a) => {
            let mut af = Fields::new(
                a,
                "principal.attestation",
                &["status", "kind", "verified_at"],
            )?;
            Some(Attestation {
                status: af.string("status")?,
                kind: af.string("kind")?,
                verified_at: af.timestamp("verified_at")?,
            })
        }
    };
    Ok(Principal {
        id: f.required_string("id")?,
        kind: f.string("type")?,
        trust_zone: f.string("trust_zone")?,
        roles: f.string_list("roles")?,
        delegation: f.string_list("delegation")?,
        credential,
        attestation,
        on_behalf_of: f.take("on_behalf_of").map(parse_on_behalf_of).transpose()?,
        attributes: f.object("attributes")?,
    })
}

// ---- builders -----------------------------------------------------------------

/// Builds a [`Request`] field by field; [`RequestBuilder::build`] validates
/// it as [`Request::from_value`] validates JSON.
///
/// ```
/// use agentriage::{Principal, Request, Resource, Subject, SubjectKind, Timestamp};
///
/// let request = Request::builder("spiffe://acme.example/ns/finance/sa/payments", "payment.release")
///     .time(Timestamp::parse("2026-11-21T14:05:00Z")?)
///     .resource(Resource::new("invoice").id("INV-88").attribute("amount_usd", 1200))
///     .on_behalf_of(Subject::new("alice@acme.example", SubjectKind::User).scope("payments:release"))
///     .context("workflow_id", "wf-1")
///     .build()?;
/// assert_eq!(request.resource.as_ref().map(|r| r.kind.as_str()), Some("invoice"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RequestBuilder {
    request: Request,
}

impl Request {
    /// A [`RequestBuilder`] for an agent and an action.
    pub fn builder(
        principal_id: impl Into<String>,
        action_name: impl Into<String>,
    ) -> RequestBuilder {
        RequestBuilder {
            request: Request::new(principal_id, action_name),
        }
    }
}

impl RequestBuilder {
    /// Replaces the principal (keep its id: build it with [`Principal::new`]).
    pub fn principal(mut self, principal: Principal) -> RequestBuilder {
        self.request.principal = principal;
        self
    }

    /// Sets whom the principal acts for.
    pub fn on_behalf_of(mut self, subject: Subject) -> RequestBuilder {
        self.request.principal.on_behalf_of = Some(subject);
        self
    }

    /// Sets the evaluation time.
    pub fn time(mut self, time: Timestamp) -> RequestBuilder {
        self.request.time = Some(time);
        self
    }

    /// Sets the resource.
    pub fn resource(mut self, resource: Resource) -> RequestBuilder {
        self.request.resource = Some(resource);
        self
    }

    /// Adds an action attribute.
    pub fn action_attribute(
        mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> RequestBuilder {
        self.request
            .action
            .attributes
            .insert(key.into(), value.into());
        self
    }

    /// Adds a context entry (`facts` is reserved: [`RequestBuilder::build`]
    /// refuses it).
    pub fn context(mut self, key: impl Into<String>, value: impl Into<Value>) -> RequestBuilder {
        self.request.context.insert(key.into(), value.into());
        self
    }

    /// Sets the W3C trace id.
    pub fn trace_id(mut self, trace_id: impl Into<String>) -> RequestBuilder {
        self.request.trace_id = Some(trace_id.into());
        self
    }

    /// Sets the W3C `traceparent`.
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> RequestBuilder {
        self.request.traceparent = Some(traceparent.into());
        self
    }

    /// Sets the anomaly score, in [0, 1].
    pub fn anomaly_score(mut self, score: f64) -> RequestBuilder {
        self.request.anomaly = Some(Anomaly {
            score: Some(score),
            features: None,
        });
        self
    }

    /// Sets the signed intent (compact JWS).
    pub fn intent(mut self, intent: impl Into<String>) -> RequestBuilder {
        self.request.intent = Some(intent.into());
        self
    }

    /// The request, validated ([`Request::validate`]).
    pub fn build(self) -> Result<Request, RequestError> {
        self.request.validate()?;
        Ok(self.request)
    }
}

impl Principal {
    /// A principal with only its id.
    ///
    /// ```
    /// use agentriage::{Principal, Timestamp};
    /// let p = Principal::new("spiffe://acme.example/ns/finance/sa/payments")
    ///     .kind("agent")
    ///     .role("payment-agent")
    ///     .credential_issuer("https://idp.acme.example")
    ///     .credential_expires_at(Timestamp::parse("2026-11-21T15:00:00Z")?);
    /// assert_eq!(p.roles, ["payment-agent"]);
    /// # Ok::<(), agentriage::TimestampError>(())
    /// ```
    pub fn new(id: impl Into<String>) -> Principal {
        Principal {
            id: id.into(),
            ..Principal::default()
        }
    }

    /// Sets its kind (the request's `principal.type`).
    #[must_use]
    pub fn kind(mut self, kind: impl Into<String>) -> Principal {
        self.kind = Some(kind.into());
        self
    }

    /// Sets its trust zone.
    #[must_use]
    pub fn trust_zone(mut self, zone: impl Into<String>) -> Principal {
        self.trust_zone = Some(zone.into());
        self
    }

    /// Adds a role.
    #[must_use]
    pub fn role(mut self, role: impl Into<String>) -> Principal {
        self.roles.push(role.into());
        self
    }

    /// Adds a principal it acts for (nearest first).
    #[must_use]
    pub fn delegator(mut self, id: impl Into<String>) -> Principal {
        self.delegation.push(id.into());
        self
    }

    /// Sets its credential's issuer.
    #[must_use]
    pub fn credential_issuer(mut self, issuer: impl Into<String>) -> Principal {
        self.credential
            .get_or_insert_with(Credential::default)
            .issuer = Some(issuer.into());
        self
    }

    /// Sets when its credential expires.
    #[must_use]
    pub fn credential_expires_at(mut self, expires_at: Timestamp) -> Principal {
        self.credential
            .get_or_insert_with(Credential::default)
            .expires_at = Some(expires_at);
        self
    }

    /// Sets its attestation's status (`verified`, `failed`, …) and when it
    /// was verified.
    #[must_use]
    pub fn attestation(
        mut self,
        status: impl Into<String>,
        verified_at: Option<Timestamp>,
    ) -> Principal {
        let a = self.attestation.get_or_insert_with(Attestation::default);
        a.status = Some(status.into());
        a.verified_at = verified_at;
        self
    }

    /// Sets its attestation's mechanism (`tpm`, `sev-snp`, …).
    #[must_use]
    pub fn attestation_kind(mut self, kind: impl Into<String>) -> Principal {
        self.attestation
            .get_or_insert_with(Attestation::default)
            .kind = Some(kind.into());
        self
    }

    /// Sets whom it acts for.
    #[must_use]
    pub fn on_behalf_of(mut self, subject: Subject) -> Principal {
        self.on_behalf_of = Some(subject);
        self
    }

    /// Adds an attribute.
    #[must_use]
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Principal {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

impl Resource {
    /// A resource of type `kind` (the request's `resource.type`), without
    /// id or attributes.
    ///
    /// ```
    /// let r = agentriage::Resource::new("shipment").id("S-1").attribute("value_usd", 900);
    /// assert_eq!((r.kind.as_str(), r.id.as_deref()), ("shipment", Some("S-1")));
    /// ```
    pub fn new(kind: impl Into<String>) -> Resource {
        Resource {
            kind: kind.into(),
            ..Resource::default()
        }
    }

    /// Sets its id.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Resource {
        self.id = Some(id.into());
        self
    }

    /// Adds an attribute.
    #[must_use]
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<Value>) -> Resource {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

// ---- on-behalf-of subject ---------------------------------------------------

/// Whom an agent acts for: a person (`user`) or an upstream service
/// (`service`), with the roles and scopes it holds.
///
/// In JSON it is `principal.on_behalf_of`:
/// `{"id": "alice@acme.example", "type": "user", "roles": [...], "scopes": [...]}`.
/// `id` and `type` are required. Rego sees it as
/// `input.principal.on_behalf_of` (roles and scopes always arrays), Cedar as
/// the record `context.on_behalf_of` (when the schema declares it), so a
/// bundle can require that both the agent and its subject may do the action.
///
/// The roles and scopes are taken as given: build the subject from a token
/// the host has verified (see `agentriage::identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subject {
    /// Its identity, e.g. the `sub` of the token it signed in with.
    pub id: String,
    /// A person or a service.
    pub kind: SubjectKind,
    /// Roles it holds.
    pub roles: Vec<String>,
    /// OAuth scopes it granted or holds.
    pub scopes: Vec<String>,
}

impl Subject {
    /// A subject with no roles and no scopes.
    ///
    /// ```
    /// use agentriage::{Subject, SubjectKind};
    /// let alice = Subject::new("alice@acme.example", SubjectKind::User)
    ///     .scope("payments:release");
    /// assert_eq!(alice.scopes, ["payments:release"]);
    /// ```
    pub fn new(id: impl Into<String>, kind: SubjectKind) -> Subject {
        Subject {
            id: id.into(),
            kind,
            roles: Vec::new(),
            scopes: Vec::new(),
        }
    }

    /// Adds a role.
    #[must_use]
    pub fn role(mut self, role: impl Into<String>) -> Subject {
        self.roles.push(role.into());
        self
    }

    /// Adds a scope.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Subject {
        self.scopes.push(scope.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("type".into(), self.kind.as_str().into());
        m.insert("roles".into(), strings(&self.roles));
        m.insert("scopes".into(), strings(&self.scopes));
        Value::Object(m)
    }

    fn validate(&self) -> Result<(), RequestError> {
        if self.id.is_empty() {
            return Err(empty("principal.on_behalf_of.id"));
        }
        for (field, items) in [("roles", &self.roles), ("scopes", &self.scopes)] {
            if let Some(i) = items.iter().position(String::is_empty) {
                return Err(empty(&format!("principal.on_behalf_of.{field}[{i}]")));
            }
        }
        Ok(())
    }
}

/// What kind of subject an agent acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectKind {
    /// A person.
    User,
    /// An upstream service.
    Service,
}

impl SubjectKind {
    /// `user` or `service`, as the contract writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::Service => "service",
        }
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn parse_on_behalf_of(v: Value) -> Result<Subject, RequestError> {
    let mut f = Fields::new(
        v,
        "principal.on_behalf_of",
        &["id", "type", "roles", "scopes"],
    )?;
    let id = f.required_string("id")?;
    let kind = match f.required_string("type")?.as_str() {
        "user" => SubjectKind::User,
        "service" => SubjectKind::Service,
        other => {
            return Err(RequestError::new(
                RequestErrorKind::Value,
                "principal.on_behalf_of.type",
                format!("`{other}` is not a subject type; expected user or service"),
            ));
        }
    };
    Ok(Subject {
        id,
        kind,
        roles: f.string_list("roles")?,
        scopes: f.string_list("scopes")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> RequestError {
        Request::from_json(text).unwrap_err()
    }

    #[test]
    fn minimal_request_parses() {
        let r = Request::from_json(r#"{"principal":{"id":"a"},"action":{"name":"x"}}"#).unwrap();
        assert_eq!(r.principal.id, "a");
        assert_eq!(r.action.name, "x");
        assert!(r.resource.is_none());
    }

    #[test]
    fn missing_required_fields_are_named() {
        let e = err(r#"{"action":{"name":"x"}}"#);
        assert_eq!(
            (e.kind(), e.path()),
            (RequestErrorKind::Missing, "principal")
        );
        let e = err(r#"{"principal":{},"action":{"name":"x"}}"#);
        assert_eq!(e.path(), "principal.id");
        let e = err(r#"{"principal":{"id":"a"},"action":{}}"#);
        assert_eq!(e.path(), "action.name");
        let e = err(r#"{"principal":{"id":""},"action":{"name":"x"}}"#);
        assert_eq!(e.path(), "principal.id");
    }

    #[test]
    fn wrong_types_are_named() {
        let e = err(r#"{"time":12,"principal":{"id":"a"},"action":{"name":"x"}}"#);
        assert_eq!((e.kind(), e.path()), (RequestErrorKind::Type, "time"));
        let e = err(r#"{"anomaly":{"score":"high"},"principal":{"id":"a"},"action":{"name":"x"}}"#);
        assert_eq!(
            (e.kind(), e.path()),
            (RequestErrorKind::Type, "anomaly.score")
        );
        let e = err(r#"{"principal":{"id":"a","delegation":["b",3]},"action":{"name":"x"}}"#);
        assert_eq!(e.path(), "principal.delegation[1]");
        let e = err(r#"[1]"#);
        assert_eq!((e.kind(), e.path()), (RequestErrorKind::Type, "$"));
    }

    #[test]
    fn epoch_numbers_in_time_fields_get_a_hint() {
        for (request, path) in [
            (
                r#"{"time":1764611100,"principal":{"id":"a"},"action":{"name":"x"}}"#,
                "time",
            ),
            (
                r#"{"principal":{"id":"a","credential":{"expires_at":1764611100}},"action":{"name":"x"}}"#,
                "principal.credential.expires_at",
            ),
            (
                r#"{"principal":{"id":"a","attestation":{"status":"verified","verified_at":1764611100}},"action":{"name":"x"}}"#,
                "principal.attestation.verified_at",
            ),
        ] {
            let e = err(request);
            assert_eq!((e.kind(), e.path()), (RequestErrorKind::Type, path));
            assert_eq!(
                e.message(),
                "expected an RFC 3339 string; got 1764611100 \u{2014} seconds since epoch?"
            );
        }
        let e = err(r#"{"time":1764611100000,"principal":{"id":"a"},"action":{"name":"x"}}"#);
        assert_eq!(
            e.message(),
            "expected an RFC 3339 string; got 1764611100000 \u{2014} milliseconds since epoch?"
        );
        // Other types keep the plain type error.
        let e = err(r#"{"time":true,"principal":{"id":"a"},"action":{"name":"x"}}"#);
        assert_eq!((e.kind(), e.path()), (RequestErrorKind::Type, "time"));
        assert!(!e.message().contains("epoch"), "{e}");
    }

    #[test]
    fn bad_timestamps_are_named() {
        let e = err(
            r#"{"principal":{"id":"a","credential":{"expires_at":"tomorrow"}},"action":{"name":"x"}}"#,
        );
        assert_eq!(
            (e.kind(), e.path()),
            (RequestErrorKind::Value, "principal.credential.expires_at")
        );
        assert!(e.message().contains("RFC 3339"), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = err(r#"{"principal":{"id":"a","role":"x"},"action":{"name":"x"}}"#);
        assert_eq!(
            (e.kind(), e.path()),
            (RequestErrorKind::Unknown, "principal.role")
        );
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_not_rounded() {
        for (text, path) in [
            (
                r#"{"principal":{"id":"a"},"action":{"name":"x"},"resource":{"type":"t","attributes":{"n":18446744073709551617}}}"#,
                "resource.attributes.n",
            ),
            (
                r#"{"principal":{"id":"a"},"action":{"name":"x"},"context":{"xs":[1, {"big": -99999999999999999999}]}}"#,
                "context.xs[1].big",
            ),
        ] {
            let e = err(text);
            assert_eq!(e.kind(), RequestErrorKind::Value, "{e}");
            assert_eq!(e.path(), path, "{e}");
        }
        // The 64-bit extremes and floats, however large, pass: a float is
        // the same binary float on both sides.
        let ok = r#"{"principal":{"id":"a"},"action":{"name":"x"},"context":{"a":18446744073709551615,"b":-9223372036854775808,"c":1.5e300,"d":0.1,"e":1e19,"f":"18446744073709551617"}}"#;
        assert!(Request::from_json(ok).is_ok());
    }

    #[test]
    fn out_of_range_score_is_refused() {
        let e = err(r#"{"anomaly":{"score":1.5},"principal":{"id":"a"},"action":{"name":"x"}}"#);
        assert_eq!(
            (e.kind(), e.path()),
            (RequestErrorKind::Value, "anomaly.score")
        );
    }

    #[test]
    fn limits_are_enforced_before_parsing() {
        let deep = format!(
            r#"{{"principal":{{"id":"a"}},"action":{{"name":"x"}},"context":{{"a":{}1{}}}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        assert_eq!(err(&deep).kind(), RequestErrorKind::TooDeep);
        let big = format!(
            r#"{{"principal":{{"id":"a"}},"action":{{"name":"x"}},"context":{{"a":"{}"}}}}"#,
            "x".repeat(MAX_REQUEST_BYTES)
        );
        assert_eq!(err(&big).kind(), RequestErrorKind::TooLarge);
        // Brackets inside strings do not count.
        let ok = format!(
            r#"{{"principal":{{"id":"a"}},"action":{{"name":"x"}},"context":{{"a":"{}"}}}}"#,
            "[".repeat(100)
        );
        assert!(Request::from_json(&ok).is_ok());
    }

    #[test]
    fn not_json_is_a_syntax_error() {
        let e = err("{nope");
        assert_eq!(e.kind(), RequestErrorKind::Syntax);
    }

    #[test]
    fn reserved_context_key_is_refused() {
        let e = err(r#"{"principal":{"id":"a"},"action":{"name":"x"},"context":{"facts":{}}}"#);
        assert_eq!(e.path(), "context.facts");
    }

    #[test]
    fn trace_id_must_be_w3c() {
        let e = err(r#"{"trace_id":"xyz","principal":{"id":"a"},"action":{"name":"x"}}"#);
        assert_eq!(e.path(), "trace_id");
        let zeros = format!(
            r#"{{"trace_id":"{}","principal":{{"id":"a"}},"action":{{"name":"x"}}}}"#,
            "0".repeat(32)
        );
        assert_eq!(err(&zeros).path(), "trace_id");
    }

    #[test]
    fn round_trips_through_json() {
        let text = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","time":"2026-11-21T14:05:00Z",
            "principal":{"id":"a","type":"agent","roles":["r"],"delegation":["d"],
              "credential":{"issuer":"i","expires_at":"2026-11-21T14:10:00Z"},
              "attestation":{"status":"verified","kind":"tpm","verified_at":"2026-11-21T14:00:00Z"}},
            "action":{"name":"x"},"resource":{"type":"shipment","id":"S1","attributes":{"v":1}},
            "context":{"site":"dc-1"},"anomaly":{"score":0.5},"intent":"abc"}"#;
        let r = Request::from_json(text).unwrap();
        let again = Request::from_value(&r.to_json()).unwrap();
        assert_eq!(r, again);
    }

    #[test]
    fn validate_checks_rust_built_requests() {
        let mut r = Request::new("a", "x");
        assert!(r.validate().is_ok());
        r.anomaly = Some(Anomaly {
            score: Some(f64::NAN),
            features: None,
        });
        assert_eq!(r.validate().unwrap_err().path(), "anomaly.score");
        let mut r = Request::new("", "x");
        assert_eq!(r.validate().unwrap_err().path(), "principal.id");
        r.principal.id = "a".into();
        let mut deep = Value::from(1);
        for _ in 0..70 {
            deep = Value::Array(vec![deep]);
        }
        r.context.insert("d".into(), deep);
        assert_eq!(r.validate().unwrap_err().kind(), RequestErrorKind::TooDeep);
    }

    #[test]
    fn timestamp_display_is_rfc3339_utc() {
        for (input, shown) in [
            ("2026-11-21T14:05:00Z", "2026-11-21T14:05:00Z"),
            ("2026-11-21T14:05:00.5+01:00", "2026-11-21T13:05:00.5Z"),
            ("2026-11-21T14:05:00.000120Z", "2026-11-21T14:05:00.00012Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ] {
            let t = Timestamp::parse(input).unwrap();
            assert_eq!(t.to_string(), shown);
            assert_eq!(Timestamp::parse(shown), Ok(t));
        }
    }

    #[test]
    fn timestamp_millis_string() {
        let t = Timestamp::parse("2026-11-21T14:05:00.123456Z").unwrap();
        assert_eq!(t.to_millis_string(), "2026-11-21T14:05:00.123Z");
        let t = Timestamp::parse("2026-11-21T14:05:00+02:00").unwrap();
        assert_eq!(t.to_millis_string(), "2026-11-21T12:05:00Z");
        assert_eq!(t.hour_utc(), 12);
    }
}
