//! JSON parsing that refuses duplicate object keys.
//!
//! RFC 7515 §5.2 lets a JWS parser either refuse duplicate member names or
//! keep the last; two parsers making different choices read different
//! claims from the same signed bytes. agentriage refuses them, at any depth.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value parsed with duplicate keys refused.
pub(crate) struct StrictValue(pub(crate) Value);

/// The message serde reports for a duplicate key starts with this.
pub(crate) const DUPLICATE_KEY: &str = "duplicate key";

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_KEY} `{key}`")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses `bytes` as one JSON value, refusing duplicate keys.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<StrictValue>(bytes).map(|v| v.0)
}

/// Checks that `bytes` is one JSON value without duplicate keys at any
/// depth, without building it: the same rule as [`parse`], at the cost of
/// a scan. An `Err` whose message starts with [`DUPLICATE_KEY`] names the
/// repeated key; any other `Err` is a syntax error.
pub(crate) fn check_unique_keys(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut d = serde_json::Deserializer::from_slice(bytes);
    de::Deserialize::deserialize(&mut d).map(|UniqueKeys| ())?;
    d.end()
}

/// A JSON value seen only to check its keys.
struct UniqueKeys;

impl<'de> de::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

/// An object key, borrowed from the input unless it holds escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_none<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        // Objects are small: a linear scan, then a set past a few dozen keys.
        let mut seen: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        let mut many: std::collections::HashSet<std::borrow::Cow<'de, str>> =
            std::collections::HashSet::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let repeated = if many.is_empty() && seen.len() < 32 {
                seen.contains(&key)
            } else {
                if many.is_empty() {
                    many.extend(seen.drain(..));
                }
                many.contains(&key)
            };
            if repeated {
                return Err(de::Error::custom(format_args!("{DUPLICATE_KEY} `{key}`")));
            }
            if many.is_empty() {
                seen.push(key);
            } else {
                many.insert(key);
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert!(parse(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        let e = parse(br#"{"a":1,"a":2}"#).unwrap_err();
        assert!(e.to_string().starts_with("duplicate key `a`"), "{e}");
        assert!(parse(br#"{"x":{"a":1,"a":1}}"#).is_err());
        assert!(parse(br#"[{"a":1,"a":1}]"#).is_err());
        // Escapes are decoded before comparing.
        assert!(parse(br#"{"a":1,"\u0061":2}"#).is_err());
    }

    #[test]
    fn the_scan_refuses_what_parse_refuses() {
        for text in [
            &br#"{"a":1,"a":2}"#[..],
            br#"{"x":{"a":1,"a":1}}"#,
            br#"[{"a":1,"a":1}]"#,
            br#"{"a":1,"\u0061":2}"#,
        ] {
            let e = check_unique_keys(text).unwrap_err();
            assert!(e.to_string().starts_with(DUPLICATE_KEY), "{e}");
            assert!(parse(text).is_err());
        }
        let many: String = (0..100).map(|i| format!("\"k{i}\":{i},")).collect();
        assert!(check_unique_keys(format!("{{{many}\"z\":0}}").as_bytes()).is_ok());
        let e = check_unique_keys(format!("{{{many}\"k77\":0}}").as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("duplicate key `k77`"), "{e}");
        assert!(check_unique_keys(br#"{"a":1,"b":{"c":[1,{"d":2}]}}"#).is_ok());
        let e = check_unique_keys(br#"{"a":1"#).unwrap_err();
        assert!(!e.to_string().starts_with(DUPLICATE_KEY), "{e}");
        assert!(check_unique_keys(br#"{"a":1} x"#).is_err());
    }

    #[test]
    fn keeps_numbers_and_order() {
        let v = parse(br#"{"z":1,"a":-2,"f":1.5}"#).unwrap();
        assert_eq!(v.to_string(), r#"{"z":1,"a":-2,"f":1.5}"#);
    }
}
