//! Limits checked on a bundle's policy and data text before any parser sees it.
//!
//! The parsers behind a bundle are not built for hostile text: Cedar's
//! converts its syntax tree to expressions by recursing once per nesting
//! level on the native stack (a ~2 KB policy with 1 000 nested parentheses
//! overflows a thread's stack and aborts the process), and regorus parses
//! every nested array, set or object literal twice while it looks for a
//! comprehension, so loading time doubles with each level. Each file is
//! therefore scanned once, in linear time and constant stack, skipping
//! strings and comments as its language does, and refused when it is larger
//! or nests deeper than the limits below; so are the bundle's totals. The
//! error is a [`BundleErrorKind::Limit`] naming the file, the line where the
//! limit was crossed, and the [`LoadLimit`].
//!
//! The limits are fixed, not set by the manifest: a bundle must not be able to
//! lift the limits that protect its host from it.

use std::path::Path;

use crate::error::{BundleError, BundleErrorKind, line_of};

/// Largest Rego module, Cedar policy file or Cedar schema, in bytes (1 MiB).
pub const MAX_POLICY_FILE_BYTES: usize = 1 << 20;

/// Largest total of a bundle's Rego modules, Cedar policy files and Cedar
/// schema, in bytes (4 MiB).
pub const MAX_POLICY_BYTES: usize = 4 << 20;

/// Largest Rego data or Cedar entities file, in bytes (16 MiB).
pub const MAX_DATA_FILE_BYTES: usize = 16 << 20;

/// Largest total of a bundle's Rego data and Cedar entities files, in bytes
/// (32 MiB).
pub const MAX_DATA_BYTES: usize = 32 << 20;

/// Deepest nesting of `(`, `[` and `{` in a Rego module.
pub const MAX_REGO_DEPTH: usize = 12;

/// Deepest nesting of `(`, `[` and `{` in a Cedar policy file or a Cedar
/// schema in Cedar syntax.
pub const MAX_CEDAR_DEPTH: usize = 16;

/// Deepest nesting of arrays and objects in a JSON data, entities or schema
/// file (the same as a request's).
pub const MAX_DATA_DEPTH: usize = crate::request::MAX_DEPTH;

/// Most parsing work the Rego modules of a bundle may ask for, in byte
/// visits: each byte counts twice for every array, set or object literal
/// (every `[` and `{`) around it, as regorus parses an enclosed literal again
/// after trying it as a comprehension.
pub const MAX_REGO_PARSE_WORK: u64 = 1 << 22;

/// Most operators one Cedar policy (or schema declaration) may hold: each of
/// the characters `.` `+` `-` `*` `<` `>` `=` `!` `&` `|` outside strings and
/// comments, and each of the words `in` `has` `like` `is` `if`. A chain of
/// operators (`context.a.a.…`, `1 + 1 + …`) is a syntax tree as deep as it is
/// long, which Cedar walks recursively on the native stack.
pub const MAX_CEDAR_OPERATORS: usize = 1000;

/// Most Cedar policies a bundle may hold (counted as the `;` that end them).
pub const MAX_CEDAR_POLICIES: usize = 10_000;

pub use crate::error::LoadLimit;

/// The language a file is scanned as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    /// Rego: `"…"` with escapes, raw strings in backticks, `#` comments.
    Rego,
    /// Cedar policies and Cedar-syntax schemas: `"…"` with escapes, `//`
    /// comments.
    Cedar,
    /// JSON: `"…"` with escapes, no comments.
    Json,
}

impl Language {
    fn name(self) -> &'static str {
        match self {
            Language::Rego => "Rego module",
            Language::Cedar => "Cedar file",
            Language::Json => "JSON file",
        }
    }

    fn max_depth(self) -> usize {
        match self {
            Language::Rego => MAX_REGO_DEPTH,
            Language::Cedar => MAX_CEDAR_DEPTH,
            Language::Json => MAX_DATA_DEPTH,
        }
    }

    fn max_bytes(self) -> (usize, LoadLimit) {
        match self {
            Language::Rego | Language::Cedar => (MAX_POLICY_FILE_BYTES, LoadLimit::PolicyFileBytes),
            Language::Json => (MAX_DATA_FILE_BYTES, LoadLimit::DataFileBytes),
        }
    }
}

