//! The layers of `core/src`, as `docs/architecture.md` draws them: a module
//! may use modules of its own layer and of the layers below, never one
//! above. Read from the source (`crate::…` paths, including names the crate
//! root re-exports), test modules excepted, against the table in the doc.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/architecture.md");
const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Module → layer number, from the doc's table rows
/// `| N | name | `a`, `b` | … |` under "## Layers of the core".
fn layers() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(DOC).expect("docs/architecture.md");
    let section = doc
        .split("\n## Layers of the core")
        .nth(1)
        .expect("docs/architecture.md has a section `## Layers of the core`");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut out = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(layer) = cells.get(1).and_then(|c| c.parse::<usize>().ok()) else {
            continue;
        };
        let modules = cells.get(3).expect("a layer row names its modules");
        for m in modules.split(',') {
            let m = m.trim().trim_matches('`');
            assert!(!m.is_empty(), "empty module name in layer {layer}: {line}");
            assert!(
                out.insert(m.to_owned(), layer).is_none(),
                "module `{m}` is in two layers of the doc's table"
            );
        }
    }
    assert!(
        out.len() > 10,
        "the doc's layer table lists too few modules: {out:?}"
    );
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`None` for `lib.rs`).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(SRC).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    if first == "lib.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_owned())
}

/// The code of a file without comments and without its test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first identifier of every `crate::` path, and of every item of a
/// `crate::{…}` group.
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue; // e.g. `$crate::` or `other_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|&c| is_ident(c)).collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Names the crate root re-exports (`pub use module::{A, B}`), by module.
fn root_exports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(format!("{SRC}/lib.rs")).unwrap();
    let code = code_of(&lib);
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let Some(path) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let module: String = path.chars().take_while(|&c| is_ident(c)).collect();
        let names = match path.find('{') {
            Some(open) => path[open + 1..path.rfind('}').unwrap()].to_owned(),
            None => path.rsplit("::").next().unwrap().to_owned(),
        };
        for name in names.split(',') {
            let name = name.trim();
            if !name.is_empty() && name != "self" {
                out.insert(name.to_owned(), module.clone());
            }
        }
    }
    out
}

#[test]
fn every_module_uses_only_its_own_layer_and_the_layers_below() {
    let layers = layers();
    let exports = root_exports();
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    files.sort();

    let mut modules = BTreeSet::new();
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        modules.insert(module.clone());
        let Some(&own) = layers.get(&module) else {
            violations.push(format!(
                "module `{module}` is in no layer of docs/architecture.md"
            ));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for name in crate_refs(&code) {
            let target = match exports.get(&name) {
                Some(m) => m.clone(),
                None if name.chars().next().is_some_and(char::is_uppercase) => {
                    violations.push(format!(
                        "{}: `crate::{name}` is not a re-export of lib.rs",
                        file.display()
                    ));
                    continue;
                }
                None => name,
            };
            if matches!(target.as_str(), "serde_json") || target == module {
                continue;
            }
            match layers.get(&target) {
                Some(&layer) if layer <= own => {}
                Some(&layer) => violations.push(format!(
                    "{}: module `{module}` (layer {own}) uses `{target}` (layer {layer})",
                    file.strip_prefix(SRC).unwrap().display()
                )),
                None => violations.push(format!(
                    "{}: uses `{target}`, which is in no layer",
                    file.strip_prefix(SRC).unwrap().display()
                )),
            }
        }
    }
    for m in layers.keys() {
        if !modules.contains(m) {
            violations.push(format!(
                "docs/architecture.md lists `{m}`, which is not a module of core/src"
            ));
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_reader_finds_crate_paths_and_groups() {
    let code = "use crate::a::B;\nuse crate::{c, d::E};\nlet x = $crate::f; other_crate::g;\n";
    assert_eq!(crate_refs(code), ["a", "c", "d"]);
    assert_eq!(
        code_of("use crate::a;\n// crate::b\n#[cfg(test)]\nmod tests { use crate::c; }"),
        "use crate::a;"
    );
}
