//! The JSON of a JWS header and payload, read straight into the few members
//! the verifier looks at, borrowing strings from the decoded bytes.
//!
//! Same rules as [`super::strict_json`]: the text must be one JSON object,
//! and a key repeated in any object, at any depth, is refused. Types are
//! not checked here: a claim of the wrong type is reported by the claim
//! checks, after the signature (as for a token parsed into a generic value).

use std::borrow::Cow;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::strict_json::DUPLICATE_KEY;

/// The message serde reports when the text is JSON but not an object.
pub(crate) const NOT_AN_OBJECT: &str = "not a JSON object";

/// A member's value, kept only as far as the verifier needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Member<'a> {
    /// A string (borrowed unless it held escapes).
    Str(Cow<'a, str>),
    /// A number.
    Num(serde_json::Number),
    /// An array of members.
    Array(Vec<Member<'a>>),
    /// An object, `true`, `false` or `null`: never a valid claim value.
    Other,
}

impl Member<'_> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Member::Str(s) => Some(s),
            _ => None,
        }
    }

    /// How the member reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Member::Str(s) => format!("\"{s}\""),
            Member::Num(n) => n.to_string(),
            Member::Array(_) => "an array".to_owned(),
            Member::Other => "a non-string value".to_owned(),
        }
    }
}

/// An object key, borrowed unless it held escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Records `key` among `seen`, refusing a repeat.
fn first_time<'a, E: de::Error>(seen: &mut Vec<Cow<'a, str>>, key: Cow<'a, str>) -> Result<(), E> {
    if seen.contains(&key) {
        return Err(E::custom(format_args!("{DUPLICATE_KEY} `{key}`")));
    }
    seen.push(key);
    Ok(())
}

impl<'de> de::Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Member<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_i64<E>(self, v: i64) -> Result<Member<'de>, E> {
                Ok(Member::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Member<'de>, E> {
                Ok(Member::Num(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Member<'de>, E> {
                Ok(serde_json::Number::from_f64(v).map_or(Member::Other, Member::Num))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Member<'de>, E> {
                Ok(Member::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Member<'de>, E> {
                Ok(Member::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Member<'de>, E> {
                Ok(Member::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element::<Member<'de>>()? {
                    out.push(m);
                }
                Ok(Member::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Member<'de>, A::Error> {
                let mut seen = Vec::new();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    first_time(&mut seen, key)?;
                    map.next_value::<Member<'de>>()?;
                }
                Ok(Member::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The members named in `N` of one JSON object (the rest are walked for
/// repeated keys, then dropped).
pub(crate) struct Members<'a, const N: usize> {
    values: [Option<Member<'a>>; N],
}

impl<'a, const N: usize> Members<'a, N> {
    /// The member named `names[i]`.
    pub(crate) fn get(&self, i: usize) -> Option<&Member<'a>> {
        self.values.get(i).and_then(Option::as_ref)
    }
}

/// Parses `bytes` as one JSON object, keeping the members named in `names`.
pub(crate) fn object<'a, const N: usize>(
    bytes: &'a [u8],
    names: &'static [&'static str; N],
) -> Result<Members<'a, N>, serde_json::Error> {
    struct V<const N: usize>(&'static [&'static str; N]);
    impl<'de, const N: usize> Visitor<'de> for V<N> {
        type Value = Members<'de, N>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(NOT_AN_OBJECT)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de, N>, A::Error> {
            let mut values: [Option<Member<'de>>; N] = std::array::from_fn(|_| None);
            let mut others = Vec::new();
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                match self.0.iter().position(|n| *n == key) {
                    Some(i) => {
                        let value = map.next_value::<Member<'de>>()?;
                        match values.get_mut(i) {
                            Some(slot @ None) => *slot = Some(value),
                            _ => {
                                return Err(de::Error::custom(format_args!(
                                    "{DUPLICATE_KEY} `{key}`"
                                )));
                            }
                        }
                    }
                    None => {
                        first_time(&mut others, key)?;
                        map.next_value::<Member<'de>>()?;
                    }
                }
            }
            Ok(Members { values })
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let members = (&mut de).deserialize_map(V(names)).map_err(|e| {
        if e.to_string().starts_with("invalid type") {
            de::Error::custom(NOT_AN_OBJECT)
        } else {
            e
        }
    })?;
    de.end()?;
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["a", "b", "c"];

    fn parse(text: &str) -> Result<Members<'_, 3>, String> {
        object(text.as_bytes(), &NAMES).map_err(|e| e.to_string())
    }

    #[test]
    fn keeps_the_named_members_and_borrows_plain_strings() {
        let m = parse(r#"{"x": {"y": [1]}, "b": 7, "a": "text", "c": ["u", 2.5, null]}"#).unwrap();
        assert_eq!(m.get(0), Some(&Member::Str(Cow::Borrowed("text"))));
        assert!(matches!(m.get(0), Some(Member::Str(Cow::Borrowed(_)))));
        assert_eq!(m.get(1), Some(&Member::Num(7.into())));
        let Some(Member::Array(items)) = m.get(2) else {
            panic!("not an array");
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[2], Member::Other);
        assert_eq!(parse("{}").unwrap().get(0), None);
        // Escapes are decoded.
        assert_eq!(
            parse(r#"{"a": "\u0041\n"}"#).unwrap().get(0),
            Some(&Member::Str(Cow::Owned("A\n".into())))
        );
    }

    #[test]
    fn refuses_repeated_keys_at_any_depth_after_decoding_escapes() {
        for text in [
            r#"{"a": 1, "a": 2}"#,
            r#"{"a": 1, "\u0061": 2}"#,
            r#"{"x": 1, "x": 2}"#,
            r#"{"x": {"y": 1, "y": 2}}"#,
            r#"{"c": [{"y": 1, "\u0079": 2}]}"#,
        ] {
            let e = parse(text).err().unwrap_or_else(|| panic!("{text} parsed"));
            assert!(e.starts_with(DUPLICATE_KEY), "{text}: {e}");
        }
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for text in ["[1]", "\"a\"", "3", "null"] {
            let e = parse(text).err().unwrap();
            assert!(e.starts_with(NOT_AN_OBJECT), "{text}: {e}");
        }
        for text in ["", "{", "{} {}", "{\"a\": }", "{\"a\": 1,}"] {
            let e = parse(text)
                .err()
                .unwrap_or_else(|| panic!("{text:?} parsed"));
            assert!(
                !e.starts_with(NOT_AN_OBJECT) && !e.starts_with(DUPLICATE_KEY),
                "{e}"
            );
        }
    }
}
