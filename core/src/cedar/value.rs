//! JSON values as Cedar values.
//!
//! A number becomes a Cedar value only when Cedar holds it exactly: a whole
//! number in `Long`'s range, or a number with at most four fraction digits in
//! `decimal`'s range. Nothing is rounded: anything else is refused, and the
//! decision fails closed naming the value's path.
//!
//! A float is read as the shortest decimal text that converts back to the
//! same `f64` (the text `serde_json` prints for it): `1000.1` is not exact in
//! binary, but it is exactly the four-digit decimal `1000.1` that was
//! written. A number written with at most 15 significant digits reads back as
//! written; one written with more digits than an `f64` holds has already been
//! rounded by JSON parsing before the engine sees it.
//!
//! With a schema, an attribute typed `decimal`, `datetime`, `duration` or
//! `ipaddr` (also inside records and sets) is read from a JSON string by
//! Cedar's own constructor for that type, as Cedar's schema-based JSON
//! parsing does; a JSON number for a `decimal` attribute becomes a `decimal`
//! exactly. Text the constructor refuses, or a value of another JSON kind,
//! fails the decision closed naming the path and the expected type.

use std::collections::HashMap;

use cedar_policy::{EntityTypeName, Schema};
use cedar_policy_core::ast::{ExtensionFunction, Name, PartialValue, Value as CedarValue};
use cedar_policy_core::extensions::Extensions;
use cedar_policy_core::validator::types::{Attributes, Type};
use serde_json::{Number, Value};

use crate::request::MAX_DEPTH;

/// A Cedar extension type that JSON writes as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extension {
    Decimal,
    Datetime,
    Duration,
    Ipaddr,
}

impl Extension {
    fn from_type_name(name: &Name) -> Option<Extension> {
        let name = name.to_string();
        match name.strip_prefix("__cedar::").unwrap_or(&name) {
            "decimal" => Some(Extension::Decimal),
            "datetime" => Some(Extension::Datetime),
            "duration" => Some(Extension::Duration),
            "ipaddr" => Some(Extension::Ipaddr),
            _ => None,
        }
    }

    /// The type's name in Cedar schemas.
    fn type_name(self) -> &'static str {
        match self {
            Extension::Decimal => "decimal",
            Extension::Datetime => "datetime",
            Extension::Duration => "duration",
            Extension::Ipaddr => "ipaddr",
        }
    }
}

/// Where a schema types part of a value as an extension value. Parts the
/// schema does not type so are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shape {
    /// The value itself.
    Extension(Extension),
    /// Some fields of a record.
    Record(Fields),
    /// Every element of a set.
    Set(Box<Shape>),
}

/// Record fields that hold extension values, by name.
pub(super) type Fields = HashMap<String, Shape>;

/// What the schema types as extension values among the attributes a request
/// supplies, computed once at load.
#[derive(Debug, Default)]
pub(super) struct SchemaShapes {
    /// Attributes of the principal's entity type.
    pub principal: Fields,
    /// Attributes of the resource's entity type.
    pub resource: Fields,
    /// Context fields, by action name (the context type is per action).
    pub context: HashMap<String, Fields>,
    /// The attributes the schema declares for the principal's and the
    /// resource's entity types, and each action's context fields: with a
    /// schema, a request attribute it does not declare is left out of what
    /// Cedar sees (strictly validated policies cannot refer to it), and the
    /// rest is validated by Cedar against the schema.
    pub declared: Option<Declared>,
}

/// Top-level attribute names a schema declares.
#[derive(Debug, Default)]
pub(super) struct Declared {
    pub principal: std::collections::HashSet<String>,
    pub resource: std::collections::HashSet<String>,
    /// By action name; an action the schema does not declare is absent.
    pub context: HashMap<String, std::collections::HashSet<String>>,
    /// The fields of the engine's `context.facts` record the schema declares,
    /// by action name (facts it does not declare are left out).
    pub facts: HashMap<String, std::collections::HashSet<String>>,
}

