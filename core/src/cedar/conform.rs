//! The schema checks of a request, read on Cedar values.
//!
//! With a schema, Cedar checks every request twice before evaluating it:
//! `Request::new` checks the scope (the principal's and resource's types are
//! declared and apply to the action; enumerated ids are valid) and the
//! context against the action's context type, and `Entities::add_entities`
//! checks each request entity against its entity type. To type-check a value
//! Cedar clones it and converts it back into a restricted expression
//! (cedar-policy-core 4.14.1, `validator/types.rs`, `Type::typecheck_value`,
//! and `entities/conformance.rs`, `typecheck_value_against_schematype`),
//! which is most of what the two checks cost.
//!
//! This module answers the same questions on the values themselves, and only
//! ever answers "passes": [`RequestChecks::context_passes`] and
//! [`RequestChecks::entity_passes`] return `true` only where Cedar's check
//! would pass, and then the engine skips Cedar's check. Anything else — a
//! value that does not conform, an entity reference anywhere, a type this
//! module does not read, an action or entity type whose check depends on
//! more than the values — returns `false`, and Cedar runs its own check,
//! which accepts or refuses and names the error exactly as before. The
//! answers are compared with Cedar's checks in this module's tests.
//!
//! The scope check depends only on the principal's and resource's types and
//! the action when neither type is an enumeration (then entity ids are not
//! checked), so it runs once per action at load; only actions whose scope
//! passes there get a fast path.

use std::collections::{BTreeMap, HashMap};

use cedar_policy::{EntityId, EntityTypeName, EntityUid, Schema};
use cedar_policy_core::ast::{
    ExprKind, Literal, PartialValue, RequestSchema, RestrictedExpr, Value as CedarValue, ValueKind,
};
use cedar_policy_core::entities::SchemaType;
use cedar_policy_core::entities::conformance::typecheck_restricted_expr_against_schematype;
use cedar_policy_core::extensions::Extensions;
use cedar_policy_core::validator::ValidatorEntityTypeKind;
use cedar_policy_core::validator::types::{Attributes, BoolType, OpenTag, Type};
use smol_str::SmolStr;

/// What the schema requires of a request, for the actions and entity types
/// whose checks depend only on the values (computed once at load).
#[derive(Debug, Default)]
pub(super) struct RequestChecks {
    /// The context type of each action whose scope check passed at load.
    context: HashMap<String, (Attributes, OpenTag)>,
    /// The attributes of the principal's entity type, if it is a standard
    /// (not enumerated, not external) type of the schema.
    principal: Option<(Attributes, OpenTag)>,
    /// The same for the resource's entity type.
    resource: Option<(Attributes, OpenTag)>,
}

impl RequestChecks {
    /// The checks `schema` asks of requests whose principal, resource and
    /// action have these types.
    pub(super) fn new(
        schema: &Schema,
        principal_type: &EntityTypeName,
        resource_type: &EntityTypeName,
        action_type: &EntityTypeName,
    ) -> RequestChecks {
        let core = schema.as_ref();
        // A standard entity type: its check depends on the attributes only.
        let standard = |name: &EntityTypeName| {
            let ty: &cedar_policy_core::ast::EntityType = name.as_ref();
            if ty.is_action() {
                return None;
            }
            let entity = core.get_entity_type(ty)?;
            matches!(entity.kind, ValidatorEntityTypeKind::Standard(_))
                .then(|| (entity.attributes().clone(), entity.open_attributes()))
        };
        let principal = standard(principal_type);
        let resource = standard(resource_type);
        let mut context = HashMap::new();
        if principal.is_some() && resource.is_some() {
            let uid = |ty: &EntityTypeName| {
                EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(""))
            };
            let (p, r) = (uid(principal_type), uid(resource_type));
            for action in schema.actions().filter(|a| a.type_name() == action_type) {
                let scope = core.validate_scope_variables(
                    Some(p.as_ref()),
                    Some(action.as_ref()),
                    Some(r.as_ref()),
                );
                if scope.is_err() {
                    continue;
                }
                if let Some(Type::Record {
                    attrs,
                    open_attributes,
                }) = core.context_type(action.as_ref())
                {
                    context.insert(
                        action.id().unescaped().to_owned(),
                        (attrs.clone(), *open_attributes),
                    );
                }
            }
        }
        RequestChecks {
            context,
            principal,
            resource,
        }
    }

    /// Whether `Request::new`'s schema check would pass for a request of the
    /// action `action` with this context (principal and resource of the
    /// bundle's types): `false` also where Cedar must decide.
    pub(super) fn context_passes(
        &self,
        action: &str,
        context: &BTreeMap<SmolStr, CedarValue>,
    ) -> bool {
        self.context.get(action).is_some_and(|(attrs, open)| {
            record_conforms(context.iter(), attrs, *open, |k| context.contains_key(k))
        })
    }

    /// Whether `add_entities`' schema check would pass for a request entity
    /// (no parents, no tags) of the principal's type (`principal`) or the
    /// resource's type with these attributes: `false` also where Cedar must
    /// decide.
    pub(super) fn entity_passes(
        &self,
        principal: bool,
        attrs: &HashMap<SmolStr, PartialValue>,
    ) -> bool {
        let ty = if principal {
            &self.principal
        } else {
            &self.resource
        };
        let Some((declared, open)) = ty else {
            return false;
        };
        if !attrs.values().all(|v| matches!(v, PartialValue::Value(_))) {
            return false;
        }
        let values = attrs.iter().filter_map(|(k, v)| match v {
            PartialValue::Value(v) => Some((k, v)),
            PartialValue::Residual(_) => None,
        });
        record_conforms(values, declared, *open, |k| attrs.contains_key(k))
    }
}

