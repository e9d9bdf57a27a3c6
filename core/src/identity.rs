//! Building a [`Principal`] from what agents carry: OAuth access-token or
//! JWT claims, an X.509-SVID, or the `authInfo` an MCP server hands a tool.
//!
//! These helpers **read** identities; they do not verify them. A token's
//! signature, audience and lifetime, and a certificate's chain to its trust
//! bundle, are checked by the host before the helper runs (the OAuth or
//! SPIFFE library it already uses, its mTLS stack, its MCP server's token
//! verifier). Signed intents are the exception: the engine verifies those
//! itself (see [`crate::intent`]). The principal built here is taken as
//! given by the policies, so never build one from an unverified token.
//!
//! The `id` a helper produces must be the id the bundle knows the agent by
//! (the reference pack's agent registry is keyed by SPIFFE ID): map it
//! before deciding when the two differ — see `docs/identity.md`.
//!
//! ```
//! use agentriage::identity;
//! use agentriage::serde_json::json;
//!
//! // An RFC 8693 token: the payments agent acts for alice.
//! let claims = json!({
//!     "iss": "https://idp.acme.example",
//!     "sub": "alice@acme.example",
//!     "exp": 1795270500,
//!     "scope": "invoices:read payments:release",
//!     "act": {"sub": "spiffe://acme.example/ns/finance/sa/payments"}
//! });
//! let principal = identity::from_token_claims(&claims)?;
//! assert_eq!(principal.id, "spiffe://acme.example/ns/finance/sa/payments");
//! let alice = principal.on_behalf_of.as_ref().map(|s| s.id.as_str());
//! assert_eq!(alice, Some("alice@acme.example"));
//! # Ok::<(), agentriage::identity::IdentityError>(())
//! ```

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::request::{Credential, Principal, Subject, SubjectKind, Timestamp};

/// Deepest RFC 8693 `act` chain read; a deeper one is refused.
pub const MAX_ACT_DEPTH: usize = 16;

/// Largest certificate read, in bytes (DER or PEM text).
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// What is wrong with the identity a helper was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityErrorKind {
    /// A required claim or field is absent.
    Missing,
    /// A claim or field has the wrong JSON type.
    Type,
    /// A claim or field has the right type but a value that cannot be used.
    Value,
    /// The certificate is not an X.509-SVID this reader understands.
    Certificate,
}

impl IdentityErrorKind {
    /// A stable, machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityErrorKind::Missing => "missing",
            IdentityErrorKind::Type => "type",
            IdentityErrorKind::Value => "value",
            IdentityErrorKind::Certificate => "certificate",
        }
    }
}

/// An identity a helper cannot turn into a principal; names the claim,
/// field or certificate part that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid identity at `{field}`: {message}")]
pub struct IdentityError {
    kind: IdentityErrorKind,
    field: String,
    message: String,
}

