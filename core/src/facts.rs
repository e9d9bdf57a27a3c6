//! Facts the engine derives from a request before policies run, so that
//! policies need not recompute them (and cannot get them wrong).

use crate::intent::IntentFact;
use crate::request::{Request, Timestamp};

/// The risk class given to actions missing from the bundle's risk table.
pub const UNKNOWN_RISK_CLASS: &str = "unknown";

/// Derived facts, seen by Rego as `input.facts` and by Cedar as `context.facts`.
#[derive(Debug, Clone)]
pub(crate) struct Facts<'a> {
    /// The evaluation time: the request's `time`, else now.
    pub time: Timestamp,
    /// The action's risk class from the bundle, or [`UNKNOWN_RISK_CLASS`].
    pub risk_class: &'a str,
    /// Nanoseconds until the credential expires (negative once expired).
    pub credential_ttl_nanos: Option<i128>,
    /// Nanoseconds since the attestation was verified.
    pub attestation_age_nanos: Option<i128>,
    /// The anomaly score.
    pub anomaly_score: Option<f64>,
    /// The result of verifying the request's intent (set by the engine).
    pub intent: IntentFact,
}

impl<'a> Facts<'a> {
    pub(crate) fn derive(request: &Request, risk_class: Option<&'a str>) -> Facts<'a> {
        let time = request.time.unwrap_or_else(Timestamp::now);
        let t = time.unix_nanos();
        let p = &request.principal;
        Facts {
            time,
            risk_class: risk_class.unwrap_or(UNKNOWN_RISK_CLASS),
            credential_ttl_nanos: p
                .credential
                .as_ref()
                .and_then(|c| c.expires_at)
                .map(|e| e.unix_nanos() - t),
            attestation_age_nanos: p
                .attestation
                .as_ref()
                .and_then(|a| a.verified_at)
                .map(|v| t - v.unix_nanos()),
            anomaly_score: request.anomaly.as_ref().and_then(|a| a.score),
            intent: IntentFact::Absent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_ttl_and_age_relative_to_request_time() {
        let r = Request::from_json(
            r#"{"time":"2026-11-21T14:05:00Z","principal":{"id":"a",
              "credential":{"expires_at":"2026-11-21T14:10:00Z"},
              "attestation":{"status":"verified","verified_at":"2026-11-21T14:00:00.5Z"}},
              "action":{"name":"x"},"anomaly":{"score":0.25}}"#,
        )
        .unwrap();
        let f = Facts::derive(&r, Some("advisory"));
        assert_eq!(f.credential_ttl_nanos, Some(300_000_000_000));
        assert_eq!(f.attestation_age_nanos, Some(299_500_000_000));
        assert_eq!(f.risk_class, "advisory");
        assert_eq!(f.anomaly_score, Some(0.25));
        assert_eq!(Facts::derive(&r, None).risk_class, UNKNOWN_RISK_CLASS);
    }
}
