//! The real aws CLI and boto3 for the ECS API tests (issue 7): a Python virtual environment made
//! with Debian's `python3-venv` (`/usr/bin/python3 -m venv`) holding the pinned `awscli` and
//! `boto3` from PyPI (the versions the wire notes were captured with), made once and cached under
//! `/var/cache/berth-tests/`, and a client environment that reaches only 127.0.0.1, reads its
//! keys and config from the test's own files and never looks for instance metadata.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned aws CLI (v1, with its own vendored botocore 1.43.62).
pub const AWSCLI_VERSION: &str = "1.46.3";
/// The pinned boto3 (botocore 1.44.8).
pub const BOTO3_VERSION: &str = "1.44.8";

const CACHE: &str = "/var/cache/berth-tests";

/// Run `cmd` to completion within `limit` (killed after it), capturing stdout and stderr.
/// Panics naming `what` when it cannot be started or runs out of time.
pub fn run_bounded(cmd: &mut Command, limit: Duration, what: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: spawn: {e}"));
    // Drain both pipes in threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// The venv with the pinned clients: made on first use (under an exclusive lock, so parallel
/// tests wait for one maker), reused afterwards. Returns its directory (`bin/aws`,
/// `bin/python`).
pub fn venv() -> PathBuf {
    let name = format!("aws-venv-awscli-{AWSCLI_VERSION}-boto3-{BOTO3_VERSION}");
    let packages = [
        format!("awscli=={AWSCLI_VERSION}"),
        format!("boto3=={BOTO3_VERSION}"),
    ];
    python_venv(&name, &packages, |dir| {
        let aws = run_bounded(
            Command::new(dir.join("bin/aws")).arg("--version"),
            Duration::from_secs(60),
            "aws --version",
        );
        let version = format!(
            "{}{}",
            String::from_utf8_lossy(&aws.stdout),
            String::from_utf8_lossy(&aws.stderr)
        );
        assert!(
            version.contains(&format!("aws-cli/{AWSCLI_VERSION}")),
            "the venv's aws is not {AWSCLI_VERSION}: {version}"
        );
    })
}

/// A Python virtual environment `/var/cache/berth-tests/NAME` (Debian's python3-venv) with
/// the pinned `packages` from PyPI: made on first use under an exclusive lock (parallel tests
/// wait for one maker), `check`ed once, then reused. Returns its directory.
pub fn python_venv(name: &str, packages: &[String], check: impl Fn(&Path)) -> PathBuf {
    let cache = Path::new(CACHE);
    std::fs::create_dir_all(cache).unwrap_or_else(|e| panic!("create {CACHE}: {e}"));
    let dir = cache.join(name);
    let marker = dir.join("berth-complete");
    let lock_file = std::fs::File::create(cache.join(format!("{name}.lock"))).unwrap();
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("lock the venv cache: {e}"));
    if marker.is_file() {
        return dir;
    }
    // Made in place under its final name (venv scripts name their interpreter by absolute
    // path); the marker written last tells a finished venv from an interrupted one.
    let _ = std::fs::remove_dir_all(&dir);
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing (Debian's python3 and python3-venv packages)"
    );
    let made = run_bounded(
        Command::new(python).arg("-m").arg("venv").arg(&dir),
        Duration::from_secs(120),
        "python3 -m venv",
    );
    assert!(
        made.status.success(),
        "python3 -m venv {} failed (is python3-venv installed?): {}",
        dir.display(),
        String::from_utf8_lossy(&made.stderr)
    );
    let pip = run_bounded(
        Command::new(dir.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--timeout",
                "60",
            ])
            .args(packages),
        Duration::from_secs(600),
        &format!("pip install {packages:?}"),
    );
    assert!(
        pip.status.success(),
        "pip install {packages:?} failed: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
    check(&dir);
    std::fs::write(&marker, format!("{}\n", packages.join("\n"))).unwrap();
    dir
}

/// One key pair as the clients see it.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// Access key id.
    pub id: String,
    /// Secret.
    pub secret: String,
}

/// How the clients reach the agent: its endpoint, the test's own config and credentials
/// files, and an optional network namespace to run them in (the agent's loopback lives there).
#[derive(Debug, Clone)]
pub struct Clients {
    /// The venv.
    pub venv: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Region the clients sign for.
    pub region: String,
    /// `AWS_CONFIG_FILE`.
    pub config_file: PathBuf,
    /// `AWS_SHARED_CREDENTIALS_FILE`.
    pub credentials_file: PathBuf,
    /// Run the clients in this netns (`/run/netns/NAME`), if any.
    pub netns: Option<String>,
}

impl Clients {
    /// Write the client's config and credentials files under `dir` for `key`.
    pub fn new(
        venv: PathBuf,
        dir: &Path,
        endpoint: &str,
        region: &str,
        key: &KeyPair,
        netns: Option<&str>,
    ) -> Self {
        let config_file = dir.join("aws-client-config");
        let credentials_file = dir.join("aws-client-credentials");
        std::fs::write(
            &config_file,
            format!("[default]\nregion = {region}\noutput = json\n"),
        )
        .unwrap();
        std::fs::write(
            &credentials_file,
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                key.id, key.secret
            ),
        )
        .unwrap();
        Self {
            venv,
            endpoint: endpoint.to_owned(),
            region: region.to_owned(),
            config_file,
            credentials_file,
            netns: netns.map(str::to_owned),
        }
    }

    /// A command running `program` (from the venv's bin/) with the client environment:
    /// nothing from the caller's AWS_* variables, the test's files, no IMDS, no proxy.
    pub fn command(&self, program: &str) -> Command {
        let exe = self.venv.join("bin").join(program);
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}")).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("AWS_") || k.to_ascii_lowercase().ends_with("_proxy") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_CONFIG_FILE", &self.config_file)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.credentials_file)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_DEFAULT_REGION", &self.region)
            .env("BERTH_ECS_ENDPOINT", &self.endpoint)
            .env("NO_PROXY", "*");
        cmd
    }

    /// `aws ARGS --endpoint-url ENDPOINT`, bounded to 3 minutes (`aws ecs wait` polls every 6 s).
    pub fn aws(&self, args: &[&str]) -> AwsOut {
        self.aws_with(args, &[])
    }

    /// [`Clients::aws`] with extra environment variables (e.g. another key).
    pub fn aws_with(&self, args: &[&str], env: &[(&str, &str)]) -> AwsOut {
        let mut cmd = self.command("aws");
        cmd.args(args).args(["--endpoint-url", &self.endpoint]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run_bounded(&mut cmd, Duration::from_secs(180), &format!("aws {args:?}"));
        AwsOut {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What one `aws` run printed.
#[derive(Debug, Clone)]
pub struct AwsOut {
    /// Its arguments.
    pub args: Vec<String>,
    /// Exit code.
    pub code: i32,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

impl AwsOut {
    /// Assert success; stdout parsed as JSON (`null` when empty).
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "aws {:?}: {}", self.args, self.stderr);
        if self.stdout.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&self.stdout)
                .unwrap_or_else(|e| panic!("aws {:?}: {e}: {}", self.args, self.stdout))
        }
    }

    /// Assert the CLI's error line for `code` on `operation` (exit 255), returning stderr.
    pub fn error(&self, code: &str, operation: &str) -> &str {
        let line = format!("An error occurred ({code}) when calling the {operation} operation: ");
        assert!(
            self.code == 255 && self.stderr.contains(&line),
            "aws {:?}: expected exit 255 and `{line}`, got {}: {}{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        &self.stderr
    }
}
