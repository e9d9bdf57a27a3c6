//! Load-time check that no Rego function calls itself, directly or through
//! other functions.
//!
//! Rego does not allow recursion and OPA refuses it when compiling. regorus
//! finds recursive *rules* while evaluating, but a recursive *function* runs
//! until the interpreter's native stack overflows, which aborts the host
//! process. This check refuses such a bundle when it is loaded, naming the
//! function, its file and line, and the cycle, whichever evaluator the bundle
//! chooses.
//!
//! Calls are resolved the way Rego resolves them: `f(x)` in package `p` is
//! `data.p.f`, `data.q.g(x)` is itself, `lib.g(x)` goes through
//! `import data.lib`. Only calls that resolve to a function of the bundle
//! form edges, so built-ins and unresolvable references never cause a false
//! refusal.

use std::collections::BTreeMap;
use std::path::Path;

use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleHead};

use crate::error::{BundleError, BundleErrorKind};

/// A function of the bundle: where it is defined and what it calls.
struct Function {
    file: String,
    line: u32,
    calls: Vec<String>,
}

/// Refuses `modules` when a function is part of a call cycle.
pub(crate) fn check_no_recursive_functions(
    root: &Path,
    modules: &[Ref<Module>],
) -> Result<(), BundleError> {
    let mut functions: BTreeMap<String, Function> = BTreeMap::new();
    for module in modules {
        let Some(package) = path_of(&module.package.refr) else {
            continue;
        };
        let mut package_path = vec!["data".to_owned()];
        package_path.extend(package);
        let imports = imports_of(module);
        for rule in &module.policy {
            let Rule::Spec { head, bodies, span } = rule.as_ref() else {
                continue;
            };
            let RuleHead::Func { refr, assign, .. } = head else {
                continue;
            };
            let Some(name) = path_of(refr) else {
                continue;
            };
            let mut exprs: Vec<&Expr> = Vec::new();
            if let Some(a) = assign {
                exprs.push(&a.value);
            }
            let mut queries: Vec<&Query> = Vec::new();
            for body in bodies {
                if let Some(a) = &body.assign {
                    exprs.push(&a.value);
                }
                queries.push(&body.query);
            }
            let mut calls = Vec::new();
            collect_calls(exprs, queries, &mut |callee, _| {
                if let Some(full) = resolve(callee, &package_path, &imports) {
                    calls.push(full);
                }
            });
            let full = join(package_path.iter().chain(name.iter()));
            let entry = functions.entry(full).or_insert_with(|| Function {
                file: span.source.get_path().clone(),
                line: span.line,
                calls: Vec::new(),
            });
            entry.calls.extend(calls);
        }
    }
    if let Some(cycle) = find_cycle(&functions) {
        let first = cycle.first().and_then(|name| functions.get(name));
        let short: Vec<&str> = cycle
            .iter()
            .map(|n| n.strip_prefix("data.").unwrap_or(n))
            .collect();
        let message = if short.len() == 2 {
            format!(
                "function `{}` calls itself: Rego does not allow recursion",
                short.first().copied().unwrap_or_default()
            )
        } else {
            format!(
                "functions call each other in a cycle ({}): Rego does not allow recursion",
                short.join(" → ")
            )
        };
        let (file, line) = first.map_or((root.to_path_buf(), None), |f| {
            (root.join(&f.file), Some(f.line))
        });
        return Err(BundleError::new(BundleErrorKind::Rego, file, line, message));
    }
    Ok(())
}

fn join<'a>(parts: impl Iterator<Item = &'a String>) -> String {
    parts.map(String::as_str).collect::<Vec<_>>().join(".")
}

/// `a.b["c"].d` → `["a", "b", "c", "d"]`; `None` for anything else.
pub(crate) fn path_of(expr: &Expr) -> Option<Vec<String>> {
    ref_parts(expr, false)
}

