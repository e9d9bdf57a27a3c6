//! Python values to JSON and back.
//!
//! Requests reach the policies exactly as the caller wrote them: `False` is
//! `false`, `None` is `null`, `0` and `0.0` are numbers, empty containers stay
//! empty. Anything JSON cannot hold faithfully (NaN, an int beyond 64 bits, a
//! non-`str` key, bytes that are not UTF-8, a set, an arbitrary object) is an
//! error naming the JSON path, never a guess.

use agentriage::MAX_DEPTH;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple,
};
use serde_json::{Map, Number, Value};

/// Why a Python value could not become JSON; kinds are those of the core's
/// request errors (`type`, `value`, `too_deep`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionError {
    /// `type`, `value` or `too_deep`.
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

/// Converts a Python value to JSON, refusing anything JSON cannot hold
/// faithfully. Containers nest at most [`MAX_DEPTH`] levels, so a
/// self-referencing dict is an error, not a stack overflow.
pub fn to_json(obj: &Bound<'_, PyAny>) -> Result<Value, ConversionError> {
    convert(obj, &Step::Root, 0)
}

fn convert(obj: &Bound<'_, PyAny>, at: &Step<'_>, depth: usize) -> Result<Value, ConversionError> {
    if let Ok(s) = obj.cast::<PyString>() {
        return string(s, at).map(|s| Value::String(s.to_owned()));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let depth = enter(at, depth)?;
        let mut map = Map::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            insert(&mut map, &k, &v, at, depth)?;
        }
        return Ok(Value::Object(map));
    }
    // `bool` is a subclass of `int`: test it first so `False` stays false.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return integer(obj, at);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let x = f.value();
        return Number::from_f64(x).map(Value::Number).ok_or_else(|| {
            fail(
                "value",
                at,
                format!("`{x}` is not a finite number; JSON and the policies cannot hold it"),
            )
        });
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(list) = obj.cast::<PyList>() {
        let depth = enter(at, depth)?;
        let mut items = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            items.push(convert(&item, &Step::Index(at, i), depth)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let depth = enter(at, depth)?;
        let mut items = Vec::with_capacity(tuple.len());
        for (i, item) in tuple.iter().enumerate() {
            items.push(convert(&item, &Step::Index(at, i), depth)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return utf8(b.as_bytes(), at);
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return utf8(&b.to_vec(), at);
    }
    // Any other mapping (`MappingProxyType`, a custom `Mapping`): its items.
    if let Ok(mapping) = obj.cast::<PyMapping>() {
        let depth = enter(at, depth)?;
        let items = mapping
            .items()
            .map_err(|e| fail("type", at, format!("cannot read the mapping's items: {e}")))?;
        let mut map = Map::new();
        for pair in items.iter() {
            let (k, v) = pair
                .extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
                .map_err(|e| fail("type", at, format!("mapping item is not a pair: {e}")))?;
            insert(&mut map, &k, &v, at, depth)?;
        }
        return Ok(Value::Object(map));
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

fn insert(
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
    let key = string(key, at)?;
    let converted = convert(value, &Step::Key(at, key), depth)?;
    map.insert(key.to_owned(), converted);
    Ok(())
}

fn string<'a>(s: &'a Bound<'_, PyString>, at: &Step<'_>) -> Result<&'a str, ConversionError> {
    crate::text::as_utf8(s).ok_or_else(|| {
        fail(
            "value",
            at,
            "string is not valid Unicode (it holds a lone surrogate)",
        )
    })
}

fn utf8(bytes: &[u8], at: &Step<'_>) -> Result<Value, ConversionError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Value::String(s.to_owned())),
        Err(e) => Err(fail(
            "value",
            at,
            format!("bytes are not valid UTF-8 ({e}); decode them or send str"),
        )),
    }
}

fn integer(obj: &Bound<'_, PyAny>, at: &Step<'_>) -> Result<Value, ConversionError> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Ok(Value::from(u));
    }
    let shown = obj.str().map_or_else(|_| "?".to_owned(), |r| r.to_string());
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
