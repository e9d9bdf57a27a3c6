//! `io.jwt.*`: decoding and verifying JSON Web Tokens as OPA does.
//!
//! Every branch mirrors what OPA answers on the same input (recorded in
//! `testdata/jwt/vectors.json`): a token that does not verify, or whose
//! claims do not meet the constraints, gives `false`; a token or a key that
//! cannot be read is an error, which fails the evaluation closed.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use regorus::Value;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

use super::keys::{Curve, PublicKey, parse_keys};

/// Base64url as OPA decodes it: padding optional, trailing bits ignored.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

pub(super) fn b64url(text: &str) -> Result<Vec<u8>, String> {
    B64URL
        .decode(text)
        .map_err(|e| format!("invalid base64url: {e}"))
}

/// The three dot-separated sections of a compact JWS.
pub(super) struct Token<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

pub(super) fn split(value: &Value, name: &str) -> Result<String, String> {
    let text = string_arg(value, name, 1)?;
    if !text.contains('.') {
        return Err(format!("{name}: encoded JWT had no period separators"));
    }
    let sections = text.split('.').count();
    if sections != 3 {
        return Err(format!(
            "{name}: encoded JWT must have 3 sections, found {sections}"
        ));
    }
    Ok(text.to_owned())
}

fn sections(text: &str) -> Token<'_> {
    let mut parts = text.splitn(3, '.');
    Token {
        header: parts.next().unwrap_or(""),
        payload: parts.next().unwrap_or(""),
        signature: parts.next().unwrap_or(""),
    }
}

/// A string argument, or a type error naming the operand.
pub(super) fn string_arg<'a>(value: &'a Value, name: &str, n: usize) -> Result<&'a str, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!(
            "{name}: operand {n} must be string but got {}",
            type_name(other)
        )),
    }
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

/// Decodes JSON text that must hold an object.
fn json_object(bytes: &[u8], name: &str, what: &str) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{name}: {what} is not UTF-8"))?;
    let value =
        Value::from_json_str(text).map_err(|e| format!("{name}: {what}: invalid JSON: {e}"))?;
    if value.as_object().is_err() {
        return Err(format!(
            "{name}: {what}: decoded JSON type was not an object"
        ));
    }
    Ok(value)
}

fn decode_header(token: &Token<'_>, name: &str) -> Result<Value, String> {
    let bytes = b64url(token.header)
        .map_err(|e| format!("{name}: JWT header had invalid encoding: {e}"))?;
    let header = json_object(&bytes, name, "bad JWT header")?;
    if get(&header, "enc").is_some() {
        return Err(format!(
            "{name}: JWT is a JWE object, which is not supported"
        ));
    }
    Ok(header)
}

fn get<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.as_object().ok()?.get(&Value::from(key))
}

/// The header fields that matter to verification.
#[derive(Default)]
struct Header {
    alg: String,
    kid: String,
    cty: String,
    /// `crit` names a parameter the verifier does not understand.
    unknown_critical: bool,
}

fn parse_header(header: &Value, name: &str) -> Result<Header, String> {
    let mut out = Header::default();
    let Ok(fields) = header.as_object() else {
        return Err(format!("{name}: bad JWT header"));
    };
    let mut unknown = Vec::new();
    let mut critical = Vec::new();
    for (key, value) in fields.iter() {
        let Value::String(key) = key else { continue };
        let text = |field: &str| match value {
            Value::String(s) => Ok(s.to_string()),
            _ => Err(format!("{name}: {field}: must be a string")),
        };
        match key.as_ref() {
            "alg" => out.alg = text("alg")?,
            "kid" => out.kid = text("kid")?,
            "cty" => out.cty = text("cty")?,
            "crit" => {
                let Value::Array(items) = value else {
                    return Err(format!("{name}: crit: must be a list"));
                };
                for item in items.iter() {
                    let Value::String(s) = item else {
                        return Err(format!("{name}: crit: must be a list of strings"));
                    };
                    critical.push(s.to_string());
                }
                if critical.is_empty() {
                    return Err(format!("{name}: crit: must be a nonempty list"));
                }
            }
            other => unknown.push(other.to_owned()),
        }
    }
    out.unknown_critical = critical.iter().any(|c| unknown.contains(c));
    Ok(out)
}

