//! Cedar evaluation.
//!
//! At load: policies parsed, re-identified by their `@id` annotation,
//! validated against the schema (strict mode) when there is one; static
//! entities built once. Per decision: the principal and resource entities,
//! and the context record, are built straight from the request (no JSON
//! text), then `is_authorized` runs. Request values become Cedar values
//! exactly or not at all, reading schema-typed extension values from strings
//! (see [`value`]).
//!
//! Annotations the engine reads on a policy:
//! - `@id("R7.quarantined_site")`: the policy id reported in reasons;
//! - `@reason("…")`: the message reported in reasons;
//! - `@outcome("escalate")` on a `forbid`: a match escalates instead of rejecting;
//! - `@obligation("notify-security")`: an obligation added when the policy
//!   determines the decision.

use std::cell::{Cell, OnceCell};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Effect as CedarEffect,
    Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Schema,
    ValidationMode, Validator,
};
use cedar_policy_core::ast::{PartialValue, Value as CedarValue};
use miette::Diagnostic;
use serde_json::Value;
use smol_str::SmolStr;
use thread_local::ThreadLocal;

use crate::decision::{Effect, Obligation, Reason, Source};
use crate::error::{BundleError, BundleErrorKind, line_of};
use crate::facts::Facts;
use crate::request::Request;

mod conform;
mod value;
use conform::RequestChecks;
use value::{
    DECIMAL_MAX_TEXT, DECIMAL_MIN_TEXT, Fields, Path as ValuePath, SchemaShapes, datetime_value,
    decimal_value, to_cedar,
};

/// What the engine knows about one Cedar policy beyond Cedar itself.
#[derive(Debug, Clone)]
struct PolicyMeta {
    effect: Effect,
    reason: Option<String>,
    obligation: Option<String>,
    /// The policy's file, relative to the bundle, and the line of its `@id`.
    file: PathBuf,
    line: Option<u32>,
}

/// The compiled Cedar half of a bundle.
pub(crate) struct CedarPolicies {
    /// Every policy of the bundle; decisions use the action's slice
    /// (`slices`), tests compare the two.
    #[cfg_attr(not(test), allow(dead_code))]
    policies: PolicySet,
    meta: HashMap<PolicyId, PolicyMeta>,
    /// The bundle's entities; `None` when there are none that policies could
    /// observe, which spares cloning them per request.
    entities: Option<Entities>,
    authorizer: Authorizer,
    principal_type: EntityTypeName,
    resource_type: EntityTypeName,
    action_type: EntityTypeName,
    /// Attributes the schema types as extension values (empty without a
    /// schema).
    shapes: SchemaShapes,
    /// The schema, against which each request and its entities are validated.
    schema: Option<Schema>,
    /// The schema's checks read on values, which spare Cedar's own checks
    /// where they pass (empty without a schema).
    checks: RequestChecks,
    /// Policy slices by action name, computed at load: each holds only the
    /// policies whose action scope can match that action (see [`Slices`]).
    slices: Slices,
    /// What this was compiled from, for each thread's own copy; `None` in a
    /// copy.
    sources: Option<Sources>,
    /// Each thread's own copy, made once it has decided [`COPY_AFTER`]
    /// times (see [`CedarPolicies::evaluate`]).
    per_thread: ThreadLocal<ThreadCopy>,
    /// Whether a thread has taken these policies as its own: the first
    /// thread to reach [`COPY_AFTER`] decisions goes on deciding on them,
    /// so a host that decides on one thread makes no copy at all.
    claimed: AtomicBool,
}

/// The bundle's Cedar files and the entity types of its manifest.
struct Sources {
    root: PathBuf,
    schema: Option<(PathBuf, String)>,
    files: Vec<(PathBuf, String)>,
    entity_files: Vec<(PathBuf, String)>,
    types: [(String, std::ops::Range<usize>); 3],
}

/// Decisions a thread makes on the shared policies before it gets a copy
/// of its own: the bundle's Cedar half compiled again (~1 ms on the
/// reference pack), which a thread that decides only a few times never pays
/// for. The same as the Rego half's.
const COPY_AFTER: u32 = crate::rego::THREAD_COPY_AFTER;

/// One thread's slot: its decisions so far, then its own copy (`None` for
/// the thread that took the shared policies as its own, or if compiling
/// failed, which cannot happen for a bundle that loaded: the shared
/// policies then go on deciding).
#[derive(Default)]
struct ThreadCopy {
    decisions: Cell<u32>,
    copy: OnceCell<Option<Box<CedarPolicies>>>,
}

/// The policies that can apply to each action.
///
/// Cedar evaluates a policy's scope before its conditions, and a policy
/// whose action scope does not match is neither satisfied nor in error: it
/// cannot change the answer. Evaluating only the policies whose scope can
/// match the request's action therefore gives the same decision, reasons and
/// errors as evaluating the whole set. A scope `action == A` can match only
/// `A`; `action in [A, …]` can match a listed action or one of its
/// descendants in the bundle's entities (the request adds only the principal
/// and resource, without parents); `action` matches every action.
struct Slices {
    /// Actions named by a scope, declared by the schema or defined by the
    /// bundle's entities.
    by_action: HashMap<String, PolicySet>,
    /// The unconstrained policies: what can apply to any other action (no
    /// scope names it, and without an entity it has no ancestors).
    others: PolicySet,
}