impl IdentityError {
    fn new(kind: IdentityErrorKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        IdentityError {
            kind,
            field: field.into(),
            message: message.into(),
        }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> IdentityErrorKind {
        self.kind
    }

    /// The claim or field, e.g. `act.sub` or `certificate.subjectAltName`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The problem, without the field.
    pub fn message(&self) -> &str {
        &self.message
    }
}

fn missing(field: &str) -> IdentityError {
    IdentityError::new(
        IdentityErrorKind::Missing,
        field,
        "required claim is missing",
    )
}

fn wrong_type(field: &str, expected: &str) -> IdentityError {
    IdentityError::new(
        IdentityErrorKind::Type,
        field,
        format!("expected {expected}"),
    )
}

// ---- token claims -------------------------------------------------------------

/// A principal from the claims of a verified JWT or OAuth access token.
///
/// - without `act`, `sub` is the agent: a client-credentials token, a
///   JWT-SVID;
/// - with an RFC 8693 `act` claim, `act.sub` is the agent, acting for `sub`
///   (the principal's [`Principal::on_behalf_of`], a `user`; set its `kind`
///   when it is a service), and the nested `act.act.sub`, … are the prior
///   actors, nearest first, in [`Principal::delegation`].
///
/// Either way `iss` becomes the credential's issuer and `exp` its expiry;
/// the token's scopes (`scope`, space-separated, or `scp`, an array or
/// string) and `roles` belong to whoever the token was issued to: the
/// subject when there is one, otherwise the agent (its `roles`, and its
/// `attributes.scopes`). A token with both `scope` and `scp` is refused
/// rather than guessed at.
pub fn from_token_claims(claims: &Value) -> Result<Principal, IdentityError> {
    let c = Claims::new(claims)?;
    let sub = c.required_string("sub")?;
    match c.get("act") {
        Some(act) => {
            let (actor, delegation) = act_chain(act)?;
            delegated(&c, actor, delegation, sub)
        }
        None => direct(&c, sub),
    }
}

/// A principal from a verified user-delegated access token (RFC 9068): the
/// OAuth client (`client_id`, else `azp`) is the agent, acting for the user
/// `sub`. The rest reads as in [`from_token_claims`]; a token with an `act`
/// claim is read exactly as there, since `act` names the actor explicitly.
pub fn from_user_token_claims(claims: &Value) -> Result<Principal, IdentityError> {
    let c = Claims::new(claims)?;
    if c.get("act").is_some() {
        return from_token_claims(claims);
    }
    let sub = c.required_string("sub")?;
    let client = match c.string("client_id")? {
        Some(id) => id,
        None => c.string("azp")?.ok_or_else(|| missing("client_id"))?,
    };
    if client.is_empty() {
        return Err(empty("client_id"));
    }
    delegated(&c, client, Vec::new(), sub)
}

fn direct(c: &Claims<'_>, sub: String) -> Result<Principal, IdentityError> {
    let mut principal = Principal::new(sub);
    principal.credential = c.credential()?;
    principal.roles = c.string_list("roles")?;
    let scopes = c.scopes()?;
    if !scopes.is_empty() {
        principal
            .attributes
            .insert("scopes".into(), Value::from(scopes));
    }
    Ok(principal)
}

fn delegated(
    c: &Claims<'_>,
    actor: String,
    delegation: Vec<String>,
    sub: String,
) -> Result<Principal, IdentityError> {
    let mut subject = Subject::new(sub, SubjectKind::User);
    subject.roles = c.string_list("roles")?;
    subject.scopes = c.scopes()?;
    let mut principal = Principal::new(actor);
    principal.delegation = delegation;
    principal.credential = c.credential()?;
    principal.on_behalf_of = Some(subject);
    Ok(principal)
}

/// The current actor and the prior ones, nearest first.
fn act_chain(act: &Value) -> Result<(String, Vec<String>), IdentityError> {
    let mut path = String::from("act");
    let mut current = act;
    let mut actors = Vec::new();
    loop {
        let Value::Object(map) = current else {
            return Err(wrong_type(&path, "an object"));
        };
        let sub = match map.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) => return Err(empty(&format!("{path}.sub"))),
            Some(_) => return Err(wrong_type(&format!("{path}.sub"), "a string")),
            None => return Err(missing(&format!("{path}.sub"))),
        };
        actors.push(sub);
        match map.get("act") {
            None | Some(Value::Null) => break,
            Some(next) => {
                if actors.len() >= MAX_ACT_DEPTH {
                    return Err(IdentityError::new(
                        IdentityErrorKind::Value,
                        path,
                        format!("the `act` chain is deeper than {MAX_ACT_DEPTH} actors"),
                    ));
                }
                path.push_str(".act");
                current = next;
            }
        }
    }
    let mut rest = actors.into_iter();
    let actor = rest.next().unwrap_or_default();
    Ok((actor, rest.collect()))
}

fn empty(field: &str) -> IdentityError {
    IdentityError::new(IdentityErrorKind::Value, field, "must not be empty")
}