/// What a scan found out about a file that is within the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Scanned {
    /// `;` outside strings, comments and brackets: for valid Cedar policy
    /// text, the number of policies.
    pub(crate) statements: usize,
    /// For Rego, the parsing work (see [`MAX_REGO_PARSE_WORK`]).
    pub(crate) work: u64,
}

/// What a file may still add to the bundle's totals.
#[derive(Debug, Clone, Copy)]
struct Room {
    statements: usize,
    work: u64,
}

impl Room {
    const FILE: Room = Room {
        statements: usize::MAX,
        work: MAX_REGO_PARSE_WORK,
    };
}

fn limit_error(file: &Path, line: u32, limit: LoadLimit, message: String) -> BundleError {
    BundleError::new(BundleErrorKind::Limit, file, Some(line), message).with_limit(limit)
}

/// Checks one file's size and nesting; `file` is the path errors name.
pub(crate) fn scan(file: &Path, text: &str, language: Language) -> Result<Scanned, BundleError> {
    scan_within(file, text, language, Room::FILE).map(|(scanned, _)| scanned)
}

/// [`scan`], refusing Rego parsing work beyond `room.work`, and also
/// returning the line of the statement beyond `room.statements`, if any.
fn scan_within(
    file: &Path,
    text: &str,
    language: Language,
    room: Room,
) -> Result<(Scanned, Option<u32>), BundleError> {
    let (max_bytes, size_limit) = language.max_bytes();
    if text.len() > max_bytes {
        return Err(limit_error(
            file,
            line_of(text, max_bytes),
            size_limit,
            format!(
                "the {} is {} bytes; the limit is {max_bytes}",
                language.name(),
                text.len()
            ),
        ));
    }
    let max_depth = language.max_depth();
    let bytes = text.as_bytes();
    let mut line: u32 = 1;
    let mut depth = 0usize;
    let mut statements = 0usize;
    let mut marked = None;
    // For each open bracket, whether it is a Rego literal (`[`, or `{` not
    // opening a rule body after `if` or `else`) still in its first element,
    // which regorus parses twice; how many of those are open; the work up
    // to `counted`.
    let mut open: Vec<bool> = Vec::with_capacity(max_depth);
    let mut literals = 0u32;
    let mut work = 0u64;
    let mut counted = 0usize;
    let rego = language == Language::Rego;
    let cedar = language == Language::Cedar;
    // Operators of the Cedar statement being scanned.
    let mut operators = 0usize;
    let operator_error = |line| {
        limit_error(
            file,
            line,
            LoadLimit::CedarOperators,
            format!(
                "a Cedar policy holds more than {MAX_CEDAR_OPERATORS} operators; the limit protects the loader's stack"
            ),
        )
    };
    let work_error = |line| {
        limit_error(
            file,
            line,
            LoadLimit::RegoParseWork,
            format!(
                "nested array, set and object literals would take the Rego parser more than {MAX_REGO_PARSE_WORK} steps in the bundle's modules; nest literals less deeply"
            ),
        )
    };
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\n' => line = line.saturating_add(1),
            b'"' => {
                // To the closing quote; a backslash escapes the next byte.
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'"' => break,
                        b'\\' => {
                            if bytes.get(i + 1) == Some(&b'\n') {
                                line = line.saturating_add(1);
                            }
                            i += 1;
                        }
                        b'\n' => line = line.saturating_add(1),
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'`' if language == Language::Rego => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'`' => break,
                        b'\n' => line = line.saturating_add(1),
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'#' if language == Language::Rego => {
                while bytes.get(i + 1).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'/' if language == Language::Cedar && bytes.get(i + 1) == Some(&b'/') => {
                while bytes.get(i + 1).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if rego {
                    work = work.saturating_add(((i - counted) as u64) << literals);
                    counted = i;
                    if work > room.work {
                        return Err(work_error(line));
                    }
                    let literal = b == b'[' || (b == b'{' && !after_body_keyword(bytes, i));
                    open.push(literal);
                    literals += u32::from(literal);
                }
                if depth > max_depth {
                    return Err(limit_error(
                        file,
                        line,
                        LoadLimit::Depth,
                        format!(
                            "brackets nest deeper than {max_depth} levels; the limit protects the loader's stack and time"
                        ),
                    ));
                }
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if rego {
                    work = work.saturating_add(((i - counted) as u64) << literals);
                    counted = i;
                    if work > room.work {
                        return Err(work_error(line));
                    }
                    if open.pop() == Some(true) {
                        literals = literals.saturating_sub(1);
                    }
                }
            }
            b',' | b'|' if rego && open.last() == Some(&true) => {
                work = work.saturating_add(((i - counted) as u64) << literals);
                counted = i;
                if let Some(first) = open.last_mut() {
                    *first = false;
                }
                literals = literals.saturating_sub(1);
            }
            b'.' | b'+' | b'-' | b'*' | b'<' | b'>' | b'=' | b'!' | b'&' | b'|' if cedar => {
                operators += 1;
                if operators > MAX_CEDAR_OPERATORS {
                    return Err(operator_error(line));
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' if cedar => {
                let start = i;
                while bytes
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    i += 1;
                }
                let word = bytes.get(start..=i).unwrap_or(&[]);
                if [&b"in"[..], b"has", b"like", b"is", b"if"].contains(&word) {
                    operators += 1;
                    if operators > MAX_CEDAR_OPERATORS {
                        return Err(operator_error(line));
                    }
                }
            }
            b';' if depth == 0 => {
                operators = 0;
                statements += 1;
                if statements == room.statements.saturating_add(1) {
                    marked = Some(line);
                }
            }
            _ => {}
        }
        i += 1;
    }
    if rego {
        work = work.saturating_add(((text.len() - counted.min(text.len())) as u64) << literals);
        if work > room.work {
            return Err(work_error(line));
        }
    }
    Ok((Scanned { statements, work }, marked))
}

