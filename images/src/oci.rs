//! The OCI / Docker schema-2 documents berth reads: manifests, indexes, image configs. Own small
//! serde types, lenient about fields berth does not use.

use crate::error::ImageError;
use crate::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema-2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Layer media types berth unpacks.
pub const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// A content descriptor.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    #[serde(default)]
    pub media_type: String,
    /// Digest (kept as text: validated where used).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An index entry's platform.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`).
    pub architecture: String,
    /// OS (`linux`).
    pub os: String,
    /// Variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Either a manifest or an index, told apart by mediaType or shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// schemaVersion (2).
    #[serde(default)]
    pub schema_version: u32,
    /// Media type, if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Manifest: the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    /// Manifest: the layers, bottom first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<Descriptor>>,
    /// Index: the manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<Descriptor>>,
}

impl Document {
    /// Parse a manifest or index.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, ImageError> {
        serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            what: what.to_string(),
            source,
        })
    }

    /// Whether this is an index / manifest list.
    pub fn is_index(&self) -> bool {
        matches!(
            self.media_type.as_deref(),
            Some(OCI_INDEX) | Some(DOCKER_LIST)
        ) || (self.manifests.is_some() && self.config.is_none())
    }
}

/// Pick the linux/amd64 entry of an index, or say which platforms it offers.
pub fn pick_platform<'a>(index: &'a Document, image: &str) -> Result<&'a Descriptor, ImageError> {
    let manifests = index.manifests.as_deref().unwrap_or_default();
    manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
        .ok_or_else(|| ImageError::NoPlatform {
            image: image.to_string(),
            offered: manifests
                .iter()
                .map(|m| match &m.platform {
                    Some(p) => format!("{}/{}", p.os, p.architecture),
                    None => "unknown".to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The image config file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageConfigFile {
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// OS.
    #[serde(default)]
    pub os: String,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The runtime defaults.
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    /// The layers' diff-ids.
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RootFs {
    /// "layers".
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Uncompressed layer digests, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// `config` of an image config: the container defaults.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `user`, `uid`, `user:group`, `uid:gid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `KEY=value` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Cmd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `"80/tcp": {}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Stop signal (`SIGTERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

impl ImageConfigFile {
    /// Parse a config blob.
    pub fn parse(bytes: &[u8], digest: &Digest) -> Result<Self, ImageError> {
        serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            what: format!("image config {digest}"),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_amd64_or_names_what_is_offered() {
        let idx = Document::parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"architecture":"arm64","os":"linux"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#,
            "index",
        )
        .unwrap();
        assert!(idx.is_index());
        assert_eq!(pick_platform(&idx, "x").unwrap().digest, "sha256:bb");
        let arm_only = Document {
            manifests: Some(idx.manifests.clone().unwrap()[..1].to_vec()),
            ..idx
        };
        let err = pick_platform(&arm_only, "x").unwrap_err().to_string();
        assert!(err.contains("linux/arm64"), "{err}");
    }
}
