//! Python values to JSON and back.
//!
//! Requests reach the policies exactly as the caller wrote them: `False` is
//! `false`, `None` is `null`, `0` and `0.0` are numbers, empty containers stay
//! empty. Anything JSON cannot hold faithfully (NaN, an int beyond 64 bits, a
//! non-`str` key, bytes that are not UTF-8, a set, a naive datetime, an
//! arbitrary object) is an error naming the JSON path, never a guess.
//!
//! Conversion holds the limits of JSON text as it goes: it counts the bytes
//! the request takes as compact JSON text (what `serde_json` writes) and the
//! nesting depth, and stops as soon as either crosses
//! [`MAX_REQUEST_BYTES`] or [`MAX_DEPTH`]: a 50 MB string, a million-element
//! list or a mapping whose iterator never ends is refused with `too_large`
//! after reading at most about a megabyte of it.

use agentriage::{MAX_DEPTH, MAX_REQUEST_BYTES};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyMemoryView,
    PySequence, PyString, PyTuple, PyType,
};
use serde_json::{Map, Number, Value};

mod typed;

pub use typed::to_request;

/// Why a Python value could not become JSON; kinds are those of the core's
/// request errors (`type`, `value`, `too_deep`, `too_large`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionError {
    /// `type`, `value`, `too_deep` or `too_large`.
    pub kind: &'static str,
    /// JSON path of the offending value, e.g. `context.score` or `$`.
    pub path: String,
    /// What is wrong, without the path.
    pub message: String,
}

/// Where a value sits in the request; rendered only when an error needs it.
#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a Step<'a>, &'a str),
    Index(&'a Step<'a>, usize),
}

impl Step<'_> {
    fn render(&self) -> String {
        match self {
            Step::Root => "$".to_owned(),
            Step::Key(Step::Root, key) => (*key).to_owned(),
            Step::Key(parent, key) => format!("{}.{key}", parent.render()),
            Step::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

fn fail(kind: &'static str, at: &Step<'_>, message: impl Into<String>) -> ConversionError {
    ConversionError {
        kind,
        path: at.render(),
        message: message.into(),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string())
}

/// `datetime.datetime`, looked up once.
static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
/// `datetime.timezone.utc`, looked up once.
static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Converts a Python value to JSON, refusing anything JSON cannot hold
/// faithfully. Containers nest at most [`MAX_DEPTH`] levels, so a
/// self-referencing dict is an error, not a stack overflow; the value's JSON
/// text may take at most [`MAX_REQUEST_BYTES`], so a huge or endless
/// container is an error, not a process that grows without bound.
pub fn to_json(obj: &Bound<'_, PyAny>) -> Result<Value, ConversionError> {
    Converter {
        used: 0,
        plain: false,
    }
    .convert(obj, &Step::Root, 0)
}

/// Smallest JSON text of an object with `n` members (`{"":0,…}` counts 4
/// bytes a member and a comma between two).
fn min_object_bytes(n: usize) -> usize {
    2 + n.saturating_mul(5).saturating_sub(1)
}

/// Smallest JSON text of an array with `n` elements (`[0,0,…]`).
fn min_array_bytes(n: usize) -> usize {
    2 + n.saturating_mul(2).saturating_sub(1)
}

/// Bytes `s` takes as a JSON string, quotes and escapes included, as
/// `serde_json` writes it: `"` and `\` and the short escapes (`\b`, `\t`,
/// `\n`, `\f`, `\r`) take 2 bytes, other control characters 6 (`\u001f`),
/// everything else its UTF-8 bytes.
fn string_bytes(s: &str) -> usize {
    let escapes: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 1,
            0x00..=0x1f => 5,
            _ => 0,
        })
        .sum();
    2 + s.len() + escapes
}

/// Counts bytes written, discarding them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes `n` takes in JSON text, exactly as `serde_json` writes it.
fn number_bytes(n: &Number) -> usize {
    let mut counter = Counter(0);
    // Writing a number to a sink that never fails cannot fail; if it did,
    // the largest number serde_json writes (24 bytes) is counted.
    match serde_json::to_writer(&mut counter, n) {
        Ok(()) => counter.0,
        Err(_) => 24,
    }
}

