//! Trusted keys: a JWKS (RFC 7517) of issuers' public keys, each bound to
//! exactly one issuer.
//!
//! A key is an object of the set's `keys` array with:
//! - `kty` `OKP` with `crv` `Ed25519` and `x` (for `EdDSA`), or `kty` `EC`
//!   with `crv` `P-256`, `x` and `y` (for `ES256`);
//! - `kid`, unique in the set;
//! - `iss`, the issuer the key speaks for (a SPIFFE ID): an intent signed
//!   with this key is accepted only with this `iss` claim;
//! - optionally `alg` (must match the key type), `use` (must be `sig`) and
//!   `key_ops` (must include `verify`).
//!
//! Private members (`d`) are refused: a trust file holding a private key is
//! a leak waiting to happen.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use super::b64;
use super::error::KeySetError;
use crate::strict_json;

/// A signature algorithm agentriage accepts. Nothing else is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 signatures (JOSE `EdDSA`, RFC 8037).
    EdDsa,
    /// ECDSA over P-256 with SHA-256, 64-byte `r || s` signatures (JOSE
    /// `ES256`, RFC 7518 §3.4).
    Es256,
}

impl Algorithm {
    /// The JOSE name: `EdDSA` or `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Es256 => "ES256",
        }
    }

    /// The algorithm with JOSE name `name` (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "EdDSA" => Some(Algorithm::EdDsa),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }

    pub(crate) fn verification(self) -> &'static dyn ring::signature::VerificationAlgorithm {
        match self {
            Algorithm::EdDsa => &ring::signature::ED25519,
            Algorithm::Es256 => &ring::signature::ECDSA_P256_SHA256_FIXED,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Algorithm, String> {
        Algorithm::from_name(s).ok_or_else(|| {
            format!("`{s}` is not a supported algorithm; expected `EdDSA` or `ES256`")
        })
    }
}

/// One trusted public key.
#[derive(Clone)]
pub struct TrustedKey {
    kid: String,
    issuer: String,
    algorithm: Algorithm,
    /// Ed25519: the 32-byte key; P-256: the 65-byte uncompressed point.
    public: Vec<u8>,
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TrustedKey {
    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one issuer this key may sign for.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Verifies `signature` over `message` with this key.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(self.algorithm.verification(), &self.public)
            .verify(message, signature)
            .is_ok()
    }
}

/// The issuers' public keys, by `kid`.
///
/// In the JWKS, each key is an object of the `keys` array with:
/// - `kty` `OKP` with `crv` `Ed25519` and `x` (for `EdDSA`), or `kty` `EC`
///   with `crv` `P-256`, `x` and `y` (for `ES256`);
/// - `kid`, unique in the set;
/// - `iss`, the issuer the key speaks for (a SPIFFE ID): an intent signed
///   with this key is accepted only with this `iss` claim;
/// - optionally `alg` (must match the key type), `use` (must be `sig`) and
///   `key_ops` (must include `verify`).
///
/// Private members (`d`) are refused.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: HashMap<String, TrustedKey>,
}

/// Largest key set accepted, in bytes (1 MiB).
pub const MAX_KEY_SET_BYTES: usize = 1 << 20;

impl TrustedKeys {
    /// Parses a JWKS (`{"keys": [...]}`); see [`TrustedKeys`] for what each
    /// key must hold.
    ///
    /// ```
    /// let keys = agentriage::intent::TrustedKeys::from_json(r#"{"keys": [{
    ///     "kty": "OKP", "crv": "Ed25519", "kid": "router-1",
    ///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    ///     "iss": "spiffe://acme.example/ns/logistics/sa/router"
    /// }]}"#)?;
    /// assert_eq!(keys.get("router-1").unwrap().issuer(),
    ///            "spiffe://acme.example/ns/logistics/sa/router");
    /// # Ok::<(), agentriage::intent::KeySetError>(())
    /// ```
    pub fn from_json(text: &str) -> Result<TrustedKeys, KeySetError> {
        if text.len() > MAX_KEY_SET_BYTES {
            return Err(KeySetError::new(
                "$",
                None,
                format!("key set is larger than {MAX_KEY_SET_BYTES} bytes"),
            ));
        }
        let value = strict_json::parse(text.as_bytes()).map_err(|e| {
            KeySetError::new(
                "$",
                u32::try_from(e.line()).ok().filter(|&l| l > 0),
                e.to_string(),
            )
        })?;
        let Value::Object(top) = value else {
            return Err(KeySetError::new("$", Some(1), "a key set is a JSON object"));
        };
        let Some(Value::Array(items)) = top.get("keys") else {
            return Err(KeySetError::new(
                "keys",
                Some(1),
                "a key set needs a `keys` array",
            ));
        };
        let mut keys = HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let line = nth_line(text, i);
            let at = |member: &str| {
                if member.is_empty() {
                    format!("keys[{i}]")
                } else {
                    format!("keys[{i}].{member}")
                }
            };
            let key =
                parse_key(item).map_err(|(member, msg)| KeySetError::new(at(member), line, msg))?;
            if let Some(previous) = keys.get(&key.kid) {
                let previous: &TrustedKey = previous;
                return Err(KeySetError::new(
                    at("kid"),
                    line,
                    if previous.issuer == key.issuer {
                        format!("kid `{}` appears twice", key.kid)
                    } else {
                        format!(
                            "kid `{}` is bound to two issuers, `{}` and `{}`",
                            key.kid, previous.issuer, key.issuer
                        )
                    },
                ));
            }
            keys.insert(key.kid.clone(), key);
        }
        Ok(TrustedKeys { keys })
    }

    /// Adds `key`; `Err` names the existing key when `kid` is taken.
    pub fn insert(&mut self, key: TrustedKey) -> Result<(), KeySetError> {
        if self.keys.contains_key(&key.kid) {
            return Err(KeySetError::new(
                "kid",
                None,
                format!("kid `{}` is already trusted", key.kid),
            ));
        }
        self.keys.insert(key.kid.clone(), key);
        Ok(())
    }

    /// The key with id `kid`.
    pub fn get(&self, kid: &str) -> Option<&TrustedKey> {
        self.keys.get(kid)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key, sorted by `kid`.
    pub fn keys(&self) -> Vec<&TrustedKey> {
        let mut v: Vec<&TrustedKey> = self.keys.values().collect();
        v.sort_by(|a, b| a.kid.cmp(&b.kid));
        v
    }
}

