//! Two small process settings: `linux.personality` and `process.ioPriority`.

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain,
};

/// The personality(2) value for the spec's domain; flags are refused by validation.
pub fn personality_value(p: &LinuxPersonality) -> libc::c_ulong {
    const PER_LINUX: libc::c_ulong = 0x0000;
    const PER_LINUX32: libc::c_ulong = 0x0008;
    match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    }
}

/// Set the execution domain of this process (and what it execs).
pub fn set_personality(p: &LinuxPersonality) -> Result<(), String> {
    // SAFETY: personality takes an integer and changes only this process's domain.
    if unsafe { libc::personality(personality_value(p)) } == -1 {
        return Err(format!(
            "personality {:?}: {}",
            p.domain(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The ioprio_set(2) value: class in the top bits, level (0–7) below.
pub fn ioprio_value(p: &LinuxIOPriority) -> Result<i64, String> {
    const CLASS_SHIFT: i64 = 13;
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(format!(
            "process.ioPriority.priority: {} is not between 0 and 7",
            p.priority()
        ));
    }
    Ok(class << CLASS_SHIFT | p.priority())
}

/// Set this process's I/O priority (inherited by what it execs).
pub fn set_io_priority(p: &LinuxIOPriority) -> Result<(), String> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let value = ioprio_value(p)?;
    // SAFETY: ioprio_set with integer arguments for the calling process (who = 0).
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } != 0 {
        return Err(format!(
            "ioprio_set {value:#x}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_priority_encoding() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_BE","priority":4}"#).unwrap();
        assert_eq!(ioprio_value(&p).unwrap(), (2 << 13) | 4);
        let bad: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_IDLE","priority":9}"#).unwrap();
        assert!(ioprio_value(&bad).unwrap_err().contains("ioPriority"));
    }

    #[test]
    fn personality_domains() {
        let p: LinuxPersonality = serde_json::from_str(r#"{"domain":"LINUX32"}"#).unwrap();
        assert_eq!(personality_value(&p), 8);
    }
}
