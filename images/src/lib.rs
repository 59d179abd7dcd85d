//! Registry pulls, a content-addressed store, safe unpacking and copy-on-write rootfs (issue 4).
