//! Human escalation that closes the loop: approvals bound to the action,
//! waivers with an owner and an expiry, quotas over windows.
//!
//! - An `escalate` decision carries an [`ApprovalRequest`]: the digest of
//!   the canonical action ([`action_digest`]), the escalation reasons, the
//!   roles that may approve each, and when the request expires.
//! - An approver answers with an approval ([`sign`]): a compact JWS
//!   (`typ` `approval+jwt`, EdDSA or ES256) naming the digest, the reasons
//!   it approves, an expiry and a one-time `jti`, signed with a key the
//!   bundle binds to that approver (`[approvals]`).
//! - The host decides again with the approval in the request's `approval`
//!   field. The escalations it names are settled if the approver holds a
//!   role for each; an approval for another action, expired, by someone
//!   without the role, short of a reason, or used before, makes the
//!   decision `reject` with `approval.<check>` ([`ApprovalCheck`]). It is
//!   used up (in the engine's [`StateStore`](crate::state::StateStore))
//!   only by a decision that executes.
//! - Waivers (`[waivers]`) take named, waivable rules out for named actions
//!   (and principals, resources) until they expire; every waived decision
//!   names the waiver.
//! - Quotas (`[[quotas]]`) count executed actions, or sum a resource
//!   attribute, per principal or globally over epoch-aligned windows, and
//!   escalate or reject what would exceed them.
//!
//! `docs/escalation.md` walks through the loop end to end.

mod config;
mod digest;
pub(crate) mod settle;
mod token;

pub use crate::decision::{ApprovableReason, ApprovalRequest, ApprovalStatus, ApprovalUse};
pub use config::{
    ApprovalConfig, Controls, DEFAULT_WAIVER_LIFETIME_DAYS, DEFAULT_WAIVER_WARNING_DAYS,
    MAX_APPROVAL_LIFETIME_S, QUOTA_AMOUNT_SCALE, Quota, QuotaMeasure, QuotaScope, Waiver,
    WaiverConfig,
};
pub(crate) use config::{
    ManifestApprovals, ManifestControls, ManifestQuota, ManifestWaivers, load,
};
pub use digest::{action_digest, canonical_action};
pub use settle::STATE_FAILURE_POLICY;
pub use token::{
    APPROVAL_TYP, ApprovalCheck, ApprovalClaims, ApprovalError, VerifiedApproval, sign,
};

/// Verifies an approval token against a bundle's approval configuration
/// for the action with digest `digest`, at `now`, without recording
/// anything: for tools that inspect approvals. Deciding checks roles,
/// reasons and one-time use too.
pub fn verify(
    config: &ApprovalConfig,
    token: &str,
    digest: &str,
    now: crate::Timestamp,
) -> Result<VerifiedApproval, ApprovalError> {
    token::verify(config, token, digest, now)
}