/// The claims object, read claim by claim; `null` counts as absent.
struct Claims<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Claims<'a> {
    fn new(value: &'a Value) -> Result<Self, IdentityError> {
        match value {
            Value::Object(map) => Ok(Claims { map }),
            _ => Err(wrong_type("$", "a JSON object of claims")),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, IdentityError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    fn required_string(&self, key: &str) -> Result<String, IdentityError> {
        match self.string(key)? {
            None => Err(missing(key)),
            Some(s) if s.is_empty() => Err(empty(key)),
            Some(s) => Ok(s),
        }
    }

    /// An array of non-empty strings, or one string.
    fn string_list(&self, key: &str) -> Result<Vec<String>, IdentityError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) => string_list(v, key),
        }
    }

    fn scopes(&self) -> Result<Vec<String>, IdentityError> {
        match (self.get("scope"), self.get("scp")) {
            (Some(_), Some(_)) => Err(IdentityError::new(
                IdentityErrorKind::Value,
                "scp",
                "the token has both `scope` and `scp`; refused rather than guessing which counts",
            )),
            (Some(Value::String(s)), None) => {
                Ok(s.split_ascii_whitespace().map(str::to_owned).collect())
            }
            (Some(_), None) => Err(wrong_type("scope", "a space-separated string")),
            (None, Some(Value::String(s))) => {
                Ok(s.split_ascii_whitespace().map(str::to_owned).collect())
            }
            (None, Some(v)) => string_list(v, "scp"),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn credential(&self) -> Result<Option<Credential>, IdentityError> {
        let issuer = self.string("iss")?;
        let expires_at = self
            .get("exp")
            .map(|v| numeric_date(v, "exp"))
            .transpose()?;
        if issuer.is_none() && expires_at.is_none() {
            return Ok(None);
        }
        Ok(Some(Credential { issuer, expires_at }))
    }
}

fn string_list(v: &Value, field: &str) -> Result<Vec<String>, IdentityError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(vec![s.clone()]),
        Value::String(_) => Err(empty(field)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                Value::String(_) => Err(empty(&format!("{field}[{i}]"))),
                _ => Err(wrong_type(&format!("{field}[{i}]"), "a string")),
            })
            .collect(),
        _ => Err(wrong_type(field, "an array of strings")),
    }
}

/// An RFC 7519 NumericDate: seconds since the epoch, possibly fractional.
fn numeric_date(v: &Value, field: &str) -> Result<Timestamp, IdentityError> {
    let out_of_range = || {
        IdentityError::new(
            IdentityErrorKind::Value,
            field,
            format!("`{v}` is not a time in seconds since the epoch"),
        )
    };
    let Value::Number(n) = v else {
        return Err(wrong_type(field, "a number of seconds since the epoch"));
    };
    if let Some(i) = n.as_i64() {
        return Timestamp::from_unix_seconds(i).ok_or_else(out_of_range);
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 1e12 => {
            // Whole seconds and the fraction apart: `f * 1e9` would round
            // `…200.25` to `…200.249999872`.
            let whole = f.trunc();
            #[allow(
                clippy::cast_possible_truncation,
                reason = "bounded above: |f| < 1e12 s, and the fraction is below 1e9 ns"
            )]
            let nanos =
                i128::from(whole as i64) * 1_000_000_000 + ((f - whole) * 1e9).round() as i128;
            Timestamp::from_unix_nanos(nanos).ok_or_else(out_of_range)
        }
        _ => Err(out_of_range()),
    }
}

// ---- MCP authInfo ---------------------------------------------------------------

