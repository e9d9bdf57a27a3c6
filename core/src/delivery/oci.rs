//! Bundles as OCI artifacts: pull by tag or digest, and push.
//!
//! The subset of the OCI distribution spec a bundle needs, on the same HTTP
//! client as [`super::http`]: an image manifest whose one layer has media
//! type [`ARCHIVE_MEDIA_TYPE`] (the archive of `agentriage bundle build`) and
//! whose config is the empty descriptor. A pull checks the manifest against
//! the digest it was asked by (`oci://host/repo@sha256:…`) and the layer
//! against the digest the manifest gives; either mismatch is refused.
//!
//! References are `oci://HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]` (the tag
//! defaults to `latest`). Registries on a loopback host (`localhost`,
//! `127.0.0.0/8`, `[::1]`) are reached over plain HTTP, every other over
//! HTTPS, unless [`OciOptions::plain_http`] says otherwise. Authentication
//! is anonymous, a bearer token ([`super::http::HttpOptions::bearer_token`]),
//! or basic credentials ([`OciOptions::username`]); a registry that answers
//! `401` with a `Bearer` challenge is asked for a token, with the basic
//! credentials when given.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::Engine;
use crate::signing::TrustedKeys;

pub use super::archive::ARCHIVE_MEDIA_TYPE;
use super::archive::sha256_digest;
use super::http::{Fetch, Fetched, HttpOptions, read_body, transport};
use super::{DeliveryError, Follower};

/// The artifact type of a bundle manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.agentriage.bundle.v1";
/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_CONFIG: &[u8] = b"{}";
/// Largest manifest accepted.
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Registry options beyond those of [`HttpOptions`].
#[derive(Debug, Clone, Default)]
pub struct OciOptions {
    /// `Some(true)`: plain HTTP; `Some(false)`: HTTPS; `None`: plain HTTP
    /// for loopback hosts only.
    pub plain_http: Option<bool>,
    /// Basic-auth user name.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
}

/// A parsed `oci://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// Repository path.
    pub repository: String,
    /// Tag, or `sha256:` digest.
    pub reference: String,
}

