//! W3C Trace Context: the `traceparent` a request may carry.
//!
//! `version-traceid-parentid-flags`, lowercase hex: version `00` is exactly
//! 55 characters; a later version (not `ff`) may append fields after a `-`,
//! which are ignored, as the specification asks. The trace id (32 digits)
//! and parent id (16 digits) may not be all zeros.
//!
//! Precedence: the request's `trace_id`, when present, is the decision's
//! trace id; otherwise the `traceparent`'s. When both are present and name
//! different traces the request is refused (an error at `traceparent`)
//! rather than one silently winning.

use crate::error::{RequestError, RequestErrorKind};
use crate::request::Request;

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The trace id of a valid `traceparent`.
pub(crate) fn parse(value: &str) -> Result<&str, String> {
    let bad = |why: &str| Err(format!("`{value}` is not a W3C traceparent: {why}"));
    let (Some(version), Some(trace), Some(parent), Some(flags)) = (
        value.get(0..2),
        value.get(3..35),
        value.get(36..52),
        value.get(53..55),
    ) else {
        return bad("expected `00-<32 hex digits>-<16 hex digits>-<2 hex digits>`");
    };
    let dashes = [2, 35, 52]
        .iter()
        .all(|&i| value.as_bytes().get(i) == Some(&b'-'));
    if !dashes || ![version, trace, parent, flags].iter().all(|p| is_hex(p)) {
        return bad("expected `00-<32 hex digits>-<16 hex digits>-<2 hex digits>` in lowercase");
    }
    if version == "ff" {
        return bad("version `ff` is invalid");
    }
    if version == "00" && value.len() != 55 {
        return bad("version 00 has exactly four fields");
    }
    if value.len() > 55 && value.as_bytes().get(55) != Some(&b'-') {
        return bad("fields after the flags must follow a `-`");
    }
    if trace.bytes().all(|b| b == b'0') {
        return bad("the trace id is all zeros");
    }
    if parent.bytes().all(|b| b == b'0') {
        return bad("the parent id is all zeros");
    }
    Ok(trace)
}

/// Checks a request's `traceparent` against the spec and its `trace_id`.
pub(crate) fn check(traceparent: Option<&str>, trace_id: Option<&str>) -> Result<(), RequestError> {
    let Some(tp) = traceparent else {
        return Ok(());
    };
    let error = |m: String| RequestError::new(RequestErrorKind::Value, "traceparent", m);
    let trace = parse(tp).map_err(error)?;
    if let Some(id) = trace_id
        && id != trace
    {
        return Err(error(format!(
            "its trace id `{trace}` differs from the request's `trace_id` `{id}`"
        )));
    }
    Ok(())
}

impl Request {
    /// The trace id the decision takes: `trace_id`, else the trace id of
    /// `traceparent`, else none (the engine makes a new one).
    pub fn effective_trace_id(&self) -> Option<&str> {
        self.trace_id
            .as_deref()
            .or_else(|| self.traceparent.as_deref().and_then(|t| parse(t).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_traceparents_give_their_trace_id() {
        assert_eq!(parse(TP).unwrap(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let future = format!("cc{}-what-ever", &TP[2..]);
        assert!(parse(&future).is_ok());
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trace_id_takes_precedence_and_must_agree() {
        let r = Request::from_json(&format!(
            r#"{{"traceparent":"{TP}","principal":{{"id":"a"}},"action":{{"name":"x"}}}}"#
        ))
        .unwrap();
        assert_eq!(
            r.effective_trace_id(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let e = Request::from_json(&format!(
            r#"{{"trace_id":"0af7651916cd43dd8448eb211c80319c","traceparent":"{TP}","principal":{{"id":"a"}},"action":{{"name":"x"}}}}"#
        ))
        .unwrap_err();
        assert_eq!(e.path(), "traceparent");
        assert!(e.message().contains("differs"), "{e}");
        let e = Request::from_json(
            r#"{"traceparent":"nope","principal":{"id":"a"},"action":{"name":"x"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.path(), "traceparent");
    }
}
