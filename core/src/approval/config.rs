//! The bundle's `[approvals]`, `[waivers]` and `[[quotas]]` tables: who may
//! approve what, which rules are waived for whom until when, and how many
//! actions (or how much of an amount) a window allows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use toml::Spanned;

use crate::decision::Effect;
use crate::error::BundleError;
use crate::files::BundleFiles;
use crate::intent::TrustedKeys;

/// Longest lifetime (`exp - iat`) a bundle may allow an approval: 7 days.
pub const MAX_APPROVAL_LIFETIME_S: u64 = 7 * 86_400;

/// Longest a waiver may live when the bundle sets no `max_lifetime_days`.
pub const DEFAULT_WAIVER_LIFETIME_DAYS: u64 = 90;

/// Default horizon of `agentriage check`'s warning about waivers that
/// expire soon.
pub const DEFAULT_WAIVER_WARNING_DAYS: u64 = 14;

/// Amounts of a sum quota are counted in millionths (six decimals, the
/// amount rounded up), so counters stay exact integers in any store.
pub const QUOTA_AMOUNT_SCALE: f64 = 1_000_000.0;

const NANOS: i128 = 1_000_000_000;
const DAY_S: u64 = 86_400;

/// A rule id, a prefix ending in `.*` (`R9.*` matches `R9.value_threshold`),
/// or `*` (every rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RulePattern(String);

impl RulePattern {
    pub(crate) fn matches(&self, rule: &str) -> bool {
        if self.0 == "*" {
            return true;
        }
        match self.0.strip_suffix('*') {
            Some(prefix) => rule.starts_with(prefix) && rule.len() > prefix.len(),
            None => self.0 == rule,
        }
    }

    /// Exact ids before prefixes, longer prefixes before shorter.
    fn specificity(&self) -> (bool, usize) {
        (!self.0.ends_with('*'), self.0.len())
    }
}

/// How approvals are checked (`[approvals]`).
#[derive(Debug)]
pub struct ApprovalConfig {
    pub(crate) keys: Arc<TrustedKeys>,
    pub(crate) audience: String,
    pub(crate) context_fields: Vec<String>,
    pub(crate) request_ttl_s: u64,
    pub(crate) max_lifetime_s: u64,
    pub(crate) clock_skew_s: u64,
    pub(crate) approvers: HashMap<String, Vec<String>>,
    pub(crate) rules: Vec<(RulePattern, Vec<String>)>,
    pub(crate) risk_classes: HashMap<String, Vec<String>>,
    pub(crate) cap: Option<(u32, u64)>,
}

impl ApprovalConfig {
    /// The audience approvals must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The request context fields digested with the action.
    pub fn context_fields(&self) -> &[String] {
        &self.context_fields
    }

    /// The approvers' public keys.
    pub fn keys(&self) -> &TrustedKeys {
        &self.keys
    }

    /// How long after an escalation its request for approval expires, in
    /// seconds.
    pub fn request_ttl_s(&self) -> u64 {
        self.request_ttl_s
    }

    /// The roles that may approve an escalation by `rule` of an action in
    /// `risk_class`: those of the most specific `[approvals.rules]` entry
    /// matching the rule (an id, a prefix `R9.*`, or `*`), narrowed to the
    /// `[approvals.risk_classes]` entry of the class when there is one. No
    /// matching rule entry: none (the escalation cannot be approved).
    pub fn roles_for(&self, rule: &str, risk_class: &str) -> Vec<String> {
        let Some((_, roles)) = self
            .rules
            .iter()
            .filter(|(p, _)| p.matches(rule))
            .max_by_key(|(p, _)| p.specificity())
        else {
            return Vec::new();
        };
        match self.risk_classes.get(risk_class) {
            Some(class) => roles
                .iter()
                .filter(|r| class.contains(r))
                .cloned()
                .collect(),
            None => roles.clone(),
        }
    }

    /// The roles of approver `id`, if the bundle knows it.
    pub fn approver_roles(&self, id: &str) -> Option<&[String]> {
        self.approvers.get(id).map(Vec::as_slice)
    }
}

