//! The processes berth-runtime makes: init (via clone), exec'd processes, and the sealed
//! re-exec of the runtime itself.

pub mod exe;
pub mod init;
pub mod security;
pub mod sync;
