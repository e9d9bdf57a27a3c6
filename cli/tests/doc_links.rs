//! The documentation's relative links lead somewhere: every linked file
//! exists and every `#anchor` names a heading of the linked page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

mod support;

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces
/// as dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#').replace('`', "").as_str()));
        }
    }
    out
}

fn pages(root: &Path) -> Vec<PathBuf> {
    let mut pages = vec![root.join("README.md"), root.join("SECURITY.md")];
    for dir in [
        "docs",
        "bindings/python",
        "bindings/node",
        "fuzz",
        "policies",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                pages.push(p);
            }
        }
    }
    pages
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = support::repo();
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages(&root) {
        let text = std::fs::read_to_string(&page).unwrap();
        let mut in_code = false;
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
            }
            if in_code {
                continue;
            }
            for m in link.captures_iter(line) {
                let target = &m[1];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let linked = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(file)
                };
                let at = format!("{}:{}: `{target}`", page.display(), number + 1);
                if !linked.exists() {
                    broken.push(format!("{at}: no such file"));
                    continue;
                }
                if !anchor.is_empty() && linked.extension().is_some_and(|x| x == "md") {
                    let headings = anchors(&std::fs::read_to_string(&linked).unwrap());
                    if !headings.iter().any(|h| h == anchor) {
                        broken.push(format!("{at}: no heading with that anchor"));
                    }
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the pattern right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_docs_name_no_design_file_that_does_not_exist() {
    // docs/node.md once sent readers to a `DESIGN.md`; the contract lives
    // in the README.
    let root = support::repo();
    for page in pages(&root) {
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(
            !text.contains("DESIGN.md") || root.join("DESIGN.md").exists(),
            "{} names DESIGN.md",
            page.display()
        );
    }
    let authoring = std::fs::read_to_string(root.join("docs/policy-authoring.md")).unwrap();
    assert!(authoring.contains("(../README.md#the-contract)"));
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(slug("The contract"), "the-contract");
    assert_eq!(
        slug("Decision log, metrics & traces"),
        "decision-log-metrics--traces"
    );
    assert_eq!(slug("`init`: a new bundle"), "init-a-new-bundle");
}
