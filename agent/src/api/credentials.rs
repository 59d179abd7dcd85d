//! The access keys of the SigV4 listener: a file in the format of `~/.aws/credentials`
//! (one `[profile]` per key pair: `aws_access_key_id`, `aws_secret_access_key`, optional
//! `aws_session_token`). The file must be owned by root and not accessible by group or
//! others, like the unix socket it stands beside; anything else is refused at start.

use super::sigv4::{Key, Keys};
use std::path::{Path, PathBuf};

/// Why the credentials file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// It could not be opened or read.
    #[error("reading credentials file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not owned by root, or group/other may access it.
    #[error("credentials file {path}: {problem}")]
    Unsafe {
        /// The file.
        path: PathBuf,
        /// Owner or mode, and how to fix it.
        problem: String,
    },
    /// A line or profile is wrong.
    #[error("credentials file {path}, line {line}: {problem}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line (of the profile's header for a missing key).
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// No key pair at all.
    #[error(
        "credentials file {path} holds no key pair (aws_access_key_id + aws_secret_access_key)"
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Read and check `path`: root-owned, mode without group/other bits, at least one key pair.
pub fn load(path: &Path) -> Result<Keys, CredentialsError> {
    let text = read_private(path)?;
    parse(&text).map_err(|e| located(path, e))
}

/// Read `path` after checking the opened file: owned by root, no group/other bits. Also used
/// for the task role credentials file (`task_credentials`).
pub fn read_private(path: &Path) -> Result<String, CredentialsError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let read_err = |source| CredentialsError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    // The checks look at the opened file itself, so a swapped path cannot slip past them.
    let meta = file.metadata().map_err(read_err)?;
    check_owner_and_mode(meta.uid(), meta.mode()).map_err(|problem| CredentialsError::Unsafe {
        path: path.to_owned(),
        problem,
    })?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read_err)?;
    Ok(text)
}

/// A parse error of the file at `path`.
pub fn located(path: &Path, e: ParseError) -> CredentialsError {
    match e {
        ParseError::Line { line, problem } => CredentialsError::Syntax {
            path: path.to_owned(),
            line,
            problem,
        },
        ParseError::Empty => CredentialsError::Empty {
            path: path.to_owned(),
        },
    }
}

/// Owner must be root; no group or other permission bits.
pub fn check_owner_and_mode(uid: u32, mode: u32) -> Result<(), String> {
    if uid != 0 {
        return Err(format!(
            "owned by uid {uid}: must be owned by root (chown root:root)"
        ));
    }
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {:04o}: must not be accessible by group or others (chmod 600)",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// A parse failure, without the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A bad line or incomplete profile.
    Line {
        /// 1-based.
        line: usize,
        /// What.
        problem: String,
    },
    /// No profile with a key pair.
    Empty,
}

#[derive(Default)]
struct Profile {
    name: String,
    line: usize,
    key_id: Option<String>,
    secret: Option<String>,
    token: Option<String>,
}

/// One profile's key pair.
#[derive(Clone)]
pub struct ProfileKey {
    /// The `[name]` of its header.
    pub name: String,
    /// The header's 1-based line.
    pub line: usize,
    /// `aws_access_key_id`.
    pub access_key_id: String,
    /// The secret and the optional session token.
    pub key: Key,
}

/// Parse the INI text into access key ids and their keys: see [`parse_profiles`].
pub fn parse(text: &str) -> Result<Keys, ParseError> {
    Ok(parse_profiles(text)?
        .into_iter()
        .map(|p| (p.access_key_id, p.key))
        .collect())
}