impl Slices {
    fn new(
        policies: &PolicySet,
        action_type: &EntityTypeName,
        schema: Option<&Schema>,
        entities: Option<&Entities>,
    ) -> Result<Slices, String> {
        let scopes: Vec<(&cedar_policy::Policy, ActionConstraint)> = policies
            .policies()
            .map(|p| (p, p.action_constraint()))
            .collect();
        let mut names: HashSet<String> = HashSet::new();
        let mut name_of = |uid: &EntityUid| {
            if uid.type_name() == action_type {
                names.insert(uid.id().unescaped().to_owned());
            }
        };
        for (_, scope) in &scopes {
            match scope {
                ActionConstraint::Any => {}
                ActionConstraint::Eq(uid) => name_of(uid),
                ActionConstraint::In(uids) => uids.iter().for_each(&mut name_of),
            }
        }
        if let Some(schema) = schema {
            schema.actions().for_each(&mut name_of);
        }
        if let Some(entities) = entities {
            entities.iter().for_each(|e| name_of(&e.uid()));
        }
        let slice = |action: Option<&EntityUid>| -> Result<PolicySet, String> {
            let mut set = PolicySet::new();
            for (policy, scope) in &scopes {
                let can_match = match (scope, action) {
                    (ActionConstraint::Any, _) => true,
                    (_, None) => false,
                    (ActionConstraint::Eq(uid), Some(a)) => uid == a,
                    (ActionConstraint::In(uids), Some(a)) => uids
                        .iter()
                        .any(|uid| uid == a || entities.is_some_and(|e| e.is_ancestor_of(uid, a))),
                };
                if can_match {
                    set.add((*policy).clone())
                        .map_err(|e| format!("policy slice: {e}"))?;
                }
            }
            Ok(set)
        };
        let mut by_action = HashMap::with_capacity(names.len());
        for name in names {
            let uid = EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(&name));
            by_action.insert(name, slice(Some(&uid))?);
        }
        Ok(Slices {
            by_action,
            others: slice(None)?,
        })
    }

    /// The policies that can apply to the action named `name`.
    fn get(&self, name: &str) -> &PolicySet {
        self.by_action.get(name).unwrap_or(&self.others)
    }
}

/// What the Cedar half of a bundle said about one request.
#[derive(Debug, Default)]
pub(crate) struct CedarVerdict {
    pub reasons: Vec<Reason>,
    pub permitted: bool,
    pub obligations: Vec<Obligation>,
    /// Policies that failed to evaluate, with the error.
    pub errors: Vec<(String, String)>,
    /// A policy that read the resource of a request that has none.
    pub missing_resource: Option<String>,
}

/// The line of the first labelled span of a Cedar diagnostic.
fn diagnostic_line(diag: &dyn Diagnostic, text: &str) -> Option<u32> {
    diag.labels()
        .and_then(|mut labels| labels.next())
        .map(|label| line_of(text, label.offset()))
}

fn diagnostic_message(diag: &dyn Diagnostic, error: &dyn std::fmt::Display) -> String {
    let mut message = error.to_string();
    if let Some(help) = diag.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    message
}

/// The line of the first `@id("…")` of each id in a file, found in one
/// pass: looking each policy's id up in the whole text would take time
/// quadratic in the number of policies.
fn id_lines(text: &str) -> HashMap<&str, u32> {
    const OPEN: &str = "@id(\"";
    let mut lines = HashMap::new();
    let mut line = 1u32;
    let mut counted = 0;
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|t| t.find(OPEN)) {
        let at = from + found;
        let start = at + OPEN.len();
        let Some(len) = text.get(start..).and_then(|t| t.find("\")")) else {
            break;
        };
        line = line.saturating_add(line_of(text.get(counted..at).unwrap_or(""), usize::MAX) - 1);
        counted = at;
        if let Some(id) = text.get(start..start + len) {
            lines.entry(id).or_insert(line);
        }
        from = start;
    }
    lines
}

impl CedarPolicies {
    pub(crate) fn compile(
        root: &Path,
        schema: Option<&(PathBuf, String)>,
        files: &[(PathBuf, String)],
        entity_files: &[(PathBuf, String)],
        types: &[(String, std::ops::Range<usize>); 3],
        manifest_error: impl Fn(std::ops::Range<usize>, String) -> BundleError,
    ) -> Result<CedarPolicies, BundleError> {
        let sources = Sources {
            root: root.to_path_buf(),
            schema: schema.cloned(),
            files: files.to_vec(),
            entity_files: entity_files.to_vec(),
            types: types.clone(),
        };
        let mut compiled = CedarPolicies::build(&sources, true, manifest_error)?;
        compiled.sources = Some(sources);
        Ok(compiled)
    }

    /// A copy for one thread: compiled again from the same files, so that
    /// what Cedar clones while evaluating (each policy's condition with its
    /// source location, the entities' `Arc`s) is the thread's own. Clones of
    /// values two threads share bump the same reference counts from both
    /// cores at once. Compiling is deterministic: the copy is the same
    /// policy set, entities and schema (its policies were validated when
    /// the bundle loaded, and are not validated again).
    fn copy(&self) -> Option<Box<CedarPolicies>> {
        let sources = self.sources.as_ref()?;
        let error =
            |_, message| BundleError::new(BundleErrorKind::Cedar, &sources.root, None, message);
        CedarPolicies::build(sources, false, error)
            .ok()
            .map(Box::new)
    }

    fn build(
        sources: &Sources,
        validate: bool,
        manifest_error: impl Fn(std::ops::Range<usize>, String) -> BundleError,
    ) -> Result<CedarPolicies, BundleError> {
        let Sources {
            root,
            schema,
            files,
            entity_files,
            types,
        } = sources;
        let root = root.as_path();
        let schema = match schema {
            None => None,
            Some((path, text)) => Some(parse_schema(root, path, text)?),
        };

        let (policies, meta, origin) = parse_policies(root, files)?;

        if let Some((schema, _)) = schema.as_ref().filter(|_| validate) {
            let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
            if let Some(e) = result.validation_errors().next() {
                let (file, text) = origin
                    .get(e.policy_id())
                    .and_then(|&i| files.get(i))
                    .map_or((root.to_path_buf(), ""), |(p, t)| {
                        (root.join(p), t.as_str())
                    });
                return Err(BundleError::new(
                    BundleErrorKind::Validation,
                    file,
                    diagnostic_line(e, text),
                    format!(
                        "policy `{}` does not validate against the schema: {}",
                        e.policy_id(),
                        diagnostic_message(e, e)
                    ),
                ));
            }
        }

        let schema_ref = schema.as_ref().map(|(s, _)| s);
        let entities = build_entities(root, schema.as_ref(), entity_files)?;

        let type_name = |(name, span): &(String, std::ops::Range<usize>)| {
            EntityTypeName::from_str(name).map_err(|e| {
                manifest_error(
                    span.clone(),
                    format!("`{name}` is not a Cedar entity type: {e}"),
                )
            })
        };
        let [p, r, a] = types;
        let (principal_type, resource_type, action_type) =
            (type_name(p)?, type_name(r)?, type_name(a)?);
        let shapes = schema_ref.map_or_else(SchemaShapes::default, |s| {
            SchemaShapes::new(s, &principal_type, &resource_type, &action_type)
        });
        let checks = schema_ref.map_or_else(RequestChecks::default, |s| {
            RequestChecks::new(s, &principal_type, &resource_type, &action_type)
        });
        let slices = Slices::new(&policies, &action_type, schema_ref, entities.as_ref())
            .map_err(|e| BundleError::new(BundleErrorKind::Cedar, root.to_path_buf(), None, e))?;
        let entities = entities.map(|e| with_room_for_request_entities(e, &principal_type));
        Ok(CedarPolicies {
            policies,
            meta,
            entities,
            authorizer: Authorizer::new(),
            principal_type,
            resource_type,
            action_type,
            shapes,
            schema: schema_ref.cloned(),
            checks,
            slices,
            sources: None,
            per_thread: ThreadLocal::new(),
            claimed: AtomicBool::new(false),
        })
    }

