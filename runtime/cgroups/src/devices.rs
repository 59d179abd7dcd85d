//! Device cgroup rules: normalised from the runtime-spec, written as v1 `devices.allow`/
//! `devices.deny` lines, or assembled into a cgroup v2 BPF_PROG_TYPE_CGROUP_DEVICE program.
//!
//! Semantics (both versions): a new cgroup starts allowing everything (v1 inherits the root's
//! `a *:* rwm`; v2 without a program allows all), then the rules apply in order, each one
//! granting (allow) or taking away (deny) its access bits on the devices it matches. The
//! program keeps the granted bits for the device being opened in a register while it walks
//! the rules, and allows the access only if every requested bit is still granted at the end.
//! Like runc, the runtime puts a deny-all rule first and its default devices after the spec's.

use crate::error::CgroupError;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Access bits, as the kernel's BPF_DEVCG_ACC_* values.
pub const ACC_MKNOD: u8 = 1;
/// Read access.
pub const ACC_READ: u8 = 2;
/// Write access.
pub const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// BPF_DEVCG_DEV_BLOCK.
const DEV_BLOCK: i32 = 1;
/// BPF_DEVCG_DEV_CHAR.
const DEV_CHAR: i32 = 2;

/// Which device nodes a rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// `a`: every device (numbers are ignored, as in v1).
    All,
    /// `b`: block devices.
    Block,
    /// `c`: character devices.
    Char,
}

/// One normalised rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    /// Grant (true) or take away (false).
    pub allow: bool,
    /// Device kind.
    pub kind: DeviceKind,
    /// Major number; `None` = any.
    pub major: Option<u32>,
    /// Minor number; `None` = any.
    pub minor: Option<u32>,
    /// Access bits ([`ACC_READ`] | [`ACC_WRITE`] | [`ACC_MKNOD`]).
    pub access: u8,
}

impl DeviceRule {
    /// The rule from a runtime-spec entry at `index` (validated: errors name the index).
    pub fn from_spec(index: usize, d: &LinuxDeviceCgroup) -> Result<Self, CgroupError> {
        crate::validate::device_rule(index, d)?;
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => DeviceKind::All,
            Some(LinuxDeviceType::B) => DeviceKind::Block,
            Some(_) => DeviceKind::Char,
        };
        let number = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
        let access = match d.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(s) => s.chars().fold(0, |acc, c| {
                acc | match c {
                    'r' => ACC_READ,
                    'w' => ACC_WRITE,
                    _ => ACC_MKNOD,
                }
            }),
        };
        Ok(Self {
            allow: d.allow(),
            kind,
            major: number(d.major()),
            minor: number(d.minor()),
            access,
        })
    }

    /// The v1 line: `c 1:3 rwm`, `a *:* rwm`.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceKind::All => "a",
            DeviceKind::Block => "b",
            DeviceKind::Char => "c",
        };
        let n = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", n(self.major), n(self.minor))
    }
}

impl DeviceRule {
    /// The runtime-spec form of this rule (for `linux.resources.devices`).
    pub fn to_spec(&self) -> LinuxDeviceCgroup {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(self.allow);
        d.set_typ(Some(match self.kind {
            DeviceKind::All => LinuxDeviceType::A,
            DeviceKind::Block => LinuxDeviceType::B,
            DeviceKind::Char => LinuxDeviceType::C,
        }));
        d.set_major(self.major.map(i64::from));
        d.set_minor(self.minor.map(i64::from));
        let line = self.v1_line();
        d.set_access(line.rsplit_once(' ').map(|(_, a)| a.to_string()));
        d
    }
}

