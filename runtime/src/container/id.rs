//! Container ids: validated once, on construction.

use std::fmt;

/// The longest id accepted: ids name a directory under `--root` and appear in cgroup paths.
pub const MAX_ID_LEN: usize = 1024;

/// A container id that is safe to use as one path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerId(String);

/// Why an id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    /// Empty string.
    #[error("invalid container id: empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    #[error("invalid container id {0:?}: longer than {MAX_ID_LEN} bytes")]
    TooLong(String),
    /// `.`/`..` or a character outside `[A-Za-z0-9_.+-]`.
    #[error(
        "invalid container id {0:?}: only letters, digits and _ . + - are allowed, and not . or .."
    )]
    BadChars(String),
}

impl ContainerId {
    /// Validate `s` the way runc does: `^[\w+-\.]+$`, and never `.` or `..`.
    pub fn new(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > MAX_ID_LEN {
            return Err(IdError::TooLong(s.chars().take(64).collect()));
        }
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
        if !ok || s == "." || s == ".." {
            return Err(IdError::BadChars(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_escape_or_confuse() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\0y", "é"] {
            assert!(ContainerId::new(bad).is_err(), "{bad:?}");
        }
        assert!(ContainerId::new(&"a".repeat(MAX_ID_LEN + 1)).is_err());
        for good in ["c1", "abc-DEF_1.2+3", "..a", &"a".repeat(64)] {
            assert!(ContainerId::new(good).is_ok(), "{good:?}");
        }
    }
}
