//! The step between the engines' findings and the outcome: waivers take
//! the reasons they cover out, an approval settles the escalations it
//! covers, quotas count what is about to execute, and every one-time use
//! and counter goes through the engine's state store.

use super::config::{Controls, QUOTA_AMOUNT_SCALE, Quota, QuotaMeasure, QuotaScope};
use super::token::{self, ApprovalCheck, ApprovalError};
use crate::decision::{
    ApprovableReason, ApprovalRequest, ApprovalStatus, ApprovalUse, Effect, Outcome, Reason, Source,
};
use crate::facts::Facts;
use crate::intent::{IntentCheck, IntentFact};
use crate::request::{Request, Timestamp};
use crate::state::{Added, StateError, StateStore, key3};

const NANOS: i128 = 1_000_000_000;

/// Policy id of the reason given when the state store cannot answer.
pub const STATE_FAILURE_POLICY: &str = "state.unavailable";

/// What the settle step adds to a decision.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    pub(crate) approval_request: Option<ApprovalRequest>,
    pub(crate) approval: Option<ApprovalUse>,
    /// Reasons every outcome lists: the waivers that applied.
    pub(crate) notes: Vec<Reason>,
}

/// The engines' findings, as the settle step reworks them.
pub(crate) struct Findings<'r> {
    /// Reject and escalate reasons of policies (waivable, approvable).
    pub(crate) reasons: Vec<Reason>,
    /// Evaluation failures: never waived, never approved.
    pub(crate) failures: Vec<Reason>,
    /// Permit reasons.
    pub(crate) permits: Vec<Reason>,
    /// Whether some policy permits.
    pub(crate) permitted: bool,
    pub(crate) request: &'r Request,
}

fn agentriage(policy: impl Into<String>, effect: Effect, message: String) -> Reason {
    Reason {
        engine: Source::Agentriage,
        policy: policy.into(),
        message,
        effect,
    }
}

fn refused(e: &ApprovalError) -> Reason {
    agentriage(
        format!("approval.{}", e.check()),
        Effect::Reject,
        e.to_string(),
    )
}

/// The outcome the reasons give (the bundle's defaults aside).
fn tentative(reasons: &[Reason], failures: &[Reason], permitted: bool) -> Option<Outcome> {
    if reasons
        .iter()
        .chain(failures)
        .any(|r| r.effect == Effect::Reject)
    {
        Some(Outcome::Reject)
    } else if !reasons.is_empty() || !failures.is_empty() {
        Some(Outcome::Escalate)
    } else if permitted {
        Some(Outcome::Execute)
    } else {
        None
    }
}

/// One quota's counter for this request.
struct Count<'q> {
    quota: &'q Quota,
    key: String,
    amount: i64,
    limit: i64,
    expires: i128,
}

fn counts<'q>(
    controls: &'q Controls,
    request: &Request,
    facts: &Facts<'_>,
) -> (Vec<Count<'q>>, Vec<Reason>) {
    let t = facts.time.unix_nanos();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for q in &controls.quotas {
        if !q.applies(&request.action.name, facts.risk_class) {
            continue;
        }
        let window = i128::from(q.window_s) * NANOS;
        let bucket = t.div_euclid(window);
        let subject = match q.per {
            QuotaScope::Principal => request.principal.id.as_str(),
            QuotaScope::Global => "*",
        };
        let (amount, limit) = match &q.measure {
            QuotaMeasure::Count(n) => (1, *n),
            QuotaMeasure::Sum { attribute, limit } => {
                let value = request
                    .resource
                    .as_ref()
                    .and_then(|r| r.attributes.get(attribute));
                match value.and_then(serde_json::Value::as_f64) {
                    Some(v) if v.is_finite() && v >= 0.0 && v * QUOTA_AMOUNT_SCALE < 9.0e18 => {
                        #[allow(clippy::cast_possible_truncation, reason = "range checked above")]
                        let scaled = (v * QUOTA_AMOUNT_SCALE).ceil() as i64;
                        (scaled, *limit)
                    }
                    _ => {
                        problems.push(agentriage(
                            q.id.clone(),
                            q.effect,
                            format!(
                                "quota `{}` sums `resource.attributes.{attribute}`, which is {}; \
                                 the action cannot be counted",
                                q.id,
                                value.map_or_else(
                                    || "absent".to_owned(),
                                    |v| format!("`{v}`, not a number of at least 0")
                                )
                            ),
                        ));
                        continue;
                    }
                }
            }
        };
        out.push(Count {
            quota: q,
            key: key3("quota", &q.id, &format!("{subject}:{bucket}")),
            amount,
            limit,
            // Kept a minute past the window's end, for clocks that disagree.
            expires: (bucket + 1) * window + 60 * NANOS,
        });
    }
    (out, problems)
}

