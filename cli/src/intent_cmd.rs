//! `agentriage intent keygen | sign | verify`: signed intents for agents
//! without a JOSE library of their own.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentriage::Timestamp;
use agentriage::intent::{
    Algorithm, Expected, IntentClaims, IntentConfig, IntentFact, IntentVerifier, SigningKey,
    TrustedKeys,
};
use clap::Subcommand;
use serde_json::json;

/// Exit codes of `agentriage intent`.
mod exit {
    pub const OK: u8 = 0;
    /// `verify`: the intent failed a check.
    pub const INVALID: u8 = 1;
    /// A key or key set could not be used.
    pub const KEYS: u8 = 3;
    /// A file could not be read or written.
    pub const IO: u8 = 4;
}

pub const EXIT_CODES: &str = "\
Exit codes:
  0  done (verify: the intent is valid)
  1  verify: the intent failed a check (the check is printed)
  2  bad command-line usage
  3  a key, key set or claim could not be used
  4  a file could not be read or written";

#[derive(Subcommand)]
pub enum IntentCommand {
    /// Generate a signing key: writes the private key (PKCS#8 PEM) and prints
    /// the public JWK, bound to the issuer, for the receiver's key set.
    ///
    /// With --key-set, the public key also goes into a key set (JWKS) file
    /// that `verify --keys` reads: created if absent, otherwise the key is
    /// added to the keys already there (a key id may appear only once).
    #[command(after_help = EXIT_CODES)]
    Keygen {
        /// `EdDSA` (Ed25519) or `ES256` (P-256).
        #[arg(long, default_value = "EdDSA")]
        alg: Algorithm,
        /// Key id.
        #[arg(long)]
        kid: String,
        /// The issuer the key signs for (the agent's SPIFFE ID).
        #[arg(long)]
        iss: String,
        /// Where to write the private key (refuses to overwrite a file).
        #[arg(long)]
        private_key: PathBuf,
        /// Key set (JWKS) file to create, or to add the public key to.
        #[arg(long, value_name = "FILE")]
        key_set: Option<PathBuf>,
    },
    /// Sign an intent; prints the compact JWS.
    #[command(after_help = EXIT_CODES)]
    Sign {
        /// Private key file (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// `EdDSA` or `ES256`: the private key's algorithm.
        #[arg(long, default_value = "EdDSA")]
        alg: Algorithm,
        /// Key id.
        #[arg(long)]
        kid: String,
        /// Issuer (the agent's SPIFFE ID).
        #[arg(long)]
        iss: String,
        /// Audience (the receiver).
        #[arg(long)]
        aud: String,
        /// Action name.
        #[arg(long)]
        act: String,
        /// Resource as `type:id`.
        #[arg(long)]
        res: String,
        /// Purpose, in words.
        #[arg(long)]
        purpose: String,
        /// Scope entries (repeatable).
        #[arg(long)]
        scope: Vec<String>,
        /// Issue time (RFC 3339); now when absent.
        #[arg(long)]
        iat: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 300)]
        lifetime_s: u64,
        /// The nonce; a fresh UUID when absent.
        #[arg(long)]
        jti: Option<String>,
    },
    /// Verify an intent against a key set and what the request asks for;
    /// prints the intent fact policies would see, as JSON. Does not record
    /// the `jti` (there is no replay cache across invocations).
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// Key set (JWKS) file.
        #[arg(long)]
        keys: PathBuf,
        /// This receiver's audience.
        #[arg(long)]
        aud: String,
        /// The request's principal id.
        #[arg(long)]
        principal: String,
        /// The request's action name.
        #[arg(long)]
        act: String,
        /// The request's resource as `type:id`.
        #[arg(long)]
        res: Option<String>,
        /// Evaluation time (RFC 3339); now when absent.
        #[arg(long)]
        time: Option<String>,
        /// Clock skew tolerated, in seconds.
        #[arg(long, default_value_t = 60)]
        clock_skew_s: u64,
        /// Longest lifetime accepted, in seconds.
        #[arg(long, default_value_t = 900)]
        max_lifetime_s: u64,
        /// The token, or `-` for standard input.
        #[arg(default_value = "-")]
        token: String,
    },
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("agentriage intent: {message}");
    code
}

fn time_arg(name: &str, text: Option<&str>) -> Result<Timestamp, u8> {
    match text {
        None => Ok(Timestamp::now()),
        Some(t) => Timestamp::parse(t).map_err(|e| fail(exit::KEYS, format!("--{name}: {e}"))),
    }
}

fn read(path: &Path) -> Result<String, u8> {
    std::fs::read_to_string(path)
        .map_err(|e| fail(exit::IO, format!("cannot read `{}`: {e}", path.display())))
}

