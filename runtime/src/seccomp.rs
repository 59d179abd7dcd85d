//! The OCI seccomp profile, compiled with libseccomp in the runtime process (so that a bad
//! profile fails `create` before anything exists) and loaded by init as late as it may be.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use std::collections::HashSet;

/// Why a profile was refused.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A field berth-runtime does not implement.
    #[error("linux.seccomp.{field}: {reason}")]
    Unsupported { field: String, reason: String },
    /// libseccomp refused a value.
    #[error("linux.seccomp.{field}: {reason}")]
    Libseccomp { field: String, reason: String },
}

fn lib(field: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let field = field.into();
    move |e| SeccompError::Libseccomp {
        field,
        reason: e.to_string(),
    }
}

/// The libseccomp action for an OCI action.
pub fn action(
    a: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<ScmpAction, SeccompError> {
    let errno = i32::try_from(errno_ret.unwrap_or(libc::EPERM as u32)).map_err(|_| {
        SeccompError::Unsupported {
            field: format!("{field}.errnoRet"),
            reason: "out of range".into(),
        }
    })?;
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(u16::try_from(errno).unwrap_or(1)),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::Unsupported {
                field: field.into(),
                reason: "SCMP_ACT_NOTIFY (a seccomp listener) is not supported by berth-runtime"
                    .into(),
            })
        }
    })
}

fn compare(op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (ScmpCompareOp, u64) {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0))
        }
    }
}

/// Compile `profile`. Syscall names this libseccomp does not know are skipped, as runc does:
/// profiles list syscalls of every architecture and kernel.
pub fn compile(profile: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    if profile.listener_path().is_some() {
        return Err(SeccompError::Unsupported {
            field: "listenerPath".into(),
            reason: "seccomp listeners are not supported".into(),
        });
    }
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("defaultAction"))?;
    // No-new-privileges follows process.noNewPrivileges, not libseccomp's default.
    ctx.set_ctl_nnp(false).map_err(lib("flags"))?;
    for (i, flag) in profile
        .flags()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true).map(|_| ()),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true).map(|_| ()),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true).map(|_| ()),
            #[allow(unreachable_patterns)]
            other => {
                return Err(SeccompError::Unsupported {
                    field: format!("flags[{i}]"),
                    reason: format!("{other:?} is not supported"),
                })
            }
        }
        .map_err(lib(format!("flags[{i}]")))?;
    }
    for (i, arch) in profile
        .architectures()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let a: ScmpArch = name.parse().map_err(lib(format!("architectures[{i}]")))?;
        ctx.add_arch(a)
            .map_err(lib(format!("architectures[{i}]")))?;
    }
    for (i, rule) in profile
        .syscalls()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret(), &format!("{field}.action"))?;
        if act == default {
            continue; // libseccomp refuses rules equal to the default action
        }
        let args = rule.args().clone().unwrap_or_default();
        let conds: Vec<ScmpArgCompare> = args
            .iter()
            .map(|a| {
                let (op, datum) = compare(a.op(), a.value(), a.value_two());
                ScmpArgCompare::new(u32::try_from(a.index()).unwrap_or(u32::MAX), op, datum)
            })
            .collect();
        let mut seen = HashSet::new();
        let repeats = args.iter().any(|a| !seen.insert(a.index()));
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let result = if conds.is_empty() {
                ctx.add_rule(act, sc)
            } else if repeats {
                // libseccomp cannot AND two conditions on one argument: one rule each (OR), as runc does
                conds
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(|_| ()))
                    .map(|()| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, sc, &conds)
            };
            result.map_err(lib(format!("{field} ({name})")))?;
        }
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_docker_style_profile_compiles() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["read","write","no_such_syscall_anywhere"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"},{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
                        {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                        {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}"#,
        );
        compile(&p).unwrap();
    }

    #[test]
    fn notify_is_refused_by_name() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let e = compile(&p).unwrap_err().to_string();
        assert!(e.contains("syscalls[0].action"), "{e}");
    }

    #[test]
    fn unknown_action_does_not_parse() {
        assert!(
            serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction":"SCMP_ACT_EXPLODE"}"#)
                .is_err()
        );
    }
}
