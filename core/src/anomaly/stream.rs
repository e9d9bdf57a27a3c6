//! Scoring a stream of JSON Lines events: the pre-filter that keeps ordinary
//! events away from human or LLM reviewers.

use std::io::BufRead;

use serde_json::{Map, Value};

use super::error::AnomalyError;
use super::forest::IsolationForest;

/// One scored event of a JSON Lines stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredEvent {
    /// The 1-based line of the event.
    pub line: u64,
    /// Its anomaly score in (0, 1], higher is more anomalous.
    pub score: f64,
    /// The event as read.
    pub event: Value,
}

/// What is wrong with an event of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventErrorKind {
    /// The line could not be read.
    Io,
    /// The line is not a JSON object.
    Syntax,
    /// A feature of the model is absent.
    Missing,
    /// A feature is not a number.
    Type,
    /// A feature is a number that cannot be scored (beyond `f32`).
    Value,
    /// A request's `anomaly.features` holds a feature the model does not know.
    Unknown,
}

impl EventErrorKind {
    /// A stable, machine-readable name (`io`, `syntax`, `missing`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventErrorKind::Io => "io",
            EventErrorKind::Syntax => "syntax",
            EventErrorKind::Missing => "missing",
            EventErrorKind::Type => "type",
            EventErrorKind::Value => "value",
            EventErrorKind::Unknown => "unknown_field",
        }
    }
}

/// An event that could not be scored: names the line and the feature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {message}", .path.as_deref().map(|p| format!(", `{p}`")).unwrap_or_default())]
pub struct EventError {
    /// What kind of problem this is.
    pub kind: EventErrorKind,
    /// The 1-based line.
    pub line: u64,
    /// The JSON path of the offending feature, when there is one.
    pub path: Option<String>,
    /// The problem.
    pub message: String,
}

/// Scores each line of a JSON Lines stream. Blank lines are skipped. An
/// event's features are its top-level fields named as the model's features
/// (other fields are carried along); a request of the decision contract is
/// scored from its `anomaly.features` instead, where every feature must be
/// one of the model's.
///
/// An error on one line does not end the stream: the iterator yields it and
/// goes on with the next line.
///
/// ```
/// use agentriage::anomaly::{IsolationForest, score_jsonl};
/// use ndarray::array;
///
/// let x = array![[1.0, 10.0], [1.1, 10.5], [0.9, 9.5], [1.0, 10.2], [50.0, -3.0]];
/// let model = IsolationForest::params()
///     .feature_names(vec!["bytes".into(), "calls".into()])
///     .seed(1)
///     .fit(x.view())?;
/// let input = "{\"id\":1,\"bytes\":1.0,\"calls\":10.1}\n{\"id\":2,\"bytes\":50.0,\"calls\":-3}\n";
/// let kept: Vec<u64> = score_jsonl(&model, input.as_bytes())
///     .filter_map(Result::ok)
///     .filter(|e| e.score >= 0.6)
///     .map(|e| e.line)
///     .collect();
/// assert_eq!(kept, [2]);
/// # Ok::<(), agentriage::anomaly::AnomalyError>(())
/// ```
pub fn score_jsonl<'m, R: BufRead + 'm>(
    model: &'m IsolationForest,
    reader: R,
) -> impl Iterator<Item = Result<ScoredEvent, EventError>> + 'm {
    let mut row = vec![0.0; model.features().len()];
    reader.lines().enumerate().filter_map(move |(i, line)| {
        let line_no = i as u64 + 1;
        let text = match line {
            Ok(t) => t,
            Err(e) => {
                return Some(Err(EventError {
                    kind: EventErrorKind::Io,
                    line: line_no,
                    path: None,
                    message: format!("cannot read: {e}"),
                }));
            }
        };
        if text.trim().is_empty() {
            return None;
        }
        Some(score_line(model, &text, line_no, &mut row))
    })
}

fn score_line(
    model: &IsolationForest,
    text: &str,
    line: u64,
    row: &mut [f64],
) -> Result<ScoredEvent, EventError> {
    let err = |kind, path: Option<String>, message: String| EventError {
        kind,
        line,
        path,
        message,
    };
    let event: Value = serde_json::from_str(text)
        .map_err(|e| err(EventErrorKind::Syntax, None, format!("not valid JSON: {e}")))?;
    let Value::Object(top) = &event else {
        return Err(err(
            EventErrorKind::Syntax,
            None,
            "an event must be a JSON object".into(),
        ));
    };
    let (fields, prefix) = match top.get("anomaly").and_then(|a| a.get("features")) {
        Some(Value::Object(f)) => {
            if let Some(k) = f.keys().find(|k| !model.features().contains(k)) {
                return Err(err(
                    EventErrorKind::Unknown,
                    Some(format!("anomaly.features.{k}")),
                    format!(
                        "unknown feature `{k}`; the model's features are {}",
                        model.features().join(", ")
                    ),
                ));
            }
            (f, "anomaly.features.")
        }
        Some(_) => {
            return Err(err(
                EventErrorKind::Type,
                Some("anomaly.features".into()),
                "expected an object".into(),
            ));
        }
        None => (top, ""),
    };
    fill_row(model, fields, prefix, row)
        .map_err(|(kind, path, message)| err(kind, Some(path), message))?;
    let score = model.score(row).map_err(|e| match e {
        AnomalyError::Value {
            feature, message, ..
        } => err(
            EventErrorKind::Value,
            Some(format!("{prefix}{feature}")),
            message,
        ),
        other => err(EventErrorKind::Value, None, other.to_string()),
    })?;
    Ok(ScoredEvent { line, score, event })
}

fn fill_row(
    model: &IsolationForest,
    fields: &Map<String, Value>,
    prefix: &str,
    row: &mut [f64],
) -> Result<(), (EventErrorKind, String, String)> {
    for (name, slot) in model.features().iter().zip(row.iter_mut()) {
        let path = || format!("{prefix}{name}");
        match fields.get(name) {
            None | Some(Value::Null) => {
                return Err((
                    EventErrorKind::Missing,
                    path(),
                    format!("missing feature `{name}`"),
                ));
            }
            Some(Value::Number(n)) => *slot = n.as_f64().unwrap_or(f64::NAN),
            Some(other) => {
                return Err((
                    EventErrorKind::Type,
                    path(),
                    format!(
                        "feature `{name}` must be a number, found {}",
                        type_name(other)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
