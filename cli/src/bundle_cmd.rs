//! `agentriage bundle keygen | sign | verify | build | push`: signed bundles
//! and their delivery.

use std::path::{Path, PathBuf};

use agentriage::Bundle;
use agentriage::signing::{SigningKey, TrustedKeys, sign_bundle};
use clap::Subcommand;

use crate::exit;

/// Bundle signing commands.
#[derive(Subcommand)]
pub enum BundleCommand {
    /// Make an Ed25519 key pair: `PREFIX.pem` (private, PKCS#8) and
    /// `PREFIX.pub.pem` (public, to give to the agents that verify).
    Keygen {
        /// Path prefix of the two files written.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Sign every file of a bundle: writes `.signature.json` in it.
    ///
    /// The bundle must load. Signing the same files with another key adds a
    /// co-signature; signing changed files starts a new signature file.
    Sign {
        /// Private key (PEM, PKCS#8 Ed25519; `openssl genpkey -algorithm ed25519` works too).
        #[arg(long, short)]
        key: PathBuf,
        /// Bundle directory.
        dir: PathBuf,
    },
    /// Check that a trusted key signed exactly the bundle's files, and that
    /// the bundle loads.
    Verify {
        /// Trusted public key (PEM); repeat for several.
        #[arg(long = "trusted-key", short = 'k', required = true)]
        trusted_keys: Vec<PathBuf>,
        /// Bundle directory or archive.
        dir: PathBuf,
    },
    /// Write the bundle as one reproducible `.tar.gz` archive (its
    /// signature inside), loadable wherever a bundle directory is.
    ///
    /// The same files give the same bytes: entries in path order, mode
    /// 0644, owner 0, mtime 0. Prints the bundle digest (the same as the
    /// directory's) and the archive's own sha256.
    Build {
        /// Bundle directory.
        dir: PathBuf,
        /// Archive to write.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Push a bundle archive to an OCI registry as an artifact:
    /// `oci://HOST[:PORT]/REPOSITORY:TAG`. Prints the manifest digest, for
    /// pinned pulls (`oci://HOST/REPOSITORY@sha256:...`).
    ///
    /// Loopback registries are reached over plain HTTP, others over HTTPS.
    Push {
        /// Bundle archive (`agentriage bundle build`).
        archive: PathBuf,
        /// Target reference.
        reference: String,
        /// Registry user name (basic authentication).
        #[arg(long)]
        username: Option<String>,
        /// Environment variable holding the password (or token) for --username.
        #[arg(long, requires = "username")]
        password_env: Option<String>,
        /// Environment variable holding a bearer token.
        #[arg(long)]
        token_env: Option<String>,
    },
}

/// Runs a bundle command; returns the exit code.
pub fn run(command: BundleCommand) -> u8 {
    match command {
        BundleCommand::Build { dir, out } => build(&dir, &out),
        BundleCommand::Push {
            archive,
            reference,
            username,
            password_env,
            token_env,
        } => push(&archive, &reference, username, password_env, token_env),
        BundleCommand::Keygen { out } => keygen(&out),
        BundleCommand::Sign { key, dir } => sign(&key, &dir),
        BundleCommand::Verify { trusted_keys, dir } => {
            let trusted = match trusted(&trusted_keys) {
                Ok(t) => t,
                Err(code) => return code,
            };
            match Bundle::load_verified(&dir, &trusted) {
                Ok(bundle) => {
                    let info = bundle.info();
                    println!(
                        "ok: {} {} {} signed by a trusted key",
                        info.name, info.revision, info.digest
                    );
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::BUNDLE
                }
            }
        }
    }
}

/// Reads trusted public keys; prints the error and returns the exit code on failure.
pub fn trusted(paths: &[PathBuf]) -> Result<TrustedKeys, u8> {
    let mut trusted = TrustedKeys::new();
    for path in paths {
        if let Err(e) = trusted.add_pem_file(path) {
            eprintln!("error: trusted key: {e}");
            return Err(exit::IO);
        }
    }
    Ok(trusted)
}

fn keygen(out: &Path) -> u8 {
    let (key, pem) = match SigningKey::generate() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    let private = PathBuf::from(format!("{}.pem", out.display()));
    let public = PathBuf::from(format!("{}.pub.pem", out.display()));
    if let Err(e) = write_private(&private, &pem) {
        eprintln!("error: cannot write `{}`: {e}", private.display());
        return exit::IO;
    }
    if let Err(e) = std::fs::write(&public, key.public_key().to_pem()) {
        eprintln!("error: cannot write `{}`: {e}", public.display());
        return exit::IO;
    }
    println!(
        "wrote {} (keep secret) and {} ({})",
        private.display(),
        public.display(),
        key.public_key().key_id()
    );
    exit::OK
}

/// Creates the private key file readable by its owner only, never replacing one.
fn write_private(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(pem.as_bytes())
}

fn sign(key: &Path, dir: &Path) -> u8 {
    let text = match std::fs::read_to_string(key) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", key.display());
            return exit::IO;
        }
    };
    let key = match SigningKey::from_pem(&text) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: `{}`: {e}", key.display());
            return exit::IO;
        }
    };
    match sign_bundle(dir, &key) {
        Ok(path) => {
            println!(
                "wrote {} (signed by {})",
                path.display(),
                key.public_key().key_id()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::BUNDLE
        }
    }
}

fn build(dir: &Path, out: &Path) -> u8 {
    let bytes = match agentriage::delivery::archive::build_archive(dir) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BUNDLE;
        }
    };
    let info =
        match agentriage::delivery::archive::load_archive(&bytes, &out.display().to_string(), None)
        {
            Ok(b) => b.info().clone(),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::BUNDLE;
            }
        };
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("error: cannot write `{}`: {e}", out.display());
        return exit::IO;
    }
    let signed = dir.join(agentriage::signing::SIGNATURE_FILE).is_file();
    println!(
        "wrote {}: {} {} bundle {} archive {}{}",
        out.display(),
        info.name,
        info.revision,
        info.digest,
        agentriage::delivery::archive::archive_digest(&bytes),
        if signed { " (signed)" } else { " (unsigned)" }
    );
    exit::OK
}

fn env_secret(name: Option<String>) -> Result<Option<String>, u8> {
    match name {
        None => Ok(None),
        Some(var) => match std::env::var(&var) {
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                eprintln!("error: environment variable `{var}` is not set");
                Err(exit::IO)
            }
        },
    }
}

fn push(
    archive: &Path,
    reference: &str,
    username: Option<String>,
    password_env: Option<String>,
    token_env: Option<String>,
) -> u8 {
    let bytes = match std::fs::read(archive) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", archive.display());
            return exit::IO;
        }
    };
    let (password, token) = match (env_secret(password_env), env_secret(token_env)) {
        (Ok(p), Ok(t)) => (p, t),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let http = agentriage::delivery::http::HttpOptions {
        bearer_token: token,
        ..Default::default()
    };
    let oci = agentriage::delivery::oci::OciOptions {
        username,
        password,
        ..Default::default()
    };
    match agentriage::delivery::oci::push(&bytes, reference, http, oci) {
        Ok(digest) => {
            println!("pushed {reference} {digest}");
            exit::OK
        }
        Err(agentriage::delivery::DeliveryError::Bundle(e)) => {
            eprintln!("error: {e}");
            exit::BUNDLE
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::IO
        }
    }
}