    /// Evaluates the bundle's Cedar policies. `Err` says what broke before
    /// Cedar could run (an unrepresentable value); policy errors are in
    /// [`CedarVerdict::errors`].
    ///
    /// A thread that has decided [`COPY_AFTER`] times decides on its own
    /// copy of the policies and entities from then on ([`CedarPolicies::copy`]).
    pub(crate) fn evaluate(
        &self,
        request: &Request,
        facts: &Facts<'_>,
    ) -> Result<CedarVerdict, String> {
        self.on_this_thread().evaluate_here(request, facts)
    }

    /// This thread's copy, if it has one by now; else the shared policies.
    fn on_this_thread(&self) -> &CedarPolicies {
        if self.sources.is_none() {
            return self;
        }
        let slot = self.per_thread.get_or_default();
        let decisions = slot.decisions.get();
        if decisions < COPY_AFTER {
            slot.decisions.set(decisions + 1);
            return self;
        }
        slot.copy
            .get_or_init(|| {
                if self.claimed.swap(true, Ordering::Relaxed) {
                    self.copy()
                } else {
                    None
                }
            })
            .as_deref()
            .unwrap_or(self)
    }

    fn evaluate_here(&self, request: &Request, facts: &Facts<'_>) -> Result<CedarVerdict, String> {
        self.evaluate_with(
            request,
            facts,
            self.slices.get(&request.action.name),
            &self.checks,
        )
    }

    /// [`CedarPolicies::evaluate`] with every policy of the bundle rather
    /// than the action's slice: the reference the slices are tested against.
    #[cfg(test)]
    fn evaluate_unsliced(
        &self,
        request: &Request,
        facts: &Facts<'_>,
    ) -> Result<CedarVerdict, String> {
        self.evaluate_with(request, facts, &self.policies, &self.checks)
    }

    /// [`CedarPolicies::evaluate`] with every schema check left to Cedar:
    /// the reference [`RequestChecks`] is tested against.
    #[cfg(test)]
    fn evaluate_checked_by_cedar(
        &self,
        request: &Request,
        facts: &Facts<'_>,
    ) -> Result<CedarVerdict, String> {
        let checks = RequestChecks::default();
        self.evaluate_with(
            request,
            facts,
            self.slices.get(&request.action.name),
            &checks,
        )
    }

