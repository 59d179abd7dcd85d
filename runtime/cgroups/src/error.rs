//! The one error type of this crate. Every variant names the operation and the object (the
//! file, the directory, the resource field and its value); the underlying errno is the
//! `source`, which callers append once at the top (`write "100" to /sys/fs/cgroup/memory/x/
//! memory.limit_in_bytes: Device or resource busy (os error 16)`).

use std::io;
use std::path::PathBuf;

/// What went wrong in a cgroup operation, and on what.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// /proc/self/mountinfo could not be read.
    #[error("read {path}")]
    ReadMountinfo {
        /// The mountinfo file.
        path: PathBuf,
        /// The errno.
        source: io::Error,
    },
    /// A mountinfo line did not have the expected fields.
    #[error("parse mountinfo line {line}: {reason}")]
    ParseMountinfo {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// No cgroup v1 controller and no cgroup2 filesystem is mounted.
    #[error("no cgroup filesystem is mounted (neither a cgroup v1 controller nor cgroup2)")]
    NoCgroupMounts,
    /// The cgroupsPath cannot be used.
    #[error("cgroupsPath {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A resource value is invalid on its own or together with another one.
    #[error("linux.resources.{field} = {value}: {reason}")]
    InvalidResource {
        /// The field in runtime-spec terms, e.g. `memory.reservation`.
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A device cgroup rule is invalid.
    #[error("linux.resources.devices[{index}]: {reason}")]
    InvalidDeviceRule {
        /// Position in the devices list.
        index: usize,
        /// Why it is refused.
        reason: String,
    },
    /// The resource cannot be set with the cgroup version the host runs.
    #[error("linux.resources.{field} is not supported on {layout}: {reason}")]
    Unsupported {
        /// The field in runtime-spec terms.
        field: &'static str,
        /// `cgroup v1`, `cgroup v2` or `hybrid cgroups`.
        layout: &'static str,
        /// Why, or what to use instead.
        reason: &'static str,
    },
    /// The resource needs a controller the host does not mount.
    #[error(
        "linux.resources.{field} needs the {controller} cgroup controller, which is not mounted"
    )]
    MissingController {
        /// The field in runtime-spec terms.
        field: &'static str,
        /// The controller.
        controller: &'static str,
    },
    /// A cgroup directory could not be created.
    #[error("create cgroup directory {path}")]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The errno.
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("remove cgroup directory {path}")]
    Rmdir {
        /// The directory.
        path: PathBuf,
        /// The errno.
        source: io::Error,
    },
    /// A cgroup directory could not be listed.
    #[error("list cgroup directory {path}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The errno.
        source: io::Error,
    },
    /// A value could not be written to a cgroup file.
    #[error("write {value:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The errno.
        source: io::Error,
    },
    /// A cgroup file could not be read.
    #[error("read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The errno.
        source: io::Error,
    },
    /// A cgroup file held something unexpected.
    #[error("parse {path}: unexpected content {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The part that did not parse.
        content: String,
    },
    /// The requested hugepage size has no files in the cgroup.
    #[error(
        "linux.resources.hugepageLimits: page size {page_size:?} is not supported (no {path})"
    )]
    HugepageSize {
        /// The page size as given.
        page_size: String,
        /// The file that would hold its limit.
        path: PathBuf,
    },
    /// A `unified` key names no file in the cgroup.
    #[error("linux.resources.unified: key {key:?} names no file in {dir}")]
    UnifiedKey {
        /// The key.
        key: String,
        /// The cgroup directory.
        dir: PathBuf,
    },
    /// The freezer did not reach the wanted state in time.
    #[error("{path} did not become {wanted} within {waited_ms} ms (last seen {seen:?})")]
    FreezeTimeout {
        /// The freezer file watched.
        path: PathBuf,
        /// FROZEN or THAWED.
        wanted: &'static str,
        /// The last state read.
        seen: String,
        /// How long it waited.
        waited_ms: u64,
    },
    /// A bpf(2) command failed.
    #[error("bpf {op} on {path}")]
    Bpf {
        /// The bpf command, e.g. `BPF_PROG_ATTACH`.
        op: &'static str,
        /// The cgroup the program is for.
        path: PathBuf,
        /// The errno.
        source: io::Error,
    },
    /// The kernel's verifier refused the device program.
    #[error("bpf BPF_PROG_LOAD of the device program for {path} ({insns} instructions), verifier log: {log:?}")]
    BpfLoad {
        /// The cgroup the program is for.
        path: PathBuf,
        /// Program length.
        insns: usize,
        /// The verifier's log (may be empty).
        log: String,
        /// The errno.
        source: io::Error,
    },
    /// A cgroup directory could not be opened (for bpf attach).
    #[error("open cgroup directory {path}")]
    OpenDir {
        /// The directory.
        path: PathBuf,
        /// The errno.
        source: io::Error,
    },
}

impl CgroupError {
    /// Whether the underlying errno is `errno` (ENOENT, EBUSY, ...).
    pub fn is_errno(&self, errno: i32) -> bool {
        let source = match self {
            Self::Mkdir { source, .. }
            | Self::Rmdir { source, .. }
            | Self::ReadDir { source, .. }
            | Self::Write { source, .. }
            | Self::Read { source, .. }
            | Self::Bpf { source, .. }
            | Self::OpenDir { source, .. } => source,
            _ => return false,
        };
        source.raw_os_error() == Some(errno)
    }
}
