//! Pulls from OCI registries with `oci-client`: OCI and Docker schema-2 manifests, indexes resolved
//! to linux/amd64, anonymous/basic/bearer auth, every blob verified (digest and size).
//!
//! Each missing layer streams from the registry straight into the unpacker (a blocking thread
//! reading from a bounded channel), so decompression and unpacking overlap the download; layers
//! download in parallel up to a bound. A layer is committed only when verified, so an interrupted
//! pull leaves its finished layers in the store and the retry skips them.

use crate::error::ImageError;
use crate::oci::{pick_platform, Document, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::reference::Reference;
use crate::store::{ImageRecord, LayerRecord, Store};
use crate::Digest;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Credentials for a registry.
#[derive(Clone, Default)]
pub enum Credentials {
    /// No credentials (a bearer token is still fetched anonymously when the registry asks).
    #[default]
    Anonymous,
    /// HTTP basic credentials (also used to obtain a bearer token when the registry asks).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: String,
    },
    /// A ready bearer token.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => write!(f, "Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Self::Bearer(_) => write!(f, "Bearer(***)"),
        }
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "registrytoken")]
    registry_token: Option<String>,
}

#[derive(Deserialize)]
struct SecretFile {
    username: String,
    password: String,
}

impl Credentials {
    /// The credentials for `registry` in a Docker `config.json` (`auths`), or Anonymous when the
    /// file has no entry for it. Keys may carry a scheme and path (`https://index.docker.io/v1/`).
    pub fn from_docker_config(path: &Path, registry: &str) -> Result<Self, ImageError> {
        let bad = |reason: String| ImageError::Credentials {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("read: {e}")))?;
        let cfg: DockerConfig =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("parse: {e}")))?;
        let host_of = |k: &str| {
            let k = k
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            let h = k.split('/').next().unwrap_or(k);
            match h {
                "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
                other => other.to_string(),
            }
        };
        let Some(entry) = cfg
            .auths
            .iter()
            .find(|(k, _)| host_of(k) == registry)
            .map(|(_, v)| v)
        else {
            return Ok(Self::Anonymous);
        };
        if let Some(t) = &entry.registry_token {
            return Ok(Self::Bearer(t.clone()));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Self::Basic {
                username: u.clone(),
                password: p.clone(),
            });
        }
        let Some(auth) = &entry.auth else {
            return Err(bad(format!(
                "entry for {registry} has neither auth nor username/password"
            )));
        };
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| bad(format!("entry for {registry}: auth is not base64: {e}")))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| bad(format!("entry for {registry}: auth is not UTF-8")))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| bad(format!("entry for {registry}: auth is not user:password")))?;
        Ok(Self::Basic {
            username: u.to_string(),
            password: p.to_string(),
        })
    }

    /// Credentials from a secret file `{"username": …, "password": …}`: the shape of the Secrets
    /// Manager secret an ECS task's `repositoryCredentials.credentialsParameter` names.
    pub fn from_secret_file(path: &Path) -> Result<Self, ImageError> {
        let bytes = std::fs::read(path).map_err(|e| ImageError::Credentials {
            path: path.to_path_buf(),
            reason: format!("read: {e}"),
        })?;
        let s: SecretFile =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::Credentials {
                path: path.to_path_buf(),
                reason: format!("want {{\"username\": …, \"password\": …}}: {e}"),
            })?;
        Ok(Self::Basic {
            username: s.username,
            password: s.password,
        })
    }

    fn registry_auth(&self) -> RegistryAuth {
        match self {
            Self::Anonymous => RegistryAuth::Anonymous,
            Self::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Self::Bearer(t) => RegistryAuth::Bearer(t.clone()),
        }
    }
}

/// Progress of a pull, per layer.
#[derive(Clone, Debug)]
pub enum Progress {
    /// The layer is in the store already: not fetched.
    LayerPresent {
        /// Blob digest.
        digest: Digest,
        /// Blob size.
        size: u64,
    },
    /// Bytes of the layer received so far.
    LayerBytes {
        /// Blob digest.
        digest: Digest,
        /// Received.
        bytes: u64,
        /// Blob size.
        size: u64,
    },
    /// The layer is verified and committed.
    LayerDone {
        /// Blob digest.
        digest: Digest,
        /// Blob size.
        size: u64,
    },
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// How to pull.
#[derive(Clone)]
pub struct PullOptions {
    /// Credentials for the image's registry.
    pub credentials: Credentials,
    /// Registries (`host:port`) reached over plain HTTP; loopback registries always are.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at once.
    pub max_concurrent_downloads: usize,
    /// Called for each progress event.
    pub progress: Option<ProgressFn>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            credentials: Credentials::Anonymous,
            insecure_registries: Vec::new(),
            max_concurrent_downloads: 3,
            progress: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// What a pull did.
#[derive(Debug)]
pub struct PullReport {
    /// The stored image.
    pub image: ImageRecord,
    /// Layers downloaded.
    pub layers_fetched: usize,
    /// Layers already in the store.
    pub layers_present: usize,
}

struct Ctx {
    client: oci_client::Client,
    image: String,
    registry: String,
    repository: String,
    progress: Option<ProgressFn>,
    auth: RegistryAuth,
}

impl Ctx {
    fn reg_err(
        &self,
        step: String,
    ) -> impl FnOnce(oci_client::errors::OciDistributionError) -> ImageError + '_ {
        move |e| ImageError::Registry {
            image: self.image.clone(),
            step,
            source: Box::new(e),
        }
    }