    fn evaluate_with(
        &self,
        request: &Request,
        facts: &Facts<'_>,
        policies: &PolicySet,
        checks: &RequestChecks,
    ) -> Result<CedarVerdict, String> {
        let principal = EntityUid::from_type_name_and_id(
            self.principal_type.clone(),
            EntityId::new(&request.principal.id),
        );
        let action = EntityUid::from_type_name_and_id(
            self.action_type.clone(),
            EntityId::new(&request.action.name),
        );
        let resource_id = request
            .resource
            .as_ref()
            .and_then(|r| r.id.as_deref())
            .unwrap_or("");
        let resource = EntityUid::from_type_name_and_id(
            self.resource_type.clone(),
            EntityId::new(resource_id),
        );

        let mut extra = Vec::with_capacity(2);
        // Whether every request entity passes the schema's entity check as
        // read on values; if not, Cedar checks them all.
        let mut entities_pass = true;
        // Entities the bundle defines are authoritative: the request cannot
        // add attributes to them.
        if !self.has_entity(&principal) {
            let p = &request.principal;
            let mut attrs = HashMap::new();
            let declared = self.shapes.declared.as_ref().map(|d| &d.principal);
            for (k, v) in &p.attributes {
                if declared.is_some_and(|d| !d.contains(k)) {
                    continue;
                }
                insert(
                    &mut attrs,
                    k,
                    v,
                    "principal.attributes",
                    &self.shapes.principal,
                )?;
            }
            if let Some(kind) = &p.kind
                && declared.is_none_or(|d| d.contains("type"))
            {
                attrs.insert("type".into(), string(kind));
            }
            if let Some(zone) = &p.trust_zone
                && declared.is_none_or(|d| d.contains("trust_zone"))
            {
                attrs.insert("trust_zone".into(), string(zone));
            }
            entities_pass &= checks.entity_passes(true, &attrs);
            extra.push(entity(&principal, attrs));
        }
        if let Some(r) = &request.resource
            && !self.has_entity(&resource)
        {
            let mut attrs = HashMap::new();
            let declared = self.shapes.declared.as_ref().map(|d| &d.resource);
            for (k, v) in &r.attributes {
                if declared.is_some_and(|d| !d.contains(k)) {
                    continue;
                }
                insert(
                    &mut attrs,
                    k,
                    v,
                    "resource.attributes",
                    &self.shapes.resource,
                )?;
            }
            // The engine's own attributes follow the schema like the rest.
            if declared.is_none_or(|d| d.contains("type")) {
                attrs.insert("type".into(), string(&r.kind));
            }
            if declared.is_none_or(|d| d.contains("id")) {
                attrs.insert("id".into(), string(resource_id));
            }
            entities_pass &= checks.entity_passes(false, &attrs);
            extra.push(entity(&resource, attrs));
        }
        let schema = self.schema.as_ref();
        let entity_schema = if entities_pass { None } else { schema };
        let entities = match &self.entities {
            Some(statics) => add_request_entities(statics, extra, entity_schema),
            None => Entities::from_entities(extra.into_iter().map(Entity::from), entity_schema)
                .map_err(|e| e.to_string()),
        }
        .map_err(|e| format!("request entities do not match the schema: {e}"))?;

        let mut pairs = std::collections::BTreeMap::new();
        let context_shapes = self.shapes.context.get(&request.action.name);
        let declared = self
            .shapes
            .declared
            .as_ref()
            .map(|d| d.context.get(&request.action.name));
        if declared == Some(None) {
            return Err(format!(
                "action `{}` is not declared in the Cedar schema",
                request.action.name
            ));
        }
        for (k, v) in &request.context {
            if declared.flatten().is_some_and(|d| !d.contains(k)) {
                continue;
            }
            // Cedar's `context.on_behalf_of` comes from `principal.on_behalf_of`
            // only: a free-form context entry must not pose as it.
            if k == "on_behalf_of" {
                return Err(
                    "`context.on_behalf_of` is set from `principal.on_behalf_of`; the request's context must not carry it"
                        .to_owned(),
                );
            }
            let shape = context_shapes.and_then(|fields| fields.get(k));
            let path = ValuePath::Field(&ValuePath::Root("context"), k);
            if let Some(value) = to_cedar(v, &path, 2, shape)? {
                pairs.insert(SmolStr::from(k.as_str()), value);
            }
        }
        // The engine's fields of the context record; a request entry of the
        // same name is refused, as a record with a repeated field would be.
        let mut engine_pair = |name: &str, value: CedarValue| match pairs.entry(name.into()) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(value);
                Ok(())
            }
            std::collections::btree_map::Entry::Occupied(_) => Err(format!(
                "context: `context.{name}` is set by the engine; the request's context must not carry it"
            )),
        };
        let engine_field = |name: &str| declared.flatten().is_none_or(|d| d.contains(name));
        if engine_field("delegation") {
            engine_pair("delegation", string_set(&request.principal.delegation))?;
        }
        if let Some(subject) = &request.principal.on_behalf_of
            && engine_field("on_behalf_of")
        {
            engine_pair("on_behalf_of", subject_record(subject))?;
        }
        if engine_field("facts") {
            let declared_facts = self
                .shapes
                .declared
                .as_ref()
                .map(|d| d.facts.get(&request.action.name));
            engine_pair("facts", facts_record(facts, declared_facts)?)?;
        }
        // Built as Cedar values, not as restricted expressions Cedar would
        // evaluate into the same values. `Request::new` checks the request
        // against the schema unless its check, read on the values, passes.
        let request_schema = if checks.context_passes(&request.action.name, &pairs) {
            None
        } else {
            schema
        };
        let context = Context::from(cedar_policy_core::ast::Context::Value(std::sync::Arc::new(
            pairs,
        )));
        let resource_uid = resource.to_string();
        let cedar_request =
            cedar_policy::Request::new(principal, action, resource, context, request_schema)
                .map_err(|e| format!("request does not match the schema: {e}"))?;

        let response = self
            .authorizer
            .is_authorized(&cedar_request, policies, &entities);
        let mut verdict = CedarVerdict {
            permitted: response.decision() == CedarDecision::Allow,
            ..CedarVerdict::default()
        };
        let missing_resource = request
            .resource
            .is_none()
            .then(|| format!("entity `{resource_uid}` does not exist"));
        for err in response.diagnostics().errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = err;
            if let Some(missing) = &missing_resource
                && matches!(
                    e.inner(),
                    cedar_policy::EvaluationError::EntityDoesNotExist(_)
                )
                && e.inner().to_string() == *missing
                && verdict.missing_resource.is_none()
            {
                verdict.missing_resource = Some(e.policy_id().to_string());
            }
            verdict
                .errors
                .push((e.policy_id().to_string(), e.inner().to_string()));
        }
        verdict.errors.sort();
        // Cedar reports the determining policies as a hash set: in id order,
        // the reasons and obligations do not depend on hashing.
        let mut determining: Vec<&PolicyId> = response.diagnostics().reason().collect();
        determining.sort_by_key(|id| AsRef::<str>::as_ref(*id));
        for id in determining {
            let Some(meta) = self.meta.get(id) else {
                continue;
            };
            if meta.effect != Effect::Permit || verdict.permitted {
                verdict.reasons.push(Reason {
                    engine: Source::Cedar,
                    policy: id.to_string(),
                    message: meta.reason.clone().unwrap_or_else(|| match meta.effect {
                        Effect::Permit => format!("permitted by cedar policy `{id}`"),
                        Effect::Escalate => format!("escalated by cedar policy `{id}`"),
                        Effect::Reject => format!("forbidden by cedar policy `{id}`"),
                    }),
                    effect: meta.effect,
                });
            }
            if let Some(ob) = &meta.obligation {
                verdict.obligations.push(Obligation {
                    id: ob.clone(),
                    engine: Source::Cedar,
                    policy: id.to_string(),
                    params: serde_json::Map::new(),
                });
            }
        }
        Ok(verdict)
    }

    /// Every policy: id, file (relative to the bundle) and line of its `@id`.
    pub(crate) fn policy_locations(&self) -> Vec<(String, PathBuf, Option<u32>)> {
        let mut out: Vec<_> = self
            .meta
            .iter()
            .map(|(id, m)| (id.to_string(), m.file.clone(), m.line))
            .collect();
        out.sort();
        out
    }

    fn has_entity(&self, uid: &EntityUid) -> bool {
        self.entities.as_ref().is_some_and(|e| e.get(uid).is_some())
    }
}

