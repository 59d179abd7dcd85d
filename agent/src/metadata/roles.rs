//! Task role credentials: the `task_credentials` file maps each IAM role ARN a task
//! definition may name as `taskRoleArn` to the keys its containers get from the credentials
//! endpoint. Same format and same root-only check as the SigV4 listener's `credentials` file
//! (`~/.aws/credentials` INI), with the role ARN as the profile name:
//!
//! ```ini
//! [arn:aws:iam::123456789012:role/app]
//! aws_access_key_id = ASIAEXAMPLE
//! aws_secret_access_key = wJalrXUtnFEMI/K7MDENG
//! aws_session_token = IQoJb3JpZ2luX2VjEXAMPLE
//! ```

use crate::api::credentials::{
    located, parse_profiles, read_private, CredentialsError, ParseError,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The keys one role hands out.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleKeys {
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// `SecretAccessKey`.
    pub secret_access_key: String,
    /// `Token`, when the file gives one.
    pub token: Option<String>,
}

impl std::fmt::Debug for RoleKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The roles of the `task_credentials` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    /// The file they came from (for messages); `None` when no file is configured.
    pub file: Option<PathBuf>,
    roles: HashMap<String, RoleKeys>,
}

/// Whether `arn` looks like an IAM role ARN: `arn:aws:iam::<12 digits>:role/<path/name>`.
pub fn is_role_arn(arn: &str) -> bool {
    let Some(rest) = arn
        .strip_prefix("arn:aws:iam::")
        .or_else(|| arn.strip_prefix("arn:aws-cn:iam::"))
        .or_else(|| arn.strip_prefix("arn:aws-us-gov:iam::"))
    else {
        return false;
    };
    let Some((account, role)) = rest.split_once(':') else {
        return false;
    };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && role
            .strip_prefix("role/")
            .is_some_and(|name| !name.is_empty() && !name.ends_with('/'))
}

impl Roles {
    /// No file: every task role is refused.
    pub fn none() -> Self {
        Self::default()
    }

    /// Read and check `path` (root-owned, no group/other bits), then parse it.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let text = read_private(path)?;
        Self::parse(&text)
            .map_err(|e| located(path, e))
            .map(|mut r| {
                r.file = Some(path.to_owned());
                r
            })
    }

    /// Parse the INI text: every profile with keys must be named by a role ARN.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut roles = HashMap::new();
        for p in parse_profiles(text)? {
            if !is_role_arn(&p.name) {
                return Err(ParseError::Line {
                    line: p.line,
                    problem: format!(
                        "profile [{}] is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)",
                        p.name
                    ),
                });
            }
            if roles.contains_key(&p.name) {
                return Err(ParseError::Line {
                    line: p.line,
                    problem: format!("role [{}] appears twice", p.name),
                });
            }
            roles.insert(
                p.name,
                RoleKeys {
                    access_key_id: p.access_key_id,
                    secret_access_key: p.key.secret,
                    token: p.key.session_token,
                },
            );
        }
        Ok(Self { file: None, roles })
    }

    /// The keys of `role`.
    pub fn get(&self, role: &str) -> Option<&RoleKeys> {
        self.roles.get(role)
    }

    /// How many roles.
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Whether a `task_credentials` file is configured: without one, task roles are recorded
    /// but no credentials are served (definitions pasted from AWS name roles).
    pub fn is_configured(&self) -> bool {
        self.file.is_some()
    }

    /// Why a task with `role` cannot run, if it cannot: with a file configured, the role must
    /// be in it.
    pub fn check(&self, role: &str) -> Result<(), String> {
        match &self.file {
            Some(file) if !self.roles.contains_key(role) => Err(format!(
                "taskRoleArn {role} is not in the task credentials file {} (add a [{role}] profile with its keys)",
                file.display()
            )),
            _ => Ok(()),
        }
    }

    /// Why no keys are served for `role`, when none are.
    pub fn why_none(&self, role: &str) -> String {
        match &self.file {
            Some(_) => self.check(role).err().unwrap_or_default(),
            None => format!(
                "task role {role}: no task credentials file is configured (berth-agent --task-credentials FILE), so no credentials are served"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "[arn:aws:iam::123456789012:role/app]\naws_access_key_id = ASIAAPP\naws_secret_access_key = s3cr3t\naws_session_token = tok\n\
                        [arn:aws:iam::123456789012:role/path/batch]\naws_access_key_id = AKIABATCH\naws_secret_access_key = s2\n";

    #[test]
    fn roles_by_arn() {
        let r = Roles::parse(FILE).unwrap();
        assert_eq!(r.len(), 2);
        let app = r.get("arn:aws:iam::123456789012:role/app").unwrap();
        assert_eq!(app.access_key_id, "ASIAAPP");
        assert_eq!(app.secret_access_key, "s3cr3t");
        assert_eq!(app.token.as_deref(), Some("tok"));
        let batch = r.get("arn:aws:iam::123456789012:role/path/batch").unwrap();
        assert_eq!(batch.token, None);
        assert!(r.check("arn:aws:iam::123456789012:role/app").is_ok());
        assert!(!format!("{app:?}").contains("s3cr3t"));
        let mut r = r.clone();
        r.file = Some("/etc/berth/task-credentials".into());
        let e = r.check("arn:aws:iam::123456789012:role/other").unwrap_err();
        assert!(
            e.contains("role/other is not in the task credentials file"),
            "{e}"
        );
    }

    #[test]
    fn profiles_must_be_role_arns() {
        let e = Roles::parse("[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
            .unwrap_err();
        assert_eq!(
            e,
            ParseError::Line {
                line: 1,
                problem:
                    "profile [default] is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
                        .into()
            }
        );
        assert!(is_role_arn("arn:aws:iam::123456789012:role/a"));
        assert!(!is_role_arn("arn:aws:iam::12345:role/a"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/a"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:role/"));
    }

    #[test]
    fn without_a_file_roles_are_recorded_but_get_no_keys() {
        let r = Roles::none();
        assert!(!r.is_configured());
        assert!(r.check("arn:aws:iam::123456789012:role/app").is_ok());
        assert_eq!(r.get("arn:aws:iam::123456789012:role/app"), None);
        let e = r.why_none("arn:aws:iam::123456789012:role/app");
        assert!(e.contains("no task credentials file"), "{e}");
    }

    #[test]
    fn the_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task-credentials");
        std::fs::write(&path, FILE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Roles::load(&path).unwrap_err();
        let text = e.to_string();
        // As root the mode is refused; as anyone else the owner is.
        assert!(
            text.contains("mode 0644") || text.contains("owned by uid"),
            "{text}"
        );
        if nix::unistd::geteuid().is_root() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let r = Roles::load(&path).unwrap();
            assert_eq!(r.file.as_deref(), Some(path.as_path()));
            assert_eq!(r.len(), 2);
        }
    }
}
