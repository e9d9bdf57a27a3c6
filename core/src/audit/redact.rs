//! Redaction: what of a request the decision log must not hold.
//!
//! A bundle's manifest names fields to drop and fields to hash:
//!
//! ```toml
//! [log]
//! drop = ["resource.attributes.ssn", "context.customer.*"]
//! hash = ["principal.attributes.email"]
//! ```
//!
//! A path is dot-separated member names of the request as the public
//! contract shows it (`principal`, `action`, `resource`, `context`, …); `*`
//! stands for every member of an object or element of an array. A hashed
//! value is replaced by `sha256:<hex>` of its canonical encoding, or by
//! `hmac-sha256:<hex>` when the host gave the log a salt (so that small
//! value spaces, such as e-mail addresses, cannot be recovered by trying
//! every value).

use ring::hmac;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::canonical;

/// The request's top-level members a redaction path may start with.
const TOP_LEVEL: &[&str] = crate::request::TOP_LEVEL_FIELDS;

/// The `[log]` table of a bundle manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestLog {
    #[serde(default)]
    drop: Vec<Spanned<String>>,
    #[serde(default)]
    hash: Vec<Spanned<String>>,
}

/// Called with the parent object, the member name and the concrete path.
type Visitor<'a> = dyn FnMut(&mut Map<String, Value>, &str, String) + 'a;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(String),
    Any,
}

/// A bundle's redaction rules, applied to each request before it is logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    drop: Vec<(String, Vec<Step>)>,
    hash: Vec<(String, Vec<Step>)>,
}

/// The concrete fields a redaction removed or hashed in one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Redacted {
    pub dropped: Vec<String>,
    pub hashed: Vec<String>,
}

impl Redacted {
    pub(crate) fn is_empty(&self) -> bool {
        self.dropped.is_empty() && self.hashed.is_empty()
    }
}

fn parse_path(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for (i, part) in text.split('.').enumerate() {
        if part.is_empty() {
            return Err(format!(
                "redaction path `{text}` has an empty member name; write members separated by single dots"
            ));
        }
        if i == 0 && !TOP_LEVEL.contains(&part) {
            return Err(format!(
                "redaction path `{text}` must start with a request field ({})",
                TOP_LEVEL.join(", ")
            ));
        }
        steps.push(if part == "*" {
            Step::Any
        } else {
            Step::Member(part.to_owned())
        });
    }
    Ok(steps)
}

impl Redaction {
    /// Parses the manifest's `[log]` table; `error` turns a span of the
    /// manifest and a message into the bundle error naming its line.
    pub(crate) fn from_manifest<E>(
        log: Option<&ManifestLog>,
        error: impl Fn(std::ops::Range<usize>, String) -> E,
    ) -> Result<Redaction, E> {
        let mut out = Redaction::default();
        let Some(log) = log else {
            return Ok(out);
        };
        for (list, into) in [(&log.drop, &mut out.drop), (&log.hash, &mut out.hash)] {
            for p in list {
                let steps = parse_path(p.get_ref()).map_err(|m| error(p.span(), m))?;
                into.push((p.get_ref().clone(), steps));
            }
        }
        Ok(out)
    }

    /// A redaction from path lists (the syntax of the manifest's `[log]` table).
    pub fn new<S: AsRef<str>>(drop: &[S], hash: &[S]) -> Result<Redaction, String> {
        let mut out = Redaction::default();
        for p in drop {
            out.drop
                .push((p.as_ref().to_owned(), parse_path(p.as_ref())?));
        }
        for p in hash {
            out.hash
                .push((p.as_ref().to_owned(), parse_path(p.as_ref())?));
        }
        Ok(out)
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.hash.is_empty()
    }

    /// The paths to drop, as written.
    pub fn dropped_paths(&self) -> impl Iterator<Item = &str> {
        self.drop.iter().map(|(p, _)| p.as_str())
    }

    /// The paths to hash, as written.
    pub fn hashed_paths(&self) -> impl Iterator<Item = &str> {
        self.hash.iter().map(|(p, _)| p.as_str())
    }