/// A record (its pairs, and `has` to look a name up) against a record type:
/// each pair declared and conforming (or the type open and the value free of
/// entity references), each required attribute present.
fn record_conforms<'a>(
    mut pairs: impl Iterator<Item = (&'a SmolStr, &'a CedarValue)>,
    attrs: &Attributes,
    open: OpenTag,
    has: impl Fn(&str) -> bool,
) -> bool {
    pairs.all(|(k, v)| match attrs.get_attr(k) {
        Some(attr) => conforms(v, &attr.attr_type),
        None => open == OpenTag::OpenAttributes && free_of_entities(v),
    }) && attrs
        .iter()
        .all(|(k, attr)| !attr.is_required || has(k.as_str()))
}

/// Whether `value` has type `ty` as both of Cedar's checks read it (the
/// request check's `Type::typecheck_value` and the entity check's
/// `typecheck_value_against_schematype`); `false` also where this module
/// does not decide: entity references (whose ids the schema may also
/// check), singleton boolean types, sets of unknown element type, `Never`.
fn conforms(value: &CedarValue, ty: &Type) -> bool {
    match (&value.value, ty) {
        (ValueKind::Lit(Literal::Bool(_)), Type::Bool(BoolType::AnyBool))
        | (ValueKind::Lit(Literal::Long(_)), Type::Long)
        | (ValueKind::Lit(Literal::String(_)), Type::String) => true,
        (
            ValueKind::Set(set),
            Type::Set {
                element_type: Some(element),
            },
        ) => set.iter().all(|v| conforms(v, element)),
        (
            ValueKind::Record(record),
            Type::Record {
                attrs,
                open_attributes,
            },
        ) => record_conforms(record.iter(), attrs, *open_attributes, |k| {
            record.contains_key(k)
        }),
        (ValueKind::ExtensionValue(_), Type::ExtensionType { name }) => {
            extension_conforms(value, name)
        }
        _ => false,
    }
}

/// An extension value against an extension type, as the stricter of Cedar's
/// two checks reads it: the value as a restricted expression is a call whose
/// function returns the type `name` and whose arguments have the function's
/// argument types, with no entity reference in it.
fn extension_conforms(value: &CedarValue, name: &cedar_policy_core::ast::Name) -> bool {
    let expr = RestrictedExpr::from(value.clone());
    let borrowed = expr.as_borrowed();
    let Some((function, args)) = borrowed.as_extn_fn_call() else {
        return false;
    };
    let extensions = Extensions::all_available();
    let Ok(function) = extensions.func(function) else {
        return false;
    };
    if !matches!(function.return_type(), Some(SchemaType::Extension { name: returned }) if returned == name)
    {
        return false;
    }
    let types = function.arg_types();
    let args: Vec<_> = args.collect();
    args.len() == types.len()
        && args.iter().zip(types).all(|(arg, ty)| {
            typecheck_restricted_expr_against_schematype(*arg, ty, extensions).is_ok()
        })
        && !expr
            .subexpressions()
            .any(|e| matches!(e.expr_kind(), ExprKind::Lit(Literal::EntityUID(_))))
}