/// One conversion: the bytes of JSON text counted so far.
struct Converter {
    used: usize,
    /// Only values whose reading runs no Python code (`str`, `int`,
    /// `float`, `bool`, `None`, `bytes`, `dict`, `list`, `tuple`): anything
    /// else is refused with [`NOT_PLAIN`]. Nothing can then change a
    /// container while it is read, so containers are read in place instead
    /// of from a private copy.
    plain: bool,
}

/// The message of the refusal of a value a plain conversion does not read.
const NOT_PLAIN: &str = "not a plain value";

impl Converter {
    /// Counts `bytes` more of JSON text; past [`MAX_REQUEST_BYTES`], the
    /// `too_large` error JSON text gets (path `$`), naming where the limit
    /// was crossed.
    #[inline]
    fn charge(&mut self, bytes: usize, at: &Step<'_>) -> Result<(), ConversionError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > MAX_REQUEST_BYTES {
            return Err(too_large(at));
        }
        Ok(())
    }

    /// Fails at once if even the smallest JSON form of what comes next
    /// (`bytes`) would cross the limit, before any of it is read.
    fn precheck(&self, bytes: usize, at: &Step<'_>) -> Result<(), ConversionError> {
        let mut probe = Converter {
            used: self.used,
            plain: self.plain,
        };
        probe.charge(bytes, at)
    }

    fn convert(
        &mut self,
        obj: &Bound<'_, PyAny>,
        at: &Step<'_>,
        depth: usize,
    ) -> Result<Value, ConversionError> {
        if let Ok(s) = obj.cast::<PyString>() {
            return self.string(s, at).map(|s| Value::String(s.to_owned()));
        }
        if let Ok(dict) = obj.cast::<PyDict>() {
            let depth = enter(at, depth)?;
            self.precheck(min_object_bytes(dict.len()), at)?;
            // A private copy: converting a value may run Python code (a
            // custom mapping, a tzinfo) that changes the dict under us. A
            // plain conversion runs none.
            let dict = if self.plain {
                dict.clone()
            } else {
                dict.copy()
                    .map_err(|e| fail("type", at, format!("cannot read the dict: {e}")))?
            };
            self.charge(2, at)?;
            let mut map = Map::with_capacity(dict.len());
            for (i, (k, v)) in dict.iter().enumerate() {
                if i > 0 {
                    self.charge(1, at)?;
                }
                self.insert(&mut map, &k, &v, at, depth)?;
            }
            return Ok(Value::Object(map));
        }
        // `bool` is a subclass of `int`: test it first so `False` stays false.
        if let Ok(b) = obj.cast::<PyBool>() {
            let value = b.is_true();
            self.charge(if value { 4 } else { 5 }, at)?;
            return Ok(Value::Bool(value));
        }
        if obj.is_instance_of::<PyInt>() {
            let n = integer(obj, at)?;
            self.charge(number_bytes(&n), at)?;
            return Ok(Value::Number(n));
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            let x = f.value();
            let n = Number::from_f64(x).ok_or_else(|| {
                fail(
                    "value",
                    at,
                    format!("`{x}` is not a finite number; JSON and the policies cannot hold it"),
                )
            })?;
            self.charge(number_bytes(&n), at)?;
            return Ok(Value::Number(n));
        }
        if obj.is_none() {
            self.charge(4, at)?;
            return Ok(Value::Null);
        }
        if let Ok(list) = obj.cast::<PyList>() {
            let depth = enter(at, depth)?;
            self.precheck(min_array_bytes(list.len()), at)?;
            if self.plain {
                return self.array(list.iter(), list.len(), at, depth);
            }
            // A private copy, as for a dict.
            let items = list.to_tuple();
            return self.array(items.iter(), items.len(), at, depth);
        }
        if let Ok(tuple) = obj.cast::<PyTuple>() {
            let depth = enter(at, depth)?;
            self.precheck(min_array_bytes(tuple.len()), at)?;
            return self.array(tuple.iter(), tuple.len(), at, depth);
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            return self.utf8(b.as_bytes(), at);
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            self.precheck(2 + b.len(), at)?;
            return self.utf8(&b.to_vec(), at);
        }
        if self.plain {
            return Err(fail("type", at, NOT_PLAIN));
        }
        if let Some(text) = self.datetime(obj, at)? {
            return Ok(Value::String(text));
        }
        if obj.is_instance_of::<PyMemoryView>() {
            return Err(fail(
                "type",
                at,
                "a `memoryview` cannot be sent to policies; send bytes(view) for UTF-8 text, or a list",
            ));
        }
        // Any other mapping (`MappingProxyType`, a custom `Mapping`): its
        // items, read one at a time so an endless mapping stops at the limit.
        if obj.cast::<PyMapping>().is_ok() {
            let depth = enter(at, depth)?;
            let items = obj
                .call_method0("items")
                .and_then(|items| items.try_iter())
                .map_err(|e| fail("type", at, format!("cannot read the mapping's items: {e}")))?;
            self.charge(2, at)?;
            let mut map = Map::new();
            for (i, pair) in items.enumerate() {
                let pair = pair.map_err(|e| {
                    fail("type", at, format!("cannot read the mapping's items: {e}"))
                })?;
                let (k, v) = pair
                    .extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
                    .map_err(|e| fail("type", at, format!("mapping item is not a pair: {e}")))?;
                if i > 0 {
                    self.charge(1, at)?;
                }
                self.insert(&mut map, &k, &v, at, depth)?;
            }
            return Ok(Value::Object(map));
        }
        // Any other sequence (`range`, `collections.deque`, a custom
        // `Sequence`): its items, read one at a time.
        if obj.cast::<PySequence>().is_ok() {
            let depth = enter(at, depth)?;
            let items = obj
                .try_iter()
                .map_err(|e| fail("type", at, format!("cannot read the sequence's items: {e}")))?;
            self.charge(2, at)?;
            let mut out = Vec::new();
            for (i, item) in items.enumerate() {
                let item = item.map_err(|e| {
                    fail("type", at, format!("cannot read the sequence's items: {e}"))
                })?;
                if i > 0 {
                    self.charge(1, at)?;
                }
                out.push(self.convert(&item, &Step::Index(at, i), depth)?);
            }
            return Ok(Value::Array(out));
        }
        Err(fail(
            "type",
            at,
            format!(
                "a `{}` cannot be sent to policies; use dict, list, tuple, str, int, float, bool or None",
                type_name(obj)
            ),
        ))
    }

    /// The elements of a list (copied) or tuple, as an array.
    fn array<'py>(
        &mut self,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        len: usize,
        at: &Step<'_>,
        depth: usize,
    ) -> Result<Value, ConversionError> {
        self.charge(2, at)?;
        let mut out = Vec::with_capacity(len);
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.charge(1, at)?;
            }
            out.push(self.convert(&item, &Step::Index(at, i), depth)?);
        }
        Ok(Value::Array(out))
    }

    fn insert(
        &mut self,
        map: &mut Map<String, Value>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        at: &Step<'_>,
        depth: usize,
    ) -> Result<(), ConversionError> {
        let Ok(key) = key.cast::<PyString>() else {
            let shown = key
                .repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string());
            return Err(fail(
                "type",
                at,
                format!("key {shown} is a `{}`; keys must be str", type_name(key)),
            ));
        };
        let key = self.string(key, at)?;
        // The colon after the key.
        self.charge(1, at)?;
        let converted = self.convert(value, &Step::Key(at, key), depth)?;
        map.insert(key.to_owned(), converted);
        Ok(())
    }

    /// The UTF-8 text of `s`, counted as a JSON string. A string longer (in
    /// code points, each at least one byte) than the bytes left is refused
    /// before it is encoded.
    fn string<'a>(
        &mut self,
        s: &'a Bound<'_, PyString>,
        at: &Step<'_>,
    ) -> Result<&'a str, ConversionError> {
        let chars = s.len().unwrap_or(usize::MAX);
        self.precheck(chars.saturating_add(2), at)?;
        let text = crate::text::as_utf8(s).ok_or_else(|| {
            fail(
                "value",
                at,
                "string is not valid Unicode (it holds a lone surrogate)",
            )
        })?;
        self.charge(string_bytes(text), at)?;
        Ok(text)
    }

    fn utf8(&mut self, bytes: &[u8], at: &Step<'_>) -> Result<Value, ConversionError> {
        self.precheck(bytes.len().saturating_add(2), at)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                self.charge(string_bytes(s), at)?;
                Ok(Value::String(s.to_owned()))
            }
            Err(e) => Err(fail(
                "value",
                at,
                format!("bytes are not valid UTF-8 ({e}); decode them or send str"),
            )),
        }
    }

    /// An aware `datetime` as RFC 3339 text in UTC (`2026-11-21T13:05:00Z`,
    /// microseconds kept), as a JavaScript `Date` is sent; `None` if `obj`
    /// is not a `datetime`. A naive `datetime` names no instant: refused.
    fn datetime(
        &mut self,
        obj: &Bound<'_, PyAny>,
        at: &Step<'_>,
    ) -> Result<Option<String>, ConversionError> {
        let py = obj.py();
        let cls = DATETIME
            .import(py, "datetime", "datetime")
            .map_err(|e| fail("type", at, format!("cannot import datetime: {e}")))?;
        if !obj.is_instance(cls).unwrap_or(false) {
            return Ok(None);
        }
        let unreadable = |e: PyErr| fail("value", at, format!("cannot read the datetime: {e}"));
        let offset = obj.call_method0("utcoffset").map_err(unreadable)?;
        if offset.is_none() {
            return Err(fail(
                "value",
                at,
                "a naive datetime names no instant; give it a tzinfo (e.g. datetime.timezone.utc)",
            ));
        }
        let utc = UTC
            .get_or_try_init(py, || {
                py.import("datetime")
                    .and_then(|m| m.getattr("timezone"))
                    .and_then(|tz| tz.getattr("utc"))
                    .map(Bound::unbind)
            })
            .map_err(unreadable)?;
        let text: String = obj
            .call_method1("astimezone", (utc.bind(py),))
            .and_then(|t| {
                let kwargs = PyDict::new(py);
                kwargs.set_item("tzinfo", py.None())?;
                t.call_method("replace", (), Some(&kwargs))
            })
            .and_then(|t| t.call_method0("isoformat"))
            .and_then(|t| t.extract())
            .map_err(unreadable)?;
        let text = format!("{text}Z");
        self.charge(string_bytes(&text), at)?;
        Ok(Some(text))
    }
}