/// The components of reference `expr`, innermost first in the source order.
/// A component that is not a string literal (`[x]`) makes it `None`, or,
/// with `keep_prefix`, ends it there: `a.b["c"][x].d` → `a, b, c`.
fn ref_parts(expr: &Expr, keep_prefix: bool) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut at = expr;
    loop {
        match at {
            Expr::Var { value, .. } => {
                parts.push(value.as_string().ok()?.to_string());
                break;
            }
            Expr::RefDot { refr, field, .. } => {
                parts.push(field.1.as_string().ok()?.to_string());
                at = refr;
            }
            Expr::RefBrack { refr, index, .. } => {
                match index.as_ref() {
                    Expr::String { value, .. } | Expr::RawString { value, .. } => {
                        parts.push(value.as_string().ok()?.to_string());
                    }
                    // Dynamic from here on: what follows is unknown.
                    _ if keep_prefix => parts.clear(),
                    _ => return None,
                }
                at = refr;
            }
            _ => return None,
        }
    }
    parts.reverse();
    Some(parts)
}

/// The reference a rule's head defines (`r`, `a.b[k]`, `f(x)`'s `f`).
pub(crate) fn head_ref(rule: &Rule) -> &Expr {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    }
}

/// Import aliases of a module: `import data.lib.x` → `x` ↦ `data.lib.x`,
/// `import data.lib.x as y` → `y` ↦ `data.lib.x`.
pub(crate) fn imports_of(module: &Module) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for import in &module.imports {
        let Some(path) = path_of(&import.refr) else {
            continue;
        };
        if path.first().map(String::as_str) != Some("data") {
            continue;
        }
        let alias = match &import.r#as {
            Some(span) => span.text().to_owned(),
            None => match path.last() {
                Some(last) => last.clone(),
                None => continue,
            },
        };
        out.insert(alias, path);
    }
    out
}

/// The full `data.…` name a call refers to.
fn resolve(
    callee: &Expr,
    package: &[String],
    imports: &BTreeMap<String, Vec<String>>,
) -> Option<String> {
    let path = path_of(callee)?;
    let (head, rest) = path.split_first()?;
    if head == "data" {
        return Some(join(path.iter()));
    }
    if let Some(target) = imports.get(head) {
        return Some(join(target.iter().chain(rest.iter())));
    }
    Some(join(package.iter().chain(path.iter())))
}

/// Calls `found` with the callee and the number of arguments of every call
/// in `exprs` and `queries`, however deeply nested.
pub(crate) fn collect_calls<'a>(
    exprs: Vec<&'a Expr>,
    queries: Vec<&'a Query>,
    found: &mut dyn FnMut(&'a Expr, usize),
) {
    visit_exprs(exprs, queries, &mut |e| {
        if let Expr::Call { fcn, params, .. } = e {
            found(fcn, params.len());
        }
    });
}

/// Calls `found` with every expression in `exprs` and `queries`, however
/// deeply nested (iteratively: no recursion on the native stack).
fn visit_exprs<'a>(
    mut exprs: Vec<&'a Expr>,
    mut queries: Vec<&'a Query>,
    found: &mut dyn FnMut(&'a Expr),
) {
    loop {
        if let Some(query) = queries.pop() {
            for stmt in &query.stmts {
                for m in &stmt.with_mods {
                    exprs.push(&m.refr);
                    exprs.push(&m.r#as);
                }
                match &stmt.literal {
                    Literal::SomeVars { .. } => {}
                    Literal::SomeIn {
                        key,
                        value,
                        collection,
                        ..
                    } => {
                        exprs.extend(key.iter().map(|k| k.as_ref()));
                        exprs.push(value);
                        exprs.push(collection);
                    }
                    Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => exprs.push(expr),
                    Literal::Every { domain, query, .. } => {
                        exprs.push(domain);
                        queries.push(query);
                    }
                }
            }
            continue;
        }
        let Some(expr) = exprs.pop() else {
            return;
        };
        found(expr);
        match expr {
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. }
            | Expr::Var { .. } => {}
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                exprs.extend(items.iter().map(|i| i.as_ref()));
            }
            Expr::Object { fields, .. } => {
                for (_, k, v) in fields {
                    exprs.push(k);
                    exprs.push(v);
                }
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                exprs.push(term);
                queries.push(query);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                exprs.push(key);
                exprs.push(value);
                queries.push(query);
            }
            Expr::Call { fcn, params, .. } => {
                exprs.push(fcn);
                exprs.extend(params.iter().map(|p| p.as_ref()));
            }
            Expr::UnaryExpr { expr, .. } => exprs.push(expr),
            Expr::RefDot { refr, .. } => exprs.push(refr),
            Expr::RefBrack { refr, index, .. } => {
                exprs.push(refr);
                exprs.push(index);
            }
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                exprs.push(lhs);
                exprs.push(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                exprs.extend(key.iter().map(|k| k.as_ref()));
                exprs.push(value);
                exprs.push(collection);
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

/// The expressions and queries of a rule: head values and keys, bodies,
/// a default's value.
pub(crate) fn rule_exprs(rule: &Rule) -> (Vec<&Expr>, Vec<&Query>) {
    let mut exprs: Vec<&Expr> = Vec::new();
    let mut queries: Vec<&Query> = Vec::new();
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                    if let Some(a) = assign {
                        exprs.push(&a.value);
                    }
                }
                RuleHead::Set { key, .. } => exprs.extend(key.iter().map(|k| k.as_ref())),
            }
            for body in bodies {
                if let Some(a) = &body.assign {
                    exprs.push(&a.value);
                }
                queries.push(&body.query);
            }
        }
        Rule::Default { value, .. } => exprs.push(value),
    }
    (exprs, queries)
}

