//! A request `dict` read straight into the core's typed [`Request`].
//!
//! The general path converts the whole request to JSON values
//! ([`super::to_json`]) and hands them to the core, which reads them again
//! into a [`Request`]: every field is built twice, and every object of the
//! contract (`principal`, `credential`, `action`, …) becomes a hash map only
//! to be taken apart. This path reads the contract's objects field by field
//! and builds JSON values only for the free-form maps (`context`,
//! `attributes`).
//!
//! It is a shortcut, never a second set of rules. It takes only what it can
//! read without running Python code (plain `dict`, `list`, `tuple`, `str`,
//! `int`, `float`, `bool`, `None`) and only requests in the contract's plain
//! shape; anything else — a wrong type, an unknown field, an empty string, a
//! `datetime`, a custom mapping, any error at all — returns `None`, and the
//! caller takes the general path, which accepts or refuses the request with
//! its own error. What it builds is then checked by [`Request::validate`],
//! the core's rules for a request built in Rust. It counts the request's
//! bytes as JSON text exactly as the general path does, so a request over
//! the limit is refused the same way. The binding's tests compare both paths
//! on every request they hold and on mutations of them.

use agentriage::{
    Action, Anomaly, Attestation, Credential, Map, Principal, Request, Resource, Subject,
    SubjectKind, Timestamp, Value,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple};

use super::{ConversionError, Converter, Step, enter, min_object_bytes};

/// The request in `obj` as a [`Request`], when this path can read it; `None`
/// sends the caller to the general path.
pub fn to_request(obj: &Bound<'_, PyAny>) -> Option<Request> {
    let mut reader = Converter {
        used: 0,
        plain: true,
    };
    let request = reader.request(obj).ok()?;
    request.validate().ok()?;
    Some(request)
}

/// This path does not read the request; the general path will.
struct Bail;

impl From<ConversionError> for Bail {
    fn from(_: ConversionError) -> Bail {
        Bail
    }
}

type Read<T> = Result<T, Bail>;

/// A `str`, or `None` for Python's `None` (JSON `null`, read as absent).
fn text_or_none<'a>(
    reader: &mut Converter,
    value: &'a Bound<'_, PyAny>,
    at: &Step<'_>,
) -> Read<Option<&'a str>> {
    if value.is_none() {
        reader.charge(4, at)?;
        return Ok(None);
    }
    let s = value.cast::<PyString>().map_err(|_| Bail)?;
    Ok(Some(reader.string(s, at)?))
}

impl Converter {
    /// Reads the plain `dict` in `obj` member by member, counting its JSON
    /// text as [`Converter::convert`] does; `member` reads each value.
    fn members(
        &mut self,
        obj: &Bound<'_, PyAny>,
        at: &Step<'_>,
        depth: usize,
        mut member: impl FnMut(&mut Self, &str, &Bound<'_, PyAny>, &Step<'_>, usize) -> Read<()>,
    ) -> Read<()> {
        let dict = obj.cast::<PyDict>().map_err(|_| Bail)?;
        let depth = enter(at, depth)?;
        self.precheck(min_object_bytes(dict.len()), at)?;
        self.charge(2, at)?;
        for (i, (key, value)) in dict.iter().enumerate() {
            if i > 0 {
                self.charge(1, at)?;
            }
            let key = key.cast::<PyString>().map_err(|_| Bail)?;
            let key = self.string(key, at)?;
            self.charge(1, at)?;
            member(self, key, &value, &Step::Key(at, key), depth)?;
        }
        Ok(())
    }

    /// A string field; `None` when it is `None`.
    fn text(&mut self, value: &Bound<'_, PyAny>, at: &Step<'_>) -> Read<Option<String>> {
        Ok(text_or_none(self, value, at)?.map(str::to_owned))
    }

    /// A required, non-empty string field.
    fn required(&mut self, value: &Bound<'_, PyAny>, at: &Step<'_>) -> Read<String> {
        match text_or_none(self, value, at)? {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(Bail),
        }
    }

