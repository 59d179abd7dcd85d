//! Loading images without a registry: an OCI image layout directory, an oci-archive tar (a tar
//! of such a layout) or a `docker save` tar. Every blob is verified exactly as a pulled one is.

use crate::atomic::nonce;
use crate::error::{fs_err, ImageError};
use crate::oci::{pick_platform, Document, DOCKER_MANIFEST};
use crate::reference::Reference;
use crate::safefs;
use crate::store::{ImageRecord, Planned, Store};
use crate::unpack::{unpack_layer, UnpackOptions};
use crate::Digest;
use rustix::fs::OFlags;
use serde::Deserialize;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// What a load stored.
#[derive(Debug)]
pub struct LoadReport {
    /// The images loaded, with their names.
    pub images: Vec<ImageRecord>,
    /// Layers that were unpacked (the rest were in the store already).
    pub layers_unpacked: usize,
}

/// An OCI layout annotation holding a tag or a full name.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation holding the full name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// `docker save`'s manifest.json entries.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

impl Store {
    /// Load the image(s) at `path`. `name` (a reference) names the image when the source has
    /// none, or replaces the source's name when it holds exactly one image.
    pub fn load(&self, path: &Path, name: Option<&str>) -> Result<LoadReport, ImageError> {
        let bad = |reason: &str| ImageError::Load {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if let Some(n) = name {
            Reference::parse(n)?;
        }
        let _work = self.lock_work()?;
        let md = fs::metadata(path).map_err(fs_err("open", path))?;
        if md.is_dir() {
            return self.load_dir(path, path, name);
        }
        if !md.is_file() {
            return Err(bad("neither a directory nor a file"));
        }
        let tmp = self.tmp_dir().join(format!("load-{}", nonce()));
        fs::create_dir(&tmp).map_err(fs_err("create directory", &tmp))?;
        let result = File::open(path)
            .map_err(fs_err("open", path))
            .and_then(|f| {
                let opts = UnpackOptions {
                    keep_owners: false,
                    ..self.options().unpack.clone()
                };
                unpack_layer(f, &tmp, &path.display().to_string(), &opts).map_err(|e| match e {
                    ImageError::Unpack { .. } => ImageError::Load {
                        path: path.to_path_buf(),
                        reason: "not a tar archive: want an OCI layout directory, an oci-archive or a docker-save tar"
                            .to_string(),
                    },
                    other => other,
                })
            })
            .and_then(|_| self.load_dir(&tmp, path, name));
        let _ = fs::remove_dir_all(&tmp);
        result
    }

    fn load_dir(
        &self,
        dir: &Path,
        shown: &Path,
        name: Option<&str>,
    ) -> Result<LoadReport, ImageError> {
        let root = safefs::open_dir(dir).map_err(fs_err("open", dir))?;
        if exists_in(&root, "oci-layout") && exists_in(&root, "index.json") {
            self.load_oci_layout(&root, dir, shown, name)
        } else if exists_in(&root, "manifest.json") {
            self.load_docker_save(&root, dir, shown, name)
        } else {
            Err(ImageError::Load {
                path: shown.to_path_buf(),
                reason: "not an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)"
                    .to_string(),
            })
        }
    }

    fn load_oci_layout(
        &self,
        root: &OwnedFd,
        dir: &Path,
        shown: &Path,
        name: Option<&str>,
    ) -> Result<LoadReport, ImageError> {
        let index_bytes = read_in(root, dir, "index.json")?;
        let index = Document::parse(&index_bytes, &format!("{}/index.json", shown.display()))?;
        let entries = index.manifests.clone().unwrap_or_default();
        if entries.is_empty() {
            return Err(ImageError::Load {
                path: shown.to_path_buf(),
                reason: "index.json lists no manifests".to_string(),
            });
        }
        if name.is_some() && entries.len() > 1 {
            return Err(ImageError::Load {
                path: shown.to_path_buf(),
                reason: format!("holds {} images; a --name names only one", entries.len()),
            });
        }
        let default_repo = format!(
            "localhost/{}",
            shown
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_else(|| "image".to_string())
                .trim_end_matches(".tar")
        );
        let mut report = LoadReport {
            images: Vec::new(),
            layers_unpacked: 0,
        };
        let source = LayoutBlobs { root, dir };
        for entry in entries {
            let image = shown.display().to_string();
            let mut digest = Digest::parse(&entry.digest)?;
            let mut bytes = source.read(&digest)?;
            let mut doc = Document::parse(&bytes, &format!("manifest {digest}"))?;
            if doc.is_index() {
                let chosen = pick_platform(&doc, &image)?.clone();
                digest = Digest::parse(&chosen.digest)?;
                bytes = source.read(&digest)?;
                doc = Document::parse(&bytes, &format!("manifest {digest}"))?;
            }
            let config_digest = Digest::parse(
                &doc.config
                    .as_ref()
                    .map(|c| c.digest.clone())
                    .unwrap_or_default(),
            )?;
            let config = source.read(&config_digest)?;
            let planned = self.plan_image(&image, &digest, &bytes, &config)?;
            let annotations = entry.annotations.clone().unwrap_or_default();
            let names: Vec<String> = match name {
                Some(n) => vec![canonical(n)?],
                None => match annotations
                    .get(CONTAINERD_NAME)
                    .or(annotations.get(REF_NAME))
                {
                    Some(r) if r.contains('/') || r.contains(':') => vec![canonical(r)?],
                    Some(tag) => vec![canonical(&format!("{default_repo}:{tag}"))?],
                    None => Vec::new(),
                },
            };
            let (rec, n) = self.import(planned, &names, &source)?;
            report.layers_unpacked += n;
            report.images.push(rec);
        }
        Ok(report)
    }

    fn load_docker_save(
        &self,
        root: &OwnedFd,
        dir: &Path,
        shown: &Path,
        name: Option<&str>,
    ) -> Result<LoadReport, ImageError> {
        let bytes = read_in(root, dir, "manifest.json")?;
        let entries: Vec<DockerSaveEntry> =
            serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                what: format!("{}/manifest.json", shown.display()),
                source,
            })?;
        if name.is_some() && entries.len() != 1 {
            return Err(ImageError::Load {
                path: shown.to_path_buf(),
                reason: format!("holds {} images; a --name names only one", entries.len()),
            });
        }
        let mut report = LoadReport {
            images: Vec::new(),
            layers_unpacked: 0,
        };
        for e in entries {
            let config = read_in(root, dir, &e.config)?;
            let config_digest = Digest::of(&config);
            let mut layers = Vec::new();
            let mut paths = Vec::new();
            for l in &e.layers {
                let (digest, size, gz) = hash_file(root, dir, l)?;
                let media_type = if gz {
                    "application/vnd.docker.image.rootfs.diff.tar.gzip"
                } else {
                    "application/vnd.docker.image.rootfs.diff.tar"
                };
                layers.push(serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
                paths.push((digest, l.clone()));
            }
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": config_digest.to_string(), "size": config.len()},
                "layers": layers,
            }))
            .map_err(|source| ImageError::Json {
                what: "synthesized manifest".to_string(),
                source,
            })?;
            let digest = Digest::of(&manifest);
            let planned =
                self.plan_image(&shown.display().to_string(), &digest, &manifest, &config)?;
            let names: Vec<String> = match name {
                Some(n) => vec![canonical(n)?],
                None => e
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| canonical(t))
                    .collect::<Result<_, _>>()?,
            };
            let source = SavedLayers { root, dir, paths };
            let (rec, n) = self.import(planned, &names, &source)?;
            report.layers_unpacked += n;
            report.images.push(rec);
        }
        Ok(report)
    }

    /// Commit every missing layer from `source`, then record the image.
    fn import(
        &self,
        planned: Planned,
        names: &[String],
        source: &dyn BlobSource,
    ) -> Result<(ImageRecord, usize), ImageError> {
        let mut unpacked = 0;
        for layer in &planned.rec.layers {
            if self.has_layer(&layer.diff_id) {
                continue;
            }
            let _l = self.lock_layer(&layer.diff_id)?;
            if self.has_layer(&layer.diff_id) {
                continue;
            }
            let f = source.open(&layer.digest)?;
            self.commit_layer(layer, f)?;
            unpacked += 1;
        }
        Ok((self.finish_image(planned, names)?, unpacked))
    }
}

