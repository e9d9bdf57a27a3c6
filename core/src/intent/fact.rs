//! The intent fact policies see: `facts.intent` in Rego's `input` and in
//! Cedar's `context`.
//!
//! ```text
//! {"status": "absent"}
//! {"status": "verified", "iss": …, "kid": …, "alg": …, "jti": …, "purpose": …,
//!  "scope": [...], "iat": …, "exp": …}
//! {"status": "invalid", "error": "<check>", "message": "…"}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy_core::ast::Value as CedarValue;
use regorus::Value;

use super::error::{IntentCheck, IntentError};
use super::verify::VerifiedIntent;

/// The result of intent verification for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum IntentFact {
    /// The request carries no intent.
    Absent,
    /// The intent passed every check.
    Verified(Box<VerifiedIntent>),
    /// The intent failed a check.
    Invalid(IntentError),
}

impl IntentFact {
    /// `absent`, `verified` or `invalid`.
    pub fn status(&self) -> &'static str {
        match self {
            IntentFact::Absent => "absent",
            IntentFact::Verified(_) => "verified",
            IntentFact::Invalid(_) => "invalid",
        }
    }

    /// The failed check, for an invalid intent.
    pub fn error(&self) -> Option<IntentCheck> {
        match self {
            IntentFact::Invalid(e) => Some(e.check()),
            _ => None,
        }
    }

    /// The fact as JSON (what Rego sees as `input.facts.intent`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        o.insert("status".into(), self.status().into());
        match self {
            IntentFact::Absent => {}
            IntentFact::Invalid(e) => {
                o.insert("error".into(), e.check().as_str().into());
                o.insert("message".into(), e.message().into());
            }
            IntentFact::Verified(v) => {
                let c = &v.claims;
                o.insert("iss".into(), c.iss.clone().into());
                o.insert("kid".into(), v.kid.clone().into());
                o.insert("alg".into(), v.alg.as_str().into());
                o.insert("jti".into(), c.jti.clone().into());
                o.insert("purpose".into(), c.purpose.clone().into());
                o.insert("scope".into(), c.scope.clone().into());
                o.insert("iat".into(), c.iat.into());
                o.insert("exp".into(), c.exp.into());
            }
        }
        serde_json::Value::Object(o)
    }

    pub(crate) fn to_rego(&self) -> Value {
        fn s(text: &str) -> Value {
            Value::from(text)
        }
        if let IntentFact::Absent = self {
            static ABSENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
            return ABSENT
                .get_or_init(|| Value::from(BTreeMap::from([(s("status"), s("absent"))])))
                .clone();
        }
        let mut o = BTreeMap::new();
        o.insert(s("status"), s(self.status()));
        match self {
            IntentFact::Absent => {}
            IntentFact::Invalid(e) => {
                o.insert(s("error"), s(e.check().as_str()));
                o.insert(s("message"), s(e.message()));
            }
            IntentFact::Verified(v) => {
                let c = &v.claims;
                o.insert(s("iss"), s(&c.iss));
                o.insert(s("kid"), s(&v.kid));
                o.insert(s("alg"), s(v.alg.as_str()));
                o.insert(s("jti"), s(&c.jti));
                o.insert(s("purpose"), s(&c.purpose));
                let scope: BTreeSet<Value> = c.scope.iter().map(|x| s(x)).collect();
                o.insert(s("scope"), Value::from(scope));
                o.insert(s("iat"), Value::from(c.iat));
                o.insert(s("exp"), Value::from(c.exp));
            }
        }
        Value::from(o)
    }

    /// The fact as the Cedar record `context.facts.intent`.
    pub(crate) fn to_cedar(&self) -> CedarValue {
        let s = CedarValue::from;
        let mut fields = vec![("status", s(self.status()))];
        match self {
            IntentFact::Absent => {}
            IntentFact::Invalid(e) => {
                fields.push(("error", s(e.check().as_str())));
                fields.push(("message", s(e.message())));
            }
            IntentFact::Verified(v) => {
                let c = &v.claims;
                fields.push(("iss", s(&c.iss)));
                fields.push(("kid", s(&v.kid)));
                fields.push(("alg", s(v.alg.as_str())));
                fields.push(("jti", s(&c.jti)));
                fields.push(("purpose", s(&c.purpose)));
                fields.push(("scope", CedarValue::set(c.scope.iter().map(|x| s(x)), None)));
                fields.push(("iat", CedarValue::from(c.iat)));
                fields.push(("exp", CedarValue::from(c.exp)));
            }
        }
        CedarValue::record(fields, None)
    }
}