/// One waiver: named rules do not block the named principals, actions or
/// resources until the waiver expires.
#[derive(Debug, Clone)]
pub struct Waiver {
    /// Its id, e.g. `W-2026-014`.
    pub id: String,
    /// The rule ids it waives.
    pub rules: Vec<String>,
    /// Principals it covers (all when empty).
    pub principals: Vec<String>,
    /// Actions it covers (never empty).
    pub actions: Vec<String>,
    /// Resources it covers, `type:id` or `type:*` (all when empty).
    pub resources: Vec<String>,
    /// Who answers for it.
    pub owner: String,
    /// The risk-acceptance record it rests on.
    pub risk_acceptance: String,
    /// When it was granted (RFC 3339).
    pub granted: String,
    /// When it stops applying (RFC 3339).
    pub expires: String,
    pub(crate) expires_nanos: i128,
    /// The manifest line it starts on.
    pub line: Option<u32>,
}

impl Waiver {
    /// Whether the waiver applies to this rule of this request at `now`.
    pub(crate) fn covers(
        &self,
        rule: &str,
        principal: &str,
        action: &str,
        resource: Option<(&str, Option<&str>)>,
        now: i128,
    ) -> bool {
        now < self.expires_nanos
            && self.rules.iter().any(|r| r == rule)
            && self.actions.iter().any(|a| a == action)
            && (self.principals.is_empty() || self.principals.iter().any(|p| p == principal))
            && (self.resources.is_empty()
                || resource.is_some_and(|(kind, id)| {
                    self.resources.iter().any(|r| match r.split_once(':') {
                        Some((k, "*")) => k == kind,
                        Some((k, i)) => k == kind && Some(i) == id,
                        None => false,
                    })
                }))
    }

    /// Whether it expired at `now`.
    pub fn expired_at(&self, now_unix_nanos: i128) -> bool {
        now_unix_nanos >= self.expires_nanos
    }

    /// Nanoseconds since the Unix epoch at which it expires.
    pub fn expires_unix_nanos(&self) -> i128 {
        self.expires_nanos
    }
}

/// `[waivers]`: which rules may be waived, and the waivers.
#[derive(Debug, Default)]
pub struct WaiverConfig {
    pub(crate) waivable: Vec<RulePattern>,
    pub(crate) warning_days: u64,
    pub(crate) waivers: Vec<Waiver>,
}

impl WaiverConfig {
    /// The waivers, in manifest order.
    pub fn waivers(&self) -> &[Waiver] {
        &self.waivers
    }

    /// Whether `rule` may be waived (the bundle's `waivers.waivable`).
    pub fn is_waivable(&self, rule: &str) -> bool {
        self.waivable.iter().any(|p| p.matches(rule))
    }

    /// How many days ahead `agentriage check` warns of an expiry.
    pub fn warning_days(&self) -> u64 {
        self.warning_days
    }
}

/// What a quota counts.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaMeasure {
    /// Executed actions: at most this many per window.
    Count(i64),
    /// The sum of a resource attribute over executed actions: at most
    /// `limit` (in millionths, see [`QUOTA_AMOUNT_SCALE`]) per window.
    Sum {
        /// The resource attribute summed, e.g. `amount_usd`.
        attribute: String,
        /// The limit, in millionths.
        limit: i64,
    },
}

/// Whose actions share one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaScope {
    /// Each principal has its own counter.
    Principal,
    /// One counter for every principal.
    Global,
}

/// One quota (`[[quotas]]`).
#[derive(Debug, Clone)]
pub struct Quota {
    /// Its id, used as the reason's policy id.
    pub id: String,
    /// Actions it counts.
    pub actions: Vec<String>,
    /// Risk classes whose actions it counts.
    pub risk_classes: Vec<String>,
    /// Whose actions share a counter.
    pub per: QuotaScope,
    /// The window, in seconds (windows are aligned to the Unix epoch).
    pub window_s: u64,
    /// What it counts.
    pub measure: QuotaMeasure,
    /// What exceeding it gives: `Reject` or `Escalate`.
    pub effect: Effect,
}

impl Quota {
    pub(crate) fn applies(&self, action: &str, risk_class: &str) -> bool {
        self.actions.iter().any(|a| a == action)
            || self.risk_classes.iter().any(|c| c == risk_class)
    }
}