/// A cycle of function names (first name repeated at the end), if any:
/// iterative depth-first search with white/grey/black colouring.
fn find_cycle(functions: &BTreeMap<String, Function>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<&str, Colour> = functions
        .keys()
        .map(|k| (k.as_str(), Colour::White))
        .collect();
    for start in functions.keys() {
        if colour.get(start.as_str()) != Some(&Colour::White) {
            continue;
        }
        // (function, index of the next call to follow)
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        colour.insert(start.as_str(), Colour::Grey);
        while let Some((name, next)) = stack.last_mut() {
            let calls = functions.get(*name).map_or(&[][..], |f| f.calls.as_slice());
            let Some(callee) = calls.get(*next) else {
                colour.insert(*name, Colour::Black);
                stack.pop();
                continue;
            };
            *next += 1;
            match colour.get(callee.as_str()).copied() {
                Some(Colour::White) => {
                    colour.insert(callee.as_str(), Colour::Grey);
                    stack.push((callee.as_str(), 0));
                }
                Some(Colour::Grey) => {
                    let from = stack.iter().position(|(n, _)| *n == callee.as_str())?;
                    let mut cycle: Vec<String> = stack
                        .get(from..)?
                        .iter()
                        .map(|(n, _)| (*n).to_owned())
                        .collect();
                    cycle.push(callee.clone());
                    return Some(cycle);
                }
                // Done already, or not a function of the bundle.
                Some(Colour::Black) | None => {}
            }
        }
    }
    None
}

