//! Load-time rewrites that make regorus evaluate Rego the way OPA does.
//!
//! OPA's compiler rewrites every module before it evaluates anything; regorus
//! evaluates the text as written, and three differences follow that can turn
//! a `reject` into an `execute` (docs/fidelity.md):
//!
//! - **Negated calls on undefined arguments.** OPA evaluates the references,
//!   composite terms and nested calls that are *arguments* of a call before
//!   the negation (its "rewrite dynamics" stage): `not is_string(input.x)` is
//!   undefined when `input.x` is, so the body fails. regorus makes the call
//!   undefined and the negation true. The rewrite binds those arguments to
//!   fresh variables just before the negated literal:
//!   `__ar1_0 = input.x; not is_string(__ar1_0)`. Operands of `==` and `=`,
//!   and a negated plain term, are left as OPA leaves them (only dynamic
//!   indices of a reference are bound), so `not input.x == 1` stays true
//!   when `input.x` is undefined, as in OPA.
//! - **Head values undefined in one iteration.** OPA binds a rule's key or
//!   value in the body, so an iteration where it is undefined just yields
//!   nothing; regorus's interpreter drops every value the rule produced. The
//!   rewrite moves a head term that may be undefined into the body:
//!   `reject contains __ar1_0 if { …; __ar1_0 = {…c.name…} }`.
//! - **Comprehension terms undefined for an item.** Likewise for
//!   `[item.name | some item in items]`: the term is bound in the body, so an
//!   item without a name contributes no element (regorus's VM keeps an
//!   undefined element otherwise).
//!
//! The rewrite works on the source text, guided by the spans of regorus's
//! parse: it replaces spans and inserts text on the same lines, never adds or
//! removes a line break, so every line number in an error, a coverage report
//! or a reason stays the author's. It repeats until nothing changes (nested
//! constructs are handled one level per pass).

use std::collections::BTreeSet;

use regorus::unstable::{
    AssignOp, BoolOp, Expr, Literal, LiteralStmt, Module, Parser, Query, Ref, Rule, RuleHead,
    Source,
};

/// Passes before the rewrite is declared not to converge (each pass handles
/// one more level of nesting).
const MAX_PASSES: usize = 32;

/// Prefix of the variables the rewrite introduces (`__ar1_0`, …); a module
/// using a name of that form itself is refused, so no name can clash.
pub(crate) const FRESH_PREFIX: &str = "__ar";

/// One text replacement: `start..end` becomes `text`.
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// Parses one module as the engine does (Rego v1).
fn parse(path: &str, text: &str) -> Result<Module, String> {
    let source =
        Source::from_contents(path.to_owned(), text.to_owned()).map_err(|e| format!("{e:#}"))?;
    let mut parser = Parser::new(&source).map_err(|e| format!("{e:#}"))?;
    parser.enable_rego_v1().map_err(|e| format!("{e:#}"))?;
    parser.parse().map_err(|e| format!("{e:#}"))
}

/// Names that a bare variable may refer to outside its body: the rules and
/// functions of `modules` and their imports' aliases. A bare variable with
/// such a name, as a call argument, is bound before a negation as OPA does
/// with the reference it resolves it to.
pub(crate) fn global_names(modules: &[(String, String)]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (path, text) in modules {
        let Ok(module) = parse(path, text) else {
            continue;
        };
        for import in &module.imports {
            if let Some(alias) = &import.r#as {
                names.insert(alias.text().to_owned());
            } else if let Some(last) = last_segment(&import.refr) {
                names.insert(last);
            }
        }
        for rule in &module.policy {
            let refr = crate::rego_calls::head_ref(rule);
            if let Some(first) = first_segment(refr) {
                names.insert(first);
            }
        }
    }
    names
}

fn first_segment(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Var { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => first_segment(refr),
        _ => None,
    }
}

fn last_segment(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Var { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        Expr::RefDot { field, .. } => field.1.as_string().ok().map(|s| s.to_string()),
        _ => None,
    }
}