    /// Applies the rules to `request` (the request's JSON object): hashes
    /// first, then drops; returns the concrete paths touched.
    pub(crate) fn apply(
        &self,
        request: &mut Map<String, Value>,
        salt: Option<&hmac::Key>,
    ) -> Redacted {
        let mut done = Redacted::default();
        for (_, steps) in &self.hash {
            visit(request, steps, String::new(), &mut |parent, key, path| {
                if let Some(v) = parent.get_mut(key) {
                    *v = Value::String(hash_value(v, salt));
                    done.hashed.push(path);
                }
            });
        }
        for (_, steps) in &self.drop {
            visit(request, steps, String::new(), &mut |parent, key, path| {
                if parent.remove(key).is_some() {
                    done.dropped.push(path);
                }
            });
        }
        done
    }
}

/// Calls `f(parent, key, concrete path)` for every object member `steps` reach.
fn visit(map: &mut Map<String, Value>, steps: &[Step], prefix: String, f: &mut Visitor<'_>) {
    let Some((first, rest)) = steps.split_first() else {
        return;
    };
    let keys: Vec<String> = match first {
        Step::Member(k) => {
            if map.contains_key(k) {
                vec![k.clone()]
            } else {
                Vec::new()
            }
        }
        Step::Any => map.keys().cloned().collect(),
    };
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if rest.is_empty() {
            f(map, &key, path);
        } else if let Some(child) = map.get_mut(&key) {
            descend(child, rest, path, f);
        }
    }
}

fn descend(value: &mut Value, steps: &[Step], prefix: String, f: &mut Visitor<'_>) {
    match value {
        Value::Object(m) => visit(m, steps, prefix, f),
        Value::Array(items) => {
            // Array elements are reached by `*` only; they are replaced, not removed.
            let Some((Step::Any, rest)) = steps.split_first() else {
                return;
            };
            for (i, item) in items.iter_mut().enumerate() {
                let path = format!("{prefix}.{i}");
                if rest.is_empty() {
                    let mut holder = Map::new();
                    holder.insert(String::new(), std::mem::take(item));
                    f(&mut holder, "", path);
                    *item = holder.remove("").unwrap_or(Value::Null);
                } else {
                    descend(item, rest, path, f);
                }
            }
        }
        _ => {}
    }
}

fn hash_value(value: &Value, salt: Option<&hmac::Key>) -> String {
    let bytes = canonical::to_vec(value);
    match salt {
        Some(key) => format!(
            "hmac-sha256:{}",
            super::hex(hmac::sign(key, &bytes).as_ref())
        ),
        None => format!("sha256:{}", super::hex(&Sha256::digest(&bytes))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_and_hashes_named_fields() {
        let r = Redaction::new(
            &["resource.attributes.ssn", "context.customer.*"],
            &["principal.attributes.email", "context.tags.*"],
        )
        .unwrap();
        let mut v = json!({
            "principal": {"id": "p", "attributes": {"email": "a@b.c"}},
            "resource": {"type": "t", "attributes": {"ssn": "123", "keep": 1}},
            "context": {"customer": {"name": "x", "phone": "y"}, "tags": ["a", "b"]}
        });
        let done = r.apply(v.as_object_mut().unwrap(), None);
        assert_eq!(v["resource"]["attributes"], json!({"keep": 1}));
        assert_eq!(v["context"]["customer"], json!({}));
        let email = v["principal"]["attributes"]["email"].as_str().unwrap();
        assert!(email.starts_with("sha256:") && email.len() == 71, "{email}");
        assert_ne!(v["context"]["tags"][0], v["context"]["tags"][1]);
        assert!(
            v["context"]["tags"][0]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        assert_eq!(
            done.dropped,
            [
                "resource.attributes.ssn",
                "context.customer.name",
                "context.customer.phone"
            ]
        );
        assert_eq!(
            done.hashed,
            [
                "principal.attributes.email",
                "context.tags.0",
                "context.tags.1"
            ]
        );
    }

    #[test]
    fn salted_hashes_differ_from_plain_ones() {
        let r = Redaction::new::<&str>(&[], &["principal.id"]).unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"salt");
        let mut a = json!({"principal": {"id": "p"}});
        let mut b = a.clone();
        r.apply(a.as_object_mut().unwrap(), None);
        r.apply(b.as_object_mut().unwrap(), Some(&key));
        assert!(
            b["principal"]["id"]
                .as_str()
                .unwrap()
                .starts_with("hmac-sha256:")
        );
        assert_ne!(a, b);
    }

    #[test]
    fn bad_paths_are_refused() {
        assert!(
            Redaction::new(&["nope.x"], &[])
                .unwrap_err()
                .contains("`nope.x`")
        );
        assert!(
            Redaction::new(&["context..x"], &[])
                .unwrap_err()
                .contains("empty member")
        );
    }
}