/// The line of the `n`th key: where its `"kty"` member is (every valid key
/// has one), else where the `keys` array starts.
fn nth_line(text: &str, n: usize) -> Option<u32> {
    let offset = text
        .match_indices("\"kty\"")
        .nth(n)
        .map(|(at, _)| at)
        .or_else(|| text.find("\"keys\""))?;
    Some(crate::error::line_of(text, offset))
}

type MemberError = (&'static str, String);

fn string<'a>(o: &'a Map<String, Value>, member: &'static str) -> Result<&'a str, MemberError> {
    match o.get(member) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err((member, format!("`{member}` is empty"))),
        Some(_) => Err((member, format!("`{member}` must be a string"))),
        None => Err((member, format!("`{member}` is required"))),
    }
}

fn coordinate(
    o: &Map<String, Value>,
    member: &'static str,
    len: usize,
) -> Result<Vec<u8>, MemberError> {
    let text = string(o, member)?;
    let bytes = b64::decode(text.as_bytes()).map_err(|e| (member, format!("`{member}`: {e}")))?;
    if bytes.len() != len {
        return Err((
            member,
            format!("`{member}` must be {len} bytes, not {}", bytes.len()),
        ));
    }
    Ok(bytes)
}

fn parse_key(item: &Value) -> Result<TrustedKey, MemberError> {
    let Value::Object(o) = item else {
        return Err(("", "a key is a JSON object".into()));
    };
    if o.contains_key("d") {
        return Err((
            "d",
            "a private key does not belong in a trusted key set; publish only the public part"
                .into(),
        ));
    }
    let kty = string(o, "kty")?;
    if kty != "OKP" && kty != "EC" {
        return Err((
            "kty",
            format!("key type `{kty}` is not supported; expected `OKP` or `EC`"),
        ));
    }
    let crv = string(o, "crv")?;
    let (algorithm, public) = match (kty, crv) {
        ("OKP", "Ed25519") => (Algorithm::EdDsa, coordinate(o, "x", 32)?),
        ("EC", "P-256") => {
            let mut point = Vec::with_capacity(65);
            point.push(4u8);
            point.extend(coordinate(o, "x", 32)?);
            point.extend(coordinate(o, "y", 32)?);
            (Algorithm::Es256, point)
        }
        ("OKP", other) | ("EC", other) => {
            return Err((
                "crv",
                format!(
                    "curve `{other}` is not supported; expected `Ed25519` (OKP) or `P-256` (EC)"
                ),
            ));
        }
        (other, _) => {
            return Err((
                "kty",
                format!("key type `{other}` is not supported; expected `OKP` or `EC`"),
            ));
        }
    };
    if let Some(alg) = o.get("alg")
        && alg.as_str() != Some(algorithm.as_str())
    {
        return Err((
            "alg",
            format!("`alg` {alg} does not match a {kty} {crv} key (`{algorithm}`)"),
        ));
    }
    if let Some(u) = o.get("use")
        && u.as_str() != Some("sig")
    {
        return Err(("use", format!("`use` {u} is not `sig`")));
    }
    if let Some(ops) = o.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|op| op.as_str() == Some("verify")));
        if !verify {
            return Err(("key_ops", "`key_ops` does not include `verify`".into()));
        }
    }
    let kid = string(o, "kid")?.to_owned();
    let issuer = string(o, "iss")?.to_owned();
    Ok(TrustedKey {
        kid,
        issuer,
        algorithm,
        public,
    })
}

