//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The reference pack's directory.
pub fn reference_pack() -> PathBuf {
    repo().join("policies/a2a-supply-chain")
}

/// Reads a JSON file of `testdata/`.
pub fn testdata(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("testdata").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// JSON merge patch (RFC 7396).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// One expected decision of `testdata/decisions.json`.
pub struct Case {
    pub name: String,
    pub request: Value,
    pub outcome: String,
    pub reasons: Option<Vec<String>>,
}

/// Every case of `testdata/decisions.json`, with its request built.
pub fn decision_cases() -> Vec<Case> {
    let data = testdata("decisions.json");
    let bases = &data["bases"];
    data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut request = bases[c["base"].as_str().unwrap()].clone();
            merge_patch(&mut request, &c["patch"]);
            Case {
                name: c["name"].as_str().unwrap().to_owned(),
                request,
                outcome: c["outcome"].as_str().unwrap().to_owned(),
                reasons: c["reasons"].as_array().map(|r| {
                    let mut v: Vec<String> =
                        r.iter().map(|s| s.as_str().unwrap().to_owned()).collect();
                    v.sort();
                    v
                }),
            }
        })
        .collect()
}

/// Writes a bundle into a new temporary directory: `files` are (path, text).
pub fn bundle(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