    fn by_digest(&self, d: &Digest) -> oci_client::Reference {
        oci_client::Reference::with_digest(
            self.registry.clone(),
            self.repository.clone(),
            d.to_string(),
        )
    }

    fn emit(&self, p: Progress) {
        if let Some(f) = &self.progress {
            f(p);
        }
    }

    /// Fetch a manifest or index and verify its digest (when the reference names one).
    async fn manifest(
        &self,
        r: &oci_client::Reference,
        want: Option<&Digest>,
    ) -> Result<(Vec<u8>, Digest), ImageError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(
                r,
                &self.auth,
                &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST],
            )
            .await
            .map_err(self.reg_err("fetch manifest".to_string()))?;
        let actual = Digest::of(&bytes);
        if let Some(w) = want {
            if &actual != w {
                return Err(ImageError::DigestMismatch {
                    what: "manifest",
                    expected: w.clone(),
                    actual,
                });
            }
        }
        Ok((bytes.to_vec(), actual))
    }
}

impl Store {
    /// Pull `reference` into the store and name it. Blobs and layers already present are not
    /// fetched again.
    pub async fn pull(
        &self,
        reference: &str,
        opts: &PullOptions,
    ) -> Result<PullReport, ImageError> {
        let r = Reference::parse(reference)?;
        let image = r.to_string();
        let plain_http =
            r.is_loopback() || opts.insecure_registries.iter().any(|x| x == &r.registry);
        let config = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::HttpsExcept(vec![r.registry.clone()])
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            connect_timeout: Some(opts.connect_timeout),
            read_timeout: Some(opts.read_timeout),
            ..ClientConfig::default()
        };
        let ctx = Ctx {
            client: oci_client::Client::new(config),
            image: image.clone(),
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            progress: opts.progress.clone(),
            auth: opts.credentials.registry_auth(),
        };
        let top = match (&r.digest, &r.tag) {
            (Some(d), _) => ctx.by_digest(d),
            (None, Some(t)) => {
                oci_client::Reference::with_tag(r.registry.clone(), r.repository.clone(), t.clone())
            }
            (None, None) => ctx.by_digest(&Digest::of(b"")),
        };
        ctx.client
            .auth(&top, &ctx.auth, oci_client::RegistryOperation::Pull)
            .await
            .map_err(ctx.reg_err("authenticate".to_string()))?;
        let (mut bytes, mut digest) = ctx.manifest(&top, r.digest.as_ref()).await?;
        let mut doc = Document::parse(&bytes, &format!("manifest of {image}"))?;
        if doc.is_index() {
            let d = Digest::parse(&pick_platform(&doc, &image)?.digest)?;
            (bytes, digest) = ctx.manifest(&ctx.by_digest(&d), Some(&d)).await?;
            doc = Document::parse(&bytes, &format!("manifest {d} of {image}"))?;
        }
        let config_desc = doc.config.clone().ok_or_else(|| ImageError::BadImage {
            image: image.clone(),
            reason: "manifest has no config".to_string(),
        })?;
        let config_digest = Digest::parse(&config_desc.digest)?;
        let config_bytes = if self.has_blob(&config_digest) {
            self.read_blob(&config_digest)?
        } else {
            let mut buf = Vec::new();
            ctx.client
                .pull_blob(
                    &ctx.by_digest(&config_digest),
                    config_desc.digest.as_str(),
                    &mut buf,
                )
                .await
                .map_err(ctx.reg_err(format!("fetch config {config_digest}")))?;
            buf
        };
        let planned = self.plan_image(&image, &digest, &bytes, &config_bytes)?;
        let store = self.clone();
        let work = tokio::task::spawn_blocking(move || store.lock_work())
            .await
            .map_err(|e| worker(&image, e))??;
        let (fetched, present) = self.fetch_layers(&ctx, &planned.rec.layers, opts).await?;
        let names: Vec<String> = r.tagged_name().into_iter().collect();
        let mut planned = planned;
        planned.rec.digests = vec![format!("{}@{digest}", r.name())];
        let store = self.clone();
        let rec = tokio::task::spawn_blocking(move || store.finish_image(planned, &names))
            .await
            .map_err(|e| worker(&ctx.image, e))??;
        drop(work);
        Ok(PullReport {
            image: rec,
            layers_fetched: fetched,
            layers_present: present,
        })
    }

    async fn fetch_layers(
        &self,
        ctx: &Ctx,
        layers: &[LayerRecord],
        opts: &PullOptions,
    ) -> Result<(usize, usize), ImageError> {
        let sem = Arc::new(tokio::sync::Semaphore::new(
            opts.max_concurrent_downloads.max(1),
        ));
        let mut present = 0;
        let mut jobs = Vec::new();
        for l in layers {
            if self.has_layer(&l.diff_id) {
                present += 1;
                ctx.emit(Progress::LayerPresent {
                    digest: l.digest.clone(),
                    size: l.size,
                });
                continue;
            }
            let sem = sem.clone();
            jobs.push(async move {
                let _permit = sem.acquire().await;
                self.fetch_layer(ctx, l).await
            });
        }
        let results = futures_util::future::join_all(jobs).await;
        let mut fetched = 0;
        for r in results {
            if r? {
                fetched += 1;
            } else {
                present += 1;
            }
        }
        Ok((fetched, present))
    }

    /// Fetch and commit one layer; false when another pull committed it meanwhile.
    async fn fetch_layer(&self, ctx: &Ctx, l: &LayerRecord) -> Result<bool, ImageError> {
        let store = self.clone();
        let diff_id = l.diff_id.clone();
        let lock = tokio::task::spawn_blocking(move || store.lock_layer(&diff_id))
            .await
            .map_err(|e| worker(&ctx.image, e))??;
        if self.has_layer(&l.diff_id) {
            return Ok(false);
        }
        let step = format!("fetch layer {}", l.digest);
        let mut stream = ctx
            .client
            .pull_blob_stream(&ctx.by_digest(&l.digest), l.digest.to_string().as_str())
            .await
            .map_err(ctx.reg_err(step.clone()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let store = self.clone();
        let rec = l.clone();
        let unpack =
            tokio::task::spawn_blocking(move || store.commit_layer(&rec, ChannelReader::new(rx)));
        let mut received = 0u64;
        let mut net_err: Option<io::Error> = None;
        while let Some(chunk) = stream.stream.next().await {
            match chunk {
                Ok(b) => {
                    received += b.len() as u64;
                    if received > l.size {
                        net_err = Some(io::Error::other(format!(
                            "registry sent more than the {} bytes the manifest gives",
                            l.size
                        )));
                        break;
                    }
                    ctx.emit(Progress::LayerBytes {
                        digest: l.digest.clone(),
                        bytes: received,
                        size: l.size,
                    });
                    if tx.send(Ok(b)).await.is_err() {
                        break; // the unpacker stopped: its error says why
                    }
                }
                Err(e) => {
                    net_err = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = &net_err {
            let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string()))).await;
        }
        drop(tx);
        let result = unpack.await.map_err(|e| worker(&ctx.image, e))?;
        drop(lock);
        if let Some(e) = net_err {
            return Err(ImageError::Registry {
                image: ctx.image.clone(),
                step,
                source: Box::new(e),
            });
        }
        result?;
        ctx.emit(Progress::LayerDone {
            digest: l.digest.clone(),
            size: l.size,
        });
        Ok(true)
    }
}

fn worker(image: &str, e: tokio::task::JoinError) -> ImageError {
    ImageError::Worker {
        layer: image.to_string(),
        reason: e.to_string(),
    }
}

/// The blocking unpacker's view of the download: a `Read` over the channel of chunks.
struct ChannelReader<B> {
    rx: tokio::sync::mpsc::Receiver<io::Result<B>>,
    cur: Option<B>,
    pos: usize,
}

impl<B: AsRef<[u8]>> ChannelReader<B> {
    fn new(rx: tokio::sync::mpsc::Receiver<io::Result<B>>) -> Self {
        Self {
            rx,
            cur: None,
            pos: 0,
        }
    }
}

impl<B: AsRef<[u8]>> Read for ChannelReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(c) = &self.cur {
                let rest = &c.as_ref()[self.pos..];
                if !rest.is_empty() {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => {
                    self.cur = Some(b);
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
    }
}

/// The default Docker config path: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_docker_config() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    Some(dir.join("config.json")).filter(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_entries_resolve_by_host() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5000":{"username":"a","password":"b"}}}"#,
        )
        .unwrap();
        let c = Credentials::from_docker_config(&p, "docker.io").unwrap();
        assert!(
            matches!(c, Credentials::Basic { ref username, ref password } if username == "u" && password == "p")
        );
        let c = Credentials::from_docker_config(&p, "127.0.0.1:5000").unwrap();
        assert!(matches!(c, Credentials::Basic { ref username, .. } if username == "a"));
        assert!(matches!(
            Credentials::from_docker_config(&p, "ghcr.io").unwrap(),
            Credentials::Anonymous
        ));
        assert!(!format!("{c:?}").contains('b'));
    }

    #[test]
    fn channel_reader_reads_chunks_then_eof() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.blocking_send(Ok(b"ab".to_vec())).unwrap();
        tx.blocking_send(Ok(b"cd".to_vec())).unwrap();
        drop(tx);
        let mut s = String::new();
        ChannelReader::new(rx).read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcd");
    }
}
