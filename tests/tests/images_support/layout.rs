//! OCI image layouts built in the test: normal, multi-platform and hostile layers.

use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `sha256:<hex>` of bytes.
pub fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// How a layer is compressed.
#[derive(Clone, Copy)]
pub enum Compression {
    /// tar+gzip.
    Gzip,
    /// plain tar.
    None,
}

/// One tar entry, written with raw header bytes so hostile names survive.
pub struct Entry {
    /// Path as written in the tar.
    pub path: String,
    /// Entry type.
    pub kind: tar::EntryType,
    /// Link target.
    pub link: String,
    /// File data.
    pub data: Vec<u8>,
    /// Mode.
    pub mode: u32,
    /// Extended attributes, written as PAX `SCHILY.xattr.*` records.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    /// The same entry with an extended attribute.
    pub fn xattr(mut self, name: &str, value: &[u8]) -> Self {
        self.xattrs.push((name.to_string(), value.to_vec()));
        self
    }
}

/// One PAX record: "LEN key=value\n", LEN counting the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// A regular file.
pub fn file(path: &str, data: &[u8]) -> Entry {
    Entry {
        path: path.into(),
        kind: tar::EntryType::Regular,
        link: String::new(),
        data: data.to_vec(),
        mode: 0o644,
        xattrs: Vec::new(),
    }
}
/// A directory.
pub fn dir(path: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: tar::EntryType::Directory,
        link: String::new(),
        data: Vec::new(),
        mode: 0o755,
        xattrs: Vec::new(),
    }
}
/// A symlink.
pub fn symlink(path: &str, target: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: tar::EntryType::Symlink,
        link: target.into(),
        data: Vec::new(),
        mode: 0o777,
        xattrs: Vec::new(),
    }
}
/// A hardlink.
pub fn hardlink(path: &str, target: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: tar::EntryType::Link,
        link: target.into(),
        data: Vec::new(),
        mode: 0o644,
        xattrs: Vec::new(),
    }
}
/// A character device.
pub fn chardev(path: &str) -> Entry {
    Entry {
        path: path.into(),
        kind: tar::EntryType::Char,
        link: String::new(),
        data: Vec::new(),
        mode: 0o666,
        xattrs: Vec::new(),
    }
}

/// The tar bytes of `entries`.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.xattrs.is_empty() {
            let data: Vec<u8> = e
                .xattrs
                .iter()
                .flat_map(|(k, v)| pax_record(&format!("SCHILY.xattr.{k}"), v))
                .collect();
            let mut h = tar::Header::new_ustar();
            h.set_path("PaxHeaders/x").unwrap();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().unwrap();
            u.name[..e.path.len()].copy_from_slice(e.path.as_bytes());
            u.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// gzip of bytes.
pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// An OCI layout being written.
pub struct Layout {
    /// Its directory.
    pub dir: PathBuf,
    layers: Vec<serde_json::Value>,
    diff_ids: Vec<String>,
    manifests: Vec<serde_json::Value>,
}

impl Layout {
    /// A new, empty layout at `dir`.
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Self {
            dir: dir.to_path_buf(),
            layers: Vec::new(),
            diff_ids: Vec::new(),
            manifests: Vec::new(),
        }
    }

    /// Store a blob; returns its digest.
    pub fn blob(&self, b: &[u8]) -> String {
        let d = digest(b);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), b).unwrap();
        d
    }

    /// Add a layer of `entries`; returns the blob digest.
    pub fn layer(&mut self, entries: &[Entry], c: Compression) -> String {
        self.layer_bytes(tar_of(entries), c)
    }

    /// Add a layer from tar bytes; returns the blob digest.
    pub fn layer_bytes(&mut self, tar: Vec<u8>, c: Compression) -> String {
        self.diff_ids.push(digest(&tar));
        let (bytes, mt) = match c {
            Compression::Gzip => (gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
            Compression::None => (tar, "application/vnd.oci.image.layer.v1.tar"),
        };
        let d = self.blob(&bytes);
        self.layers
            .push(serde_json::json!({"mediaType": mt, "digest": d, "size": bytes.len()}));
        d
    }

    /// Add an already gzipped layer whose diff-id the caller computed (for streams too large to
    /// hold uncompressed).
    pub fn layer_gz_with_diff_id(&mut self, gz: Vec<u8>, diff_id: String) -> String {
        self.diff_ids.push(diff_id);
        let d = self.blob(&gz);
        self.layers.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": gz.len()}));
        d
    }

    /// Finish the image of the layers added so far (for `arch`), as a manifest; returns
    /// (manifest digest, size) and starts a fresh image.
    pub fn manifest(&mut self, arch: &str, config: serde_json::Value) -> (String, usize) {
        let cfg = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
        }))
        .unwrap();
        let cd = self.blob(&cfg);
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cfg.len()},
            "layers": self.layers,
        }))
        .unwrap();
        self.layers.clear();
        self.diff_ids.clear();
        (self.blob(&m), m.len())
    }

    /// Write index.json with one image (the layers added so far), tagged `tag`. Returns the
    /// manifest digest.
    pub fn finish(mut self, tag: &str) -> String {
        let (d, size) = self.manifest("amd64", serde_json::json!({"Cmd": ["/bin/sh"]}));
        self.manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
        d
    }

    /// Write index.json whose one entry is an image index over `platforms` (arch, manifest, size).
    pub fn finish_index(mut self, tag: &str, platforms: &[(&str, String, usize)]) -> String {
        let inner = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": platforms.iter().map(|(arch, d, s)| serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": s,
                "platform": {"architecture": arch, "os": "linux"},
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        let d = self.blob(&inner);
        self.manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": inner.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        self.write_index();
        d
    }

    fn write_index(&self) {
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(
                &serde_json::json!({"schemaVersion": 2, "manifests": self.manifests}),
            )
            .unwrap(),
        )
        .unwrap();
    }
}

/// Deterministic incompressible bytes (xorshift).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}