/// The policies of the bundle's files, each re-identified by its `@id`,
/// with what the engine knows about each and the index of its file.
type ParsedPolicies = (
    PolicySet,
    HashMap<PolicyId, PolicyMeta>,
    HashMap<PolicyId, usize>,
);

fn parse_policies(root: &Path, files: &[(PathBuf, String)]) -> Result<ParsedPolicies, BundleError> {
    let mut policies = PolicySet::new();
    let mut meta = HashMap::new();
    let mut origin: HashMap<PolicyId, usize> = HashMap::new();
    for (index, (path, text)) in files.iter().enumerate() {
        let file = root.join(path);
        let set = PolicySet::from_str(text).map_err(|e| {
            BundleError::new(
                BundleErrorKind::Cedar,
                &file,
                diagnostic_line(&e, text),
                diagnostic_message(&e, &e),
            )
        })?;
        let lines = id_lines(text);
        let id_line = |id: &str| lines.get(id).copied();
        if let Some(t) = set.templates().next() {
            return Err(BundleError::new(
                BundleErrorKind::Cedar,
                &file,
                t.annotation("id").and_then(id_line),
                "policy templates are not supported; write static policies",
            ));
        }
        for (n, policy) in set.policies().enumerate() {
            let id = policy
                .annotation("id")
                .map_or_else(|| format!("{}#{n}", path.to_string_lossy()), str::to_owned);
            let line = id_line(&id);
            let err =
                |message: String| BundleError::new(BundleErrorKind::Cedar, &file, line, message);
            let effect = match (policy.effect(), policy.annotation("outcome")) {
                (CedarEffect::Permit, None) => Effect::Permit,
                (CedarEffect::Permit, Some(_)) => {
                    return Err(err(format!(
                        "policy `{id}`: `@outcome` applies to `forbid` policies only"
                    )));
                }
                (CedarEffect::Forbid, None | Some("reject")) => Effect::Reject,
                (CedarEffect::Forbid, Some("escalate")) => Effect::Escalate,
                (CedarEffect::Forbid, Some(other)) => {
                    return Err(err(format!(
                        "policy `{id}`: `@outcome(\"{other}\")` is not `reject` or `escalate`"
                    )));
                }
            };
            let pid = PolicyId::new(&id);
            let renamed = policy.new_id(pid.clone());
            policies
                .add(renamed)
                .map_err(|_| err(format!("policy id `{id}` is used by more than one policy")))?;
            origin.insert(pid.clone(), index);
            meta.insert(
                pid,
                PolicyMeta {
                    effect,
                    reason: policy.annotation("reason").map(str::to_owned),
                    obligation: policy.annotation("obligation").map(str::to_owned),
                    file: path.clone(),
                    line,
                },
            );
        }
    }

    Ok((policies, meta, origin))
}

/// The bundle's entities (with a schema and no entity files: the schema's
/// actions), or `None` when there are none that policies could observe.
fn build_entities(
    root: &Path,
    schema: Option<&(Schema, PathBuf)>,
    entity_files: &[(PathBuf, String)],
) -> Result<Option<Entities>, BundleError> {
    let schema_ref = schema.as_ref().map(|(s, _)| s);
    let mut all = Vec::new();
    for (path, text) in entity_files {
        let parsed = Entities::from_json_str(text, schema_ref).map_err(|e| {
            BundleError::new(
                BundleErrorKind::Data,
                root.join(path),
                diagnostic_line(&e, text),
                format!("invalid Cedar entities: {}", diagnostic_message(&e, &e)),
            )
        })?;
        all.extend(parsed);
    }
    let entities = match schema_ref {
        Some(s) if entity_files.is_empty() => {
            let actions = s.action_entities().map_err(|e| {
                let path = schema
                    .as_ref()
                    .map_or_else(PathBuf::new, |(_, p)| p.clone());
                BundleError::new(BundleErrorKind::Cedar, path, None, e.to_string())
            })?;
            // Built once: `Entities::from_entities` with a schema would
            // build the schema's action entities again for every request.
            Some(actions)
        }
        _ if entity_files.is_empty() => None,
        _ => Some(Entities::from_entities(all, schema_ref).map_err(|e| {
            let path = entity_files
                .first()
                .map_or_else(|| root.to_path_buf(), |(p, _)| root.join(p));
            BundleError::new(
                BundleErrorKind::Data,
                path,
                None,
                format!("invalid Cedar entities: {}", diagnostic_message(&e, &e)),
            )
        })?),
    };

    Ok(entities)
}

fn parse_schema(root: &Path, path: &Path, text: &str) -> Result<(Schema, PathBuf), BundleError> {
    let file = root.join(path);
    let is_json = path.extension().is_some_and(|e| e == "json");
    let schema = if is_json {
        Schema::from_json_str(text).map_err(|e| {
            BundleError::new(
                BundleErrorKind::Cedar,
                &file,
                diagnostic_line(&e, text),
                format!("invalid Cedar schema: {}", diagnostic_message(&e, &e)),
            )
        })?
    } else {
        Schema::from_cedarschema_str(text)
            .map(|(s, _warnings)| s)
            .map_err(|e| {
                BundleError::new(
                    BundleErrorKind::Cedar,
                    &file,
                    diagnostic_line(&e, text),
                    format!("invalid Cedar schema: {}", diagnostic_message(&e, &e)),
                )
            })?
    };
    Ok((schema, file))
}

/// Largest magnitude Cedar's `decimal` holds, as a float.
const DECIMAL_MAX: f64 = 922_337_203_685_477.0;

/// A Cedar decimal for the derived fact `f`, rounded **up** to Cedar's four
/// fraction digits (for anomaly scores, higher is the strict side).
fn decimal_rounded_up(f: f64, path: &str) -> Result<CedarValue, String> {
    if !f.is_finite() || f.abs() >= DECIMAL_MAX {
        return Err(format!(
            "`{path}` = `{f}` is out of the range of Cedar's `decimal` ({DECIMAL_MIN_TEXT}..={DECIMAL_MAX_TEXT})"
        ));
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "checked to be finite and within decimal's range"
    )]
    let scaled = (f * 10_000.0).ceil() as i64;
    decimal_value(scaled)
}