    /// A time field: RFC 3339 text.
    fn time(&mut self, value: &Bound<'_, PyAny>, at: &Step<'_>) -> Read<Option<Timestamp>> {
        match text_or_none(self, value, at)? {
            None => Ok(None),
            Some(s) => Timestamp::parse(s).map(Some).map_err(|_| Bail),
        }
    }

    /// A free-form object (`context`, `attributes`); empty when `None`.
    fn map(
        &mut self,
        value: &Bound<'_, PyAny>,
        at: &Step<'_>,
        depth: usize,
    ) -> Read<Map<String, Value>> {
        if value.is_none() {
            self.charge(4, at)?;
            return Ok(Map::new());
        }
        if !value.is_instance_of::<PyDict>() {
            return Err(Bail);
        }
        match self.convert(value, at, depth)? {
            Value::Object(map) => Ok(map),
            _ => Err(Bail),
        }
    }

    /// A list (or tuple) of non-empty strings; empty when `None`.
    fn strings(
        &mut self,
        value: &Bound<'_, PyAny>,
        at: &Step<'_>,
        depth: usize,
    ) -> Read<Vec<String>> {
        if value.is_none() {
            self.charge(4, at)?;
            return Ok(Vec::new());
        }
        if !(value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>()) {
            return Err(Bail);
        }
        let Value::Array(items) = self.convert(value, at, depth)? else {
            return Err(Bail);
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::String(s) if !s.is_empty() => Ok(s),
                _ => Err(Bail),
            })
            .collect()
    }

    /// A number field (`anomaly.score`): an `int` or a `float`, not a `bool`.
    fn number(&mut self, value: &Bound<'_, PyAny>, at: &Step<'_>) -> Read<Option<f64>> {
        if value.is_none() {
            self.charge(4, at)?;
            return Ok(None);
        }
        if value.is_instance_of::<PyBool>() {
            return Err(Bail);
        }
        match self.convert(value, at, 0)? {
            Value::Number(n) => n.as_f64().map(Some).ok_or(Bail),
            _ => Err(Bail),
        }
    }

    fn request(&mut self, obj: &Bound<'_, PyAny>) -> Read<Request> {
        let mut request = Request::new(String::new(), String::new());
        let mut principal = None;
        let mut action = None;
        self.members(obj, &Step::Root, 0, |r, key, value, at, depth| {
            match key {
                "trace_id" => request.trace_id = r.text(value, at)?,
                "traceparent" => request.traceparent = r.text(value, at)?,
                "time" => request.time = r.time(value, at)?,
                "principal" if !value.is_none() => {
                    principal = Some(r.principal(value, at, depth)?);
                }
                "action" if !value.is_none() => action = Some(r.action(value, at, depth)?),
                "resource" if !value.is_none() => {
                    request.resource = Some(r.resource(value, at, depth)?);
                }
                "context" => request.context = r.map(value, at, depth)?,
                "anomaly" if !value.is_none() => {
                    request.anomaly = Some(r.anomaly(value, at, depth)?);
                }
                "intent" => request.intent = r.text(value, at)?,
                "approval" => request.approval = r.text(value, at)?,
                // `None` for an object of the contract: absent, as in JSON.
                "principal" | "action" | "resource" | "anomaly" => r.charge(4, at)?,
                _ => return Err(Bail),
            }
            Ok(())
        })?;
        request.principal = principal.ok_or(Bail)?;
        request.action = action.ok_or(Bail)?;
        Ok(request)
    }

    fn principal(
        &mut self,
        obj: &Bound<'_, PyAny>,
        at: &Step<'_>,
        depth: usize,
    ) -> Read<Principal> {
        let mut p = Principal::default();
        let mut id = None;
        self.members(obj, at, depth, |r, key, value, at, depth| {
            match key {
                "id" => id = Some(r.required(value, at)?),
                "type" => p.kind = r.text(value, at)?,
                "trust_zone" => p.trust_zone = r.text(value, at)?,
                "roles" => p.roles = r.strings(value, at, depth)?,
                "delegation" => p.delegation = r.strings(value, at, depth)?,
                "credential" if !value.is_none() => {
                    let mut c = Credential::default();
                    r.members(value, at, depth, |r, key, value, at, _| {
                        match key {
                            "issuer" => c.issuer = r.text(value, at)?,
                            "expires_at" => c.expires_at = r.time(value, at)?,
                            _ => return Err(Bail),
                        }
                        Ok(())
                    })?;
                    p.credential = Some(c);
                }
                "attestation" if !value.is_none() => {
                    let mut a = Attestation::default();
                    r.members(value, at, depth, |r, key, value, at, _| {
                        match key {
                            "status" => a.status = r.text(value, at)?,
                            "kind" => a.kind = r.text(value, at)?,
                            "verified_at" => a.verified_at = r.time(value, at)?,
                            _ => return Err(Bail),
                        }
                        Ok(())
                    })?;
                    p.attestation = Some(a);
                }
                "on_behalf_of" if !value.is_none() => {
                    p.on_behalf_of = Some(r.subject(value, at, depth)?);
                }
                "attributes" => p.attributes = r.map(value, at, depth)?,
                "credential" | "attestation" | "on_behalf_of" => r.charge(4, at)?,
                _ => return Err(Bail),
            }
            Ok(())
        })?;
        p.id = id.ok_or(Bail)?;
        Ok(p)
    }

    fn subject(&mut self, obj: &Bound<'_, PyAny>, at: &Step<'_>, depth: usize) -> Read<Subject> {
        let mut id = None;
        let mut kind = None;
        let mut roles = Vec::new();
        let mut scopes = Vec::new();
        self.members(obj, at, depth, |r, key, value, at, depth| {
            match key {
                "id" => id = Some(r.required(value, at)?),
                "type" => {
                    kind = Some(match r.required(value, at)?.as_str() {
                        "user" => SubjectKind::User,
                        "service" => SubjectKind::Service,
                        _ => return Err(Bail),
                    });
                }
                "roles" => roles = r.strings(value, at, depth)?,
                "scopes" => scopes = r.strings(value, at, depth)?,
                _ => return Err(Bail),
            }
            Ok(())
        })?;
        let mut subject = Subject::new(id.ok_or(Bail)?, kind.ok_or(Bail)?);
        subject.roles = roles;
        subject.scopes = scopes;
        Ok(subject)
    }

    fn action(&mut self, obj: &Bound<'_, PyAny>, at: &Step<'_>, depth: usize) -> Read<Action> {
        let mut action = Action::default();
        let mut name = None;
        self.members(obj, at, depth, |r, key, value, at, depth| {
            match key {
                "name" => name = Some(r.required(value, at)?),
                "attributes" => action.attributes = r.map(value, at, depth)?,
                _ => return Err(Bail),
            }
            Ok(())
        })?;
        action.name = name.ok_or(Bail)?;
        Ok(action)
    }

    fn resource(&mut self, obj: &Bound<'_, PyAny>, at: &Step<'_>, depth: usize) -> Read<Resource> {
        let mut resource = Resource::default();
        let mut kind = None;
        self.members(obj, at, depth, |r, key, value, at, depth| {
            match key {
                "type" => kind = Some(r.required(value, at)?),
                "id" => resource.id = r.text(value, at)?,
                "attributes" => resource.attributes = r.map(value, at, depth)?,
                _ => return Err(Bail),
            }
            Ok(())
        })?;
        resource.kind = kind.ok_or(Bail)?;
        Ok(resource)
    }

    fn anomaly(&mut self, obj: &Bound<'_, PyAny>, at: &Step<'_>, depth: usize) -> Read<Anomaly> {
        let mut anomaly = Anomaly::default();
        self.members(obj, at, depth, |r, key, value, at, depth| {
            match key {
                "score" => anomaly.score = r.number(value, at)?,
                "features" if !value.is_none() => {
                    let mut features = std::collections::BTreeMap::new();
                    r.members(value, at, depth, |r, name, value, at, _| {
                        let x = r.number(value, at)?.ok_or(Bail)?;
                        features.insert(name.to_owned(), x);
                        Ok(())
                    })?;
                    anomaly.features = Some(features);
                }
                "features" => r.charge(4, at)?,
                _ => return Err(Bail),
            }
            Ok(())
        })?;
        Ok(anomaly)
    }
}