/// The rules a runtime puts in front of and behind a container's own device rules, as runc
/// does: deny everything, then the spec's rules, then [`default_allowed_devices`]. Returns
/// `deny-all ++ spec ++ defaults` in runtime-spec form, ready for `LinuxResources::set_devices`.
pub fn with_default_devices(spec_rules: &[LinuxDeviceCgroup]) -> Vec<LinuxDeviceCgroup> {
    let deny_all = DeviceRule {
        allow: false,
        kind: DeviceKind::All,
        major: None,
        minor: None,
        access: ACC_ALL,
    };
    std::iter::once(deny_all.to_spec())
        .chain(spec_rules.iter().cloned())
        .chain(default_allowed_devices().iter().map(DeviceRule::to_spec))
        .collect()
}

/// All rules of a spec's devices list, in order.
pub fn rules_from_spec(devices: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| DeviceRule::from_spec(i, d))
        .collect()
}

/// The devices every container may use, as runc's AllowedDevices (null, zero, full, random,
/// urandom, tty, console, ptmx, /dev/pts/*, and mknod of any char or block device): the runtime
/// appends these after the spec's rules.
pub fn default_allowed_devices() -> Vec<DeviceRule> {
    let c = |major, minor, access| DeviceRule {
        allow: true,
        kind: DeviceKind::Char,
        major,
        minor,
        access,
    };
    let rwm = ACC_ALL;
    vec![
        c(None, None, ACC_MKNOD),
        DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major: None,
            minor: None,
            access: ACC_MKNOD,
        },
        c(Some(1), Some(3), rwm),
        c(Some(1), Some(5), rwm),
        c(Some(1), Some(7), rwm),
        c(Some(1), Some(8), rwm),
        c(Some(1), Some(9), rwm),
        c(Some(5), Some(0), rwm),
        c(Some(5), Some(1), rwm),
        c(Some(5), Some(2), rwm),
        c(Some(136), None, rwm),
    ]
}

/// One eBPF instruction (struct bpf_insn), kept as its fields for readability and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Jump offset or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl Insn {
    /// The kernel's 8-byte encoding (little-endian host: x86_64, aarch64).
    pub fn encode(&self) -> u64 {
        u64::from(self.code)
            | u64::from(self.dst & 0xf) << 8
            | u64::from(self.src & 0xf) << 12
            | u64::from(u16::from_le_bytes(self.off.to_le_bytes())) << 16
            | u64::from(u32::from_le_bytes(self.imm.to_le_bytes())) << 32
    }
}