impl SchemaShapes {
    pub(super) fn new(
        schema: &Schema,
        principal: &EntityTypeName,
        resource: &EntityTypeName,
        action: &EntityTypeName,
    ) -> SchemaShapes {
        let core = schema.as_ref();
        let entity = |name: &EntityTypeName| {
            core.get_entity_type(name.as_ref())
                .map(|t| record_fields(t.attributes(), 0))
                .unwrap_or_default()
        };
        let names = |name: &EntityTypeName| {
            core.get_entity_type(name.as_ref())
                .map(|t| t.attributes().iter().map(|(n, _)| n.to_string()).collect())
                .unwrap_or_default()
        };
        let mut context = HashMap::new();
        let mut declared = Declared {
            principal: names(principal),
            resource: names(resource),
            context: HashMap::new(),
            facts: HashMap::new(),
        };
        for uid in schema.actions().filter(|uid| uid.type_name() == action) {
            if let Some(Type::Record { attrs, .. }) = core.context_type(uid.as_ref()) {
                let action = uid.id().unescaped().to_owned();
                declared.context.insert(
                    action.clone(),
                    attrs.iter().map(|(n, _)| n.to_string()).collect(),
                );
                if let Some((_, facts)) = attrs.iter().find(|(n, _)| n.as_str() == "facts")
                    && let Type::Record { attrs: fields, .. } = facts.attr_type.as_ref()
                {
                    declared
                        .facts
                        .insert(action, fields.iter().map(|(n, _)| n.to_string()).collect());
                }
                let fields = record_fields(attrs, 0);
                if !fields.is_empty() {
                    context.insert(uid.id().unescaped().to_owned(), fields);
                }
            }
        }
        SchemaShapes {
            principal: entity(principal),
            resource: entity(resource),
            context,
            declared: Some(declared),
        }
    }
}

fn record_fields(attrs: &Attributes, depth: usize) -> Fields {
    attrs
        .iter()
        .filter_map(|(name, attr)| {
            shape_of(&attr.attr_type, depth + 1).map(|s| (name.to_string(), s))
        })
        .collect()
}

fn shape_of(ty: &Type, depth: usize) -> Option<Shape> {
    // Request values deeper than this are refused anyway.
    if depth > MAX_DEPTH {
        return None;
    }
    match ty {
        Type::ExtensionType { name } => Extension::from_type_name(name).map(Shape::Extension),
        Type::Record { attrs, .. } => {
            let fields = record_fields(attrs, depth);
            (!fields.is_empty()).then_some(Shape::Record(fields))
        }
        Type::Set {
            element_type: Some(element),
        } => shape_of(element, depth + 1).map(|s| Shape::Set(Box::new(s))),
        _ => None,
    }
}

/// Cedar's extension constructors the engine calls, looked up once.
pub(super) struct ExtensionFns {
    decimal: &'static ExtensionFunction,
    datetime: &'static ExtensionFunction,
    duration: &'static ExtensionFunction,
    ip: &'static ExtensionFunction,
}

impl ExtensionFns {
    fn get(&self, extension: Extension) -> &'static ExtensionFunction {
        match extension {
            Extension::Decimal => self.decimal,
            Extension::Datetime => self.datetime,
            Extension::Duration => self.duration,
            Extension::Ipaddr => self.ip,
        }
    }
}

/// The constructors, or `None` if this build of Cedar lacks one (every
/// value needing it then fails the decision closed).
fn extension_fns() -> Option<&'static ExtensionFns> {
    static FNS: std::sync::OnceLock<Option<ExtensionFns>> = std::sync::OnceLock::new();
    FNS.get_or_init(|| {
        let all = Extensions::all_available();
        let func = |n: &str| {
            Name::parse_unqualified_name(n)
                .ok()
                .and_then(|name| all.func(&name).ok())
        };
        Some(ExtensionFns {
            decimal: func("decimal")?,
            datetime: func("datetime")?,
            duration: func("duration")?,
            ip: func("ip")?,
        })
    })
    .as_ref()
}