/// Whether the `{` at `at` follows the keyword `if` or `else` (opening a rule
/// body, which regorus parses once).
fn after_body_keyword(bytes: &[u8], at: usize) -> bool {
    let before = bytes.get(..at).unwrap_or(&[]);
    let end = before
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    let word = before.get(..end).unwrap_or(&[]);
    ["if".as_bytes(), "else".as_bytes()].iter().any(|k| {
        word.ends_with(k)
            && word
                .len()
                .checked_sub(k.len() + 1)
                .and_then(|p| word.get(p))
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
    })
}

/// Running totals of a bundle's files, checked as each file is added.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    policy_bytes: usize,
    data_bytes: usize,
    cedar_policies: usize,
    rego_work: u64,
}

impl Totals {
    /// Scans `text` and adds it to the totals; `file` is the path errors name.
    pub(crate) fn add(
        &mut self,
        file: &Path,
        text: &str,
        language: Language,
        cedar_policies: bool,
    ) -> Result<(), BundleError> {
        let room = Room {
            statements: MAX_CEDAR_POLICIES.saturating_sub(self.cedar_policies),
            work: MAX_REGO_PARSE_WORK.saturating_sub(self.rego_work),
        };
        let (scanned, crossing) = scan_within(file, text, language, room)?;
        self.rego_work = self.rego_work.saturating_add(scanned.work);
        let (total, max, limit, what) = match language {
            Language::Rego | Language::Cedar => (
                &mut self.policy_bytes,
                MAX_POLICY_BYTES,
                LoadLimit::PolicyBytes,
                "policy files",
            ),
            Language::Json => (
                &mut self.data_bytes,
                MAX_DATA_BYTES,
                LoadLimit::DataBytes,
                "data and entities files",
            ),
        };
        let before = *total;
        *total = total.saturating_add(text.len());
        if *total > max {
            return Err(limit_error(
                file,
                line_of(text, max.saturating_sub(before)),
                limit,
                format!("with this file the bundle's {what} exceed {max} bytes"),
            ));
        }
        if cedar_policies {
            self.cedar_policies = self.cedar_policies.saturating_add(scanned.statements);
            if self.cedar_policies > MAX_CEDAR_POLICIES {
                return Err(limit_error(
                    file,
                    crossing.unwrap_or(1),
                    LoadLimit::CedarPolicies,
                    format!(
                        "with this file the bundle holds more than {MAX_CEDAR_POLICIES} Cedar policies"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(text: &str, language: Language) -> Option<(u32, LoadLimit)> {
        scan(Path::new("f"), text, language).err().map(|e| {
            (
                e.line().unwrap_or(0),
                e.limit().unwrap_or(LoadLimit::DataBytes),
            )
        })
    }

    fn nested(depth: usize, open: &str, close: &str) -> String {
        format!("{}1{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn nesting_at_the_limit_passes_and_one_more_is_refused() {
        for (language, max) in [
            (Language::Rego, MAX_REGO_DEPTH),
            (Language::Cedar, MAX_CEDAR_DEPTH),
            (Language::Json, MAX_DATA_DEPTH),
        ] {
            for (open, close) in [("(", ")"), ("[", "]"), ("{", "}")] {
                assert_eq!(depth_error(&nested(max, open, close), language), None);
                assert_eq!(
                    depth_error(&format!("\n\n{}", nested(max + 1, open, close)), language),
                    Some((3, LoadLimit::Depth)),
                    "{language:?} {open}"
                );
            }
        }
    }

    #[test]
    fn closing_brackets_bring_the_depth_back() {
        let text = format!("{}\n", nested(MAX_REGO_DEPTH, "[", "]")).repeat(100);
        assert_eq!(depth_error(&text, Language::Rego), None);
        // Closers beyond the openers do not give credit for later openers.
        let text = format!("{}{}", "]".repeat(50), nested(MAX_REGO_DEPTH + 1, "[", "]"));
        assert_eq!(
            depth_error(&text, Language::Rego),
            Some((1, LoadLimit::Depth))
        );
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let deep = "[".repeat(100);
        let rego =
            format!("# {deep}\nx := \"{deep}\\\"{deep}\"\ny := `{deep}\n{deep}`\nz := [1]\n");
        assert_eq!(depth_error(&rego, Language::Rego), None);
        let cedar = format!(
            "// {deep}\npermit (principal, action, resource) when {{ \"{deep}\\\"{deep}\" == \"\" }};\n"
        );
        assert_eq!(depth_error(&cedar, Language::Cedar), None);
        let json = format!("{{\"a\": \"{deep}\\\"{deep}\"}}");
        assert_eq!(depth_error(&json, Language::Json), None);
    }

    #[test]
    fn comment_syntax_is_per_language() {
        let deep = "(".repeat(MAX_DATA_DEPTH.max(MAX_CEDAR_DEPTH) + 1);
        // `#` is no comment in Cedar, `//` none in Rego, neither in JSON.
        assert_eq!(
            depth_error(&format!("# {deep}"), Language::Cedar),
            Some((1, LoadLimit::Depth))
        );
        assert_eq!(
            depth_error(&format!("// {deep}"), Language::Rego),
            Some((1, LoadLimit::Depth))
        );
        assert_eq!(
            depth_error(&format!("// {deep}"), Language::Json),
            Some((1, LoadLimit::Depth))
        );
        // Backticks are plain characters outside Rego.
        assert_eq!(
            depth_error(&format!("`{deep}`"), Language::Cedar),
            Some((1, LoadLimit::Depth))
        );
    }

    #[test]
    fn lines_count_inside_strings_and_raw_strings() {
        let deep = "[".repeat(MAX_REGO_DEPTH + 1);
        let text = format!("a := `x\ny`\nb := \"p\\\nq\"\n# c\n{deep}");
        assert_eq!(
            depth_error(&text, Language::Rego),
            Some((6, LoadLimit::Depth))
        );
    }

    #[test]
    fn unterminated_strings_and_comments_end_the_scan() {
        assert_eq!(depth_error("x := \"[[[[", Language::Rego), None);
        assert_eq!(depth_error("x := `[[[[", Language::Rego), None);
        assert_eq!(depth_error("\"\\", Language::Json), None);
        assert_eq!(depth_error("#", Language::Rego), None);
        assert_eq!(depth_error("/", Language::Cedar), None);
    }

    #[test]
    fn file_size_is_checked_first() {
        let big = " ".repeat(MAX_POLICY_FILE_BYTES + 1);
        let e = scan(Path::new("p.cedar"), &big, Language::Cedar).unwrap_err();
        assert_eq!(e.kind(), BundleErrorKind::Limit);
        assert_eq!(e.limit(), Some(LoadLimit::PolicyFileBytes));
        assert!(e.message().contains(&MAX_POLICY_FILE_BYTES.to_string()));
        assert!(scan(Path::new("p.cedar"), &big[1..], Language::Cedar).is_ok());
        let big = " ".repeat(MAX_DATA_FILE_BYTES + 1);
        let e = scan(Path::new("d.json"), &big, Language::Json).unwrap_err();
        assert_eq!(e.limit(), Some(LoadLimit::DataFileBytes));
    }

    fn work(text: &str) -> u64 {
        scan(Path::new("m.rego"), text, Language::Rego)
            .unwrap()
            .work
    }

    #[test]
    fn rego_work_doubles_per_literal_in_its_first_element() {
        let flat = "x := 1\n";
        assert_eq!(work(flat), flat.len() as u64);
        // Each level of `[[…]]` in first position doubles what it encloses.
        let a = work(&format!("x := {}", nested(4, "[", "]")));
        let b = work(&format!("x := {}", nested(5, "[", "]")));
        assert!(b > 2 * a - 8 && b < 2 * a + 16, "{a} {b}");
        // After the first element, or in a rule body, nothing doubles.
        let wide = format!("x := [0, {}]", "[0, 1], ".repeat(100));
        assert!(work(&wide) < 2 * wide.len() as u64, "{}", work(&wide));
        let body = format!("p if {{ {} }}", "input.a == 1\n".repeat(100));
        assert_eq!(work(&body), body.len() as u64);
        let compr = "x := [y | [z | z := 1][0] == y]".to_owned();
        assert!(work(&compr) < 3 * compr.len() as u64);
        // Cedar and JSON are parsed once.
        let deep = nested(MAX_CEDAR_DEPTH, "[", "]");
        assert_eq!(
            scan(Path::new("p"), &deep, Language::Cedar).unwrap().work,
            0
        );
    }

    #[test]
    fn rego_work_is_limited_across_the_bundle() {
        // One literal as deep as allowed is fine; a module of them is not.
        let one = format!("x := {}\n", nested(MAX_REGO_DEPTH, "[", "]"));
        let w = work(&one);
        assert!(w < MAX_REGO_PARSE_WORK / 100, "{w}");
        let many = one.repeat(usize::try_from(MAX_REGO_PARSE_WORK / w).unwrap() + 1);
        let e = scan(Path::new("m.rego"), &many, Language::Rego).unwrap_err();
        assert_eq!(e.limit(), Some(LoadLimit::RegoParseWork));
        assert!(e.line().unwrap() > 1);
        let half = one.repeat(usize::try_from(MAX_REGO_PARSE_WORK / w / 2).unwrap() + 1);
        let mut totals = Totals::default();
        totals
            .add(Path::new("a.rego"), &half, Language::Rego, false)
            .unwrap();
        let e = totals
            .add(Path::new("b.rego"), &half, Language::Rego, false)
            .unwrap_err();
        assert_eq!(e.limit(), Some(LoadLimit::RegoParseWork));
        assert_eq!(e.file(), Path::new("b.rego"));
    }

    #[test]
    fn rule_bodies_follow_if_or_else() {
        assert!(after_body_keyword(b"p if {", 5));
        assert!(after_body_keyword(b"} else  {", 8));
        assert!(after_body_keyword(b"if{", 2));
        assert!(!after_body_keyword(b"x := {", 5));
        assert!(!after_body_keyword(b"motif {", 6));
        assert!(!after_body_keyword(b"{", 0));
    }

    #[test]
    fn cedar_operators_are_limited_per_policy() {
        let chain = |n: usize| {
            format!(
                "permit (principal, action, resource) when {{ context{} }};\n",
                ".a".repeat(n)
            )
        };
        let cedar = |t: &str| scan(Path::new("p.cedar"), t, Language::Cedar);
        assert!(cedar(&chain(MAX_CEDAR_OPERATORS)).is_ok());
        let e = cedar(&format!("\n{}", chain(MAX_CEDAR_OPERATORS + 1))).unwrap_err();
        assert_eq!(e.limit(), Some(LoadLimit::CedarOperators));
        assert_eq!(e.line(), Some(2));
        // Per policy: many policies of many operators are fine.
        assert!(cedar(&chain(MAX_CEDAR_OPERATORS).repeat(20)).is_ok());
        // Keywords count, identifiers containing them do not.
        let words = |w: &str, n: usize| format!("when {{ {} }};", vec![w; n].join(" "));
        assert!(cedar(&words("in", MAX_CEDAR_OPERATORS + 1)).is_err());
        assert!(cedar(&words("inside", MAX_CEDAR_OPERATORS + 1)).is_ok());
        assert!(cedar(&words("\"in\"", MAX_CEDAR_OPERATORS + 1)).is_ok());
        // Rego and JSON do not count operators.
        assert!(scan(Path::new("m.rego"), &chain(5000), Language::Rego).is_ok());
    }

    #[test]
    fn statements_count_top_level_semicolons() {
        let text = "permit (principal, action, resource) when { \";\" == \";\" };\n// ;\nforbid (principal, action, resource);\n";
        assert_eq!(
            scan(Path::new("p"), text, Language::Cedar)
                .unwrap()
                .statements,
            2
        );
    }

    #[test]
    fn totals_refuse_the_file_that_crosses_them() {
        let mut totals = Totals::default();
        let chunk = " ".repeat(MAX_POLICY_FILE_BYTES);
        for i in 0..MAX_POLICY_BYTES / MAX_POLICY_FILE_BYTES {
            totals
                .add(
                    Path::new(&format!("{i}.rego")),
                    &chunk,
                    Language::Rego,
                    false,
                )
                .unwrap();
        }
        let e = totals
            .add(Path::new("last.cedar"), "x", Language::Cedar, true)
            .unwrap_err();
        assert_eq!(e.limit(), Some(LoadLimit::PolicyBytes));
        assert_eq!(e.file(), Path::new("last.cedar"));

        let mut totals = Totals::default();
        let policy = "forbid (principal, action, resource);\n";
        totals
            .add(
                Path::new("a.cedar"),
                &policy.repeat(MAX_CEDAR_POLICIES),
                Language::Cedar,
                true,
            )
            .unwrap();
        let e = totals
            .add(
                Path::new("b.cedar"),
                &policy.repeat(3),
                Language::Cedar,
                true,
            )
            .unwrap_err();
        assert_eq!(e.limit(), Some(LoadLimit::CedarPolicies));
        assert_eq!(e.file(), Path::new("b.cedar"));
        assert_eq!(e.line(), Some(1));

        let mut totals = Totals::default();
        let e = totals
            .add(
                Path::new("a.cedar"),
                &policy.repeat(MAX_CEDAR_POLICIES + 5),
                Language::Cedar,
                true,
            )
            .unwrap_err();
        assert_eq!(e.line(), u32::try_from(MAX_CEDAR_POLICIES + 1).ok());
    }
}
