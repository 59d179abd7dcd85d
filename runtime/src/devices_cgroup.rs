//! The device rules a container's cgroup gets: deny all, the spec's rules, runc's default
//! allowed devices (from berth-cgroups), and an allow rule for every `linux.devices` entry, so
//! that a spec that denies everything still has a working /dev and the devices it lists.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};

fn allow(d: &oci_spec::runtime::LinuxDevice) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(if d.typ() == LinuxDeviceType::U {
        LinuxDeviceType::C
    } else {
        d.typ()
    }));
    r.set_major(Some(d.major()));
    r.set_minor(Some(d.minor()));
    r.set_access(Some("rwm".to_string()));
    r
}

/// The resources to apply for `spec`: its own, with the device rules completed.
pub fn effective_resources(spec: &Spec) -> Option<LinuxResources> {
    let linux = spec.linux().as_ref()?;
    let mut res = linux.resources().clone().unwrap_or_default();
    let mut rules =
        berth_cgroups::devices::with_default_devices(&res.devices().clone().unwrap_or_default());
    rules.extend(linux.devices().iter().flatten().map(allow));
    res.set_devices(Some(rules));
    Some(res)
}