/// `io.jwt.decode(token)`: `[header, payload, signature as hex]`, without
/// verifying anything.
pub(super) fn decode(args: &[Value]) -> Result<Value, String> {
    const NAME: &str = "io.jwt.decode";
    let mut text = split(args.first().unwrap_or(&Value::Undefined), NAME)?;
    // A nested token (`cty: JWT`) is decoded down to the innermost one.
    for _ in 0..MAX_NESTING {
        let token = sections(&text);
        let header = decode_header(&token, NAME)?;
        let payload = b64url(token.payload)
            .map_err(|e| format!("{NAME}: JWT payload had invalid encoding: {e}"))?;
        if let Some(Value::String(cty)) = get(&header, "cty")
            && cty.as_ref() == "JWT"
        {
            let inner = String::from_utf8(payload)
                .map_err(|_| format!("{NAME}: nested JWT is not UTF-8"))?;
            text = inner.trim_matches(['"', '\'']).to_owned();
            split(&Value::from(text.as_str()), NAME)?;
            continue;
        }
        let payload = json_object(&payload, NAME, "JWT payload")?;
        let signature = b64url(token.signature)
            .map_err(|e| format!("{NAME}: JWT signature had invalid encoding: {e}"))?;
        return Ok(Value::from(vec![
            header,
            payload,
            Value::from(hex(&signature).as_str()),
        ]));
    }
    Err(format!(
        "{NAME}: JWT nests deeper than {MAX_NESTING} levels"
    ))
}

/// Tokens nested deeper than this are refused (OPA has no limit; a limit
/// keeps a crafted token from running without end).
const MAX_NESTING: usize = 16;

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// What a key is checked against.
enum Trusted {
    Keys(Vec<PublicKey>),
    Secret(Vec<u8>),
}

/// Verifies `signature` over `message` as `alg` with `key`: `false` when it
/// does not verify, when the key does not fit the algorithm, or when the
/// algorithm is unknown (all as OPA does).
fn verify_with_key(alg: &str, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    let ok = |algorithm: &'static dyn signature::VerificationAlgorithm, bytes: &[u8]| {
        UnparsedPublicKey::new(algorithm, bytes)
            .verify(message, signature)
            .is_ok()
    };
    let rsa = |params: &'static signature::RsaParameters, n: &[u8], e: &[u8]| {
        RsaPublicKeyComponents { n, e }
            .verify(params, message, signature)
            .is_ok()
    };
    match (alg, key) {
        ("EdDSA", PublicKey::Ed25519 { x, .. }) => ok(&signature::ED25519, x),
        (
            "ES256",
            PublicKey::Ec {
                curve: Curve::P256,
                point,
                ..
            },
        ) => ok(&signature::ECDSA_P256_SHA256_FIXED, point),
        (
            "ES384",
            PublicKey::Ec {
                curve: Curve::P384,
                point,
                ..
            },
        ) => ok(&signature::ECDSA_P384_SHA384_FIXED, point),
        ("RS256", PublicKey::Rsa { n, e, .. }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e),
        ("RS384", PublicKey::Rsa { n, e, .. }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e),
        ("RS512", PublicKey::Rsa { n, e, .. }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e),
        ("PS256", PublicKey::Rsa { n, e, .. }) => rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e),
        ("PS384", PublicKey::Rsa { n, e, .. }) => rsa(&signature::RSA_PSS_2048_8192_SHA384, n, e),
        ("PS512", PublicKey::Rsa { n, e, .. }) => rsa(&signature::RSA_PSS_2048_8192_SHA512, n, e),
        _ => false,
    }
}

/// Algorithms OPA verifies that `ring` cannot: refused with an error rather
/// than answered `false`, so that a policy author learns of it.
const UNSUPPORTED_ALGORITHMS: [&str; 1] = ["ES512"];

fn hmac_algorithm(alg: &str) -> Option<ring::hmac::Algorithm> {
    match alg {
        "HS256" => Some(ring::hmac::HMAC_SHA256),
        "HS384" => Some(ring::hmac::HMAC_SHA384),
        "HS512" => Some(ring::hmac::HMAC_SHA512),
        _ => None,
    }
}

fn verify_hmac(
    algorithm: ring::hmac::Algorithm,
    secret: &[u8],
    message: &[u8],
    sig: &[u8],
) -> bool {
    let key = ring::hmac::Key::new(algorithm, secret);
    ring::hmac::verify(&key, message, sig).is_ok()
}

/// Tries the key whose `kid` is the header's first, else every key.
fn verify_with_keys(alg: &str, kid: &str, keys: &[PublicKey], message: &[u8], sig: &[u8]) -> bool {
    if !kid.is_empty()
        && let Some(key) = keys.iter().find(|k| k.kid() == Some(kid))
    {
        return verify_with_key(alg, key, message, sig);
    }
    keys.iter().any(|k| verify_with_key(alg, k, message, sig))
}