/// Everything of the bundle that settles escalations and counts actions.
#[derive(Debug, Default)]
pub struct Controls {
    pub(crate) approvals: Option<ApprovalConfig>,
    pub(crate) waivers: WaiverConfig,
    pub(crate) quotas: Vec<Quota>,
}

impl Controls {
    /// The approval configuration, if the bundle accepts approvals.
    pub fn approvals(&self) -> Option<&ApprovalConfig> {
        self.approvals.as_ref()
    }

    /// The waivers.
    pub fn waivers(&self) -> &WaiverConfig {
        &self.waivers
    }

    /// The quotas.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }
}

// ---- manifest -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestApprovals {
    keys: Spanned<String>,
    audience: Spanned<String>,
    #[serde(default)]
    context_fields: Vec<Spanned<String>>,
    #[serde(default)]
    request_ttl_s: Option<Spanned<u64>>,
    #[serde(default)]
    max_lifetime_s: Option<Spanned<u64>>,
    #[serde(default)]
    clock_skew_s: Option<Spanned<u64>>,
    #[serde(default)]
    max_per_principal: Option<Spanned<u32>>,
    #[serde(default)]
    window_s: Option<Spanned<u64>>,
    #[serde(default)]
    approvers: BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default)]
    rules: BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default)]
    risk_classes: BTreeMap<String, Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestWaivers {
    #[serde(default)]
    waivable: Vec<Spanned<String>>,
    #[serde(default)]
    max_lifetime_days: Option<Spanned<u64>>,
    #[serde(default)]
    expiry_warning_days: Option<Spanned<u64>>,
    #[serde(default)]
    waiver: Vec<Spanned<ManifestWaiver>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestWaiver {
    id: Spanned<String>,
    rules: Vec<Spanned<String>>,
    #[serde(default)]
    principals: Vec<String>,
    actions: Vec<Spanned<String>>,
    #[serde(default)]
    resources: Vec<Spanned<String>>,
    owner: Spanned<String>,
    risk_acceptance: Spanned<String>,
    granted: Spanned<String>,
    expires: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestQuota {
    id: Spanned<String>,
    #[serde(default)]
    actions: Vec<Spanned<String>>,
    #[serde(default)]
    risk_classes: Vec<Spanned<String>>,
    #[serde(default)]
    per: Option<Spanned<String>>,
    window_s: Spanned<u64>,
    #[serde(default)]
    count: Option<Spanned<i64>>,
    #[serde(default)]
    sum: Option<Spanned<String>>,
    #[serde(default)]
    limit: Option<Spanned<f64>>,
    effect: Spanned<String>,
}

/// What the manifest says about approvals, waivers and quotas.
#[derive(Debug, Default)]
pub(crate) struct ManifestControls<'a> {
    pub(crate) approvals: Option<&'a ManifestApprovals>,
    pub(crate) waivers: Option<&'a ManifestWaivers>,
    pub(crate) quotas: &'a [ManifestQuota],
}

fn nonempty(files: &BundleFiles, s: &Spanned<String>, what: &str) -> Result<String, BundleError> {
    let v = s.get_ref().trim();
    if v.is_empty() {
        return Err(files.manifest_error(s.span(), format!("`{what}` is empty")));
    }
    Ok(v.to_owned())
}

fn roles(
    files: &BundleFiles,
    list: &[Spanned<String>],
    what: &str,
) -> Result<Vec<String>, BundleError> {
    list.iter().map(|r| nonempty(files, r, what)).collect()
}

fn pattern(
    files: &BundleFiles,
    s: &Spanned<String>,
    what: &str,
) -> Result<RulePattern, BundleError> {
    let v = nonempty(files, s, what)?;
    if v == "*" {
        return Ok(RulePattern(v));
    }
    if let Some(prefix) = v.strip_suffix('*')
        && (prefix.is_empty() || !prefix.ends_with('.') || prefix.contains('*'))
    {
        return Err(files.manifest_error(
            s.span(),
            format!("`{v}` in `{what}`: a pattern is a rule id or a prefix ending in `.*`"),
        ));
    }
    if v.strip_suffix('*').unwrap_or(&v).contains('*') {
        return Err(files.manifest_error(
            s.span(),
            format!("`{v}` in `{what}`: `*` may only end a prefix (`R9.*`)"),
        ));
    }
    Ok(RulePattern(v))
}

fn rfc3339(files: &BundleFiles, s: &Spanned<String>, what: &str) -> Result<i128, BundleError> {
    OffsetDateTime::parse(s.get_ref(), &Rfc3339)
        .map(OffsetDateTime::unix_timestamp_nanos)
        .map_err(|_| {
            files.manifest_error(
                s.span(),
                format!(
                    "`{what}` is `{}`, not an RFC 3339 time such as `2026-12-31T00:00:00Z`",
                    s.get_ref()
                ),
            )
        })
}

fn limited(
    files: &BundleFiles,
    v: &Option<Spanned<u64>>,
    what: &str,
    default: u64,
    max: u64,
) -> Result<u64, BundleError> {
    match v {
        None => Ok(default),
        Some(s) if *s.get_ref() == 0 || *s.get_ref() > max => Err(files.manifest_error(
            s.span(),
            format!(
                "`{what}` is {}; it must be between 1 and {max}",
                s.get_ref()
            ),
        )),
        Some(s) => Ok(*s.get_ref()),
    }
}

pub(crate) fn load(files: &BundleFiles, m: &ManifestControls<'_>) -> Result<Controls, BundleError> {
    let approvals = m.approvals.map(|a| load_approvals(files, a)).transpose()?;
    let waivers = match m.waivers {
        Some(w) => load_waivers(files, w)?,
        None => WaiverConfig {
            warning_days: DEFAULT_WAIVER_WARNING_DAYS,
            ..WaiverConfig::default()
        },
    };
    let mut quotas = Vec::new();
    let mut ids = HashSet::new();
    for q in m.quotas {
        let quota = load_quota(files, q)?;
        if !ids.insert(quota.id.clone()) {
            return Err(files.manifest_error(
                q.id.span(),
                format!("quota `{}` is defined twice", quota.id),
            ));
        }
        quotas.push(quota);
    }
    Ok(Controls {
        approvals,
        waivers,
        quotas,
    })
}

fn load_approvals(
    files: &BundleFiles,
    a: &ManifestApprovals,
) -> Result<ApprovalConfig, BundleError> {
    let audience = nonempty(files, &a.audience, "approvals.audience")?;
    let keys = crate::intent::load_key_set(files, &a.keys, "the approvers' key set")?;
    let mut approvers = HashMap::new();
    for (id, r) in &a.approvers {
        approvers.insert(id.clone(), roles(files, r, "approvals.approvers")?);
    }
    // Every key must belong to a known approver: a key without one could
    // only sign approvals that are refused, which hides a typo.
    for key in keys.keys() {
        if !approvers.contains_key(key.issuer()) {
            return Err(files.manifest_error(
                a.keys.span(),
                format!(
                    "key `{}` of the approvers' key set belongs to `{}`, who is not in `approvals.approvers`",
                    key.kid(),
                    key.issuer()
                ),
            ));
        }
    }
    let mut rules = Vec::new();
    for (p, r) in &a.rules {
        let span = r.first().map_or(a.keys.span(), Spanned::span);
        let pat = pattern(files, &Spanned::new(span, p.clone()), "approvals.rules")?;
        rules.push((pat, roles(files, r, "approvals.rules")?));
    }
    let mut risk_classes = HashMap::new();
    for (c, r) in &a.risk_classes {
        risk_classes.insert(c.clone(), roles(files, r, "approvals.risk_classes")?);
    }
    let cap = match (&a.max_per_principal, &a.window_s) {
        (None, None) => None,
        (Some(max), Some(w)) if *max.get_ref() > 0 && *w.get_ref() > 0 => {
            Some((*max.get_ref(), *w.get_ref()))
        }
        (Some(max), _) => {
            return Err(files.manifest_error(
                max.span(),
                "`approvals.max_per_principal` needs a positive count and a positive `approvals.window_s`".into(),
            ));
        }
        (None, Some(w)) => {
            return Err(files.manifest_error(
                w.span(),
                "`approvals.window_s` without `approvals.max_per_principal`".into(),
            ));
        }
    };
    let mut context_fields = Vec::new();
    for f in &a.context_fields {
        context_fields.push(nonempty(files, f, "approvals.context_fields")?);
    }
    context_fields.sort();
    context_fields.dedup();
    Ok(ApprovalConfig {
        keys: Arc::new(keys),
        audience,
        context_fields,
        request_ttl_s: limited(
            files,
            &a.request_ttl_s,
            "approvals.request_ttl_s",
            3600,
            MAX_APPROVAL_LIFETIME_S,
        )?,
        max_lifetime_s: limited(
            files,
            &a.max_lifetime_s,
            "approvals.max_lifetime_s",
            3600,
            MAX_APPROVAL_LIFETIME_S,
        )?,
        clock_skew_s: match &a.clock_skew_s {
            Some(s) if *s.get_ref() > crate::intent::MAX_CLOCK_SKEW_S => {
                return Err(files.manifest_error(
                    s.span(),
                    format!(
                        "`approvals.clock_skew_s` is {}, more than the {} allowed",
                        s.get_ref(),
                        crate::intent::MAX_CLOCK_SKEW_S
                    ),
                ));
            }
            Some(s) => *s.get_ref(),
            None => 60,
        },
        approvers,
        rules,
        risk_classes,
        cap,
    })
}

fn load_waivers(files: &BundleFiles, w: &ManifestWaivers) -> Result<WaiverConfig, BundleError> {
    let waivable = w
        .waivable
        .iter()
        .map(|p| pattern(files, p, "waivers.waivable"))
        .collect::<Result<Vec<_>, _>>()?;
    let max_days = limited(
        files,
        &w.max_lifetime_days,
        "waivers.max_lifetime_days",
        DEFAULT_WAIVER_LIFETIME_DAYS,
        3660,
    )?;
    let warning_days = limited(
        files,
        &w.expiry_warning_days,
        "waivers.expiry_warning_days",
        DEFAULT_WAIVER_WARNING_DAYS,
        3660,
    )?;
    let mut waivers = Vec::new();
    let mut ids = HashSet::new();
    for spanned in &w.waiver {
        let line = Some(crate::error::line_of(
            files.manifest_text(),
            spanned.span().start,
        ));
        let m = spanned.get_ref();
        let id = nonempty(files, &m.id, "waivers.waiver.id")?;
        if !ids.insert(id.clone()) {
            return Err(
                files.manifest_error(m.id.span(), format!("waiver `{id}` is defined twice"))
            );
        }
        if m.rules.is_empty() {
            return Err(files.manifest_error(m.id.span(), format!("waiver `{id}` names no rule")));
        }
        let mut rules = Vec::new();
        for r in &m.rules {
            let rule = nonempty(files, r, "waivers.waiver.rules")?;
            if rule.contains('*') {
                return Err(files.manifest_error(
                    r.span(),
                    format!("waiver `{id}`: `{rule}` is a pattern; a waiver names rule ids"),
                ));
            }
            if !waivable.iter().any(|p| p.matches(&rule)) {
                return Err(files.manifest_error(
                    r.span(),
                    format!("waiver `{id}`: rule `{rule}` is not waivable (the bundle's `waivers.waivable` does not list it)"),
                ));
            }
            rules.push(rule);
        }
        if m.actions.is_empty() {
            return Err(files.manifest_error(
                m.id.span(),
                format!("waiver `{id}` names no action; a waiver covers named actions only"),
            ));
        }
        let actions = m
            .actions
            .iter()
            .map(|a| nonempty(files, a, "waivers.waiver.actions"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut resources = Vec::new();
        for r in &m.resources {
            let v = nonempty(files, r, "waivers.waiver.resources")?;
            if !v
                .split_once(':')
                .is_some_and(|(k, i)| !k.is_empty() && !i.is_empty())
            {
                return Err(files.manifest_error(
                    r.span(),
                    format!("waiver `{id}`: resource `{v}` is not `type:id` or `type:*`"),
                ));
            }
            resources.push(v);
        }
        let owner = nonempty(files, &m.owner, "waivers.waiver.owner")?;
        let risk_acceptance =
            nonempty(files, &m.risk_acceptance, "waivers.waiver.risk_acceptance")?;
        let granted = rfc3339(files, &m.granted, "waivers.waiver.granted")?;
        let expires = rfc3339(files, &m.expires, "waivers.waiver.expires")?;
        if expires <= granted {
            return Err(files.manifest_error(
                m.expires.span(),
                format!("waiver `{id}` expires before it is granted"),
            ));
        }
        let max = i128::from(max_days) * i128::from(DAY_S) * NANOS;
        if expires - granted > max {
            return Err(files.manifest_error(
                m.expires.span(),
                format!("waiver `{id}` lives longer than the bundle's maximum of {max_days} days"),
            ));
        }
        waivers.push(Waiver {
            id,
            rules,
            principals: m.principals.clone(),
            actions,
            resources,
            owner,
            risk_acceptance,
            granted: m.granted.get_ref().clone(),
            expires: m.expires.get_ref().clone(),
            expires_nanos: expires,
            line,
        });
    }
    Ok(WaiverConfig {
        waivable,
        warning_days,
        waivers,
    })
}

fn load_quota(files: &BundleFiles, q: &ManifestQuota) -> Result<Quota, BundleError> {
    let id = nonempty(files, &q.id, "quotas.id")?;
    let err = |span: std::ops::Range<usize>, m: String| {
        files.manifest_error(span, format!("quota `{id}`: {m}"))
    };
    if q.actions.is_empty() && q.risk_classes.is_empty() {
        return Err(err(q.id.span(), "names no action and no risk class".into()));
    }
    let actions = q
        .actions
        .iter()
        .map(|a| nonempty(files, a, "quotas.actions"))
        .collect::<Result<Vec<_>, _>>()?;
    let risk_classes = q
        .risk_classes
        .iter()
        .map(|a| nonempty(files, a, "quotas.risk_classes"))
        .collect::<Result<Vec<_>, _>>()?;
    let per = match q.per.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
        None | Some(("principal", _)) => QuotaScope::Principal,
        Some(("global", _)) => QuotaScope::Global,
        Some((other, span)) => {
            return Err(err(
                span,
                format!("`per` is `{other}`; expected `principal` or `global`"),
            ));
        }
    };
    if *q.window_s.get_ref() == 0 || *q.window_s.get_ref() > 366 * DAY_S {
        return Err(err(
            q.window_s.span(),
            "`window_s` must be between 1 and 31622400".into(),
        ));
    }
    let measure = match (&q.count, &q.sum, &q.limit) {
        (Some(c), None, None) if *c.get_ref() >= 0 => QuotaMeasure::Count(*c.get_ref()),
        (Some(c), None, None) => return Err(err(c.span(), "`count` is negative".into())),
        (None, Some(attr), Some(limit)) => {
            let attribute = nonempty(files, attr, "quotas.sum")?;
            let scaled = limit.get_ref() * QUOTA_AMOUNT_SCALE;
            if !scaled.is_finite() || !(0.0..9.0e18).contains(&scaled) {
                return Err(err(
                    limit.span(),
                    "`limit` must be a number between 0 and 9e12".into(),
                ));
            }
            #[allow(clippy::cast_possible_truncation, reason = "range checked above")]
            let limit = scaled.floor() as i64;
            QuotaMeasure::Sum { attribute, limit }
        }
        _ => {
            return Err(err(
                q.id.span(),
                "give either `count`, or `sum` (a resource attribute) with `limit`".into(),
            ));
        }
    };
    let effect = match q.effect.get_ref().as_str() {
        "reject" => Effect::Reject,
        "escalate" => Effect::Escalate,
        other => {
            return Err(err(
                q.effect.span(),
                format!("`effect` is `{other}`; expected `reject` or `escalate`"),
            ));
        }
    };
    Ok(Quota {
        id,
        actions,
        risk_classes,
        per,
        window_s: *q.window_s.get_ref(),
        measure,
        effect,
    })
}
