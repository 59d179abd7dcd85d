//! AppArmor and SELinux: applied when the LSM is enabled, a clear error when asked for but absent.

use std::path::Path;

/// Whether AppArmor is enabled on this kernel.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Whether SELinux is enabled (selinuxfs mounted).
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Ask for `profile` to be applied at the next execve (AppArmor's `exec` change).
pub fn set_apparmor_exec_profile(profile: &str) -> std::io::Result<()> {
    let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(attr, format!("exec {profile}"))
}

/// Ask for the SELinux `label` to be applied at the next execve.
pub fn set_selinux_exec_label(label: &str) -> std::io::Result<()> {
    std::fs::write("/proc/self/attr/exec", label)
}