/// `io.jwt.verify_<alg>(token, certificate)`: whether the signature
/// verifies with one of the keys (the header's `alg` is not consulted).
pub(super) fn verify_asymmetric(
    alg: &'static str,
    name: &str,
    args: &[Value],
) -> Result<Value, String> {
    let text = split(args.first().unwrap_or(&Value::Undefined), name)?;
    let token = sections(&text);
    let cert = string_arg(args.get(1).unwrap_or(&Value::Undefined), name, 2)?;
    let keys = parse_keys(cert).map_err(|e| format!("{name}: {e}"))?;
    let signature = b64url(token.signature).map_err(|e| format!("{name}: {e}"))?;
    let header = parse_header(&decode_header(&token, name)?, name)?;
    let message = format!("{}.{}", token.header, token.payload);
    Ok(Value::from(verify_with_keys(
        alg,
        &header.kid,
        &keys,
        message.as_bytes(),
        &signature,
    )))
}

/// `io.jwt.verify_hs<bits>(token, secret)`.
pub(super) fn verify_hs(alg: &'static str, name: &str, args: &[Value]) -> Result<Value, String> {
    let text = split(args.first().unwrap_or(&Value::Undefined), name)?;
    let token = sections(&text);
    let secret = string_arg(args.get(1).unwrap_or(&Value::Undefined), name, 2)?;
    let algorithm = hmac_algorithm(alg).ok_or_else(|| format!("{name}: unknown algorithm"))?;
    let signature = b64url(token.signature).map_err(|e| format!("{name}: {e}"))?;
    let message = format!("{}.{}", token.header, token.payload);
    Ok(Value::from(verify_hmac(
        algorithm,
        secret.as_bytes(),
        message.as_bytes(),
        &signature,
    )))
}

/// The constraints of `io.jwt.decode_verify`.
struct Constraints {
    trusted: Trusted,
    alg: Option<String>,
    iss: Option<String>,
    aud: String,
    /// Seconds since the epoch.
    time: f64,
}

fn parse_constraints(value: &Value, name: &str) -> Result<Constraints, String> {
    let Value::Object(fields) = value else {
        return Err(format!(
            "{name}: operand 2 must be object but got {}",
            type_name(value)
        ));
    };
    let mut keys = None;
    let mut secret = None;
    let mut alg = None;
    let mut iss = None;
    let mut aud = String::new();
    let mut time = None;
    for (key, value) in fields.iter() {
        let Value::String(key) = key else {
            return Err(format!("{name}: constraint names must be strings"));
        };
        let text = |field: &str| match value {
            Value::String(s) => Ok(s.to_string()),
            _ => Err(format!("{name}: {field} constraint: must be a string")),
        };
        match key.as_ref() {
            "cert" => {
                let cert = text("cert")?;
                keys = Some(parse_keys(&cert).map_err(|e| format!("{name}: {e}"))?);
            }
            "secret" => secret = Some(text("secret")?),
            "alg" => alg = Some(text("alg")?),
            "iss" => iss = Some(text("iss")?),
            "aud" => aud = text("aud")?,
            "time" => {
                if !matches!(value, Value::Number(_)) {
                    return Err(format!("{name}: token time constraint: must be a number"));
                }
                let ns = lossy_f64(value)
                    .ok_or_else(|| format!("{name}: token time constraint: out of range"))?;
                time = Some(ns / 1e9);
            }
            other => {
                return Err(format!(
                    "{name}: unknown token validation constraint: `{other}`"
                ));
            }
        }
    }
    // OPA treats an empty secret as no secret.
    let secret = secret.filter(|s| !s.is_empty());
    let trusted = match (keys, secret) {
        (Some(_), Some(_)) => return Err(format!("{name}: duplicate key constraints")),
        (None, None) => return Err(format!("{name}: no key constraint")),
        (Some(k), None) => Trusted::Keys(k),
        (None, Some(s)) => Trusted::Secret(s.into_bytes()),
    };
    let time = match time {
        Some(t) => t,
        None => now_seconds()?,
    };
    Ok(Constraints {
        trusted,
        alg: alg.filter(|a| !a.is_empty()),
        iss: iss.filter(|i| !i.is_empty()),
        aud,
        time,
    })
}