/// The deepest chain of rule and function calls of `modules`, counted over
/// a graph that over-approximates what each rule may call: a reference
/// whose path turns dynamic (`data.p[x]`) is taken to reach every rule under
/// its static prefix, a plain name every rule of that name in the package,
/// and a reference to a document every rule inside it and every rule whose
/// value holds it. `None` when that graph has a cycle (Rego forbids
/// recursion; a false cycle only makes the answer `None`).
///
/// The bytecode VM may then run to completion (rule calls on the native
/// stack) when this depth is small: see `crate::rego`.
pub(crate) fn rule_call_depth(modules: &[Ref<Module>]) -> Option<usize> {
    // full rule path ("data.p.r") -> paths (static prefixes) it refers to
    let mut rules: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for module in modules {
        let Some(package) = path_of(&module.package.refr) else {
            // A package we cannot name: no claim about its calls.
            return None;
        };
        let package_path = pkg_path(&package);
        let imports = imports_of(module);
        for rule in &module.policy {
            let refr = head_ref(rule);
            let mut name = package_path.clone();
            name.extend(static_prefix(refr)?);
            let (exprs, queries) = rule_exprs(rule);
            let mut referred: Vec<Vec<String>> = Vec::new();
            // The inner parts of a reference (`data.p` of `data.p.r`) are
            // not references of their own.
            let mut inner: std::collections::HashSet<*const Expr> =
                std::collections::HashSet::new();
            visit_exprs(exprs, queries, &mut |e| {
                if let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = e {
                    inner.insert(std::ptr::from_ref(refr.as_ref()));
                }
                if inner.contains(&std::ptr::from_ref(e)) {
                    return;
                }
                if matches!(
                    e,
                    Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. }
                ) && let Some(prefix) = static_prefix(e)
                {
                    let Some((head, rest)) = prefix.split_first() else {
                        return;
                    };
                    let full: Vec<String> = if head == "data" {
                        prefix.clone()
                    } else if let Some(target) = imports.get(head) {
                        target.iter().chain(rest.iter()).cloned().collect()
                    } else if head == "input" {
                        return;
                    } else {
                        package_path.iter().chain(prefix.iter()).cloned().collect()
                    };
                    referred.push(full);
                }
            });
            rules.entry(name.join(".")).or_default().extend(referred);
        }
    }
    let names: Vec<Vec<String>> = rules
        .keys()
        .map(|k| k.split('.').map(str::to_owned).collect())
        .collect();
    // A reference reaches a rule when one path is a prefix of the other.
    let reaches = |target: &[String], rule: &[String]| {
        let n = target.len().min(rule.len());
        target.get(..n) == rule.get(..n)
    };
    let edges: BTreeMap<&str, Vec<String>> = rules
        .iter()
        .map(|(name, referred)| {
            let to: Vec<String> = names
                .iter()
                .filter(|rule| referred.iter().any(|t| reaches(t, rule)))
                .map(|rule| rule.join("."))
                .collect();
            (name.as_str(), to)
        })
        .collect();
    // Longest path, iteratively; grey = on the current path (a cycle).
    let mut depth: BTreeMap<&str, usize> = BTreeMap::new();
    let mut grey: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for start in edges.keys() {
        if depth.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        grey.insert(start);
        while let Some((name, next)) = stack.last_mut() {
            let out = edges.get(*name).map_or(&[][..], Vec::as_slice);
            if let Some(callee) = out.get(*next) {
                *next += 1;
                let callee = callee.as_str();
                if grey.contains(callee) {
                    return None;
                }
                if !depth.contains_key(callee) {
                    grey.insert(callee);
                    let callee = edges.get_key_value(callee)?.0;
                    stack.push((callee, 0));
                }
                continue;
            }
            let d = 1 + out
                .iter()
                .filter_map(|c| depth.get(c.as_str()))
                .max()
                .copied()
                .unwrap_or(0);
            let name = *name;
            depth.insert(name, d);
            grey.remove(name);
            stack.pop();
        }
    }
    Some(depth.values().copied().max().unwrap_or(0))
}

/// The leading static components of a reference (`a.b["c"][x].d` →
/// `a, b, c`); `None` for an expression that is not a reference.
fn static_prefix(expr: &Expr) -> Option<Vec<String>> {
    ref_parts(expr, true)
}

/// The rules of a bundle's decision package, `package`.
pub(crate) const DECISION_RULES: [&str; 4] = ["reject", "escalate", "allow", "obligations"];

/// A top-level rule of the decision package that no decision rule uses.
pub(crate) struct UnusedRule {
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) line: u32,
    /// The decision rule `name` is most likely a misspelling of, if any.
    pub(crate) nearest: Option<&'static str>,
}