/// Parse the INI text. Profiles without any key are skipped (a `[default]` holding only
/// `region`); a profile with an id but no secret (or the reverse) is an error, as is one key
/// id in two profiles. Unknown keys (`region`, `output`) are ignored, as the aws CLI does.
pub fn parse_profiles(text: &str) -> Result<Vec<ProfileKey>, ParseError> {
    let mut profiles: Vec<Profile> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or_else(|| ParseError::Line {
                line,
                problem: format!("'{l}' is not a [profile] header"),
            })?;
            profiles.push(Profile {
                name: name.trim().to_owned(),
                line,
                ..Profile::default()
            });
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            return Err(ParseError::Line {
                line,
                problem: "expected `key = value`".into(),
            });
        };
        let Some(p) = profiles.last_mut() else {
            return Err(ParseError::Line {
                line,
                problem: "a key before the first [profile] header".into(),
            });
        };
        let v = v.trim().to_owned();
        match k.trim() {
            "aws_access_key_id" => p.key_id = Some(v),
            "aws_secret_access_key" => p.secret = Some(v),
            "aws_session_token" | "aws_security_token" => p.token = Some(v),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for p in profiles {
        let (id, secret) = match (p.key_id, p.secret) {
            (None, None) => continue,
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => (id, secret),
            (id, _) => {
                let missing = if id.as_deref().is_some_and(|i| !i.is_empty()) {
                    "aws_secret_access_key"
                } else {
                    "aws_access_key_id"
                };
                return Err(ParseError::Line {
                    line: p.line,
                    problem: format!("profile [{}] has no {missing}", p.name),
                });
            }
        };
        if found.iter().any(|f: &ProfileKey| f.access_key_id == id) {
            return Err(ParseError::Line {
                line: p.line,
                problem: format!(
                    "profile [{}]: access key id {id} is already in another profile",
                    p.name
                ),
            });
        }
        found.push(ProfileKey {
            name: p.name,
            line: p.line,
            access_key_id: id,
            key: Key {
                secret,
                session_token: p.token.filter(|t| !t.is_empty()),
            },
        });
    }
    if found.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_become_key_pairs() {
        let keys = parse(
            "# berth\n[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key=wJalr/K7+x\nregion = us-east-1\n\n\
             [ci]\n aws_access_key_id = ASIATEMP \naws_secret_access_key = s2\naws_session_token = tok==\n[empty]\nregion = x\n",
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys["AKIDEXAMPLE"].secret, "wJalr/K7+x");
        assert_eq!(keys["AKIDEXAMPLE"].session_token, None);
        assert_eq!(keys["ASIATEMP"].session_token.as_deref(), Some("tok=="));
    }

    #[test]
    fn bad_files_are_named() {
        let line = |t: &str| match parse(t).unwrap_err() {
            ParseError::Line { line, problem } => format!("{line}: {problem}"),
            ParseError::Empty => "empty".into(),
        };
        assert_eq!(
            line("[a]\naws_access_key_id = X\n"),
            "1: profile [a] has no aws_secret_access_key"
        );
        assert_eq!(
            line("[a]\naws_secret_access_key = X\n"),
            "1: profile [a] has no aws_access_key_id"
        );
        assert_eq!(
            line("aws_access_key_id = X\n"),
            "1: a key before the first [profile] header"
        );
        assert_eq!(line("[a\n"), "1: '[a' is not a [profile] header");
        assert_eq!(line("[a]\njunk\n"), "2: expected `key = value`");
        assert!(line(
            "[a]\naws_access_key_id=X\naws_secret_access_key=1\n[b]\naws_access_key_id=X\naws_secret_access_key=2\n"
        )
        .contains("already in another profile"));
        assert_eq!(line("[default]\nregion = us-east-1\n"), "empty");
    }

    #[test]
    fn only_root_owned_private_files() {
        assert!(check_owner_and_mode(0, 0o100600).is_ok());
        assert!(check_owner_and_mode(0, 0o100400).is_ok());
        assert!(check_owner_and_mode(1000, 0o100600)
            .unwrap_err()
            .contains("owned by uid 1000"));
        assert!(check_owner_and_mode(0, 0o100640)
            .unwrap_err()
            .contains("mode 0640"));
        assert!(check_owner_and_mode(0, 0o100604).is_err());
    }
}