fn exceeded(c: &Count<'_>, total: i64) -> Reason {
    let q = c.quota;
    let window = format!("{} s", q.window_s);
    let message = match &q.measure {
        QuotaMeasure::Count(n) => format!(
            "quota `{}`: {total} of {n} actions executed in this window of {window}; one more exceeds it",
            q.id
        ),
        QuotaMeasure::Sum { attribute, .. } => {
            #[allow(clippy::cast_precision_loss, reason = "for the message only")]
            let (total, amount, limit) = (
                total as f64 / QUOTA_AMOUNT_SCALE,
                c.amount as f64 / QUOTA_AMOUNT_SCALE,
                c.limit as f64 / QUOTA_AMOUNT_SCALE,
            );
            format!(
                "quota `{}`: {attribute} {total} executed in this window of {window}; {amount} more exceeds the limit of {limit}",
                q.id
            )
        }
    };
    agentriage(q.id.clone(), q.effect, message)
}

fn state_failure(op: &str, e: &StateError, on_error: Effect) -> Reason {
    agentriage(
        STATE_FAILURE_POLICY,
        on_error,
        format!("the state store could not {op}: {e}"),
    )
}

/// Settles the findings: waivers, approval, quotas. Returns the reasons
/// (rejects and escalations, failures included), the permits, whether
/// some policy permits, and what the decision records (the waivers that
/// applied among it, listed whatever the outcome).
#[allow(
    clippy::too_many_lines,
    reason = "one pass, in the order the contract states"
)]
pub(crate) fn settle(
    controls: &Controls,
    state: &dyn StateStore,
    findings: Findings<'_>,
    facts: &Facts<'_>,
    on_error: Effect,
) -> (Vec<Reason>, Vec<Reason>, bool, Settled) {
    let Findings {
        mut reasons,
        mut failures,
        mut permits,
        permitted,
        request,
    } = findings;
    let now = facts.time.unix_nanos();
    let mut settled = Settled::default();

    // A replay check the store could not answer fails closed whatever the
    // policies make of the intent.
    if let IntentFact::Invalid(e) = &facts.intent
        && e.check() == IntentCheck::ReplayStore
    {
        failures.push(agentriage(
            STATE_FAILURE_POLICY,
            on_error,
            format!(
                "the state store could not record the intent's jti: {}",
                e.message()
            ),
        ));
    }

    // 1. Waivers: an active waiver takes the reasons it covers out, and is
    //    named in the decision.
    let resource = request
        .resource
        .as_ref()
        .map(|r| (r.kind.as_str(), r.id.as_deref()));
    let mut notes = Vec::new();
    reasons.retain(|r| {
        let waiver = controls.waivers.waivers.iter().find(|w| {
            w.covers(&r.policy, &request.principal.id, &request.action.name, resource, now)
        });
        match waiver {
            Some(w) => {
                notes.push(agentriage(
                    format!("waiver.{}", w.id),
                    Effect::Permit,
                    format!(
                        "waiver `{}` waives `{}` ({}: {}); owner {}, risk acceptance {}, expires {}",
                        w.id, r.policy, r.effect.as_str(), r.message, w.owner, w.risk_acceptance, w.expires
                    ),
                ));
                false
            }
            None => true,
        }
    });
    notes.dedup();

    // 2. Quotas, read before the approval so that an approval may cover a
    //    quota's escalation; counted for real only when the action executes.
    let (counts, problems) = counts(controls, request, facts);
    reasons.extend(problems);
    for c in &counts {
        match state.counter(&c.key, now) {
            Ok(total) if total.saturating_add(c.amount) > c.limit => {
                reasons.push(exceeded(c, total))
            }
            Ok(_) => {}
            Err(e) => failures.push(state_failure("read a quota counter", &e, on_error)),
        }
    }

    // 3. The approval.
    let mut approved: Vec<String> = Vec::new();
    let mut verified = None;
    if let Some(token_text) = &request.approval {
        let result = match &controls.approvals {
            None => Err(ApprovalError::new(
                ApprovalCheck::Unconfigured,
                "the request carries an approval, but the bundle accepts none (no `[approvals]` table)",
            )),
            Some(config) => {
                let digest = super::action_digest(request, &config.context_fields);
                token::verify(config, token_text, &digest, facts.time).and_then(|v| {
                    let roles = config.approver_roles(&v.claims.iss).ok_or_else(|| {
                        ApprovalError::new(
                            ApprovalCheck::UnknownApprover,
                            format!("`{}` is not an approver of this bundle", v.claims.iss),
                        )
                    })?;
                    for r in reasons.iter().filter(|r| r.effect == Effect::Escalate) {
                        if !v.claims.reasons.contains(&r.policy) {
                            return Err(ApprovalError::new(
                                ApprovalCheck::Reasons,
                                format!("the decision escalates for `{}`, which the approval does not name", r.policy),
                            ));
                        }
                        let allowed = config.roles_for(&r.policy, facts.risk_class);
                        if !allowed.iter().any(|a| roles.contains(a)) {
                            return Err(ApprovalError::new(
                                ApprovalCheck::Role,
                                format!(
                                    "`{}` holds none of the roles that may approve `{}` ({})",
                                    v.claims.iss,
                                    r.policy,
                                    if allowed.is_empty() { "none may".to_owned() } else { allowed.join(", ") }
                                ),
                            ));
                        }
                    }
                    Ok(v)
                })
            }
        };
        match result {
            Ok(v) => {
                reasons.retain(|r| {
                    if r.effect == Effect::Escalate {
                        approved.push(r.policy.clone());
                        false
                    } else {
                        true
                    }
                });
                approved.sort();
                approved.dedup();
                settled.approval = Some(ApprovalUse {
                    status: ApprovalStatus::Unused,
                    approver: Some(v.claims.iss.clone()),
                    jti: Some(v.claims.jti.clone()),
                    settled: approved.clone(),
                    refused: None,
                });
                verified = Some(v);
            }
            Err(e) => {
                reasons.push(refused(&e));
                settled.approval = Some(ApprovalUse {
                    status: ApprovalStatus::Refused,
                    approver: None,
                    jti: None,
                    settled: Vec::new(),
                    refused: Some(e.check().as_str().to_owned()),
                });
            }
        }
    }

    // 4. About to execute: count it against every quota (atomically, within
    //    the limit unless an approval settled that quota), then use up the
    //    approval. Anything refused undoes the counts taken.
    if tentative(&reasons, &failures, permitted) == Some(Outcome::Execute) {
        let mut taken: Vec<&Count<'_>> = Vec::new();
        let mut blocked = None;
        for c in &counts {
            let limit = if approved.contains(&c.quota.id) {
                i64::MAX
            } else {
                c.limit
            };
            match state.add_within(&c.key, c.amount, limit, c.expires, now) {
                Ok(Added::Added(_)) => taken.push(c),
                Ok(Added::Exceeded(total)) => {
                    blocked = Some(exceeded(c, total));
                    break;
                }
                Err(e) => {
                    blocked = Some(state_failure(
                        "count the action against a quota",
                        &e,
                        on_error,
                    ));
                    break;
                }
            }
        }
        if blocked.is_none()
            && let (Some(v), Some(config)) = (&verified, &controls.approvals)
        {
            let skew = i128::from(config.clock_skew_s) * NANOS;
            let key = key3("approval", &v.claims.iss, &v.claims.jti);
            match state.insert_once(&key, i128::from(v.claims.exp) * NANOS + skew, now) {
                Ok(true) => {}
                Ok(false) => {
                    blocked = Some(refused(&ApprovalError::new(
                        ApprovalCheck::Reused,
                        format!(
                            "approval `{}` of `{}` was already used",
                            v.claims.jti, v.claims.iss
                        ),
                    )));
                }
                Err(e) => {
                    blocked = Some(refused(&ApprovalError::new(
                        ApprovalCheck::Store,
                        format!("the state store could not record the approval's use: {e}"),
                    )));
                }
            }
            if blocked.is_none()
                && let Some((max, window_s)) = config.cap
            {
                let window = i128::from(window_s) * NANOS;
                let bucket = now.div_euclid(window);
                let key = key3("approvals", &request.principal.id, &bucket.to_string());
                match state.add_within(
                    &key,
                    1,
                    i64::from(max),
                    (bucket + 1) * window + 60 * NANOS,
                    now,
                ) {
                    Ok(Added::Added(_)) => {}
                    Ok(Added::Exceeded(_)) => {
                        blocked = Some(refused(&ApprovalError::new(
                            ApprovalCheck::Cap,
                            format!(
                                "`{}` used {max} approvals in this window of {window_s} s, the most the bundle allows",
                                request.principal.id
                            ),
                        )));
                    }
                    Err(e) => {
                        blocked = Some(refused(&ApprovalError::new(
                            ApprovalCheck::Store,
                            format!("the state store could not count the approval: {e}"),
                        )));
                    }
                }
            }
        }
        match blocked {
            None => {
                if let Some(u) = &mut settled.approval {
                    u.status = ApprovalStatus::Used;
                    if let Some(v) = &verified {
                        permits.push(agentriage(
                            "approval",
                            Effect::Permit,
                            format!(
                                "approved by `{}` (approval `{}`) for {}",
                                v.claims.iss,
                                v.claims.jti,
                                approved
                                    .iter()
                                    .map(|a| format!("`{a}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
            Some(reason) => {
                for c in taken {
                    if let Err(e) = state.subtract(&c.key, c.amount, now) {
                        failures.push(state_failure("undo a quota count", &e, on_error));
                    }
                }
                if let Some(u) = &mut settled.approval
                    && reason.policy.starts_with("approval.")
                {
                    u.status = ApprovalStatus::Refused;
                    u.refused = reason.policy.strip_prefix("approval.").map(str::to_owned);
                }
                if reason.policy == STATE_FAILURE_POLICY {
                    failures.push(reason);
                } else {
                    reasons.push(reason);
                }
            }
        }
    }

    // 5. An escalation an approval could settle carries the request for it.
    if let Some(config) = &controls.approvals
        && tentative(&reasons, &failures, permitted) == Some(Outcome::Escalate)
        && failures.is_empty()
    {
        let mut approvable = Vec::new();
        let mut all = true;
        for r in &reasons {
            let roles = config.roles_for(&r.policy, facts.risk_class);
            if roles.is_empty() {
                all = false;
            }
            approvable.push(ApprovableReason {
                policy: r.policy.clone(),
                roles,
            });
        }
        approvable.sort_by(|a, b| a.policy.cmp(&b.policy));
        approvable.dedup();
        let ttl = i128::from(config.request_ttl_s) * NANOS;
        if all && let Some(expires) = Timestamp::from_unix_nanos(now.saturating_add(ttl)) {
            settled.approval_request = Some(ApprovalRequest {
                action_digest: super::action_digest(request, &config.context_fields),
                reasons: approvable,
                audience: config.audience.clone(),
                expires_at: expires.rfc3339(),
            });
        }
    }

    reasons.extend(failures);
    settled.notes = notes;
    (reasons, permits, permitted, settled)
}
