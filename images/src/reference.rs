//! Image references `name[:tag][@digest]` with Docker's defaults: a first component without a
//! `.` or `:` (and not `localhost`) is not a registry, so `busybox` is
//! `docker.io/library/busybox:latest`.

use crate::digest::Digest;
use crate::error::ImageError;
use std::fmt;

/// The registry a reference without one points at.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// The tag, if given (or `latest` when neither tag nor digest was given).
    pub tag: Option<String>,
    /// The digest, if given.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse `name[:tag][@digest]`.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let bad = |reason| ImageError::InvalidReference {
            reference: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > 512 {
            return Err(bad("longer than 512 bytes"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(
                    "a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let (registry, repository) = split_registry(name);
        if registry.is_empty() {
            return Err(bad("empty registry"));
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        if !valid_repository(&repository) {
            return Err(bad(
                "a repository is lowercase [a-z0-9] components joined by '/', '.', '_', '__' or '-'",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository:tag` — the name the store indexes (None for a digest-only reference).
    pub fn tagged_name(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// Whether the registry is on this host (plain HTTP is allowed only there or when configured).
    pub fn is_loopback(&self) -> bool {
        let host = host_of(&self.registry);
        host == "localhost" || host == "::1" || host.starts_with("127.")
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The host part of `host[:port]` (brackets of an IPv6 literal removed).
fn host_of(registry: &str) -> &str {
    if let Some(v6) = registry.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            let registry = if first == "index.docker.io" || first == "registry-1.docker.io" {
                DEFAULT_REGISTRY.to_string()
            } else {
                first.to_string()
            };
            (registry, rest)
        }
        _ => (DEFAULT_REGISTRY.to_string(), name),
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_repository(r: &str) -> bool {
    !r.is_empty() && r.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    !b.is_empty()
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter()
            .all(|x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
        && !c.contains("..")
        && !c.contains("___")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_defaults() {
        assert_eq!(canon("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(canon("user/app:1.2"), "docker.io/user/app:1.2");
        assert_eq!(
            canon("index.docker.io/library/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(canon("localhost/app"), "localhost/app:latest");
        assert_eq!(canon("127.0.0.1:5000/a/b:t"), "127.0.0.1:5000/a/b:t");
        let d = Digest::of(b"x");
        assert_eq!(
            canon(&format!("quay.io/x/y@{d}")),
            format!("quay.io/x/y@{d}")
        );
        assert_eq!(
            canon(&format!("quay.io/x/y:v1@{d}")),
            format!("quay.io/x/y:v1@{d}")
        );
    }

    #[test]
    fn registry_port_is_not_a_tag() {
        let r = Reference::parse("127.0.0.1:5000/app").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(r.is_loopback());
        assert!(!Reference::parse("ghcr.io/a/b").unwrap().is_loopback());
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "a:",
            "a:-x",
            "a@sha256:12",
            "a/../b",
            "/abs",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }
}
