//! One pass over a log line: JSON syntax, repeated member names at any
//! depth, and the members the chain checks read, without building the value.
//!
//! The scan takes the JSON the writer writes (compact, canonical) and a
//! little more; anything it does not take with certainty — whitespace,
//! escapes in member names, lone surrogates, numbers near the edge of the
//! float range, deep nesting, invalid UTF-8, … — it hands back as
//! [`Scanned::Other`], and the verifier reads the line with the full
//! parsers instead. So every line the scan accepts is one the full path
//! would read the same way; the scan only saves the work.

/// Deepest nesting the scan follows (serde_json stops at 128).
const MAX_DEPTH: usize = 100;

/// Most members of one object the scan compares pairwise; larger objects go
/// to the full path.
const MAX_KEYS: usize = 64;

/// Most digits of a number's integer part, fraction or exponent the scan
/// takes: far inside the range of a double, so no full parser refuses it.
const MAX_DIGITS: usize = 40;

/// What the scan found.
pub(super) enum Scanned<'a> {
    /// A well-formed line whose chain members are all there, of the right
    /// type, without escapes.
    Head(FastHead<'a>),
    /// A member name repeated in one object (the name, as written).
    Duplicate(String),
    /// Anything else: the full parsers decide.
    Other,
}

/// The chain members of a line the scan accepted.
pub(super) struct FastHead<'a> {
    /// Format version.
    pub v: u64,
    /// Sequence number.
    pub seq: u64,
    /// The previous record's hash.
    pub prev: &'a str,
    /// This record's hash.
    pub hash: &'a str,
    /// The record kind.
    pub kind: &'a str,
    /// The segment number, when present.
    pub segment: Option<u64>,
    /// The byte range of the top-level `"hash":"…"` member, without commas.
    pub hash_member: (usize, usize),
}

/// Scans `line`.
pub(super) fn scan(line: &[u8]) -> Scanned<'_> {
    let Ok(text) = std::str::from_utf8(line) else {
        return Scanned::Other;
    };
    let mut s = Scanner {
        s: line,
        pos: 0,
        // Room for the names of a record's open objects from the start:
        // growing it reallocates several times a line, and reallocations on
        // the threads of the verifier contend in the allocator.
        keys: Vec::with_capacity(MAX_KEYS),
        nested_hash: false,
    };
    let mut top = Top::default();
    match s.object(1, Some(&mut top)) {
        Ok(()) => {}
        Err(Stop::Duplicate(start, end)) => {
            return Scanned::Duplicate(text.get(start..end).unwrap_or_default().to_owned());
        }
        Err(Stop::Other) => return Scanned::Other,
    }
    if s.pos != line.len() || s.nested_hash {
        return Scanned::Other;
    }
    let str_at = |span: Option<Span>| -> Option<&str> {
        match span? {
            Span::Str(a, b) => text.get(a..b),
            Span::Int(_) | Span::Other => None,
        }
    };
    let int_at = |span: Option<Span>| -> Option<u64> {
        match span? {
            Span::Int(i) => i,
            Span::Str(..) | Span::Other => None,
        }
    };
    let segment = match top.segment {
        None => None,
        Some(span) => match int_at(Some(span)) {
            Some(n) => Some(n),
            None => return Scanned::Other,
        },
    };
    match (
        int_at(top.v),
        int_at(top.seq),
        str_at(top.prev),
        str_at(top.hash),
        str_at(top.kind),
        str_at(top.time),
        top.hash_member,
    ) {
        (Some(v), Some(seq), Some(prev), Some(hash), Some(kind), Some(_), Some(hash_member)) => {
            Scanned::Head(FastHead {
                v,
                seq,
                prev,
                hash,
                kind,
                segment,
                hash_member,
            })
        }
        _ => Scanned::Other,
    }
}

/// A top-level value the chain reads.
#[derive(Clone, Copy)]
enum Span {
    /// A string without escapes: the byte range of its content.
    Str(usize, usize),
    /// A number: its value when it is an integer that fits `u64`.
    Int(Option<u64>),
    /// Any other value, or a string with escapes.
    Other,
}