impl Reference {
    /// Parses `oci://HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]`.
    pub fn parse(text: &str) -> Result<Reference, DeliveryError> {
        let bad = |message: &str| DeliveryError::Source {
            address: text.to_owned(),
            message: message.to_owned(),
        };
        let rest = text
            .strip_prefix("oci://")
            .ok_or_else(|| bad("not an `oci://` reference"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no repository after the registry host"))?;
        if registry.is_empty() {
            return Err(bad("no registry host"));
        }
        let (repository, reference) = if let Some((repo, digest)) = path.split_once('@') {
            if !is_sha256(digest) {
                return Err(bad(
                    "a digest must be `sha256:` and 64 lowercase hex digits",
                ));
            }
            (repo, digest.to_owned())
        } else {
            let last = path.rsplit('/').next().unwrap_or(path);
            match last.rsplit_once(':') {
                Some((_, tag)) => {
                    let repo = path.get(..path.len() - tag.len() - 1).unwrap_or(path);
                    (repo, tag.to_owned())
                }
                None => (path, "latest".to_owned()),
            }
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
        if !repo_ok {
            return Err(bad(
                "the repository must be lowercase letters, digits, `.`, `_`, `-` and `/`",
            ));
        }
        let tag_ok = reference.starts_with("sha256:")
            || (!reference.is_empty()
                && reference.len() <= 128
                && reference
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        if !tag_ok {
            return Err(bad("the tag must be letters, digits, `.`, `_` and `-`"));
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            reference,
        })
    }

    /// Whether the reference names a digest (a pinned pull).
    pub fn is_digest(&self) -> bool {
        self.reference.starts_with("sha256:")
    }

    fn base(&self, options: &OciOptions) -> String {
        let host = self
            .registry
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(self.registry.as_str(), |(h, _)| h);
        let loopback = host == "localhost" || host.starts_with("127.") || host == "[::1]";
        let plain = options.plain_http.unwrap_or(loopback);
        let scheme = if plain { "http" } else { "https" };
        format!("{scheme}://{}/v2/{}", self.registry, self.repository)
    }
}

fn is_sha256(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// An HTTP client for one registry repository.
struct Client {
    agent: ureq::Agent,
    base: String,
    http: HttpOptions,
    oci: OciOptions,
    /// Token from a `Bearer` challenge.
    token: Option<String>,
}

type Resp = ureq::http::Response<ureq::Body>;
/// Builds and sends one request, given the agent and the `Authorization` value.
type MakeRequest<'a> = dyn Fn(&ureq::Agent, Option<&str>) -> Result<Resp, ureq::Error> + 'a;

impl Client {
    fn new(
        reference: &Reference,
        http: HttpOptions,
        oci: OciOptions,
    ) -> Result<Client, DeliveryError> {
        Ok(Client {
            agent: super::http::agent(&reference.base(&oci), &http)?,
            base: reference.base(&oci),
            token: http.bearer_token.clone(),
            http,
            oci,
        })
    }

    fn basic(&self) -> Option<String> {
        use base64::Engine as _;
        let user = self.oci.username.as_deref()?;
        let pass = self.oci.password.as_deref().unwrap_or("");
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        ))
    }

    fn auth(&self) -> Option<String> {
        match &self.token {
            Some(t) => Some(format!("Bearer {t}")),
            None => self.basic(),
        }
    }

    /// Sends a request built by `make`, answering a `Bearer` challenge once.
    fn send(&mut self, url: &str, make: &MakeRequest<'_>) -> Result<Resp, DeliveryError> {
        let resp = make(&self.agent, self.auth().as_deref()).map_err(|e| transport(url, &e))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Some(challenge) = challenge.filter(|c| {
            c.get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
        }) else {
            return Ok(resp);
        };
        self.token = Some(self.fetch_token(url, &challenge)?);
        make(&self.agent, self.auth().as_deref()).map_err(|e| transport(url, &e))
    }

    fn fetch_token(&self, url: &str, challenge: &str) -> Result<String, DeliveryError> {
        let mut realm = None;
        let mut query = Vec::new();
        for part in split_params(challenge.get(7..).unwrap_or("")) {
            if let Some((k, v)) = part.split_once('=') {
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim() {
                    "realm" => realm = Some(v),
                    "service" | "scope" => query.push((k.trim().to_owned(), v)),
                    _ => {}
                }
            }
        }
        let realm = realm.ok_or_else(|| DeliveryError::Protocol {
            url: url.to_owned(),
            message: "`Bearer` challenge without a realm".into(),
        })?;
        let mut req = self.agent.get(&realm);
        for (k, v) in &query {
            req = req.query(k, v);
        }
        if let Some(b) = self.basic() {
            req = req.header("Authorization", b);
        }
        let mut resp = req.call().map_err(|e| transport(&realm, &e))?;
        if resp.status().as_u16() != 200 {
            return Err(DeliveryError::Status {
                url: realm,
                status: resp.status().as_u16(),
            });
        }
        let body = read_body(&realm, &mut resp, 1 << 20)?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| DeliveryError::Protocol {
            url: realm.clone(),
            message: format!("token answer is not JSON: {e}"),
        })?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| DeliveryError::Protocol {
                url: realm,
                message: "token answer has no `token`".into(),
            })
    }