fn insert(
    attrs: &mut HashMap<SmolStr, PartialValue>,
    key: &str,
    value: &Value,
    parent: &str,
    shapes: &Fields,
) -> Result<(), String> {
    let path = ValuePath::Field(&ValuePath::Root(parent), key);
    if let Some(v) = to_cedar(value, &path, 3, shapes.get(key))? {
        attrs.insert(key.into(), PartialValue::Value(v));
    }
    Ok(())
}

fn string(text: &str) -> PartialValue {
    PartialValue::Value(CedarValue::from(text))
}

/// A Cedar set of strings.
fn string_set(items: &[String]) -> CedarValue {
    CedarValue::set(items.iter().map(|s| CedarValue::from(s.as_str())), None)
}

/// A request entity (principal or resource): its attributes, no parents.
///
/// Built from Cedar values directly; `Entity::new` would evaluate
/// restricted expressions into the same values.
fn entity(
    uid: &EntityUid,
    attrs: HashMap<SmolStr, PartialValue>,
) -> cedar_policy_core::ast::Entity {
    cedar_policy_core::ast::Entity::new_with_attr_partial_value(
        uid.clone().into(),
        attrs,
        HashSet::new(),
        HashSet::new(),
        [],
    )
}

/// The bundle's entities plus the request's, each request entity checked
/// against the schema as `Entities::add_entities` checks it.
///
/// `Entities::add_entities` also recomputes the transitive closure of the
/// parent relation over every entity; here it is kept as computed at load
/// (`AssumeAlreadyComputed`), which is exact: the request's entities have
/// no parents and are not in the bundle (an entity the bundle defines is
/// never added, and a repeated one is refused), so adding them gives no
/// entity a new ancestor and cannot make a cycle.
fn add_request_entities(
    statics: &Entities,
    extra: Vec<cedar_policy_core::ast::Entity>,
    schema: Option<&Schema>,
) -> Result<Entities, String> {
    let core_schema = schema.map(|s| cedar_policy_core::validator::CoreSchema::new(s.as_ref()));
    statics
        .as_ref()
        .clone()
        .add_entities(
            extra.into_iter().map(std::sync::Arc::new),
            core_schema.as_ref(),
            cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
            cedar_policy_core::extensions::Extensions::all_available(),
        )
        .map(Entities::from)
        .map_err(|e| e.to_string())
}

/// The same entities, in a map with room for the two a request adds.
///
/// Each decision clones the bundle's entities and adds the request's
/// principal and resource. A hash map clones with its capacity, and the
/// schema's 14 action entities of the reference pack fill theirs: every
/// decision grew the map and rehashed every entity (~7 600 instructions).
/// Adding two placeholder entities and removing them again leaves the same
/// entities in a map with room for two more. If a placeholder's id is taken,
/// the entities are kept as they are.
fn with_room_for_request_entities(entities: Entities, principal_type: &EntityTypeName) -> Entities {
    let placeholders: Vec<EntityUid> = (0..2)
        .map(|n| {
            EntityUid::from_type_name_and_id(
                principal_type.clone(),
                EntityId::new(format!("\u{0}agentriage placeholder {n}")),
            )
        })
        .collect();
    if placeholders.iter().any(|uid| entities.get(uid).is_some()) {
        return entities;
    }
    let room = entities
        .as_ref()
        .clone()
        .add_entities(
            placeholders
                .iter()
                .map(|uid| std::sync::Arc::new(entity(uid, HashMap::new()))),
            None::<&cedar_policy_core::validator::CoreSchema<'_>>,
            cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
            cedar_policy_core::extensions::Extensions::all_available(),
        )
        .ok()
        .and_then(|added| {
            added
                .remove_entities(
                    placeholders.iter().map(|uid| uid.as_ref().clone()),
                    cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
                )
                .ok()
        });
    room.map_or(entities, Entities::from)
}

/// Whole seconds: `floor` for a time left (the strict side is less), `ceil`
/// for an age (the strict side is more).
fn whole_seconds(nanos: i128, ceil: bool) -> i64 {
    let s = nanos.div_euclid(1_000_000_000);
    let s = if ceil && nanos.rem_euclid(1_000_000_000) != 0 {
        s + 1
    } else {
        s
    };
    i64::try_from(s).unwrap_or(if s < 0 { i64::MIN } else { i64::MAX })
}

/// The `context.on_behalf_of` record: `id`, `type`, `roles`, `scopes`.
fn subject_record(subject: &crate::request::Subject) -> CedarValue {
    CedarValue::record(
        [
            ("id", CedarValue::from(subject.id.as_str())),
            ("type", CedarValue::from(subject.kind.as_str())),
            ("roles", string_set(&subject.roles)),
            ("scopes", string_set(&subject.scopes)),
        ],
        None,
    )
}

