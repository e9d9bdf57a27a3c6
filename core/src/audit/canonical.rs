//! The canonical encoding records are hashed and written in: RFC 8785 (JSON
//! Canonicalization Scheme) with one stated deviation for large integers.
//!
//! - object members sorted by the UTF-16 code units of their names;
//! - no whitespace;
//! - strings: `"` and `\` escaped, `\b \t \n \f \r` as short escapes, other
//!   control characters below U+0020 as `\u00xx` (lowercase hex), every
//!   other character as its raw UTF-8;
//! - floating-point numbers as ECMAScript's `Number.prototype.toString`
//!   (shortest round-trip digits; exponent form below 1e-6 and from 1e21);
//! - integers (JSON numbers without fraction or exponent that fit in 64
//!   bits) as their exact decimal digits. RFC 8785 would round integers
//!   beyond 2^53 through a double; the log keeps them exact instead, as
//!   Python's `json` does.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// Where canonical bytes go: a `String` or a running hash.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for sha2::Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        sha2::Digest::update(self, bytes);
    }
}

/// `value` in canonical form.
pub(crate) fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_value(&mut out, value);
    out
}

/// Writes `value` in canonical form.
pub(crate) fn write_value(out: &mut impl Sink, value: &Value) {
    match value {
        Value::Null => out.put(b"null"),
        Value::Bool(true) => out.put(b"true"),
        Value::Bool(false) => out.put(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.put(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                write_value(out, item);
            }
            out.put(b"]");
        }
        Value::Object(map) => write_object(out, map, &[]),
    }
}

/// Writes `map` in canonical form, leaving out the members named in `skip`.
pub(crate) fn write_object(out: &mut impl Sink, map: &Map<String, Value>, skip: &[&str]) {
    let mut members: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .collect();
    members.sort_by(|a, b| utf16_cmp(a.0, b.0));
    out.put(b"{");
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.put(b",");
        }
        write_string(out, k);
        out.put(b":");
        write_value(out, v);
    }
    out.put(b"}");
}

fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

fn write_string(out: &mut impl Sink, s: &str) {
    out.put(b"\"");
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            _ => None,
        };
        if escape.is_none() && b >= 0x20 {
            continue;
        }
        if let Some(run) = bytes.get(start..i) {
            out.put(run);
        }
        match escape {
            Some(e) => out.put(e),
            None => out.put(format!("\\u{:04x}", b).as_bytes()),
        }
        start = i + 1;
    }
    if let Some(run) = bytes.get(start..) {
        out.put(run);
    }
    out.put(b"\"");
}

fn write_number(out: &mut impl Sink, n: &Number) {
    if let Some(i) = n.as_u64() {
        out.put(i.to_string().as_bytes());
    } else if let Some(i) = n.as_i64() {
        out.put(i.to_string().as_bytes());
    } else {
        out.put(es_number(n.as_f64().unwrap_or(0.0)).as_bytes());
    }
}

/// ECMAScript's `Number.prototype.toString` for a finite double.
pub(crate) fn es_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return "0".to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: `d.ddde±x`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let e: i64 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i64;
    let n = e + 1;
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{}", if n > 0 { "+" } else { "-" }, (n - 1).abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        String::from_utf8(to_vec(&serde_json::from_str(text).unwrap())).unwrap()
    }

    #[test]
    fn numbers_follow_ecmascript() {
        for (x, s) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (-0.0, "0"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123.456, "123.456"),
            (-2.5e30, "-2.5e+30"),
            (0.93, "0.93"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(es_number(x), s, "{x}");
        }
    }

    #[test]
    fn objects_are_sorted_and_compact() {
        assert_eq!(
            canon(r#"{ "b": [1, 2.50, true, null], "a": {"z": "x", "é": 1, "A": -3} }"#),
            r#"{"a":{"A":-3,"z":"x","é":1},"b":[1,2.5,true,null]}"#
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // U+1F600 is D83D DE00 in UTF-16, before U+FB01 (ﬁ); UTF-8 order is the reverse.
        assert_eq!(
            canon("{\"\u{FB01}\":1,\"\u{1F600}\":2}"),
            "{\"\u{1F600}\":2,\"\u{FB01}\":1}"
        );
    }

    #[test]
    fn strings_escape_only_what_jcs_escapes() {
        assert_eq!(
            canon(r#""a\"b\\c\n\u0001\u007f/\u2028é""#),
            "\"a\\\"b\\\\c\\n\\u0001\u{7f}/\u{2028}é\""
        );
    }

    #[test]
    fn big_integers_stay_exact() {
        assert_eq!(canon("18446744073709551615"), "18446744073709551615");
        assert_eq!(canon("-9007199254740993"), "-9007199254740993");
    }
}
