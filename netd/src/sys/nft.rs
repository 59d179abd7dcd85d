//! Running `nft -f -`: one script is one kernel transaction, applied whole or not at all.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Apply `script` with the `nft` binary at `nft`. Returns nft's message on failure.
pub fn apply(nft: &Path, script: &str) -> Result<(), String> {
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {}: {e}", nft.display()))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(script.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for {}: {e}", nft.display()))?;
    if let Some(Err(e)) = written {
        if out.status.success() {
            return Err(format!("write to {}: {e}", nft.display()));
        }
    }
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first: Vec<&str> = stderr.lines().take(3).collect();
        Err(format!("{} ({})", first.join(" | "), out.status))
    }
}