/// Whether `value` holds no entity reference (the ids of which the schema
/// may check).
fn free_of_entities(value: &CedarValue) -> bool {
    match &value.value {
        ValueKind::Lit(Literal::EntityUID(_)) => false,
        ValueKind::Lit(_) => true,
        ValueKind::Set(set) => set.iter().all(free_of_entities),
        ValueKind::Record(record) => record.values().all(free_of_entities),
        ValueKind::ExtensionValue(_) => RestrictedExpr::from(value.clone())
            .subexpressions()
            .all(|e| !matches!(e.expr_kind(), ExprKind::Lit(Literal::EntityUID(_)))),
    }
}

#[cfg(test)]
mod tests {
    //! Every answer is compared with Cedar's own checks: `Request::new` with
    //! the schema for contexts, `EntitySchemaConformanceChecker` for
    //! entities. "Passes" must imply that Cedar's check passes; on values
    //! without entity references the two must agree exactly, so the fast
    //! path is taken wherever it can be.

    use std::collections::HashSet;
    use std::str::FromStr;
    use std::sync::Arc;

    use cedar_policy::Context;
    use cedar_policy_core::entities::conformance::EntitySchemaConformanceChecker;
    use cedar_policy_core::evaluator::RestrictedEvaluator;
    use cedar_policy_core::validator::CoreSchema;

    use super::*;

    const SCHEMA: &str = r#"
        type Inner = { a: Long, b?: String, tags?: Set<String> };
        entity Color enum ["red", "green"];
        entity Agent {
            "type"?: String, trust_zone?: String, level?: Long, inner?: Inner,
            when?: datetime, amount?: decimal, ip?: ipaddr, wait?: duration,
            flags?: Set<Bool>, peer?: Agent, color?: Color,
        };
        entity Resource { "type": String, id: String, state?: String, nums?: Set<Long> };
        action "act" appliesTo {
            principal: Agent,
            resource: Resource,
            context: {
                facts: { time: datetime, n: Long },
                site?: String, inner?: Inner, list?: Set<Long>,
                nested?: Set<Set<String>>, amount?: decimal, ok?: Bool,
                who?: Agent, color?: Color, rec?: { x?: Long, y: String },
            },
        };
        action "elsewhere" appliesTo { principal: Resource, resource: Resource };
    "#;

    /// Values of every kind Cedar has, right and wrong for each type above.
    const POOL: &[&str] = &[
        "true",
        "false",
        "1",
        "-7",
        r#""x""#,
        r#""""#,
        "[]",
        r#"["a", "b"]"#,
        "[1, 2]",
        r#"[1, "a"]"#,
        "[true]",
        r#"[["a"]]"#,
        r#"[["a"], [1]]"#,
        "[[]]",
        "{a: 1}",
        r#"{a: 1, b: "x"}"#,
        r#"{a: 1, b: "x", tags: ["t"]}"#,
        r#"{a: 1, tags: [1]}"#,
        r#"{a: "x"}"#,
        "{a: 1, z: 2}",
        "{}",
        r#"{b: "x"}"#,
        r#"{x: 1, y: "s"}"#,
        r#"{y: "s"}"#,
        "{y: 1}",
        r#"{time: datetime("2024-01-01"), n: 1}"#,
        r#"{time: "2024-01-01", n: 1}"#,
        r#"{time: datetime("2024-01-01")}"#,
        r#"decimal("1.5")"#,
        r#"datetime("2024-01-01")"#,
        r#"ip("10.0.0.1")"#,
        r#"duration("1h")"#,
        r#"[decimal("1.0")]"#,
        r#"Agent::"a""#,
        r#"Resource::"r""#,
        r#"Color::"red""#,
        r#"Color::"blue""#,
        r#"Action::"act""#,
        r#"Action::"nope""#,
        r#"[Agent::"a"]"#,
        r#"{a: 1, b: "x", who: Agent::"a"}"#,
        r#"{a: 1, tags: [Color::"blue"]}"#,
    ];

    /// The fields of the `Inner` record, and one it does not declare.
    const INNER_FIELDS: &[&[&str]] = &[
        &["inner", "a"],
        &["inner", "b"],
        &["inner", "tags"],
        &["inner", "zzz"],
    ];

    fn value(text: &str) -> CedarValue {
        let expr = RestrictedExpr::from_str(text).expect(text);
        RestrictedEvaluator::new(Extensions::all_available())
            .interpret(expr.as_borrowed())
            .expect(text)
    }