/// Rewrites one module; `Err` says why the module cannot be evaluated
/// faithfully (it uses the rewrite's reserved names, or the rewrite did not
/// converge). A module that does not parse is returned unchanged, so the
/// engine reports the author's syntax error.
pub(crate) fn rewrite(
    path: &str,
    text: &str,
    globals: &BTreeSet<String>,
) -> Result<String, RewriteError> {
    if let Some(index) = text.lines().position(uses_fresh_name) {
        return Err(RewriteError {
            line: u32::try_from(index + 1).ok(),
            message: format!(
                "names starting with `{FRESH_PREFIX}` are reserved for the engine's rewrites; rename this one"
            ),
        });
    }
    let mut current = text.to_owned();
    for pass in 1..=MAX_PASSES {
        let module = match parse(path, &current) {
            Ok(module) => module,
            Err(_) if pass == 1 => return Ok(current),
            Err(e) => {
                return Err(RewriteError {
                    line: None,
                    message: format!(
                        "internal error: the module as rewritten for OPA's semantics does not parse ({e}); please report it"
                    ),
                });
            }
        };
        let mut rewriter = Rewriter {
            src: &current,
            globals,
            pass,
            next: 0,
            edits: Vec::new(),
        };
        rewriter.module(&module);
        if rewriter.edits.is_empty() {
            return Ok(current);
        }
        let edits = std::mem::take(&mut rewriter.edits);
        current = apply(&current, edits);
    }
    Err(RewriteError {
        line: None,
        message: format!(
            "nesting too deep: the module still needs rewriting after {MAX_PASSES} passes"
        ),
    })
}

/// True when `line` holds a name of the rewrite's form (`__ar` and a digit).
fn uses_fresh_name(line: &str) -> bool {
    line.match_indices(FRESH_PREFIX).any(|(at, _)| {
        line.as_bytes()
            .get(at + FRESH_PREFIX.len())
            .is_some_and(u8::is_ascii_digit)
    })
}

/// Why a module was refused by the rewrite.
#[derive(Debug)]
pub(crate) struct RewriteError {
    pub(crate) line: Option<u32>,
    pub(crate) message: String,
}

/// Applies non-overlapping edits.
fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(text.len() + edits.len() * 32);
    let mut at = 0;
    for edit in edits {
        if edit.start < at {
            // Overlapping edits are never produced; skipping keeps the text valid.
            continue;
        }
        out.push_str(text.get(at..edit.start).unwrap_or_default());
        out.push_str(&edit.text);
        at = edit.end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
}

struct Rewriter<'a> {
    src: &'a str,
    globals: &'a BTreeSet<String>,
    pass: usize,
    next: usize,
    edits: Vec<Edit>,
}

/// The byte range of `expr` in `src`. regorus 0.14 moves the start of an
/// object literal with several fields to its last key (`parse_set_or_object`
/// assigns `span.start` in its field loop); the true start is the `{` before
/// the first key, which is found here.
fn span_of(src: &str, expr: &Expr) -> (usize, usize) {
    let s = expr.span();
    let (start, end) = (s.start as usize, s.end as usize);
    if let Expr::Object { fields, .. } = expr
        && let Some((_, key, _)) = fields.first()
    {
        let (key_start, _) = span_of(src, key);
        let before = src.get(..key_start.min(start)).unwrap_or_default();
        let trimmed = before.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '`');
        if trimmed.ends_with('{') {
            return (trimmed.len() - 1, end);
        }
    }
    with_quotes(src, start, end)
}

/// regorus's string tokens span their contents without the quotes, so an
/// expression or statement that starts or ends with a string literal has a
/// span one byte short on that side: widen it until its quotes balance.
fn with_quotes(src: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    for quote in ['"', '`'] {
        for _ in 0..2 {
            let inside = src.get(start..end).unwrap_or_default();
            if unescaped(inside, quote).is_multiple_of(2) {
                break;
            }
            let q = quote.to_string();
            if src.get(end..end + 1) == Some(q.as_str()) {
                end += 1;
            } else if start
                .checked_sub(1)
                .and_then(|b| src.get(b..start))
                .is_some_and(|c| c == q)
            {
                start -= 1;
            } else {
                break;
            }
        }
    }
    (start, end)
}

/// How many `quote` characters of `text` are not escaped.
fn unescaped(text: &str, quote: char) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote == '"' {
            escaped = true;
        } else if c == quote {
            count += 1;
        }
    }
    count
}

/// The end of a statement, its closing quote included.
fn stmt_end(src: &str, stmt: &LiteralStmt) -> usize {
    with_quotes(src, stmt.span.start as usize, stmt.span.end as usize).1
}