/// The `context.facts` record; with a schema (`declared` is `Some`), only
/// the fields it declares (`Some(None)`: `facts` is not a record there).
fn facts_record(
    facts: &Facts<'_>,
    declared: Option<Option<&std::collections::HashSet<String>>>,
) -> Result<CedarValue, String> {
    // With a schema, only the fields it declares; each is built only then.
    let wanted = |name: &str| declared.is_none_or(|d| d.is_some_and(|d| d.contains(name)));
    let mut fields: Vec<(&str, CedarValue)> = Vec::with_capacity(8);
    if wanted("time") {
        let time = datetime_value(&facts.time.to_millis_string())
            .map_err(|e| format!("facts.time: {e}"))?;
        fields.push(("time", time));
    }
    if wanted("time_unix") {
        let s = whole_seconds(facts.time.unix_nanos(), false);
        fields.push(("time_unix", CedarValue::from(s)));
    }
    if wanted("hour_utc") {
        let hour = i64::from(facts.time.hour_utc());
        fields.push(("hour_utc", CedarValue::from(hour)));
    }
    if wanted("risk_class") {
        fields.push(("risk_class", CedarValue::from(facts.risk_class)));
    }
    if let Some(ttl) = facts.credential_ttl_nanos
        && wanted("credential_ttl_s")
    {
        let s = whole_seconds(ttl, false);
        fields.push(("credential_ttl_s", CedarValue::from(s)));
    }
    if let Some(age) = facts.attestation_age_nanos
        && wanted("attestation_age_s")
    {
        let s = whole_seconds(age, true);
        fields.push(("attestation_age_s", CedarValue::from(s)));
    }
    // A score Cedar cannot hold fails the decision even where the schema
    // leaves it out of `facts`.
    if let Some(score) = facts.anomaly_score {
        let score = decimal_rounded_up(score, "anomaly.score")?;
        if wanted("anomaly_score") {
            fields.push(("anomaly_score", score));
        }
    }
    if wanted("intent") {
        fields.push(("intent", facts.intent.to_cedar()));
    }
    Ok(CedarValue::record(fields, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &Result<CedarVerdict, String>, b: &Result<CedarVerdict, String>) -> bool {
        match (a, b) {
            (Ok(a), Ok(b)) => {
                a.permitted == b.permitted
                    && a.reasons == b.reasons
                    && a.obligations == b.obligations
                    && a.errors == b.errors
            }
            (Err(a), Err(b)) => a == b,
            _ => false,
        }
    }

    /// Sliced and whole-set evaluation agree on every case of the reference
    /// pack's suites, each also tried with every action the schema declares,
    /// an undeclared one, and the context and resource states that make the
    /// pack's `forbid` policies fire.
    #[test]
    fn action_slices_decide_as_the_whole_policy_set_on_the_pack() {
        let (root, cases) = crate::testing::reference_pack_cases();
        let bundle = crate::Bundle::load(&root).expect("the reference pack loads");
        let cedar = bundle.cedar.as_ref().expect("the pack has Cedar policies");
        let mut actions: Vec<String> = cedar
            .schema
            .as_ref()
            .expect("the pack has a schema")
            .actions()
            .map(|a| a.id().unescaped().to_owned())
            .collect();
        actions.sort();
        assert!(actions.len() > 5, "{actions:?}");
        actions.push("no.such.action".to_owned());
        let copy = cedar.copy().expect("the pack compiles again");
        let (mut compared, mut fired, mut refused) = (0, 0, 0);
        for (name, base) in &cases {
            let mut variants = vec![base.clone()];
            let mut hot = base.clone();
            hot.context
                .insert("incident_mode".into(), serde_json::json!(true));
            hot.context
                .insert("site".into(), serde_json::json!("edge-site-13"));
            if let Some(r) = hot.resource.as_mut() {
                r.attributes
                    .insert("state".into(), serde_json::json!("delivered"));
            }
            variants.push(hot);
            // Values of the wrong type for what the schema declares.
            let mut wrong = base.clone();
            wrong.context.insert("site".into(), serde_json::json!(13));
            wrong
                .context
                .insert("incident_mode".into(), serde_json::json!("yes"));
            variants.push(wrong);
            let mut wrong = base.clone();
            wrong
                .context
                .insert("workflow_id".into(), serde_json::json!(["w"]));
            variants.push(wrong);
            let mut wrong = base.clone();
            if let Some(r) = wrong.resource.as_mut() {
                r.attributes.insert("state".into(), serde_json::json!(5));
            }
            variants.push(wrong);
            let mut wrong = base.clone();
            wrong
                .principal
                .attributes
                .insert("trust_zone".into(), serde_json::json!({"a": 1}));
            variants.push(wrong);
            let bases = variants.clone();
            for action in &actions {
                for base in &bases {
                    let mut r = base.clone();
                    r.action.name.clone_from(action);
                    variants.push(r);
                }
            }
            for request in &variants {
                let facts = Facts::derive(request, bundle.risk_class(&request.action.name));
                let sliced = cedar.evaluate(request, &facts);
                let whole = cedar.evaluate_unsliced(request, &facts);
                assert!(
                    same(&sliced, &whole),
                    "{}: action `{}`: {sliced:?} vs {whole:?}",
                    name,
                    request.action.name
                );
                // The schema's checks read on values decide as Cedar's.
                let by_cedar = cedar.evaluate_checked_by_cedar(request, &facts);
                assert!(
                    same(&sliced, &by_cedar),
                    "{}: action `{}`: {sliced:?} vs {by_cedar:?} (Cedar's checks)",
                    name,
                    request.action.name
                );
                // A thread's own copy decides as the shared policies.
                let copied = copy.evaluate_here(request, &facts);
                assert!(
                    same(&sliced, &copied),
                    "{}: action `{}`: {sliced:?} vs {copied:?} (a thread's copy)",
                    name,
                    request.action.name
                );
                compared += 1;
                if sliced.is_err() {
                    refused += 1;
                }
                if sliced.as_ref().is_ok_and(|v| !v.reasons.is_empty()) {
                    fired += 1;
                }
            }
        }
        assert!(compared > 1000, "{compared}");
        assert!(fired > 100, "{fired}");
        assert!(refused > 100, "{refused}");
        // The bundle's entities are the schema's actions, without the
        // placeholders that made room for the request's entities.
        let entities = cedar.entities.as_ref().expect("the schema's actions");
        let mut uids: Vec<String> = entities.iter().map(|e| e.uid().to_string()).collect();
        uids.sort();
        let mut declared: Vec<String> = cedar
            .schema
            .as_ref()
            .unwrap()
            .actions()
            .map(ToString::to_string)
            .collect();
        declared.sort();
        assert_eq!(uids, declared);
        // The slices are smaller than the set: R8 and R11 name actions.
        let all = cedar.policies.policies().count();
        assert_eq!(
            cedar.slices.get("inventory.read").policies().count(),
            all - 2
        );
        assert_eq!(
            cedar.slices.get("shipment.hold").policies().count(),
            all - 1
        );
        assert_eq!(
            cedar
                .slices
                .get("device.firmware.update")
                .policies()
                .count(),
            all - 1
        );
    }

    /// `action in` a group matches the group's members through the bundle's
    /// entities; a policy is left out only of the slices of actions its
    /// scope cannot match, and those decide as the whole set.
    /// A thread decides on the shared policies for its first [`COPY_AFTER`]
    /// decisions, then on policies of its own: the first thread there keeps
    /// the shared ones, every other gets a copy.
    #[test]
    fn a_thread_gets_its_own_copy_after_some_decisions() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/a2a-supply-chain");
        let bundle = crate::Bundle::load(&root).expect("the reference pack loads");
        let cedar = bundle.cedar.as_ref().expect("the pack has Cedar policies");
        // Both threads live until both are done: a thread that has exited
        // leaves its slot (and its copy) to the next thread that starts.
        let barrier = std::sync::Barrier::new(2);
        let copies: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..COPY_AFTER {
                            assert!(std::ptr::eq(cedar.on_this_thread(), cedar));
                        }
                        barrier.wait();
                        let copy = cedar.on_this_thread();
                        assert!(std::ptr::eq(cedar.on_this_thread(), copy));
                        // A copy does not copy itself again.
                        assert!(std::ptr::eq(copy.on_this_thread(), copy));
                        barrier.wait();
                        std::ptr::from_ref(copy) as usize
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_ne!(copies[0], copies[1]);
        let shared = std::ptr::from_ref(cedar) as usize;
        assert_eq!(copies.iter().filter(|&&c| c == shared).count(), 1);
    }

    #[test]
    fn action_slices_follow_action_groups() {
        let policies = r#"
@id("writes") permit (principal, action in Action::"writes", resource);
@id("delete") forbid (principal, action == Action::"delete", resource) when { context.x == 1 };
@id("any") permit (principal, action, resource) when { context has open };
@id("listed") forbid (principal, action in [Action::"read", Action::"other"], resource);
"#;
        let entities = r#"[
  {"uid": {"type": "Action", "id": "delete"}, "attrs": {}, "parents": [{"type": "Action", "id": "writes"}]},
  {"uid": {"type": "Action", "id": "update"}, "attrs": {}, "parents": [{"type": "Action", "id": "writes"}]},
  {"uid": {"type": "Action", "id": "writes"}, "attrs": {}, "parents": []}
]"#;
        let types = [
            ("Agent".to_owned(), 0..0),
            ("Resource".to_owned(), 0..0),
            ("Action".to_owned(), 0..0),
        ];
        let cedar = CedarPolicies::compile(
            Path::new("."),
            None,
            &[(PathBuf::from("p.cedar"), policies.to_owned())],
            &[(PathBuf::from("e.json"), entities.to_owned())],
            &types,
            |_, m| BundleError::new(BundleErrorKind::Manifest, ".", None, m),
        )
        .unwrap();
        let ids = |name: &str| {
            let mut ids: Vec<String> = cedar
                .slices
                .get(name)
                .policies()
                .map(|p| p.id().to_string())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids("delete"), ["any", "delete", "writes"]);
        assert_eq!(ids("update"), ["any", "writes"]);
        assert_eq!(ids("writes"), ["any", "writes"]);
        assert_eq!(ids("read"), ["any", "listed"]);
        assert_eq!(ids("unknown"), ["any"]);
        for action in ["delete", "update", "writes", "read", "other", "unknown"] {
            for context in [r#"{"x": 1}"#, r#"{"x": 2, "open": true}"#, "{}"] {
                let request = Request::from_value(&serde_json::json!({
                    "principal": {"id": "a"},
                    "action": {"name": action},
                    "context": serde_json::from_str::<Value>(context).unwrap(),
                }))
                .unwrap();
                let facts = Facts::derive(&request, None);
                let sliced = cedar.evaluate(&request, &facts);
                let whole = cedar.evaluate_unsliced(&request, &facts);
                assert!(
                    same(&sliced, &whole),
                    "{action} {context}: {sliced:?} vs {whole:?}"
                );
            }
        }
        // Through the group: `delete` is permitted by `writes` unless `x` is 1.
        let request = |x: i64| {
            Request::from_value(&serde_json::json!({
                "principal": {"id": "a"}, "action": {"name": "delete"}, "context": {"x": x}
            }))
            .unwrap()
        };
        let r = request(2);
        assert!(
            cedar
                .evaluate(&r, &Facts::derive(&r, None))
                .unwrap()
                .permitted
        );
        let r = request(1);
        assert!(
            !cedar
                .evaluate(&r, &Facts::derive(&r, None))
                .unwrap()
                .permitted
        );
    }

    #[test]
    fn id_lines_finds_the_first_line_of_each_id() {
        let text = "@id(\"a\")\npermit (principal, action, resource);\n\n@id(\"b\") @reason(\"x\")\nforbid (principal, action, resource);\n@id(\"a\")\n";
        let lines = id_lines(text);
        assert_eq!(lines.get("a"), Some(&1));
        assert_eq!(lines.get("b"), Some(&4));
        assert_eq!(lines.len(), 2);
        assert!(id_lines("@id(\"unterminated").is_empty());
    }

    #[test]
    fn whole_seconds_rounds_toward_the_strict_side() {
        assert_eq!(whole_seconds(1_500_000_000, false), 1);
        assert_eq!(whole_seconds(1_500_000_000, true), 2);
        assert_eq!(whole_seconds(-500_000_000, false), -1);
        assert_eq!(whole_seconds(-500_000_000, true), 0);
        assert_eq!(whole_seconds(3_000_000_000, true), 3);
    }

    #[test]
    fn derived_decimals_round_up_within_range() {
        assert!(decimal_rounded_up(1e300, "x").is_err());
        assert!(decimal_rounded_up(f64::NAN, "x").is_err());
        assert!(decimal_rounded_up(0.31, "x").is_ok());
        assert_eq!(
            value::decimal_text((0.000_01_f64 * 10_000.0).ceil() as i64),
            "0.0001"
        );
    }

    #[test]
    fn null_is_absent_and_deep_values_fail() {
        assert!(
            to_cedar(&Value::Null, &ValuePath::Root("x"), 0, None)
                .unwrap()
                .is_none()
        );
        let mut deep = Value::from(1);
        for _ in 0..70 {
            deep = Value::Array(vec![deep]);
        }
        assert!(to_cedar(&deep, &ValuePath::Root("x"), 0, None).is_err());
    }
}