/// Top-level rules of `package` that are neither one of [`DECISION_RULES`]
/// nor reachable from one (through the names their heads and bodies refer
/// to), nor referred to from another package: such a rule never affects a
/// decision, and is most often a misspelled decision rule (`escalte`).
pub(crate) fn unused_decision_rules(modules: &[Ref<Module>], package: &str) -> Vec<UnusedRule> {
    let package_path: Vec<String> = std::iter::once("data".to_owned())
        .chain(package.split('.').map(str::to_owned))
        .collect();
    // name -> (file, line, names referred to)
    let mut rules: BTreeMap<String, (String, u32, Vec<String>)> = BTreeMap::new();
    let mut used_from_outside: Vec<String> = Vec::new();
    for module in modules {
        let Some(pkg) = path_of(&module.package.refr) else {
            continue;
        };
        let in_decision = pkg.iter().map(String::as_str).eq(package.split('.'));
        let imports = imports_of(module);
        for rule in &module.policy {
            let (refr, exprs, queries, span) = match rule.as_ref() {
                Rule::Spec { head, bodies, span } => {
                    let mut exprs: Vec<&Expr> = Vec::new();
                    let refr = match head {
                        RuleHead::Compr { refr, assign, .. } => {
                            exprs.extend(assign.iter().map(|a| a.value.as_ref()));
                            refr
                        }
                        RuleHead::Set { refr, key, .. } => {
                            exprs.extend(key.iter().map(|k| k.as_ref()));
                            refr
                        }
                        RuleHead::Func {
                            refr, assign, args, ..
                        } => {
                            exprs.extend(assign.iter().map(|a| a.value.as_ref()));
                            exprs.extend(args.iter().map(|a| a.as_ref()));
                            refr
                        }
                    };
                    exprs.push(refr);
                    let mut queries: Vec<&Query> = Vec::new();
                    for body in bodies {
                        exprs.extend(body.assign.iter().map(|a| a.value.as_ref()));
                        queries.push(&body.query);
                    }
                    (refr, exprs, queries, span)
                }
                Rule::Default {
                    refr, value, span, ..
                } => (refr, vec![value.as_ref()], Vec::new(), span),
            };
            let mut referred = Vec::new();
            visit_exprs(exprs, queries, &mut |e| {
                match e {
                    Expr::Var { value, .. } => {
                        if let Ok(name) = value.as_string() {
                            referred.push(name.to_string());
                        }
                    }
                    Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                        // `data.<package>.name…` or an import alias into it.
                        if let Some(full) = resolve(e, &pkg_path(&pkg), &imports) {
                            let parts: Vec<&str> = full.split('.').collect();
                            if parts.len() > package_path.len()
                                && parts
                                    .iter()
                                    .zip(&package_path)
                                    .all(|(a, b)| *a == b.as_str())
                                && let Some(name) = parts.get(package_path.len())
                            {
                                referred.push((*name).to_owned());
                            }
                        }
                    }
                    _ => {}
                }
            });
            let Some(name) = path_of(refr).and_then(|p| p.into_iter().next()) else {
                continue;
            };
            if in_decision {
                let entry = rules
                    .entry(name.clone())
                    .or_insert_with(|| (span.source.get_path().clone(), span.line, Vec::new()));
                // A rule's own name in its head is not a use of it.
                entry.2.extend(referred.into_iter().filter(|r| *r != name));
            } else {
                used_from_outside.extend(referred);
            }
        }
    }
    let mut reached: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = DECISION_RULES.iter().map(|r| (*r).to_owned()).collect();
    todo.extend(used_from_outside);
    while let Some(name) = todo.pop() {
        if !reached.insert(name.clone()) {
            continue;
        }
        if let Some((_, _, referred)) = rules.get(&name) {
            todo.extend(referred.iter().cloned());
        }
    }
    let mut unused: Vec<UnusedRule> = rules
        .into_iter()
        .filter(|(name, _)| !reached.contains(name))
        .map(|(name, (file, line, _))| UnusedRule {
            nearest: nearest_decision_rule(&name),
            name,
            file,
            line,
        })
        .collect();
    unused.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    unused
}

fn pkg_path(pkg: &[String]) -> Vec<String> {
    std::iter::once("data".to_owned())
        .chain(pkg.iter().cloned())
        .collect()
}

/// The decision rule within a few edits of `name` (a third of its length,
/// at least two), if any.
fn nearest_decision_rule(name: &str) -> Option<&'static str> {
    let (rule, distance) = DECISION_RULES
        .iter()
        .map(|rule| (*rule, edit_distance(name, rule)))
        .min_by_key(|(_, d)| *d)?;
    (distance <= (rule.len() / 3).max(2)).then_some(rule)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let cost = usize::from(ca != *cb);
            let value = (diagonal + cost)
                .min(above.saturating_add(1))
                .min(left.saturating_add(1));
            diagonal = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = value;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}