/// True when evaluating `expr` can give undefined: references, calls,
/// operators, or composites holding one. Constants, variables and
/// comprehensions (always defined, perhaps empty) cannot.
fn may_be_undefined(expr: &Expr) -> bool {
    match expr {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. }
        | Expr::Var { .. }
        | Expr::ArrayCompr { .. }
        | Expr::SetCompr { .. }
        | Expr::ObjectCompr { .. } => false,
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().any(|i| may_be_undefined(i))
        }
        Expr::Object { fields, .. } => fields
            .iter()
            .any(|(_, k, v)| may_be_undefined(k) || may_be_undefined(v)),
        Expr::UnaryExpr { expr, .. } => !matches!(expr.as_ref(), Expr::Number { .. }),
        _ => true,
    }
}

fn is_constant(expr: &Expr) -> bool {
    match expr {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. } => true,
        Expr::UnaryExpr { expr, .. } => matches!(expr.as_ref(), Expr::Number { .. }),
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().all(|i| is_constant(i)),
        Expr::Object { fields, .. } => fields
            .iter()
            .all(|(_, k, v)| is_constant(k) && is_constant(v)),
        _ => false,
    }
}

impl Rewriter<'_> {
    fn fresh(&mut self) -> String {
        let name = format!("{FRESH_PREFIX}{}_{}", self.pass, self.next);
        self.next += 1;
        name
    }

    /// Replaces `term` with a fresh name and returns the binding
    /// `name = term` for the body it moves to.
    fn move_term(&mut self, term: &Expr) -> String {
        let name = self.fresh();
        let (start, end) = span_of(self.src, term);
        let binding = format!("{name} = {}", self.text(start, end));
        self.edits.push(Edit {
            start,
            end,
            text: name,
        });
        binding
    }

    fn text(&self, start: usize, end: usize) -> &str {
        self.src.get(start..end).unwrap_or_default()
    }

    /// The text of `start..end` with `subs` (sorted, disjoint, inside) replaced.
    fn render(&self, start: usize, end: usize, mut subs: Vec<Edit>) -> String {
        subs.sort_by_key(|e| e.start);
        let mut out = String::new();
        let mut at = start;
        for sub in subs {
            if sub.start < at || sub.end > end {
                continue;
            }
            out.push_str(self.text(at, sub.start));
            out.push_str(&sub.text);
            at = sub.end;
        }
        out.push_str(self.text(at, end));
        out
    }

    fn module(&mut self, module: &Module) {
        for rule in &module.policy {
            if let Rule::Spec { head, bodies, .. } = rule.as_ref() {
                if self.head(head, bodies) {
                    continue;
                }
                self.head_exprs(head);
                for body in bodies {
                    if let Some(assign) = &body.assign {
                        self.expr(&assign.value);
                    }
                    self.query(&body.query, true);
                }
            }
        }
    }

    /// Comprehensions inside a rule head.
    fn head_exprs(&mut self, head: &RuleHead) {
        match head {
            RuleHead::Compr { refr, assign, .. } => {
                self.expr(refr);
                if let Some(a) = assign {
                    self.expr(&a.value);
                }
            }
            RuleHead::Set { refr, key, .. } => {
                self.expr(refr);
                if let Some(k) = key {
                    self.expr(k);
                }
            }
            RuleHead::Func { assign, .. } => {
                if let Some(a) = assign {
                    self.expr(&a.value);
                }
            }
        }
    }

    /// Moves head terms that may be undefined into the bodies. Returns true
    /// when it edited the rule (nothing else of the rule is edited this pass).
    fn head(&mut self, head: &RuleHead, bodies: &[regorus::unstable::RuleBody]) -> bool {
        // Only rules whose every body has a statement, and no `else` (an else
        // body without its own value would inherit the bound name).
        if bodies.is_empty() || bodies.iter().any(|b| b.is_else || b.query.stmts.is_empty()) {
            return false;
        }
        let mut terms: Vec<&Expr> = Vec::new();
        match head {
            RuleHead::Set { key: Some(key), .. } => terms.push(key),
            RuleHead::Set { key: None, .. } => {}
            RuleHead::Compr { refr, assign, .. } => {
                if let Expr::RefBrack { index, .. } = refr.as_ref() {
                    terms.push(index);
                }
                if let Some(a) = assign {
                    terms.push(&a.value);
                }
            }
            RuleHead::Func { assign, .. } => {
                if let Some(a) = assign {
                    terms.push(&a.value);
                }
            }
        }
        let terms: Vec<&Expr> = terms.into_iter().filter(|t| may_be_undefined(t)).collect();
        if terms.is_empty() {
            return false;
        }
        let mut bindings = Vec::new();
        for term in terms {
            bindings.push(self.move_term(term));
        }
        let bindings = bindings.join("; ");
        for body in bodies {
            self.append_to_query(&body.query, &bindings, true);
        }
        true
    }

    /// Adds `stmts` after the last statement of `query`; a rule body written
    /// without braces gets them.
    fn append_to_query(&mut self, query: &Query, stmts: &str, rule_body: bool) {
        let Some(last) = query.stmts.last() else {
            return;
        };
        let last_end = stmt_end(self.src, last);
        let qs = with_quotes(self.src, query.span.start as usize, last_end).0;
        let qe = query.span.end as usize;
        if rule_body && !self.text(qs, qe).starts_with('{') {
            let inner = self.text(qs, last_end).to_owned();
            self.edits.push(Edit {
                start: qs,
                end: last_end,
                text: format!("{{ {inner}; {stmts} }}"),
            });
        } else {
            let at = last_end;
            self.edits.push(Edit {
                start: at,
                end: at,
                text: format!("; {stmts}"),
            });
        }
    }

    fn query(&mut self, query: &Query, rule_body: bool) {
        for stmt in &query.stmts {
            match &stmt.literal {
                Literal::NotExpr { expr, span } => {
                    if !self.negation(query, stmt, expr, span, rule_body) {
                        self.expr(expr);
                    }
                }
                Literal::Expr { expr, .. } => self.expr(expr),
                Literal::SomeIn {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    if let Some(k) = key {
                        self.expr(k);
                    }
                    self.expr(value);
                    self.expr(collection);
                }
                Literal::Every { domain, query, .. } => {
                    self.expr(domain);
                    self.query(query, false);
                }
                Literal::SomeVars { .. } => {}
            }
            for with in &stmt.with_mods {
                self.expr(&with.r#as);
            }
        }
    }

    /// Hoists the arguments of a negated literal; returns true when it did.
    fn negation(
        &mut self,
        query: &Query,
        stmt: &LiteralStmt,
        expr: &Expr,
        literal: &regorus::unstable::Span,
        rule_body: bool,
    ) -> bool {
        let with = stmt
            .with_mods
            .first()
            .map(|w| {
                self.text(w.span.start as usize, stmt.span.end as usize)
                    .to_owned()
            })
            .map_or(String::new(), |w| format!(" {w}"));
        let mut hoister = Hoister {
            rewriter: self,
            stmts: Vec::new(),
            with: &with,
        };
        let rendered = hoister.negated(expr);
        let stmts = std::mem::take(&mut hoister.stmts);
        let Some(rendered) = rendered else {
            return false;
        };
        if stmts.is_empty() {
            return false;
        }
        let (ls, le) = with_quotes(self.src, literal.start as usize, literal.end as usize);
        let (es, ee) = span_of(self.src, expr);
        // The literal's text with the expression replaced keeps `not` as written.
        let new_literal = format!(
            "{}; {}{}{}",
            stmts.join("; "),
            self.text(ls, es),
            rendered,
            self.text(ee, le)
        );
        let qs = with_quotes(
            self.src,
            query.span.start as usize,
            stmt_end(self.src, stmt),
        )
        .0;
        let qe = query.span.end as usize;
        if rule_body && !self.text(qs, qe).starts_with('{') {
            // A one-literal body without braces: the new statements need them.
            let end = stmt_end(self.src, stmt);
            let text = format!(
                "{{ {}{}{} }}",
                self.text(qs, ls),
                new_literal,
                self.text(le, end)
            );
            self.edits.push(Edit {
                start: qs,
                end,
                text,
            });
        } else {
            self.edits.push(Edit {
                start: ls,
                end: le,
                text: new_literal,
            });
        }
        true
    }

    /// Finds comprehensions in `expr` whose term may be undefined and binds
    /// the term in the comprehension's body. Does not descend into an edited
    /// comprehension (the next pass does).
    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                if may_be_undefined(term) && !query.stmts.is_empty() {
                    let binding = self.move_term(term);
                    self.append_to_query(query, &binding, false);
                } else {
                    self.expr(term);
                    self.query(query, false);
                }
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                let terms: Vec<&Expr> = [key.as_ref(), value.as_ref()]
                    .into_iter()
                    .filter(|t| may_be_undefined(t))
                    .collect();
                if !terms.is_empty() && !query.stmts.is_empty() {
                    let mut bindings = Vec::new();
                    for term in terms {
                        bindings.push(self.move_term(term));
                    }
                    self.append_to_query(query, &bindings.join("; "), false);
                } else {
                    self.expr(key);
                    self.expr(value);
                    self.query(query, false);
                }
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                for i in items {
                    self.expr(i);
                }
            }
            Expr::Object { fields, .. } => {
                for (_, k, v) in fields {
                    self.expr(k);
                    self.expr(v);
                }
            }
            Expr::Call { params, .. } => {
                for p in params {
                    self.expr(p);
                }
            }
            Expr::UnaryExpr { expr, .. } => self.expr(expr),
            Expr::RefDot { refr, .. } => self.expr(refr),
            Expr::RefBrack { refr, index, .. } => {
                self.expr(refr);
                self.expr(index);
            }
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
                self.expr(collection);
            }
            _ => {}
        }
    }
}