/// The top-level members the chain reads.
#[derive(Default)]
struct Top {
    v: Option<Span>,
    seq: Option<Span>,
    prev: Option<Span>,
    hash: Option<Span>,
    kind: Option<Span>,
    time: Option<Span>,
    segment: Option<Span>,
    hash_member: Option<(usize, usize)>,
}

enum Stop {
    /// The byte range of a repeated name.
    Duplicate(usize, usize),
    Other,
}

struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
    /// Names of the members of every open object, innermost last.
    keys: Vec<&'a [u8]>,
    /// A member named `hash` below the top level.
    nested_hash: bool,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Result<(), Stop> {
        if self.bump() == Some(b) {
            Ok(())
        } else {
            Err(Stop::Other)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Span, Stop> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1, None).map(|()| Span::Other),
            Some(b'[') => self.array(depth + 1).map(|()| Span::Other),
            Some(b'"') => self.string().map(|(a, b, escaped)| {
                if escaped {
                    Span::Other
                } else {
                    Span::Str(a, b)
                }
            }),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(Span::Int),
            _ => Err(Stop::Other),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<Span, Stop> {
        if self
            .s
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.pos += word.len();
            Ok(Span::Other)
        } else {
            Err(Stop::Other)
        }
    }

    /// A string: the byte range of its content, and whether it holds escapes.
    fn string(&mut self) -> Result<(usize, usize, bool), Stop> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let rest = self.s.get(self.pos..).ok_or(Stop::Other)?;
            let at = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or(Stop::Other)?;
            self.pos += at;
            match self.bump() {
                Some(b'"') => return Ok((start, self.pos - 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    match self.bump() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            let hex = self.s.get(self.pos..self.pos + 4).ok_or(Stop::Other)?;
                            let mut code = 0u32;
                            for &h in hex {
                                code = code * 16 + char::from(h).to_digit(16).ok_or(Stop::Other)?;
                            }
                            // Surrogates (paired or not) are left to the full parser.
                            if (0xD800..=0xDFFF).contains(&code) {
                                return Err(Stop::Other);
                            }
                            self.pos += 4;
                        }
                        _ => return Err(Stop::Other),
                    }
                }
                // A raw control character.
                _ => return Err(Stop::Other),
            }
        }
    }

    /// Digits from here: how many.
    fn digits(&mut self) -> usize {
        let n = self.s.get(self.pos..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        });
        self.pos += n;
        n
    }

    /// A number; its value when it is a non-negative integer that fits `u64`.
    fn number(&mut self) -> Result<Option<u64>, Stop> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                if self.digits() > MAX_DIGITS {
                    return Err(Stop::Other);
                }
            }
            _ => return Err(Stop::Other),
        }
        let int_end = self.pos;
        let mut integer = !negative;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !(1..=MAX_DIGITS).contains(&self.digits()) {
                return Err(Stop::Other);
            }
            integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !(1..=2).contains(&self.digits()) {
                return Err(Stop::Other);
            }
            integer = false;
        }
        if !integer {
            return Ok(None);
        }
        let mut n: u64 = 0;
        for &d in self.s.get(int_start..int_end).unwrap_or_default() {
            let Some(next) = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
            else {
                return Ok(None);
            };
            n = next;
        }
        Ok(Some(n))
    }

    fn array(&mut self, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Other);
        }
        self.expect(b'[')?;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            match self.bump() {
                Some(b',') => {}
                Some(b']') => return Ok(()),
                _ => return Err(Stop::Other),
            }
        }
    }

    /// An object; at the top level (`top`), records the chain's members.
    fn object(&mut self, depth: usize, mut top: Option<&mut Top>) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Other);
        }
        self.expect(b'{')?;
        let base = self.keys.len();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let member_start = self.pos;
            let (a, b, escaped) = self.string()?;
            if escaped {
                return Err(Stop::Other);
            }
            let key = self.s.get(a..b).ok_or(Stop::Other)?;
            let open = self.keys.get(base..).unwrap_or_default();
            if open.len() >= MAX_KEYS {
                return Err(Stop::Other);
            }
            if open.contains(&key) {
                return Err(Stop::Duplicate(a, b));
            }
            self.keys.push(key);
            self.expect(b':')?;
            match top.as_deref_mut() {
                None => {
                    if key == b"hash" {
                        self.nested_hash = true;
                    }
                    self.value(depth)?;
                }
                Some(top) => {
                    let span = self.value(depth)?;
                    let slot = match key {
                        b"v" => Some(&mut top.v),
                        b"seq" => Some(&mut top.seq),
                        b"prev" => Some(&mut top.prev),
                        b"hash" => {
                            top.hash_member = Some((member_start, self.pos));
                            Some(&mut top.hash)
                        }
                        b"kind" => Some(&mut top.kind),
                        b"time" => Some(&mut top.time),
                        b"segment" => Some(&mut top.segment),
                        _ => None,
                    };
                    if let Some(slot) = slot {
                        *slot = Some(span);
                    }
                }
            }
            match self.bump() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(Stop::Other),
            }
        }
        self.keys.truncate(base);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const LINE: &str = r#"{"a":{"b":[1,-2.5e-7,true,null,"x\"y"]},"hash":"sha256:ab","kind":"decision","prev":"sha256:00","seq":7,"time":"t","v":1}"#;

    #[test]
    fn reads_the_chain_members_of_a_compact_line() {
        let Scanned::Head(h) = scan(LINE.as_bytes()) else {
            panic!("not accepted");
        };
        assert_eq!(
            (h.v, h.seq, h.prev, h.hash, h.kind),
            (1, 7, "sha256:00", "sha256:ab", "decision")
        );
        assert_eq!(h.segment, None);
        let (a, b) = h.hash_member;
        assert_eq!(&LINE[a..b], r#""hash":"sha256:ab""#);
    }

    #[test]
    fn finds_repeated_names_at_any_depth() {
        for (line, name) in [
            (r#"{"a":1,"a":2}"#, "a"),
            (r#"{"x":[{"k":1,"j":{},"k":2}]}"#, "k"),
            (r#"{"x":{"y":{"z":{"é":1,"é":1}}}}"#, "é"),
        ] {
            match scan(line.as_bytes()) {
                Scanned::Duplicate(n) => assert_eq!(n, name, "{line}"),
                _ => panic!("{line}: no duplicate found"),
            }
        }
        // The same name in sibling objects is no repetition.
        assert!(!matches!(
            scan(br#"{"x":{"a":1},"y":{"a":1}}"#),
            Scanned::Duplicate(_)
        ));
    }

    #[test]
    fn leaves_everything_unusual_to_the_full_parsers() {
        for line in [
            &br#"{"v":1, "seq":1}"#[..],
            br#" {"v":1}"#,
            br#"{"v":1}x"#,
            br#"{"\u0061":1,"a":2}"#,
            br#"{"a":"\ud800"}"#,
            br#"{"a":1e400}"#,
            br#"{"a":01}"#,
            br#"{"a":1.}"#,
            br#"{"a":"x"#,
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\xff\"}",
            br#"{"a":tru}"#,
            br#"{"a":[1,]}"#,
            br#"{"a":{"hash":"x"}}"#,
            LINE.replace("\"seq\":7", "\"seq\":-7").as_bytes(),
            LINE.replace("\"seq\":7", "\"seq\":\"7\"").as_bytes(),
            LINE.replace("\"prev\":\"sha256:00\"", "\"prev\":\"sha256\\u003a00\"")
                .as_bytes(),
            LINE.replace(",\"v\":1", "").as_bytes(),
        ] {
            assert!(
                matches!(scan(line), Scanned::Other),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            scan(format!("{{\"a\":{deep}}}").as_bytes()),
            Scanned::Other
        ));
    }
}