pub fn run(command: IntentCommand) -> u8 {
    match command {
        IntentCommand::Keygen {
            alg,
            kid,
            iss,
            private_key,
            key_set,
        } => keygen(alg, kid, iss, &private_key, key_set.as_deref()),
        IntentCommand::Sign {
            key,
            alg,
            kid,
            iss,
            aud,
            act,
            res,
            purpose,
            scope,
            iat,
            lifetime_s,
            jti,
        } => {
            let pem = match read(&key) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let signing = match SigningKey::from_pem(alg, kid, iss.clone(), &pem) {
                Ok(k) => k,
                Err(e) => return fail(exit::KEYS, format!("{}: {e}", key.display())),
            };
            let iat = match time_arg("iat", iat.as_deref()) {
                Ok(t) => t,
                Err(code) => return code,
            };
            let seconds = i64::try_from(iat.unix_nanos().div_euclid(1_000_000_000)).unwrap_or(0);
            let mut claims = IntentClaims::new(
                iss,
                aud,
                act,
                res,
                purpose,
                seconds,
                Duration::from_secs(lifetime_s),
            );
            claims.scope = scope;
            if let Some(jti) = jti {
                claims.jti = jti;
            }
            match signing.sign(&claims) {
                Ok(token) => {
                    println!("{token}");
                    exit::OK
                }
                Err(e) => fail(exit::KEYS, e),
            }
        }
        IntentCommand::Verify {
            keys,
            aud,
            principal,
            act,
            res,
            time,
            clock_skew_s,
            max_lifetime_s,
            token,
        } => {
            let text = match read(&keys) {
                Ok(t) => t,
                Err(code) => return code,
            };
            let set = match TrustedKeys::from_json(&text) {
                Ok(s) => s,
                Err(e) => {
                    let line = e.line().map_or(String::new(), |l| format!(":{l}"));
                    return fail(exit::KEYS, format!("{}{line}: {e}", keys.display()));
                }
            };
            let now = match time_arg("time", time.as_deref()) {
                Ok(t) => t,
                Err(code) => return code,
            };
            let token = if token == "-" {
                let mut s = String::new();
                let limit = u64::try_from(agentriage::intent::MAX_INTENT_BYTES).unwrap_or(0) + 2;
                if let Err(e) = std::io::stdin().take(limit).read_to_string(&mut s) {
                    return fail(exit::IO, format!("cannot read standard input: {e}"));
                }
                s.trim().to_owned()
            } else {
                token
            };
            let verifier = IntentVerifier::new(
                IntentConfig::new(set, aud)
                    .with_clock_skew(Duration::from_secs(clock_skew_s))
                    .with_max_lifetime(Duration::from_secs(max_lifetime_s)),
            );
            let resource = res.as_deref().and_then(|r| r.split_once(':'));
            let expected = Expected {
                principal: &principal,
                action: &act,
                resource,
            };
            let fact = match verifier.verify_unrecorded(&token, &expected, now) {
                Ok(v) => IntentFact::Verified(Box::new(v)),
                Err(e) => IntentFact::Invalid(e),
            };
            println!("{}", fact.to_json());
            if matches!(fact, IntentFact::Verified(_)) {
                exit::OK
            } else {
                exit::INVALID
            }
        }
    }
}

fn keygen(alg: Algorithm, kid: String, iss: String, path: &Path, key_set: Option<&Path>) -> u8 {
    let key = match SigningKey::generate(alg, kid, iss) {
        Ok(k) => k,
        Err(e) => return fail(exit::KEYS, e),
    };
    // The key set is checked before anything is written, so a refused key
    // set leaves no private key behind without its public half.
    let set_text = match key_set.map(|p| with_key(p, json!(key.public_jwk()))) {
        None => None,
        Some(Ok(text)) => Some(text),
        Some(Err(code)) => return code,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(path)
        .and_then(|mut f| f.write_all(key.pkcs8_pem().as_bytes()));
    if let Err(e) = written {
        return fail(exit::IO, format!("cannot write `{}`: {e}", path.display()));
    }
    if let (Some(set), Some(text)) = (key_set, set_text) {
        // Written next to the file and renamed over it: a reader never sees
        // half a key set.
        let mut tmp = set.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, set)) {
            let _ = std::fs::remove_file(&tmp);
            return fail(exit::IO, format!("cannot write `{}`: {e}", set.display()));
        }
    }
    println!("{}", json!(key.public_jwk()));
    exit::OK
}

/// The text of the key set at `path` (an empty set when the file does not
/// exist) with `jwk` added, checked as `verify --keys` reads it.
fn with_key(path: &Path, jwk: serde_json::Value) -> Result<String, u8> {
    let mut set = match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) if v.get("keys").is_some_and(serde_json::Value::is_array) => v,
            Ok(_) => {
                return Err(fail(
                    exit::KEYS,
                    format!(
                        "{}: not a key set: expected an object with a `keys` array",
                        path.display()
                    ),
                ));
            }
            Err(e) => return Err(fail(exit::KEYS, format!("{}: {e}", path.display()))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({"keys": []}),
        Err(e) => {
            return Err(fail(
                exit::IO,
                format!("cannot read `{}`: {e}", path.display()),
            ));
        }
    };
    let kid = jwk.get("kid").cloned();
    let Some(keys) = set
        .get_mut("keys")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return Err(fail(
            exit::KEYS,
            format!("{}: not a key set", path.display()),
        ));
    };
    if keys.iter().any(|k| k.get("kid") == kid.as_ref()) {
        let kid = kid
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        return Err(fail(
            exit::KEYS,
            format!(
                "{}: the key set already has a key with kid `{kid}`",
                path.display()
            ),
        ));
    }
    keys.push(jwk);
    let text = match serde_json::to_string_pretty(&set) {
        Ok(t) => t + "\n",
        Err(e) => return Err(fail(exit::KEYS, e)),
    };
    if let Err(e) = TrustedKeys::from_json(&text) {
        return Err(fail(exit::KEYS, format!("{}: {e}", path.display())));
    }
    Ok(text)
}