/// A number as the nearest `f64`, as OPA converts times (nanoseconds do not
/// fit exactly).
#[allow(
    clippy::cast_precision_loss,
    reason = "OPA compares times as float64 too"
)]
fn lossy_f64(value: &Value) -> Option<f64> {
    let Value::Number(n) = value else {
        return None;
    };
    n.as_f64()
        .or_else(|| n.as_i64().map(|i| i as f64))
        .or_else(|| n.as_u64().map(|u| u as f64))
}

fn now_seconds() -> Result<f64, String> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_owned())?;
    Ok(since.as_secs_f64())
}

/// `io.jwt.decode_verify(token, constraints)`: `[true, header, payload]`
/// when the signature verifies and the claims meet the constraints, else
/// `[false, {}, {}]`.
pub(super) fn decode_verify(args: &[Value]) -> Result<Value, String> {
    const NAME: &str = "io.jwt.decode_verify";
    let unverified = || {
        Ok(Value::from(vec![
            Value::from(false),
            Value::new_object(),
            Value::new_object(),
        ]))
    };
    let constraints = parse_constraints(args.get(1).unwrap_or(&Value::Undefined), NAME)?;
    let mut text = string_arg(args.first().unwrap_or(&Value::Undefined), NAME, 1)?.to_owned();
    let mut nesting = 0;
    let (header, payload) = loop {
        split(&Value::from(text.as_str()), NAME)?;
        let token = sections(&text);
        let header = decode_header(&token, NAME)?;
        let fields = parse_header(&header, NAME)?;
        if fields.alg.is_empty() || fields.unknown_critical {
            return unverified();
        }
        if let Some(alg) = &constraints.alg
            && *alg != fields.alg
        {
            return unverified();
        }
        if UNSUPPORTED_ALGORITHMS.contains(&fields.alg.as_str()) {
            return Err(format!(
                "{NAME}: algorithm `{}` is not supported",
                fields.alg
            ));
        }
        let signature = b64url(token.signature).map_err(|e| format!("{NAME}: {e}"))?;
        let message = format!("{}.{}", token.header, token.payload);
        let verified = match &constraints.trusted {
            Trusted::Keys(keys) => verify_with_keys(
                &fields.alg,
                &fields.kid,
                keys,
                message.as_bytes(),
                &signature,
            ),
            Trusted::Secret(secret) => hmac_algorithm(&fields.alg)
                .is_some_and(|a| verify_hmac(a, secret, message.as_bytes(), &signature)),
        };
        if !verified {
            return unverified();
        }
        let payload = b64url(token.payload)
            .map_err(|e| format!("{NAME}: JWT payload had invalid encoding: {e}"))?;
        if fields.cty.eq_ignore_ascii_case("JWT") {
            nesting += 1;
            if nesting >= MAX_NESTING {
                return Err(format!(
                    "{NAME}: JWT nests deeper than {MAX_NESTING} levels"
                ));
            }
            text = String::from_utf8(payload)
                .map_err(|_| format!("{NAME}: nested JWT is not UTF-8"))?;
            continue;
        }
        break (header, json_object(&payload, NAME, "JWT payload")?);
    };
    if let Some(iss) = &constraints.iss {
        match get(&payload, "iss") {
            Some(Value::String(s)) if s.as_ref() == iss => {}
            None => return unverified(),
            Some(Value::String(_)) => return unverified(),
            // OPA fails on a non-string `iss` when an issuer is required.
            Some(other) => {
                return Err(format!(
                    "{NAME}: iss claim must be a string but got {}",
                    type_name(other)
                ));
            }
        }
    }
    match get(&payload, "aud") {
        Some(aud) => {
            let valid = match aud {
                Value::String(s) => s.as_ref() == constraints.aud,
                Value::Array(items) => items
                    .iter()
                    .any(|i| matches!(i, Value::String(s) if s.as_ref() == constraints.aud)),
                _ => false,
            };
            if !valid {
                return unverified();
            }
        }
        None => {
            if !constraints.aud.is_empty() {
                return unverified();
            }
        }
    }
    for (claim, valid) in [
        (
            "exp",
            (|now: f64, at: f64| now < at) as fn(f64, f64) -> bool,
        ),
        ("nbf", |now, at| now >= at),
    ] {
        if let Some(value) = get(&payload, claim) {
            if !matches!(value, Value::Number(_)) {
                return Err(format!("{NAME}: {claim} value must be a number"));
            }
            let at =
                lossy_f64(value).ok_or_else(|| format!("{NAME}: {claim} value is out of range"))?;
            if !valid(constraints.time, at) {
                return unverified();
            }
        }
    }
    Ok(Value::from(vec![Value::from(true), header, payload]))
}