/// Binds the dynamic parts of one negated expression, OPA's way.
struct Hoister<'r, 'a> {
    rewriter: &'r mut Rewriter<'a>,
    /// `name = term` statements to put before the negation.
    stmts: Vec<String>,
    /// The literal's `with` modifiers, repeated on each statement.
    with: &'r str,
}

impl Hoister<'_, '_> {
    fn bind(&mut self, text: String) -> String {
        let name = self.rewriter.fresh();
        self.stmts.push(format!("{name} = {text}{}", self.with));
        name
    }

    /// The expression of `not E`: returns its new text when anything was bound.
    fn negated(&mut self, expr: &Expr) -> Option<String> {
        match expr {
            Expr::BoolExpr {
                op: BoolOp::Eq,
                lhs,
                rhs,
                ..
            }
            | Expr::AssignExpr {
                op: AssignOp::Eq,
                lhs,
                rhs,
                ..
            } => self.children(expr, &[lhs, rhs], Self::term),
            _ if is_call(expr) => self.call_operands(expr),
            _ => self.term(expr),
        }
    }

    /// Renders `expr` with each of `children` transformed by `f`.
    fn children(
        &mut self,
        expr: &Expr,
        children: &[&Ref<Expr>],
        f: fn(&mut Self, &Expr) -> Option<String>,
    ) -> Option<String> {
        let mut subs = Vec::new();
        for child in children {
            if let Some(text) = f(self, child) {
                let (start, end) = span_of(self.rewriter.src, child);
                subs.push(Edit { start, end, text });
            }
        }
        if subs.is_empty() {
            return None;
        }
        let (s, e) = span_of(self.rewriter.src, expr);
        Some(self.rewriter.render(s, e, subs))
    }