    fn record(text: &str) -> BTreeMap<SmolStr, CedarValue> {
        match value(text).value {
            ValueKind::Record(r) => Arc::unwrap_or_clone(r),
            other => panic!("{text} is not a record: {other:?}"),
        }
    }

    fn has_entity(v: &CedarValue) -> bool {
        !free_of_entities(v)
    }

    /// `base` with the field at `path` set to `to` (removed for `None`);
    /// `None` if a record on the way is missing.
    fn with(
        base: &BTreeMap<SmolStr, CedarValue>,
        path: &[&str],
        to: Option<&CedarValue>,
    ) -> Option<BTreeMap<SmolStr, CedarValue>> {
        let mut out = base.clone();
        match path {
            [] => return None,
            [last] => {
                match to {
                    Some(v) => out.insert(SmolStr::from(*last), v.clone()),
                    None => out.remove(*last),
                };
            }
            [first, rest @ ..] => {
                let ValueKind::Record(inner) = &base.get(*first)?.value else {
                    return None;
                };
                let inner = with(inner, rest, to)?;
                out.insert(SmolStr::from(*first), CedarValue::record(inner, None));
            }
        }
        Some(out)
    }

    /// Every record reachable from `base` by setting or removing one field
    /// on one of `paths` to each value of the pool.
    fn mutations(
        base: &BTreeMap<SmolStr, CedarValue>,
        paths: &[&[&str]],
    ) -> Vec<BTreeMap<SmolStr, CedarValue>> {
        let pool: Vec<CedarValue> = POOL.iter().map(|t| value(t)).collect();
        let mut out = vec![base.clone()];
        for path in paths {
            out.extend(with(base, path, None));
            for v in &pool {
                out.extend(with(base, path, Some(v)));
            }
        }
        out
    }

    fn schema() -> Schema {
        Schema::from_cedarschema_str(SCHEMA).expect("test schema").0
    }

    fn checks(schema: &Schema) -> RequestChecks {
        let ty = |n: &str| EntityTypeName::from_str(n).unwrap();
        RequestChecks::new(schema, &ty("Agent"), &ty("Resource"), &ty("Action"))
    }

    fn uid(ty: &str, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(EntityTypeName::from_str(ty).unwrap(), EntityId::new(id))
    }

    /// Tallies of one comparison: (fast path taken, Cedar passed, Cedar refused).
    fn compare(
        cases: &[BTreeMap<SmolStr, CedarValue>],
        fast: impl Fn(&BTreeMap<SmolStr, CedarValue>) -> bool,
        cedar: impl Fn(&BTreeMap<SmolStr, CedarValue>) -> bool,
    ) -> (usize, usize, usize) {
        let (mut taken, mut passed, mut refused) = (0, 0, 0);
        for case in cases {
            let (f, c) = (fast(case), cedar(case));
            assert!(!f || c, "passes here but Cedar refuses: {case:?}");
            if !case.values().any(has_entity) {
                assert_eq!(f, c, "disagrees with Cedar on {case:?}");
            }
            taken += usize::from(f);
            if c {
                passed += 1;
            } else {
                refused += 1;
            }
        }
        (taken, passed, refused)
    }

