//! `pause` and `resume`: the cgroup freezer.

use super::Ctx;
use crate::container::Status;
use crate::error::RuntimeError;

/// Freeze every process of the container.
pub fn pause(ctx: &Ctx, id: &str) -> Result<(), RuntimeError> {
    let (dir, record) = ctx.open(id)?;
    let status = super::status_of(&dir, &record);
    if status != Status::Running && status != Status::Created {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.as_str(),
            what: "only a running container can be paused",
        });
    }
    super::cgroup_of(&record)?
        .freeze()
        .map_err(RuntimeError::Cgroup)
}

/// Thaw a paused container.
pub fn resume(ctx: &Ctx, id: &str) -> Result<(), RuntimeError> {
    let (dir, record) = ctx.open(id)?;
    let status = super::status_of(&dir, &record);
    if status != Status::Paused {
        return Err(RuntimeError::WrongStatus {
            id: id.into(),
            status: status.as_str(),
            what: "only a paused container can be resumed",
        });
    }
    super::cgroup_of(&record)?
        .thaw()
        .map_err(RuntimeError::Cgroup)
}