/// Opcodes used by the device program.
pub mod op {
    /// BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off).
    pub const LDX_W: u8 = 0x61;
    /// BPF_ALU64 | BPF_K | BPF_MOV.
    pub const MOV_K: u8 = 0xb7;
    /// BPF_ALU64 | BPF_K | BPF_AND.
    pub const AND_K: u8 = 0x57;
    /// BPF_ALU64 | BPF_X | BPF_AND.
    pub const AND_X: u8 = 0x5f;
    /// BPF_ALU64 | BPF_K | BPF_OR.
    pub const OR_K: u8 = 0x47;
    /// BPF_ALU64 | BPF_K | BPF_XOR.
    pub const XOR_K: u8 = 0xa7;
    /// BPF_ALU64 | BPF_K | BPF_RSH.
    pub const RSH_K: u8 = 0x77;
    /// BPF_JMP | BPF_K | BPF_JNE: if dst != imm (64-bit), pc += off.
    pub const JNE_K: u8 = 0x55;
    /// BPF_JMP32 | BPF_K | BPF_JNE: if (u32)dst != (u32)imm, pc += off.
    pub const JNE32_K: u8 = 0x56;
    /// BPF_JMP | BPF_EXIT.
    pub const EXIT: u8 = 0x95;
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

// Registers: r1 = ctx (struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }),
// r2 = device type, r3 = requested access, r4 = major, r5 = minor, r6 = granted access.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;

/// Assemble the device program for `rules` (see the module comment for its semantics).
pub fn assemble_program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        insn(op::LDX_W, R2, R1, 0, 0),
        insn(op::AND_K, R2, 0, 0, 0xffff),
        insn(op::LDX_W, R3, R1, 0, 0),
        insn(op::RSH_K, R3, 0, 0, 16),
        insn(op::LDX_W, R4, R1, 4, 0),
        insn(op::LDX_W, R5, R1, 8, 0),
        insn(op::MOV_K, R6, 0, 0, i32::from(ACC_ALL)),
    ];
    for rule in rules {
        let mut checks: Vec<(u8, i32)> = Vec::new();
        match rule.kind {
            DeviceKind::All => {}
            DeviceKind::Block => checks.push((R2, DEV_BLOCK)),
            DeviceKind::Char => checks.push((R2, DEV_CHAR)),
        }
        if rule.kind != DeviceKind::All {
            // Device numbers are u32: compare them with 32-bit jumps (BPF_JMP32), because a
            // 64-bit compare would sign-extend an immediate of 2^31 or more.
            if let Some(m) = rule.major {
                checks.push((R4, i32::from_ne_bytes(m.to_ne_bytes())));
            }
            if let Some(m) = rule.minor {
                checks.push((R5, i32::from_ne_bytes(m.to_ne_bytes())));
            }
        }
        let action = if rule.allow {
            insn(op::OR_K, R6, 0, 0, i32::from(rule.access))
        } else {
            insn(op::AND_K, R6, 0, 0, i32::from(ACC_ALL & !rule.access))
        };
        let n = checks.len();
        for (i, (reg, imm)) in checks.into_iter().enumerate() {
            // Skip the remaining checks and the action.
            let skip = i16::try_from(n - i).unwrap_or(i16::MAX);
            p.push(insn(op::JNE32_K, reg, 0, skip, imm));
        }
        p.push(action);
    }
    p.extend([
        // r3 = requested & !granted; allowed iff it is 0.
        insn(op::XOR_K, R6, 0, 0, i32::from(ACC_ALL)),
        insn(op::AND_X, R3, R6, 0, 0),
        insn(op::MOV_K, R0, 0, 0, 0),
        insn(op::JNE_K, R3, 0, 1, 0),
        insn(op::MOV_K, R0, 0, 0, 1),
        insn(op::EXIT, 0, 0, 0, 0),
    ]);
    p
}

#[cfg(test)]
#[allow(
    clippy::cast_sign_loss,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]
mod tests {
    use super::*;

    /// A tiny interpreter for the opcodes above: runs `prog` on one device access.
    fn run(prog: &[Insn], dev_type: i32, access: u8, major: u32, minor: u32) -> bool {
        let ctx = [((u32::from(access)) << 16) | dev_type as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (d, s) = (usize::from(i.dst), usize::from(i.src));
            let imm = i64::from(i.imm) as u64;
            pc += 1;
            match i.code {
                op::LDX_W => {
                    assert_eq!(s, 1);
                    r[d] = u64::from(ctx[(i.off / 4) as usize]);
                }
                op::MOV_K => r[d] = imm,
                op::AND_K => r[d] &= imm,
                op::AND_X => r[d] &= r[s],
                op::OR_K => r[d] |= imm,
                op::XOR_K => r[d] ^= imm,
                op::RSH_K => r[d] >>= imm,
                op::JNE32_K => {
                    if r[d] as u32 != imm as u32 {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                op::JNE_K => {
                    if r[d] != imm {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                op::EXIT => return r[0] == 1,
                other => panic!("unknown opcode {other:#x}"),
            }
        }
    }

    fn rule(
        allow: bool,
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    fn deny_all() -> DeviceRule {
        rule(false, DeviceKind::All, None, None, ACC_ALL)
    }

    #[test]
    fn no_rules_allow_everything() {
        let p = assemble_program(&[]);
        assert!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3));
        assert!(run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0));
    }

    #[test]
    fn deny_all_then_defaults() {
        let mut rules = vec![deny_all()];
        rules.extend(default_allowed_devices());
        let p = assemble_program(&rules);
        assert!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), "/dev/null");
        assert!(run(&p, DEV_CHAR, ACC_READ, 136, 7), "/dev/pts/7");
        assert!(!run(&p, DEV_CHAR, ACC_READ, 1, 1), "/dev/mem");
        assert!(!run(&p, DEV_BLOCK, ACC_READ, 8, 0), "/dev/sda");
        assert!(
            run(&p, DEV_BLOCK, ACC_MKNOD, 8, 0),
            "mknod of any block device"
        );
        assert!(!run(&p, DEV_BLOCK, ACC_MKNOD | ACC_READ, 8, 0));
    }