    #[test]
    fn contexts_pass_exactly_where_cedar_s_request_check_passes() {
        let schema = schema();
        let checks = checks(&schema);
        let base = record(r#"{facts: {time: datetime("2024-01-01"), n: 1}, site: "x"}"#);
        let with_inner = with(&base, &["inner"], Some(&value("{a: 1}"))).unwrap();
        let with_rec = with(&base, &["rec"], Some(&value(r#"{y: "s"}"#))).unwrap();
        let top: Vec<&[&str]> = [
            "facts", "site", "inner", "list", "nested", "amount", "ok", "who", "color", "rec",
            "zzz",
        ]
        .iter()
        .map(std::slice::from_ref)
        .collect();
        let mut cases = mutations(&base, &top);
        cases.extend(mutations(
            &base,
            &[&["facts", "time"], &["facts", "n"], &["facts", "zzz"]],
        ));
        cases.extend(mutations(&with_inner, INNER_FIELDS));
        cases.extend(mutations(
            &with_rec,
            &[&["rec", "x"], &["rec", "y"], &["rec", "zzz"]],
        ));
        let (p, a, r) = (
            uid("Agent", "p"),
            uid("Action", "act"),
            uid("Resource", "r"),
        );
        let cedar = |ctx: &BTreeMap<SmolStr, CedarValue>| {
            let context = Context::from(cedar_policy_core::ast::Context::Value(Arc::new(
                ctx.clone(),
            )));
            cedar_policy::Request::new(p.clone(), a.clone(), r.clone(), context, Some(&schema))
                .is_ok()
        };
        let (taken, passed, refused) =
            compare(&cases, |ctx| checks.context_passes("act", ctx), cedar);
        assert!(cases.len() > 800, "{} cases", cases.len());
        eprintln!(
            "{} contexts: {taken} taken, {passed} passed, {refused} refused",
            cases.len()
        );
        assert!(
            taken > 40 && refused > 500,
            "{taken} taken, {passed} passed, {refused} refused"
        );

        // An action whose scope the bundle's types fail, and one the schema
        // does not declare: Cedar always decides.
        assert!(!checks.context_passes("elsewhere", &BTreeMap::new()));
        assert!(!checks.context_passes("undeclared", &base));
        assert!(checks.context_passes("act", &base));
    }

    #[test]
    fn entities_pass_exactly_where_cedar_s_entity_check_passes() {
        let schema = schema();
        let checks = checks(&schema);
        let core = CoreSchema::new(schema.as_ref());
        let checker = EntitySchemaConformanceChecker::new(&core, Extensions::all_available());
        let cedar = |ty: &str| {
            let checker = &checker;
            let uid = uid(ty, "e");
            move |attrs: &BTreeMap<SmolStr, CedarValue>| {
                let attrs: HashMap<SmolStr, PartialValue> = attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), PartialValue::Value(v.clone())))
                    .collect();
                let entity = cedar_policy_core::ast::Entity::new_with_attr_partial_value(
                    uid.clone().into(),
                    attrs,
                    HashSet::new(),
                    HashSet::new(),
                    [],
                );
                checker.validate_entity(&entity).is_ok()
            }
        };
        let fast = |principal: bool| {
            let checks = &checks;
            move |attrs: &BTreeMap<SmolStr, CedarValue>| {
                let attrs: HashMap<SmolStr, PartialValue> = attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), PartialValue::Value(v.clone())))
                    .collect();
                checks.entity_passes(principal, &attrs)
            }
        };

        let agent: Vec<&[&str]> = [
            "type",
            "trust_zone",
            "level",
            "inner",
            "when",
            "amount",
            "ip",
            "wait",
            "flags",
            "peer",
            "color",
            "zzz",
        ]
        .iter()
        .map(std::slice::from_ref)
        .collect();
        let empty = BTreeMap::new();
        let with_inner = with(&empty, &["inner"], Some(&value("{a: 1}"))).unwrap();
        let mut cases = mutations(&empty, &agent);
        cases.extend(mutations(&with_inner, INNER_FIELDS));
        let (taken, _, refused) = compare(&cases, fast(true), cedar("Agent"));
        assert!(
            taken > 20 && refused > 300,
            "{taken} taken, {refused} refused"
        );

        let resource: Vec<&[&str]> = ["type", "id", "state", "nums", "zzz"]
            .iter()
            .map(std::slice::from_ref)
            .collect();
        let base = record(r#"{type: "t", id: "i"}"#);
        let cases = mutations(&base, &resource);
        let (taken, _, refused) = compare(&cases, fast(false), cedar("Resource"));
        assert!(
            taken > 5 && refused > 100,
            "{taken} taken, {refused} refused"
        );
    }

    #[test]
    fn enumerated_or_undeclared_types_leave_every_check_to_cedar() {
        let schema = schema();
        let ty = |n: &str| EntityTypeName::from_str(n).unwrap();
        let attrs = HashMap::new();
        let enumerated = RequestChecks::new(&schema, &ty("Color"), &ty("Resource"), &ty("Action"));
        assert!(!enumerated.entity_passes(true, &attrs));
        assert!(enumerated.context.is_empty());
        let undeclared = RequestChecks::new(&schema, &ty("Nobody"), &ty("Resource"), &ty("Action"));
        assert!(!undeclared.entity_passes(true, &attrs));
        assert!(undeclared.context.is_empty());
    }

    #[test]
    fn the_reference_pack_has_a_fast_path_for_every_action() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/a2a-supply-chain/cedar/pack.cedarschema"
        ))
        .unwrap();
        let schema = Schema::from_cedarschema_str(&text).unwrap().0;
        let checks = checks(&schema);
        assert_eq!(checks.context.len(), schema.actions().count());
        assert!(checks.principal.is_some() && checks.resource.is_some());
    }
}
