//! The five capability sets of the container process, through the `caps` crate.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// The sets to apply, converted from the spec once.
#[derive(Debug, Clone, Default)]
pub struct CapPlan {
    /// Bounding set.
    pub bounding: CapsHashSet,
    /// Effective set.
    pub effective: CapsHashSet,
    /// Permitted set.
    pub permitted: CapsHashSet,
    /// Inheritable set.
    pub inheritable: CapsHashSet,
    /// Ambient set.
    pub ambient: CapsHashSet,
}

fn convert(set: &Option<Capabilities>, field: &str) -> Result<CapsHashSet, String> {
    set.iter()
        .flatten()
        .map(|c| {
            let name = serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            name.parse::<Capability>()
                .map_err(|_| format!("{field}: unknown capability {name}"))
        })
        .collect()
}

/// Convert the spec's sets (a missing set is empty, as in runc).
pub fn plan(c: &LinuxCapabilities) -> Result<CapPlan, String> {
    Ok(CapPlan {
        bounding: convert(c.bounding(), "process.capabilities.bounding")?,
        effective: convert(c.effective(), "process.capabilities.effective")?,
        permitted: convert(c.permitted(), "process.capabilities.permitted")?,
        inheritable: convert(c.inheritable(), "process.capabilities.inheritable")?,
        ambient: convert(c.ambient(), "process.capabilities.ambient")?,
    })
}

/// Drop everything outside the bounding set. Must run while the process still has
/// CAP_SETPCAP, i.e. before the user change.
pub fn drop_bounding(p: &CapPlan) -> Result<(), String> {
    for cap in caps::all() {
        if !p.bounding.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
        {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| format!("drop {cap} from the bounding set: {e}"))?;
        }
    }
    Ok(())
}

/// Set inheritable, effective, permitted, then raise the ambient ones (after the user change).
pub fn apply(p: &CapPlan) -> Result<(), String> {
    // Each capset must keep effective within permitted: shrink inheritable and effective
    // first, then permitted.
    caps::set(None, CapSet::Inheritable, &p.inheritable)
        .map_err(|e| format!("set inheritable capabilities: {e}"))?;
    caps::set(None, CapSet::Effective, &p.effective)
        .map_err(|e| format!("set effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &p.permitted)
        .map_err(|e| format!("set permitted capabilities: {e}"))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clear ambient capabilities: {e}"))?;
    for cap in &p.ambient {
        // the kernel refuses ambient caps that are not both permitted and inheritable; runc skips them
        if p.permitted.contains(cap) && p.inheritable.contains(cap) {
            caps::raise(None, CapSet::Ambient, *cap)
                .map_err(|e| format!("raise ambient {cap}: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_and_unknown_sets_are_empty() {
        let c: LinuxCapabilities = serde_json::from_str(
            r#"{"bounding":["CAP_CHOWN","CAP_NET_RAW"],"effective":["CAP_CHOWN"]}"#,
        )
        .unwrap();
        let p = plan(&c).unwrap();
        assert_eq!(p.bounding.len(), 2);
        assert!(p.effective.contains(&Capability::CAP_CHOWN));
        assert!(p.ambient.is_empty());
    }
}
