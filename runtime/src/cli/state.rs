//! `state`: the runtime-spec state document.

use super::Ctx;
use crate::error::RuntimeError;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// runc's `state` output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDoc {
    /// Spec version.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Init pid (0 once stopped).
    pub pid: i32,
    /// created, running, paused, stopped.
    pub status: &'static str,
    /// Bundle path.
    pub bundle: PathBuf,
    /// Rootfs path.
    pub rootfs: PathBuf,
    /// Creation time.
    pub created: String,
    /// Annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Owner (runc prints an empty string).
    pub owner: String,
}

/// The state document of one container.
pub fn doc(ctx: &Ctx, id: &str) -> Result<StateDoc, RuntimeError> {
    let (dir, record) = ctx.open(id)?;
    let status = super::status_of(&dir, &record);
    Ok(StateDoc {
        oci_version: record.oci_version,
        id: record.id,
        pid: if status == crate::container::Status::Stopped {
            0
        } else {
            record.pid
        },
        status: status.as_str(),
        bundle: record.bundle,
        rootfs: record.rootfs,
        created: record.created,
        annotations: record.annotations,
        owner: String::new(),
    })
}

/// Print the state of `id`.
pub fn run(ctx: &Ctx, id: &str) -> Result<(), RuntimeError> {
    let d = doc(ctx, id)?;
    println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
    Ok(())
}