/// A principal from the `authInfo` an MCP server gives a tool handler
/// (TypeScript SDK: `{token, clientId, scopes, expiresAt, resource, extra}`;
/// the Python SDK's `AccessToken` with `client_id` and `expires_at` reads
/// the same), after the server's token verifier accepted the token.
///
/// `clientId` is the agent; `expiresAt` (seconds since the epoch) the
/// credential's expiry; `extra.iss`, when a string, its issuer. When
/// `extra.sub` names a user, the agent acts for that user, who holds the
/// token's `scopes` (and `extra.roles`); otherwise the scopes are the
/// agent's (`attributes.scopes`). The bearer `token` is never copied.
pub fn from_mcp_auth_info(auth: &Value) -> Result<Principal, IdentityError> {
    let Value::Object(map) = auth else {
        return Err(wrong_type("$", "an authInfo object"));
    };
    let get = |camel: &str, snake: &str| {
        map.get(camel)
            .filter(|v| !v.is_null())
            .or_else(|| map.get(snake).filter(|v| !v.is_null()))
    };
    let client = match get("clientId", "client_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(empty("clientId")),
        Some(_) => return Err(wrong_type("clientId", "a string")),
        None => return Err(missing("clientId")),
    };
    let scopes = match get("scopes", "scopes") {
        None => Vec::new(),
        Some(v @ Value::Array(_)) => string_list(v, "scopes")?,
        Some(_) => return Err(wrong_type("scopes", "an array of strings")),
    };
    let expires_at = get("expiresAt", "expires_at")
        .map(|v| numeric_date(v, "expiresAt"))
        .transpose()?;
    let extra = match map.get("extra") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(wrong_type("extra", "an object")),
    };
    let extra_string = |key: &str| -> Result<Option<String>, IdentityError> {
        match extra.and_then(|m| m.get(key)).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(empty(&format!("extra.{key}"))),
            Some(_) => Err(wrong_type(&format!("extra.{key}"), "a string")),
        }
    };
    let issuer = extra_string("iss")?;
    let user = extra_string("sub")?;
    let roles = match extra.and_then(|m| m.get("roles")).filter(|v| !v.is_null()) {
        None => Vec::new(),
        Some(v) => string_list(v, "extra.roles")?,
    };
    let mut principal = Principal::new(client);
    if issuer.is_some() || expires_at.is_some() {
        principal.credential = Some(Credential { issuer, expires_at });
    }
    match user {
        Some(user) => {
            let mut subject = Subject::new(user, SubjectKind::User);
            subject.scopes = scopes;
            subject.roles = roles;
            principal.on_behalf_of = Some(subject);
        }
        None => {
            principal.roles = roles;
            if !scopes.is_empty() {
                principal
                    .attributes
                    .insert("scopes".into(), Value::from(scopes));
            }
        }
    }
    Ok(principal)
}

// ---- X.509-SVID -------------------------------------------------------------------

/// A principal from an X.509-SVID in PEM (the first `CERTIFICATE` block,
/// the leaf of a chain).
///
/// See [`from_x509_svid_der`]; the certificate must already be verified.
pub fn from_x509_svid_pem(pem: &str) -> Result<Principal, IdentityError> {
    if pem.len() > MAX_CERTIFICATE_BYTES {
        return Err(too_large(pem.len()));
    }
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let not_pem = |what: &str| {
        IdentityError::new(
            IdentityErrorKind::Certificate,
            "certificate",
            format!("not a PEM certificate: {what}"),
        )
    };
    let start = pem
        .find(BEGIN)
        .ok_or_else(|| not_pem("no `-----BEGIN CERTIFICATE-----` line"))?;
    let body = pem.get(start + BEGIN.len()..).unwrap_or_default();
    let end = body
        .find(END)
        .ok_or_else(|| not_pem("no `-----END CERTIFICATE-----` line"))?;
    let text: String = body
        .get(..end)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| not_pem(&format!("its base64 does not decode ({e})")))?;
    from_x509_svid_der(&der)
}

/// A principal from an X.509-SVID in DER: its SPIFFE ID (the one URI SAN,
/// `spiffe://…`) is the id, `notAfter` the credential's expiry, and the
/// trust domain (`spiffe://<trust domain>`) the credential's issuer.
///
/// A certificate with no URI SAN, more than one, or one that is not a
/// SPIFFE ID is refused, as the SPIFFE X.509-SVID standard requires. The
/// signature, chain and validity period are not checked here: the host's
/// TLS stack or SPIFFE library has done that before.
pub fn from_x509_svid_der(der: &[u8]) -> Result<Principal, IdentityError> {
    if der.len() > MAX_CERTIFICATE_BYTES {
        return Err(too_large(der.len()));
    }
    let svid = der::read_svid(der)?;
    let trust_domain = svid
        .spiffe_id
        .strip_prefix("spiffe://")
        .and_then(|rest| rest.split('/').next())
        .filter(|td| !td.is_empty())
        .ok_or_else(|| {
            cert_error(
                "certificate.subjectAltName",
                format!("`{}` is not a SPIFFE ID", svid.spiffe_id),
            )
        })?
        .to_ascii_lowercase();
    let mut principal = Principal::new(svid.spiffe_id);
    principal.credential = Some(Credential {
        issuer: Some(format!("spiffe://{trust_domain}")),
        expires_at: Some(svid.not_after),
    });
    Ok(principal)
}

/// Which helper [`principal_json`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// [`from_token_claims`].
    TokenClaims,
    /// [`from_user_token_claims`].
    UserTokenClaims,
    /// [`from_mcp_auth_info`].
    McpAuthInfo,
}

