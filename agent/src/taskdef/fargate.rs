//! Task size: parsing ECS's cpu/memory strings and Fargate's table of valid pairs.

/// Parse task-level `cpu`: CPU units (`"512"`) or vCPUs (`"0.5 vCPU"`, `"1 vcpu"`).
/// Returns the units (1024 per vCPU), or `None` when the text is neither.
pub fn parse_cpu_units(text: &str) -> Option<u32> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(num) = lower.strip_suffix("vcpu") {
        let vcpus: f64 = num.trim().parse().ok()?;
        return units_from(vcpus * 1024.0);
    }
    t.parse::<u32>().ok()
}

/// Parse task-level `memory`: MiB (`"1024"`) or GB (`"2GB"`, `"0.5 GB"`, 1 GB = 1024 MiB).
pub fn parse_memory_mib(text: &str) -> Option<u32> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(num) = lower.strip_suffix("gb") {
        let gb: f64 = num.trim().parse().ok()?;
        return units_from(gb * 1024.0);
    }
    t.parse::<u32>().ok()
}

/// A non-negative whole number of units from a float, or `None` for fractions and overflow.
fn units_from(value: f64) -> Option<u32> {
    if !(0.0..=f64::from(u32::MAX)).contains(&value) || value.fract() != 0.0 {
        return None;
    }
    // The range check above makes the conversion exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(value as u32)
}

/// The memory sizes (MiB) Fargate allows for a task of `cpu_units`; empty when the cpu value
/// itself is not one of Fargate's (research/ecs.md §3.2).
pub fn fargate_memory_choices(cpu_units: u32) -> Vec<u32> {
    let stepped = |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).collect();
    match cpu_units {
        256 => vec![512, 1024, 2048],
        512 => vec![1024, 2048, 3072, 4096],
        1024 => stepped(2048, 8192, 1024),
        2048 => stepped(4096, 16384, 1024),
        4096 => stepped(8192, 30720, 1024),
        8192 => stepped(16384, 61440, 4096),
        16384 => stepped(32768, 122880, 8192),
        _ => Vec::new(),
    }
}

/// The cpu values Fargate allows.
pub const FARGATE_CPU_UNITS: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// Whether `cpu_units`/`memory_mib` is one of Fargate's task sizes.
pub fn is_fargate_size(cpu_units: u32, memory_mib: u32) -> bool {
    fargate_memory_choices(cpu_units).contains(&memory_mib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_strings() {
        for (text, want) in [
            ("256", Some(256)),
            ("1 vCPU", Some(1024)),
            ("0.25 vcpu", Some(256)),
            ("2vCPU", Some(2048)),
            ("0.1 vCPU", None),
            ("abc", None),
            ("-1", None),
        ] {
            assert_eq!(parse_cpu_units(text), want, "{text}");
        }
    }

    #[test]
    fn memory_strings() {
        for (text, want) in [
            ("512", Some(512)),
            ("2GB", Some(2048)),
            ("0.5 GB", Some(512)),
            ("1 gb", Some(1024)),
            ("lots", None),
        ] {
            assert_eq!(parse_memory_mib(text), want, "{text}");
        }
    }

    #[test]
    fn the_table_has_74_pairs() {
        let total: usize = FARGATE_CPU_UNITS
            .iter()
            .map(|c| fargate_memory_choices(*c).len())
            .sum();
        assert_eq!(total, 74);
    }

    #[test]
    fn pairs() {
        for (cpu, mem, ok) in [
            (256, 512, true),
            (256, 4096, false),
            (512, 3072, true),
            (1024, 8192, true),
            (1024, 9216, false),
            (4096, 30720, true),
            (8192, 20480, true),
            (8192, 17408, false),
            (16384, 122880, true),
            (128, 512, false),
        ] {
            assert_eq!(is_fargate_size(cpu, mem), ok, "{cpu}/{mem}");
        }
    }
}
