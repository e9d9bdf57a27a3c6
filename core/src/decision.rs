//! The answer: an outcome and everything needed to explain and audit it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the agent may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action may run automatically.
    Execute,
    /// A human must decide.
    Escalate,
    /// The action is blocked.
    Reject,
}

impl Outcome {
    /// `execute`, `escalate` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Execute => "execute",
            Outcome::Escalate => "escalate",
            Outcome::Reject => "reject",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "execute" => Ok(Outcome::Execute),
            "escalate" => Ok(Outcome::Escalate),
            "reject" => Ok(Outcome::Reject),
            other => Err(format!(
                "`{other}` is not an outcome; expected execute, escalate or reject"
            )),
        }
    }
}

/// Which part of the engine produced a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A Rego module.
    Rego,
    /// A Cedar policy.
    Cedar,
    /// The engine itself (a bundle default, a failure).
    Agentriage,
}

impl Source {
    /// `rego`, `cedar` or `agentriage`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rego => "rego",
            Source::Cedar => "cedar",
            Source::Agentriage => "agentriage",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reason asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Block the action.
    Reject,
    /// Hand the action to a human.
    Escalate,
    /// Allow the action (reported only when the outcome is `execute`).
    Permit,
}

impl Effect {
    /// `reject`, `escalate` or `permit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Reject => "reject",
            Effect::Escalate => "escalate",
            Effect::Permit => "permit",
        }
    }
}

/// Why: one policy (or engine rule) that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Which engine produced it.
    pub engine: Source,
    /// The policy or rule id, e.g. `R7.quarantined_site`.
    pub policy: String,
    /// A message for the operator.
    pub message: String,
    /// What it asks for.
    pub effect: Effect,
}

/// Something the host must do along with the outcome (notify, log, redact, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Obligation {
    /// What to do, e.g. `notify-security`.
    pub id: String,
    /// Which engine produced it.
    pub engine: Source,
    /// The policy or rule that produced it.
    pub policy: String,
    /// Further parameters given by the policy.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
}

/// Which bundle decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleInfo {
    /// The bundle's name from its manifest.
    pub name: String,
    /// The bundle's revision from its manifest.
    pub revision: String,
    /// `sha256:` digest over the bundle's files.
    pub digest: String,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What the agent may do.
    pub outcome: Outcome,
    /// Every reason that fired, ordered by [`Reason::effect`]: all rejects
    /// first, then the escalations (each group by policy id); for
    /// `execute`, the permits. In a `reject` decision the reject reasons
    /// decided it, and the escalations after them, marked
    /// [`Effect::Escalate`], are what would otherwise have gone to a human.
    pub reasons: Vec<Reason>,
    /// What the host must do along with the outcome.
    pub obligations: Vec<Obligation>,
    /// The request's trace id, or a new one.
    pub trace_id: String,
    /// A new, time-ordered id for this decision (UUID v7).
    pub decision_id: String,
    /// Which bundle decided.
    pub bundle: Arc<BundleInfo>,
    /// Time spent deciding, in microseconds.
    pub duration_us: u64,
    /// For an `escalate` an approval can settle: what the approver needs
    /// (the action's digest, the reasons and who may approve them, the
    /// expiry of this request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request: Option<ApprovalRequest>,
    /// The approval the request carried, and what became of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalUse>,
}

impl Decision {
    /// The decision as one line of JSON, as the public contract shows it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"outcome":"reject","error":"decision not serializable: {e}"}}"#)
        })
    }

    /// Whether the action may run automatically.
    pub fn is_execute(&self) -> bool {
        self.outcome == Outcome::Execute
    }

    /// The policy ids of all reasons, in order.
    pub fn policy_ids(&self) -> impl Iterator<Item = &str> {
        self.reasons.iter().map(|r| r.policy.as_str())
    }
}

// What the approval step (`crate::approval`) records in a decision.

/// One escalation reason an approver may approve, and the roles that may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovableReason {
    /// The rule id.
    pub policy: String,
    /// The roles, any of which may approve it.
    pub roles: Vec<String>,
}

/// What an approver needs to approve an escalated decision: carried by an
/// `escalate` decision when the bundle accepts approvals and every
/// escalation reason may be approved by some role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The digest an approval must name (`sha256:…`).
    pub action_digest: String,
    /// The escalation reasons an approval must name, with who may approve
    /// each (one approver must hold a role for every one).
    pub reasons: Vec<ApprovableReason>,
    /// The audience an approval must name.
    pub audience: String,
    /// When this request for approval expires (RFC 3339); an approval
    /// signed later is refused.
    pub expires_at: String,
}

/// What became of the approval a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// It settled the escalations it names and was used up.
    Used,
    /// It was refused: the decision is `reject`.
    Refused,
    /// It verified, but the decision did not execute (another reason
    /// rejects), so it was not used up.
    Unused,
}

/// The approval a request carried, as the decision records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalUse {
    /// What became of it.
    pub status: ApprovalStatus,
    /// The approver (`iss`), when the token could be read that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// Its one-time id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The escalations it settled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<String>,
    /// The failed check, when refused (`expired`, `reused`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_parses_and_prints() {
        for o in [Outcome::Execute, Outcome::Escalate, Outcome::Reject] {
            assert_eq!(o.as_str().parse::<Outcome>().unwrap(), o);
        }
        assert!("allow".parse::<Outcome>().unwrap_err().contains("`allow`"));
    }

    #[test]
    fn outcomes_order_by_severity() {
        assert!(Outcome::Reject > Outcome::Escalate);
        assert!(Outcome::Escalate > Outcome::Execute);
    }
}