/// The value Cedar's constructor for `extension` makes of `text`, exactly
/// what evaluating `decimal("…")` (or `datetime`, `duration`, `ip`) in a
/// restricted expression gives; `Err` with Cedar's reason if it refuses.
fn construct(extension: Extension, text: &str) -> Result<CedarValue, String> {
    let fns = extension_fns().ok_or("extension unavailable")?;
    match fns.get(extension).call(&[CedarValue::from(text)]) {
        Ok(PartialValue::Value(v)) => Ok(v),
        Ok(PartialValue::Residual(_)) => Err("not a value".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// A `decimal` holding `scaled` ten-thousandths.
pub(super) fn decimal_value(scaled: i64) -> Result<CedarValue, String> {
    construct(Extension::Decimal, &decimal_text(scaled))
}

/// A `datetime` from its text; the text must be one Cedar parses.
pub(super) fn datetime_value(text: &str) -> Result<CedarValue, String> {
    construct(Extension::Datetime, text)
        .map_err(|e| format!("{} is not a Cedar `datetime`: {e}", shown(text)))
}

/// The text of a `decimal` holding `scaled` ten-thousandths.
pub(super) fn decimal_text(scaled: i64) -> String {
    let abs = i128::from(scaled).abs();
    let sign = if scaled < 0 { "-" } else { "" };
    format!("{sign}{}.{:04}", abs / 10_000, abs % 10_000)
}

/// Smallest `decimal`, as Cedar prints it.
pub(super) const DECIMAL_MIN_TEXT: &str = "-922337203685477.5808";

/// Largest `decimal`, as Cedar prints it.
pub(super) const DECIMAL_MAX_TEXT: &str = "922337203685477.5807";

/// Where a value sits in the request (`context.items[2].price`), rendered
/// only when a message needs it: nothing is formatted on the way down.
#[derive(Clone, Copy)]
pub(super) enum Path<'a> {
    /// A name that starts the path, e.g. `context` or `principal.attributes`.
    Root(&'a str),
    /// A member of an object.
    Field(&'a Path<'a>, &'a str),
    /// An element of an array.
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The decimal a JSON number's text denotes, as `mantissa × 10^exponent`
/// with no trailing zero in `mantissa`; `None` if the mantissa does not fit
/// 128 bits (far outside every Cedar range) or the text is not a number.
fn denoted(text: &str) -> Option<(i128, i64)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (significand, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((s, e)) => (s, e.strip_prefix('+').unwrap_or(e).parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = significand.split_once('.').unwrap_or((significand, ""));
    if whole.is_empty() {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        let digit = i128::from(c.to_digit(10)?);
        mantissa = mantissa.checked_mul(10)?.checked_add(digit)?;
    }
    let mut exponent = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    if mantissa == 0 {
        return Some((0, 0));
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent = exponent.checked_add(1)?;
    }
    Some((if negative { -mantissa } else { mantissa }, exponent))
}

/// `mantissa × 10^exponent` for `exponent ≥ 0`, if it fits `i64`.
fn scaled(mantissa: i128, exponent: i64) -> Option<i64> {
    let power = 10_i128.checked_pow(u32::try_from(exponent).ok()?)?;
    i64::try_from(mantissa.checked_mul(power)?).ok()
}

/// The Cedar value a JSON number denotes exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exact {
    /// A whole number.
    Long(i64),
    /// A number with at most four fraction digits, in ten-thousandths.
    Decimal(i64),
}

/// A JSON number as the Cedar value it denotes exactly: a `Long` when it is
/// whole, else a `decimal`; refused when neither holds it exactly.
fn exact(n: &Number, path: &Path<'_>) -> Result<Exact, String> {
    let text = || n.to_string();
    let (mantissa, exponent) = match n.as_i64() {
        Some(i) => (i128::from(i), 0),
        None => denoted(&text()).unwrap_or((i128::MAX, i64::MAX)),
    };
    if exponent >= 0 {
        return scaled(mantissa, exponent).map(Exact::Long).ok_or_else(|| {
            format!(
                "`{path}` = `{}` is out of the range of Cedar's `Long` ({}..={})",
                text(),
                i64::MIN,
                i64::MAX
            )
        });
    }
    if exponent < -4 {
        return Err(format!(
            "`{path}` = `{}` has more than four fraction digits, which Cedar's `decimal` \
             cannot hold: it is refused, not rounded",
            text()
        ));
    }
    scaled(mantissa, exponent.saturating_add(4))
        .map(Exact::Decimal)
        .ok_or_else(|| {
            format!(
                "`{path}` = `{}` is out of the range of Cedar's `decimal` ({DECIMAL_MIN_TEXT}..={DECIMAL_MAX_TEXT})",
                text()
            )
        })
}

/// A JSON number as a Cedar value, by [`exact`].
fn number(n: &Number, path: &Path<'_>) -> Result<CedarValue, String> {
    match exact(n, path)? {
        Exact::Long(i) => Ok(CedarValue::from(i)),
        Exact::Decimal(scaled) => decimal_value(scaled),
    }
}

/// A JSON number for an attribute the schema types `decimal`: one with a
/// fraction is that decimal; a whole one is a `Long` to Cedar, which its own
/// schema-based parsing refuses, and so is it here.
fn decimal_number(n: &Number, path: &Path<'_>) -> Result<CedarValue, String> {
    match exact(n, path)? {
        Exact::Decimal(scaled) => decimal_value(scaled),
        Exact::Long(_) => Err(format!(
            "`{path}` = `{n}` is a whole number, a `Long` to Cedar, but the schema types it as \
             `decimal`: write it as a string (`\"{n}.0\"`)"
        )),
    }
}

/// Short user input for a message; long input is elided.
fn shown(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        None => format!("`{text}`"),
        Some((end, _)) => format!("`{}…`", text.get(..end).unwrap_or_default()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `text` through the constructor of `extension`, checked now so that a
/// refusal names the path.
fn extension_value(
    extension: Extension,
    text: &str,
    path: &Path<'_>,
) -> Result<CedarValue, String> {
    construct(extension, text).map_err(|why| {
        format!(
            "`{path}` = {} is not a valid Cedar `{}` (the schema types it so): {why}",
            shown(text),
            extension.type_name()
        )
    })
}

/// Converts a JSON value to a Cedar value, reading extension values where
/// `shape` says the schema types them. `null` is absent in Cedar
/// (`Ok(None)`): the attribute is left out, so `has` is false.
pub(super) fn to_cedar(
    v: &Value,
    path: &Path<'_>,
    depth: usize,
    shape: Option<&Shape>,
) -> Result<Option<CedarValue>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("`{path}` nests deeper than {MAX_DEPTH} levels"));
    }
    Ok(Some(match (v, shape) {
        (Value::Null, _) => return Ok(None),
        (Value::String(s), Some(Shape::Extension(e))) => extension_value(*e, s, path)?,
        (Value::Number(n), Some(Shape::Extension(Extension::Decimal))) => decimal_number(n, path)?,
        (other, Some(Shape::Extension(e))) => {
            return Err(format!(
                "`{path}` is {}, but the schema types it as Cedar's `{}`, written as a string",
                kind(other),
                e.type_name()
            ));
        }
        (Value::Bool(b), _) => CedarValue::from(*b),
        (Value::String(s), _) => CedarValue::from(s.as_str()),
        (Value::Number(n), _) => number(n, path)?,
        (Value::Array(items), shape) => {
            let element = match shape {
                Some(Shape::Set(element)) => Some(element.as_ref()),
                _ => None,
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(e) = to_cedar(item, &Path::Index(path, i), depth + 1, element)? {
                    out.push(e);
                }
            }
            CedarValue::set(out, None)
        }
        (Value::Object(map), shape) => {
            let fields = match shape {
                Some(Shape::Record(fields)) => Some(fields),
                _ => None,
            };
            // A JSON object's member names are distinct (the request's
            // parser refuses repeated ones), so each is one record field.
            let mut out = std::collections::BTreeMap::new();
            for (k, item) in map {
                let inner = fields.and_then(|f| f.get(k));
                if let Some(e) = to_cedar(item, &Path::Field(path, k), depth + 1, inner)? {
                    out.insert(k.as_str().into(), e);
                }
            }
            CedarValue::record_arc(std::sync::Arc::new(out), None)
        }
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cedar_policy_core::FromNormalizedStr;

    #[test]
    fn denoted_reads_the_written_decimal() {
        assert_eq!(denoted("1000.1"), Some((10001, -1)));
        assert_eq!(denoted("1000.0"), Some((1, 3)));
        assert_eq!(denoted("-0.00004"), Some((-4, -5)));
        assert_eq!(denoted("1e21"), Some((1, 21)));
        assert_eq!(denoted("1.5e-7"), Some((15, -8)));
        assert_eq!(denoted("0.0"), Some((0, 0)));
        assert_eq!(denoted("x"), None);
        assert_eq!(denoted(".5"), None);
    }

    #[test]
    fn decimal_text_covers_the_whole_range() {
        assert_eq!(decimal_text(10_000_400), "1000.0400");
        assert_eq!(decimal_text(-5), "-0.0005");
        assert_eq!(decimal_text(i64::MAX), DECIMAL_MAX_TEXT);
        assert_eq!(decimal_text(i64::MIN), DECIMAL_MIN_TEXT);
    }

    fn num(v: f64) -> Number {
        Number::from_f64(v).unwrap()
    }

    #[test]
    fn numbers_are_exact_or_refused() {
        assert_eq!(
            exact(&num(1000.1), &Path::Root("x")),
            Ok(Exact::Decimal(10_001_000))
        );
        assert_eq!(
            exact(&num(-0.0001), &Path::Root("x")),
            Ok(Exact::Decimal(-1))
        );
        assert_eq!(exact(&num(1000.0), &Path::Root("x")), Ok(Exact::Long(1000)));
        assert_eq!(
            exact(&num(1e18), &Path::Root("x")),
            Ok(Exact::Long(1_000_000_000_000_000_000))
        );
        assert_eq!(
            exact(&Number::from(i64::MIN), &Path::Root("x")),
            Ok(Exact::Long(i64::MIN))
        );
        let e = exact(&num(1000.00004), &Path::Root("resource.attributes.price")).unwrap_err();
        assert!(
            e.contains("`resource.attributes.price`") && e.contains("four fraction digits"),
            "{e}"
        );
        assert!(
            exact(&num(1e300), &Path::Root("x"))
                .unwrap_err()
                .contains("`Long`")
        );
        assert!(
            exact(&num(1e15 + 0.5), &Path::Root("x"))
                .unwrap_err()
                .contains("`decimal`")
        );
        assert!(exact(&num(0.1 + 0.2), &Path::Root("x")).is_err());
        assert!(exact(&Number::from(u64::MAX), &Path::Root("x")).is_err());
        assert!(decimal_number(&num(1000.5), &Path::Root("x")).is_ok());
        let e = decimal_number(&Number::from(1000), &Path::Root("x")).unwrap_err();
        assert!(
            e.contains("whole number") && e.contains("\"1000.0\""),
            "{e}"
        );
    }

    #[test]
    fn only_the_four_extension_types_have_a_shape() {
        let names = ["decimal", "datetime", "duration", "ipaddr"];
        for n in names {
            let name = Name::from_normalized_str(n).unwrap();
            assert!(Extension::from_type_name(&name).is_some(), "{n}");
        }
        let other = Name::from_normalized_str("ip").unwrap();
        assert_eq!(Extension::from_type_name(&other), None);
    }
}