/// Runs a helper on JSON and answers in JSON: `{"principal": {...}}` in the
/// shape of the request's `principal`, or `{"error": {"kind", "field",
/// "message"}}`. The Python and Node modules call this, so all three
/// languages read identities alike.
pub fn principal_json(source: Source, input: &Value) -> Value {
    let result = match source {
        Source::TokenClaims => from_token_claims(input),
        Source::UserTokenClaims => from_user_token_claims(input),
        Source::McpAuthInfo => from_mcp_auth_info(input),
    };
    result_json(result)
}

/// [`principal_json`] for an X.509-SVID, PEM text or DER bytes.
pub fn svid_principal_json(certificate: &[u8]) -> Value {
    let result = match std::str::from_utf8(certificate) {
        Ok(text) if text.contains("-----BEGIN") => from_x509_svid_pem(text),
        _ => from_x509_svid_der(certificate),
    };
    result_json(result)
}

fn result_json(result: Result<Principal, IdentityError>) -> Value {
    let mut out = Map::new();
    match result {
        Ok(p) => {
            out.insert("principal".into(), p.to_json());
        }
        Err(e) => {
            let mut m = Map::new();
            m.insert("kind".into(), e.kind().as_str().into());
            m.insert("field".into(), e.field().into());
            m.insert("message".into(), e.message().into());
            out.insert("error".into(), Value::Object(m));
        }
    }
    Value::Object(out)
}

fn too_large(len: usize) -> IdentityError {
    cert_error(
        "certificate",
        format!("{len} bytes, more than the limit of {MAX_CERTIFICATE_BYTES}"),
    )
}

fn cert_error(field: &str, message: impl Into<String>) -> IdentityError {
    IdentityError::new(IdentityErrorKind::Certificate, field, message)
}

impl fmt::Display for IdentityErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Just enough DER to read a certificate's validity and subject
/// alternative names, every length checked against what is left.
mod der {
    use super::{IdentityError, cert_error};
    use crate::request::Timestamp;

    pub(super) struct Svid {
        pub spiffe_id: String,
        pub not_after: Timestamp,
    }

    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    const BOOLEAN: u8 = 0x01;
    const OCTET_STRING: u8 = 0x04;
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;
    const VERSION: u8 = 0xa0;
    const EXTENSIONS: u8 = 0xa3;
    const URI_NAME: u8 = 0x86;
    /// 2.5.29.17, subjectAltName.
    const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