    fn get(&mut self, url: &str, accept: &str, limit: u64) -> Result<Vec<u8>, DeliveryError> {
        let accept = accept.to_owned();
        let mut resp = self.send(url, &|agent, auth| {
            let mut r = agent.get(url).header("Accept", &accept);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(DeliveryError::Status {
                url: url.to_owned(),
                status,
            });
        }
        read_body(url, &mut resp, limit)
    }

    /// The manifest bytes and the layer descriptor (digest, size) of the
    /// bundle archive.
    fn manifest(&mut self, reference: &Reference) -> Result<(Vec<u8>, String, u64), DeliveryError> {
        let url = format!("{}/manifests/{}", self.base, reference.reference);
        let bytes = self.get(&url, MANIFEST_MEDIA_TYPE, MAX_MANIFEST_BYTES)?;
        if reference.is_digest() {
            let actual = sha256_digest(&bytes);
            if actual != reference.reference {
                return Err(DeliveryError::Digest {
                    url,
                    expected: reference.reference.clone(),
                    actual,
                });
            }
        }
        let proto = |message: String| DeliveryError::Protocol {
            url: url.clone(),
            message,
        };
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| proto(format!("manifest is not JSON: {e}")))?;
        let layers: Vec<&Value> = v
            .get("layers")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter(|d| {
                        d.get("mediaType").and_then(Value::as_str) == Some(ARCHIVE_MEDIA_TYPE)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let [layer] = layers.as_slice() else {
            return Err(proto(format!(
                "manifest must have exactly one `{ARCHIVE_MEDIA_TYPE}` layer, it has {}",
                layers.len()
            )));
        };
        let digest = layer
            .get("digest")
            .and_then(Value::as_str)
            .filter(|d| is_sha256(d))
            .ok_or_else(|| proto("the bundle layer has no `sha256:` digest".into()))?;
        let size = layer
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| proto("the bundle layer has no size".into()))?;
        if size > self.http.max_bytes {
            return Err(DeliveryError::TooLarge {
                url,
                limit: self.http.max_bytes,
            });
        }
        Ok((bytes, digest.to_owned(), size))
    }

    fn blob(&mut self, digest: &str, size: u64) -> Result<Vec<u8>, DeliveryError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let bytes = self.get(
            &url,
            "application/octet-stream",
            size.min(self.http.max_bytes),
        )?;
        let actual = sha256_digest(&bytes);
        if actual != digest || bytes.len() as u64 != size {
            return Err(DeliveryError::Digest {
                url,
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn blob_exists(&mut self, digest: &str) -> Result<bool, DeliveryError> {
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self.send(&url, &|agent, auth| {
            let mut r = agent.head(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        Ok(resp.status().as_u16() == 200)
    }

    fn upload(&mut self, digest: &str, bytes: &[u8]) -> Result<(), DeliveryError> {
        if self.blob_exists(digest)? {
            return Ok(());
        }
        let url = format!("{}/blobs/uploads/", self.base);
        let resp = self.send(&url, &|agent, auth| {
            let mut r = agent.post(&url).header("Content-Length", "0");
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send_empty()
        })?;
        if resp.status().as_u16() != 202 {
            return Err(DeliveryError::Status {
                url,
                status: resp.status().as_u16(),
            });
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| DeliveryError::Protocol {
                url: url.clone(),
                message: "upload answer has no `Location`".into(),
            })?;
        let location = if location.starts_with('/') {
            // Relative to the registry.
            let origin = self
                .base
                .find("/v2/")
                .and_then(|i| self.base.get(..i))
                .unwrap_or(&self.base);
            format!("{origin}{location}")
        } else {
            location.to_owned()
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={digest}");
        let body = bytes.to_vec();
        let resp = self.send(&put, &|agent, auth| {
            let mut r = agent
                .put(&put)
                .header("Content-Type", "application/octet-stream");
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send(body.as_slice())
        })?;
        if resp.status().as_u16() != 201 {
            return Err(DeliveryError::Status {
                url: put,
                status: resp.status().as_u16(),
            });
        }
        Ok(())
    }
}

/// Splits `a="x,y", b=c` at the commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(s.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s.get(start..).unwrap_or(""));
    out
}

/// Pushes the bundle archive `archive` to `reference` (a tag): uploads the
/// archive and the empty config as blobs, then the manifest. The archive
/// must hold a bundle that loads. Returns the manifest digest, by which the
/// bundle can be pulled pinned (`oci://host/repo@sha256:…`).
pub fn push(
    archive: &[u8],
    reference: &str,
    http: HttpOptions,
    oci: OciOptions,
) -> Result<String, DeliveryError> {
    let r = Reference::parse(reference)?;
    if r.is_digest() {
        return Err(DeliveryError::Source {
            address: reference.to_owned(),
            message: "push to a tag, not a digest".into(),
        });
    }
    let bundle = super::archive::load_archive(archive, reference, None)?;
    let mut client = Client::new(&r, http, oci)?;
    let layer = sha256_digest(archive);
    let config = sha256_digest(EMPTY_CONFIG);
    client.upload(&config, EMPTY_CONFIG)?;
    client.upload(&layer, archive)?;
    let info = bundle.info();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": config, "size": EMPTY_CONFIG.len()},
        "layers": [{
            "mediaType": ARCHIVE_MEDIA_TYPE,
            "digest": layer,
            "size": archive.len(),
            "annotations": {"org.opencontainers.image.title": "bundle.tar.gz"},
        }],
        "annotations": {
            "dev.agentriage.bundle.name": info.name,
            "dev.agentriage.bundle.revision": info.revision,
            "dev.agentriage.bundle.digest": info.digest,
        },
    });
    let body = serde_json::to_vec(&manifest).map_err(|e| DeliveryError::Protocol {
        url: reference.to_owned(),
        message: e.to_string(),
    })?;
    let url = format!("{}/manifests/{}", client.base, r.reference);
    let resp = client.send(&url, &|agent, auth| {
        let mut req = agent.put(&url).header("Content-Type", MANIFEST_MEDIA_TYPE);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send(body.as_slice())
    })?;
    if resp.status().as_u16() != 201 {
        return Err(DeliveryError::Status {
            url,
            status: resp.status().as_u16(),
        });
    }
    Ok(sha256_digest(&body))
}

/// Pulls the bundle archive at `reference`, every digest verified.
pub fn pull(reference: &str, http: HttpOptions, oci: OciOptions) -> Result<Vec<u8>, DeliveryError> {
    let r = Reference::parse(reference)?;
    let mut client = Client::new(&r, http, oci)?;
    let (_, digest, size) = client.manifest(&r)?;
    client.blob(&digest, size)
}

struct OciFetch {
    reference: Reference,
    client: Client,
    accepted: Option<String>,
    pending: Option<String>,
}

impl Fetch for OciFetch {
    fn fetch(&mut self) -> Result<Fetched, DeliveryError> {
        let (manifest, digest, size) = self.client.manifest(&self.reference)?;
        let manifest_digest = sha256_digest(&manifest);
        if self.accepted.as_deref() == Some(manifest_digest.as_str()) {
            return Ok(Fetched::NotModified);
        }
        let blob = self.client.blob(&digest, size)?;
        self.pending = Some(manifest_digest);
        Ok(Fetched::Archive(blob))
    }

    fn accepted(&mut self) {
        self.accepted = self.pending.take();
    }
}

impl Engine {
    /// An engine deciding with the bundle at the OCI reference `reference`
    /// (`oci://host/repository:tag` or `…@sha256:…`), and the follower that
    /// polls its manifest. With `trusted`, every bundle must be signed by one
    /// of those keys; start-up, limits and schedule are those of `http`.
    pub fn from_oci(
        reference: &str,
        trusted: Option<TrustedKeys>,
        http: HttpOptions,
        oci: OciOptions,
    ) -> Result<(Arc<Engine>, Follower), DeliveryError> {
        let r = Reference::parse(reference)?;
        let client = Client::new(&r, http.clone(), oci)?;
        let fetch = OciFetch {
            reference: r,
            client,
            accepted: None,
            pending: None,
        };
        super::http::start(Box::new(fetch), reference.to_owned(), trusted, http)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let r = Reference::parse("oci://127.0.0.1:5000/policies/a2a:2026.11").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "policies/a2a");
        assert_eq!(r.reference, "2026.11");
        assert_eq!(
            r.base(&OciOptions::default()),
            "http://127.0.0.1:5000/v2/policies/a2a"
        );
        let r = Reference::parse("oci://registry.example/p").unwrap();
        assert_eq!(r.reference, "latest");
        assert_eq!(
            r.base(&OciOptions::default()),
            "https://registry.example/v2/p"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("oci://h:1/p@{d}")).unwrap();
        assert!(r.is_digest());
        for bad in [
            "http://h/p",
            "oci://h",
            "oci:///p",
            "oci://h/P",
            "oci://h/p@sha256:abc",
            "oci://h/p:",
            "oci://h/a//b",
            "oci://h/p:t@g",
        ] {
            assert!(
                matches!(Reference::parse(bad), Err(DeliveryError::Source { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn challenge_params_split_outside_quotes() {
        assert_eq!(
            split_params(r#"realm="https://a/t",scope="repository:p:pull,push""#),
            vec![
                r#"realm="https://a/t""#,
                r#"scope="repository:p:pull,push""#
            ]
        );
    }
}