fn canonical(name: &str) -> Result<String, ImageError> {
    let r = Reference::parse(name)?;
    r.tagged_name().ok_or_else(|| ImageError::InvalidReference {
        reference: name.to_string(),
        reason: "a name to store needs a tag, not only a digest",
    })
}

trait BlobSource {
    fn open(&self, digest: &Digest) -> Result<File, ImageError>;
}

struct LayoutBlobs<'a> {
    root: &'a OwnedFd,
    dir: &'a Path,
}

impl LayoutBlobs<'_> {
    fn read(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let mut buf = Vec::new();
        let mut f = self.open(d)?;
        let p = self.dir.join("blobs/sha256").join(d.hex());
        f.by_ref()
            .take(64 << 20)
            .read_to_end(&mut buf)
            .map_err(fs_err("read", &p))?;
        Ok(buf)
    }
}

impl BlobSource for LayoutBlobs<'_> {
    fn open(&self, d: &Digest) -> Result<File, ImageError> {
        open_in(self.root, self.dir, &format!("blobs/sha256/{}", d.hex()))
    }
}

struct SavedLayers<'a> {
    root: &'a OwnedFd,
    dir: &'a Path,
    paths: Vec<(Digest, String)>,
}

impl BlobSource for SavedLayers<'_> {
    fn open(&self, d: &Digest) -> Result<File, ImageError> {
        let rel = self
            .paths
            .iter()
            .find(|(x, _)| x == d)
            .map(|(_, p)| p.as_str())
            .unwrap_or_default();
        open_in(self.root, self.dir, rel)
    }
}

fn exists_in(root: &OwnedFd, rel: &str) -> bool {
    safefs::openat2_beneath(root, Path::new(rel), OFlags::RDONLY).is_ok()
}

/// Open a file of a layout or archive without following any symlink (it may be hostile too).
fn open_in(root: &OwnedFd, dir: &Path, rel: &str) -> Result<File, ImageError> {
    let path: PathBuf = dir.join(rel);
    safefs::openat2_beneath(root, Path::new(rel), OFlags::RDONLY)
        .map(File::from)
        .map_err(|e| fs_err("open", path)(e.into()))
}

fn read_in(root: &OwnedFd, dir: &Path, rel: &str) -> Result<Vec<u8>, ImageError> {
    let mut buf = Vec::new();
    open_in(root, dir, rel)?
        .take(64 << 20)
        .read_to_end(&mut buf)
        .map_err(fs_err("read", dir.join(rel)))?;
    Ok(buf)
}

/// sha256, size and "is gzip" of a file.
fn hash_file(root: &OwnedFd, dir: &Path, rel: &str) -> Result<(Digest, u64, bool), ImageError> {
    let mut f = open_in(root, dir, rel)?;
    let mut r = crate::hashing::HashingReader::new(&mut f, None);
    let mut head = [0u8; 2];
    let n = r.read(&mut head).map_err(fs_err("read", dir.join(rel)))?;
    r.drain().map_err(fs_err("read", dir.join(rel)))?;
    let (d, size) = r.finish();
    Ok((d, size, n == 2 && head == [0x1f, 0x8b]))
}