    fn call_operands(&mut self, expr: &Expr) -> Option<String> {
        let operands = operands(expr);
        self.children(expr, &operands, Self::operand)
    }

    /// A term in equality or plain-term position: only the dynamic indices of
    /// a reference are bound; composites and nested calls as operands.
    fn term(&mut self, expr: &Expr) -> Option<String> {
        match expr {
            Expr::RefDot { .. } | Expr::RefBrack { .. } => self.ref_indices(expr),
            Expr::Var { .. }
            | Expr::ArrayCompr { .. }
            | Expr::SetCompr { .. }
            | Expr::ObjectCompr { .. } => None,
            _ if is_constant(expr) => None,
            _ => self.operand(expr),
        }
    }

    /// A term in argument position: references, rule names, comprehensions
    /// and nested calls are bound; composites have their elements bound.
    fn operand(&mut self, expr: &Expr) -> Option<String> {
        if is_constant(expr) {
            return None;
        }
        match expr {
            Expr::Var { value, .. } => {
                let name = value.as_string().ok()?;
                if self.rewriter.globals.contains(name.as_ref()) {
                    let (s, e) = span_of(self.rewriter.src, expr);
                    let text = self.rewriter.text(s, e).to_owned();
                    Some(self.bind(text))
                } else {
                    None
                }
            }
            Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                let text = self.ref_indices(expr).unwrap_or_else(|| {
                    let (s, e) = span_of(self.rewriter.src, expr);
                    self.rewriter.text(s, e).to_owned()
                });
                Some(self.bind(text))
            }
            Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {
                let (s, e) = span_of(self.rewriter.src, expr);
                let text = self.rewriter.text(s, e).to_owned();
                Some(self.bind(text))
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                let children: Vec<&Ref<Expr>> = items.iter().collect();
                self.children(expr, &children, Self::operand)
            }
            Expr::Object { fields, .. } => {
                let children: Vec<&Ref<Expr>> =
                    fields.iter().flat_map(|(_, k, v)| [k, v]).collect();
                self.children(expr, &children, Self::operand)
            }
            _ if is_call(expr) => {
                let text = self.call_operands(expr).unwrap_or_else(|| {
                    let (s, e) = span_of(self.rewriter.src, expr);
                    self.rewriter.text(s, e).to_owned()
                });
                Some(self.bind(text))
            }
            _ => None,
        }
    }

    /// `a.b[x].c`: binds each index that is not a constant.
    fn ref_indices(&mut self, expr: &Expr) -> Option<String> {
        let mut subs = Vec::new();
        let mut at = expr;
        loop {
            match at {
                Expr::RefDot { refr, .. } => at = refr,
                Expr::RefBrack { refr, index, .. } => {
                    if !is_constant(index)
                        && let Some(text) = self.operand(index)
                    {
                        let (start, end) = span_of(self.rewriter.src, index);
                        subs.push(Edit { start, end, text });
                    }
                    at = refr;
                }
                _ => break,
            }
        }
        if subs.is_empty() {
            return None;
        }
        let (s, e) = span_of(self.rewriter.src, expr);
        Some(self.rewriter.render(s, e, subs))
    }
}

