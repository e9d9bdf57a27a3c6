//! A Python `str` borrowed as UTF-8, without a copy.
//!
//! pyo3's `abi3-py39` bindings only offer `to_cow`, which encodes every
//! string into a new `bytes` object and copies it: the largest cost of
//! converting a request. `PyUnicode_AsUTF8AndSize` returns the UTF-8 form
//! that CPython caches inside the string object (for ASCII strings, the
//! string's own buffer). It has been public C API since CPython 3.3 and part
//! of the stable ABI since 3.10; pyo3 declares it only for 3.10+, so it is
//! declared here.

use std::os::raw::c_char;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

#[expect(
    unsafe_code,
    reason = "declares a CPython C API function pyo3 omits for abi3-py39"
)]
mod capi {
    use super::{c_char, ffi};

    unsafe extern "C" {
        pub fn PyUnicode_AsUTF8AndSize(
            unicode: *mut ffi::PyObject,
            size: *mut ffi::Py_ssize_t,
        ) -> *const c_char;
    }
}

/// The UTF-8 text of `s`, borrowed for as long as `s` is; `None` if `s`
/// holds a lone surrogate (which UTF-8 cannot encode).
#[expect(
    unsafe_code,
    reason = "calls CPython's C API and reads the buffer it returns"
)]
pub fn as_utf8<'a>(s: &'a Bound<'_, PyString>) -> Option<&'a str> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `s` is a live `str` object and the GIL is held (a `Bound`
    // proves both). On success CPython returns a pointer to `size` bytes of
    // UTF-8 cached inside the object; strings are immutable and `s` keeps
    // the object alive, so the bytes stay valid and unchanged for `'a`.
    let ptr = unsafe { capi::PyUnicode_AsUTF8AndSize(s.as_ptr(), &mut size) };
    if ptr.is_null() {
        // CPython set a UnicodeEncodeError; the caller reports its own error.
        drop(PyErr::take(s.py()));
        return None;
    }
    let len = usize::try_from(size).ok()?;
    // SAFETY: see above: `len` initialized bytes at `ptr`, valid for `'a`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    // CPython just encoded them as UTF-8; checking again is cheap insurance.
    std::str::from_utf8(bytes).ok()
}