/// The error of a request whose JSON text crosses [`MAX_REQUEST_BYTES`] at `at`.
#[cold]
fn too_large(at: &Step<'_>) -> ConversionError {
    ConversionError {
        kind: "too_large",
        path: "$".to_owned(),
        message: format!(
            "request is more than the limit of {MAX_REQUEST_BYTES} bytes as JSON text \
             (crossed at `{}`)",
            at.render()
        ),
    }
}

/// The depth inside a new container, or an error past [`MAX_DEPTH`].
fn enter(at: &Step<'_>, depth: usize) -> Result<usize, ConversionError> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(fail(
            "too_deep",
            at,
            format!("nests deeper than {MAX_DEPTH} levels (or refers to itself)"),
        ));
    }
    Ok(depth)
}

fn integer(obj: &Bound<'_, PyAny>, at: &Step<'_>) -> Result<Number, ConversionError> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Number::from(i));
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Ok(Number::from(u));
    }
    let shown = obj.str().map_or_else(
        |_| "(too many digits to show)".to_owned(),
        |r| {
            let r = r.to_string();
            match (r.get(..20), r.get(r.len().saturating_sub(8)..)) {
                (Some(head), Some(tail)) if r.len() > 40 => format!("{head}…{tail}"),
                _ => r,
            }
        },
    );
    Err(fail(
        "value",
        at,
        format!(
            "integer `{shown}` does not fit in 64 bits; send it as a str or a float if a rounded value will do"
        ),
    ))
}

/// Converts JSON to Python: objects to `dict`, arrays to `list`, integers to
/// `int`, other numbers to `float`.
pub fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => map_to_python(py, map)?.into_any(),
    })
}

/// Converts a JSON object to a `dict`.
pub fn map_to_python<'py>(
    py: Python<'py>,
    map: &Map<String, Value>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, to_python(py, v)?)?;
    }
    Ok(dict)
}