/// Expressions OPA evaluates as calls: function calls and every operator
/// but `==` and `=` (comparison, arithmetic, set operators, `in`, unary minus).
fn is_call(expr: &Expr) -> bool {
    match expr {
        Expr::Call { .. }
        | Expr::ArithExpr { .. }
        | Expr::BinExpr { .. }
        | Expr::Membership { .. }
        | Expr::UnaryExpr { .. } => true,
        Expr::BoolExpr { op, .. } => !matches!(op, BoolOp::Eq),
        _ => false,
    }
}

/// The operands of a call-like expression, in source order.
fn operands(expr: &Expr) -> Vec<&Ref<Expr>> {
    match expr {
        Expr::Call { params, .. } => params.iter().collect(),
        Expr::ArithExpr { lhs, rhs, .. }
        | Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. } => vec![lhs, rhs],
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => key.iter().chain([value, collection]).collect(),
        Expr::UnaryExpr { expr, .. } => vec![expr],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn rw(body: &str) -> String {
        let text = format!("package p\nimport rego.v1\nlim := 3\n{body}\n");
        let globals = global_names(&[("p.rego".into(), text.clone())]);
        let out = rewrite("p.rego", &text, &globals).unwrap();
        out.strip_prefix("package p\nimport rego.v1\nlim := 3\n")
            .unwrap()
            .trim_end()
            .to_owned()
    }

    #[test]
    fn negated_call_arguments_are_bound_before_the_negation() {
        assert_eq!(
            rw("ok if not is_string(input.x)"),
            "ok if { __ar1_0 = input.x; not is_string(__ar1_0) }"
        );
        assert_eq!(
            rw("ok if {\n  true\n  not startswith(input.x, \"a\")\n}"),
            "ok if {\n  true\n  __ar1_0 = input.x; not startswith(__ar1_0, \"a\")\n}"
        );
        assert_eq!(
            rw("ok if { not input.x > 1 }"),
            "ok if { __ar1_0 = input.x; not __ar1_0 > 1 }"
        );
        assert_eq!(
            rw("ok if { not count(input.x) == 1 }"),
            "ok if { __ar1_0 = input.x; __ar1_1 = count(__ar1_0); not __ar1_1 == 1 }"
        );
        assert_eq!(
            rw("ok if { not input.arr[input.i] == 1 }"),
            "ok if { __ar1_0 = input.i; not input.arr[__ar1_0] == 1 }"
        );
        assert_eq!(
            rw("ok if { not is_string(lim) }"),
            "ok if { __ar1_0 = lim; not is_string(__ar1_0) }"
        );
        assert_eq!(
            rw("ok if { not f(input.x) with input as {} }\nf(x) if x"),
            "ok if { __ar1_0 = input.x with input as {}; not f(__ar1_0) with input as {} }\nf(x) if x"
        );
    }

    #[test]
    fn what_opa_leaves_inside_the_negation_stays() {
        for body in [
            "ok if not input.x == 1",
            "ok if not input.x",
            "ok if not g",
            "ok if { x := 1; not is_string(x) }",
            "ok if not is_string(\"a\")",
            "ok if not h(2)",
        ] {
            let body = format!("{body}\ng if true\nh(v) := 5 if v == 1");
            assert_eq!(rw(&body), body);
        }
    }

    #[test]
    fn head_terms_that_may_be_undefined_move_into_the_body() {
        assert_eq!(
            rw("r contains c.name if {\n  some c in input.cs\n  c.on\n}"),
            "r contains __ar1_0 if {\n  some c in input.cs\n  c.on; __ar1_0 = c.name\n}"
        );
        assert_eq!(
            rw("r contains c.name if some c in input.cs"),
            "r contains __ar1_0 if { some c in input.cs; __ar1_0 = c.name }"
        );
        // regorus's span of an object with several fields starts at its last key.
        assert_eq!(
            rw(
                "r contains {\"id\": \"p\", \"m\": sprintf(\"%v\", [c.n])} if { some c in input.cs }"
            ),
            "r contains __ar1_0 if { some c in input.cs; __ar1_0 = {\"id\": \"p\", \"m\": sprintf(\"%v\", [c.n])} }"
        );
        assert_eq!(
            rw("r contains {\"m\": sprintf(\"%v\", [input.u])} if input.u == \"b\""),
            "r contains __ar1_0 if { input.u == \"b\"; __ar1_0 = {\"m\": sprintf(\"%v\", [input.u])} }"
        );
        assert_eq!(
            rw("ok if not \"a\" in input.roles"),
            "ok if { __ar1_0 = input.roles; not \"a\" in __ar1_0 }"
        );
        // A variable or a constant head needs nothing.
        let same = "r contains msg if { msg := input.m }\ns contains \"x\" if input.y";
        assert_eq!(rw(same), same);
    }

    #[test]
    fn comprehension_terms_are_bound_in_their_body() {
        assert_eq!(
            rw("names := [i.name | some i in input.items]"),
            "names := [__ar1_0 | some i in input.items; __ar1_0 = i.name]"
        );
        assert_eq!(
            rw("m := {i.id: i.name | some i in input.items}"),
            "m := {__ar1_0: __ar1_1 | some i in input.items; __ar1_0 = i.id; __ar1_1 = i.name}"
        );
    }

    #[test]
    fn nested_constructs_are_rewritten_level_by_level() {
        let out = rw("ok if { not count([i.n | some i in input.items; not is_string(i.m)]) == 1 }");
        assert!(out.contains("= i.n"), "{out}");
        assert!(out.contains("not is_string(__ar"), "{out}");
    }

    #[test]
    fn line_numbers_never_move() {
        let text = "package p\nimport rego.v1\nr contains c.name if {\n  some c in input.cs\n  not is_string(c.x)\n}\nq := [x.y | some x in input.z]\n";
        let out = rewrite("p.rego", text, &BTreeSet::new()).unwrap();
        assert_eq!(out.lines().count(), text.lines().count());
    }

    #[test]
    fn reserved_names_are_refused() {
        let e = rewrite("p.rego", "package p\n\nx := __ar1_0\n", &BTreeSet::new()).unwrap_err();
        assert_eq!(e.line, Some(3));
        // Other names with the same letters are the author's.
        let text = "package p\n\n__archive := \"__ar\"\n";
        assert_eq!(rewrite("p.rego", text, &BTreeSet::new()).unwrap(), text);
    }
}