    /// A cursor over DER bytes.
    struct Reader<'a> {
        rest: &'a [u8],
    }

    impl<'a> Reader<'a> {
        fn new(bytes: &'a [u8]) -> Self {
            Reader { rest: bytes }
        }

        fn is_empty(&self) -> bool {
            self.rest.is_empty()
        }

        fn peek_tag(&self) -> Option<u8> {
            self.rest.first().copied()
        }

        /// The next element: its tag and contents.
        fn element(&mut self, what: &str) -> Result<(u8, &'a [u8]), IdentityError> {
            let bad = |m: &str| cert_error("certificate", format!("malformed DER in {what}: {m}"));
            let (&tag, after_tag) = self.rest.split_first().ok_or_else(|| bad("truncated"))?;
            if tag & 0x1f == 0x1f {
                return Err(bad("multi-byte tags are not used in certificates"));
            }
            let (&first, mut after_len) =
                after_tag.split_first().ok_or_else(|| bad("truncated"))?;
            let len = if first < 0x80 {
                usize::from(first)
            } else {
                let n = usize::from(first & 0x7f);
                if n == 0 || n > 4 {
                    return Err(bad("unsupported length"));
                }
                let (len_bytes, tail) = after_len
                    .split_at_checked(n)
                    .ok_or_else(|| bad("truncated"))?;
                after_len = tail;
                len_bytes
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
            };
            let (contents, tail) = after_len
                .split_at_checked(len)
                .ok_or_else(|| bad("length beyond the end of the data"))?;
            self.rest = tail;
            Ok((tag, contents))
        }

        fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], IdentityError> {
            let (got, contents) = self.element(what)?;
            if got != tag {
                return Err(cert_error(
                    "certificate",
                    format!("malformed DER in {what}: tag 0x{got:02x}, expected 0x{tag:02x}"),
                ));
            }
            Ok(contents)
        }
    }

    pub(super) fn read_svid(der: &[u8]) -> Result<Svid, IdentityError> {
        let mut outer = Reader::new(der);
        let certificate = outer.expect(SEQUENCE, "Certificate")?;
        if !outer.is_empty() {
            return Err(cert_error(
                "certificate",
                "bytes after the end of the certificate",
            ));
        }
        let mut cert = Reader::new(certificate);
        let tbs = cert.expect(SEQUENCE, "tbsCertificate")?;
        let mut tbs = Reader::new(tbs);
        if tbs.peek_tag() == Some(VERSION) {
            tbs.element("version")?;
        }
        tbs.element("serialNumber")?;
        tbs.expect(SEQUENCE, "signature")?;
        tbs.expect(SEQUENCE, "issuer")?;
        let validity = tbs.expect(SEQUENCE, "validity")?;
        let mut validity = Reader::new(validity);
        validity.element("notBefore")?;
        let (tag, not_after) = validity.element("notAfter")?;
        let not_after = time(tag, not_after)?;
        tbs.expect(SEQUENCE, "subject")?;
        tbs.expect(SEQUENCE, "subjectPublicKeyInfo")?;
        let mut uris = Vec::new();
        while !tbs.is_empty() {
            let (tag, contents) = tbs.element("tbsCertificate")?;
            if tag != EXTENSIONS {
                continue;
            }
            let mut wrapper = Reader::new(contents);
            let list = wrapper.expect(SEQUENCE, "extensions")?;
            let mut list = Reader::new(list);
            while !list.is_empty() {
                let ext = list.expect(SEQUENCE, "extension")?;
                let mut ext = Reader::new(ext);
                let oid = ext.expect(OID, "extension id")?;
                if ext.peek_tag() == Some(BOOLEAN) {
                    ext.element("extension criticality")?;
                }
                let value = ext.expect(OCTET_STRING, "extension value")?;
                if oid != SUBJECT_ALT_NAME {
                    continue;
                }
                let mut names = Reader::new(value);
                let names = names.expect(SEQUENCE, "subjectAltName")?;
                let mut names = Reader::new(names);
                while !names.is_empty() {
                    let (tag, name) = names.element("subjectAltName")?;
                    if tag == URI_NAME {
                        let uri = std::str::from_utf8(name).map_err(|_| {
                            cert_error("certificate.subjectAltName", "a URI that is not text")
                        })?;
                        uris.push(uri.to_owned());
                    }
                }
            }
        }
        let spiffe_id = match uris.as_slice() {
            [] => {
                return Err(cert_error(
                    "certificate.subjectAltName",
                    "no URI SAN: an X.509-SVID carries its SPIFFE ID as exactly one URI SAN",
                ));
            }
            [one] => one.clone(),
            many => {
                return Err(cert_error(
                    "certificate.subjectAltName",
                    format!("{} URI SANs; an X.509-SVID has exactly one", many.len()),
                ));
            }
        };
        if !spiffe_id.starts_with("spiffe://") {
            return Err(cert_error(
                "certificate.subjectAltName",
                format!("`{spiffe_id}` is not a SPIFFE ID (spiffe://…)"),
            ));
        }
        Ok(Svid {
            spiffe_id,
            not_after,
        })
    }

    /// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
    fn time(tag: u8, bytes: &[u8]) -> Result<Timestamp, IdentityError> {
        let bad = || cert_error("certificate.notAfter", "not a DER time");
        let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
        let digits = text.strip_suffix('Z').ok_or_else(bad)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let full = match (tag, digits.len()) {
            (UTC_TIME, 12) => {
                let yy: u32 = digits
                    .get(..2)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(bad)?;
                let century = if yy >= 50 { "19" } else { "20" };
                format!("{century}{digits}")
            }
            (GENERALIZED_TIME, 14) => digits.to_owned(),
            _ => return Err(bad()),
        };
        let part = |from: usize, to: usize| full.get(from..to).ok_or_else(bad);
        let rfc3339 = format!(
            "{}-{}-{}T{}:{}:{}Z",
            part(0, 4)?,
            part(4, 6)?,
            part(6, 8)?,
            part(8, 10)?,
            part(10, 12)?,
            part(12, 14)?
        );
        Timestamp::parse(&rfc3339).map_err(|_| bad())
    }
}