    #[test]
    fn later_rules_win_and_partial_access() {
        let rules = [
            deny_all(),
            rule(true, DeviceKind::Char, Some(1), None, ACC_READ | ACC_WRITE),
            rule(false, DeviceKind::Char, Some(1), Some(5), ACC_WRITE),
        ];
        let p = assemble_program(&rules);
        assert!(run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3));
        assert!(run(&p, DEV_CHAR, ACC_READ, 1, 5));
        assert!(
            !run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 5),
            "write to 1:5 was taken away"
        );
        assert!(
            !run(&p, DEV_CHAR, ACC_MKNOD, 1, 3),
            "mknod was never granted"
        );
        assert!(
            !run(&p, DEV_BLOCK, ACC_READ, 1, 3),
            "block 1:3 is another device"
        );
    }

    #[test]
    fn v1_lines_and_spec_conversion() {
        let d: LinuxDeviceCgroup = serde_json::from_str(
            r#"{"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}"#,
        )
        .unwrap();
        let r = DeviceRule::from_spec(0, &d).unwrap();
        assert_eq!(r.v1_line(), "c 10:200 rwm");
        let all: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": false, "access": "rwm"}"#).unwrap();
        assert_eq!(
            DeviceRule::from_spec(0, &all).unwrap().v1_line(),
            "a *:* rwm"
        );
        let fifo: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": true, "type": "p"}"#).unwrap();
        assert_eq!(
            DeviceRule::from_spec(3, &fifo).unwrap_err().to_string(),
            "linux.resources.devices[3]: type \"p\" is not a device cgroup type (a, b or c)"
        );
        let bad: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow": true, "type": "c", "access": "rx"}"#).unwrap();
        assert!(DeviceRule::from_spec(0, &bad).is_err());
    }

    #[test]
    fn defaults_round_trip_through_the_spec_form() {
        let extra: LinuxDeviceCgroup = serde_json::from_str(
            r#"{"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}"#,
        )
        .unwrap();
        let all = with_default_devices(&[extra]);
        let rules = rules_from_spec(&all).unwrap();
        assert_eq!(rules[0].v1_line(), "a *:* rwm");
        assert!(!rules[0].allow);
        assert_eq!(rules[1].v1_line(), "c 10:200 rw");
        assert_eq!(rules[2..], default_allowed_devices()[..]);
        let p = assemble_program(&rules);
        assert!(
            run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 10, 200),
            "/dev/net/tun"
        );
        assert!(run(&p, DEV_CHAR, ACC_WRITE, 1, 3), "/dev/null");
        assert!(!run(&p, DEV_CHAR, ACC_READ, 1, 1), "/dev/mem");
    }

    #[test]
    fn encoding_matches_the_kernel_layout() {
        // mov r6, 7  → b7 06 00 00 07 00 00 00
        let i = insn(op::MOV_K, R6, 0, 0, 7);
        assert_eq!(i.encode().to_le_bytes(), [0xb7, 0x06, 0, 0, 7, 0, 0, 0]);
        // if r4 != 1 goto +2 → 55 04 02 00 01 00 00 00
        let j = insn(op::JNE_K, R4, 0, 2, 1);
        assert_eq!(j.encode().to_le_bytes(), [0x55, 0x04, 2, 0, 1, 0, 0, 0]);
        // r3 &= r6 → 5f 63 ...
        let a = insn(op::AND_X, R3, R6, 0, 0);
        assert_eq!(a.encode().to_le_bytes()[..2], [0x5f, 0x63]);
    }
}