/// A key made from raw public key bytes (for keys generated by
/// [`generate_key`](super::generate_key)).
pub(crate) fn trusted_key(
    kid: String,
    issuer: String,
    algorithm: Algorithm,
    public: Vec<u8>,
) -> TrustedKey {
    TrustedKey {
        kid,
        issuer,
        algorithm,
        public,
    }
}

/// The public JWK of a key: what goes into a trusted key set.
pub(crate) fn public_jwk(key: &TrustedKey) -> Value {
    let mut o = Map::new();
    match key.algorithm {
        Algorithm::EdDsa => {
            o.insert("kty".into(), "OKP".into());
            o.insert("crv".into(), "Ed25519".into());
            o.insert("x".into(), b64::encode(&key.public).into());
        }
        Algorithm::Es256 => {
            o.insert("kty".into(), "EC".into());
            o.insert("crv".into(), "P-256".into());
            let x = key.public.get(1..33).unwrap_or_default();
            let y = key.public.get(33..65).unwrap_or_default();
            o.insert("x".into(), b64::encode(x).into());
            o.insert("y".into(), b64::encode(y).into());
        }
    }
    o.insert("kid".into(), key.kid.clone().into());
    o.insert("alg".into(), key.algorithm.as_str().into());
    o.insert("use".into(), "sig".into());
    o.insert("iss".into(), key.issuer.clone().into());
    Value::Object(o)
}

impl TrustedKey {
    /// This key as a public JWK (with `kid`, `alg`, `use` and `iss`).
    pub fn to_jwk(&self) -> Value {
        public_jwk(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn set(key: &str) -> Result<TrustedKeys, KeySetError> {
        TrustedKeys::from_json(&format!("{{\"keys\": [\n{key}\n]}}"))
    }

    #[test]
    fn reads_an_ed25519_key() {
        let k = set(&format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"a","iss":"spiffe://x/a","alg":"EdDSA","use":"sig"}}"#
        ))
        .unwrap();
        let key = k.get("a").unwrap();
        assert_eq!(key.algorithm(), Algorithm::EdDsa);
        assert_eq!(key.issuer(), "spiffe://x/a");
        assert_eq!(k.len(), 1);
    }

    #[test]
    fn refuses_bad_keys_naming_the_member_and_line() {
        let cases = [
            (
                r#"{"kty":"OKP","crv":"Ed25519","x":"XX","kid":"a","iss":"i"}"#,
                "keys[0].x",
            ),
            (
                r#"{"kty":"OKP","crv":"X25519","x":"XX","kid":"a","iss":"i"}"#,
                "keys[0].crv",
            ),
            (
                r#"{"kty":"RSA","crv":"P-256","kid":"a","iss":"i"}"#,
                "keys[0].kty",
            ),
            (
                r#"{"kty":"oct","k":"c2VjcmV0","kid":"a","iss":"i"}"#,
                "keys[0].kty",
            ),
            (
                &format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","iss":"i"}}"#),
                "keys[0].kid",
            ),
            (
                &format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"a"}}"#),
                "keys[0].iss",
            ),
            (
                &format!(
                    r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"a","iss":"i","alg":"ES256"}}"#
                ),
                "keys[0].alg",
            ),
            (
                &format!(
                    r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"a","iss":"i","use":"enc"}}"#
                ),
                "keys[0].use",
            ),
            (
                &format!(
                    r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"a","iss":"i","key_ops":["sign"]}}"#
                ),
                "keys[0].key_ops",
            ),
            (
                &format!(
                    r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","d":"{X}","kid":"a","iss":"i"}}"#
                ),
                "keys[0].d",
            ),
        ];
        for (key, path) in cases {
            let e = set(key).unwrap_err();
            assert_eq!(e.path(), path, "{key}: {e}");
            assert_eq!(e.line(), Some(2), "{key}");
        }
    }

    #[test]
    fn refuses_a_kid_bound_to_two_issuers() {
        let a = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"k","iss":"one"}}"#);
        let b = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{X}","kid":"k","iss":"two"}}"#);
        let e = set(&format!("{a},\n{b}")).unwrap_err();
        assert_eq!(e.path(), "keys[1].kid");
        assert_eq!(e.line(), Some(3));
        assert!(e.message().contains("two issuers"), "{e}");
    }

    #[test]
    fn refuses_duplicate_members_and_non_sets() {
        let e = TrustedKeys::from_json("{\"keys\": [],\n \"keys\": []}").unwrap_err();
        assert!(e.message().contains("duplicate key"), "{e}");
        assert_eq!(e.line(), Some(2));
        assert!(TrustedKeys::from_json("[]").is_err());
        assert!(TrustedKeys::from_json("{}").is_err());
        assert!(TrustedKeys::from_json(r#"{"keys": [1]}"#).is_err());
    }
}
