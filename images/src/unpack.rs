//! Safe layer unpacking: a (gzip, zstd or plain) tar stream is applied to a fresh, empty layer
//! directory in the overlayfs format (whiteouts become 0/0 character devices, opaque directories
//! get `trusted.overlay.opaque=y`), hashing both the compressed and the uncompressed stream so the
//! caller can verify the blob digest and the diff-id before committing the directory.
//!
//! Safe by construction: every entry is created with `*at` calls relative to a directory fd opened
//! with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so no entry can create or write anything outside
//! the layer directory: `..`, absolute paths, writes through a symlink planted by an earlier entry,
//! and hardlinks to paths outside are refused with [`ImageError::HostileEntry`]. Device nodes are
//! refused (or skipped, by policy). The uncompressed size is capped against decompression bombs.

use crate::error::ImageError;
use crate::hashing::HashingReader;
use crate::safefs::{self, clean_path, refusal_for, split_leaf};
use crate::Digest;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What to do with device nodes in a layer (a container gets its devices from the runtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevicePolicy {
    /// Refuse the layer (default).
    Refuse,
    /// Leave the entry out.
    Skip,
}

/// Limits and policy for unpacking layers.
#[derive(Clone, Debug)]
pub struct UnpackOptions {
    /// Cap on one layer's uncompressed tar size; past it the layer is refused.
    pub max_layer_bytes: u64,
    /// Device node policy.
    pub devices: DevicePolicy,
    /// Apply the entries' owners (needs root; off only in unprivileged unit tests).
    pub keep_owners: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        Self {
            // Fargate gives a task 20 GiB of ephemeral storage: no single layer can be larger.
            max_layer_bytes: 20 << 30,
            devices: DevicePolicy::Refuse,
            keep_owners: true,
        }
    }
}

/// What unpacking measured: the digests to verify before commit.
#[derive(Debug)]
pub(crate) struct Unpacked {
    /// sha256 of the (compressed) blob as read.
    pub blob: Digest,
    /// Bytes of the blob.
    pub blob_bytes: u64,
    /// sha256 of the uncompressed tar (the diff-id).
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar.
    pub tar_bytes: u64,
    /// Directories this layer needed but did not contain (checked against lower layers).
    pub implicit_dirs: Vec<String>,
}

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Unpack the layer stream `src` into the empty directory `dest`. `layer` names the layer in
/// errors. Reads `src` to its end so the blob digest covers every byte.
pub(crate) fn unpack_layer(
    src: impl Read,
    dest: &Path,
    layer: &str,
    opts: &UnpackOptions,
) -> Result<Unpacked, ImageError> {
    unpack_layer_verified(src, dest, layer, None, opts)
}

/// As [`unpack_layer`]; when the stream is malformed (not hostile: undecodable), the rest of the
/// blob is read and, if its digest is not `expected_blob`, the error says so: a corrupt blob is
/// reported as a digest mismatch, not as whatever the decompressor tripped over.
pub(crate) fn unpack_layer_verified(
    src: impl Read,
    dest: &Path,
    layer: &str,
    expected_blob: Option<&Digest>,
    opts: &UnpackOptions,
) -> Result<Unpacked, ImageError> {
    let root =
        safefs::open_dir(dest).map_err(crate::error::fs_err("open layer directory", dest))?;
    let unpack_err = |step: &str| {
        let step = step.to_string();
        let layer = layer.to_string();
        move |source| ImageError::Unpack {
            layer,
            step,
            source,
        }
    };
    let mut raw = HashingReader::new(src, None);
    let applied = (|| {
        let mut buffered = BufReader::with_capacity(256 * 1024, &mut raw);
        let magic = buffered.fill_buf().map_err(unpack_err("read layer"))?;
        let decoder: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered)
                    .map_err(unpack_err("start zstd decoder"))?,
            )
        } else {
            Box::new(buffered)
        };
        let mut tar_stream = HashingReader::new(decoder, Some(opts.max_layer_bytes));
        let mut applier = Applier::new(root, layer, opts);
        let applied = applier.apply_all(&mut tar_stream);
        let drained = applied.and_then(|()| {
            tar_stream
                .drain()
                .map_err(unpack_err("read past the end of the tar"))
        });
        if tar_stream.exceeded() {
            return Err(ImageError::LayerTooLarge {
                layer: layer.to_string(),
                cap_bytes: opts.max_layer_bytes,
            });
        }
        drained?;
        applier.finish()?;
        let (diff_id, tar_bytes) = tar_stream.finish();
        Ok((diff_id, tar_bytes, applier.implicit_dirs()))
    })();
    let (diff_id, tar_bytes, implicit_dirs) = match applied {
        Ok(v) => v,
        Err(e @ ImageError::Unpack { .. }) => {
            let Some(expected) = expected_blob else {
                return Err(e);
            };
            if raw.drain().is_err() {
                return Err(e);
            }
            let (actual, _) = raw.finish();
            if &actual != expected {
                return Err(ImageError::DigestMismatch {
                    what: "layer",
                    expected: expected.clone(),
                    actual,
                });
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    raw.drain()
        .map_err(unpack_err("read to the end of the blob"))?;
    let (blob, blob_bytes) = raw.finish();
    Ok(Unpacked {
        blob,
        blob_bytes,
        diff_id,
        tar_bytes,
        implicit_dirs,
    })
}

/// Applies tar entries below one directory fd.
struct Applier<'a> {
    root: OwnedFd,
    layer: &'a str,
    opts: &'a UnpackOptions,
    /// Directory mtimes are set last: creating children changes them.
    dir_times: Vec<(PathBuf, u64)>,
    implicit: Vec<PathBuf>,
    explicit: HashSet<PathBuf>,
    buf: Vec<u8>,
}

impl<'a> Applier<'a> {
    fn new(root: OwnedFd, layer: &'a str, opts: &'a UnpackOptions) -> Self {
        Self {
            root,
            layer,
            opts,
            dir_times: Vec::new(),
            implicit: Vec::new(),
            explicit: HashSet::new(),
            buf: vec![0u8; 256 * 1024],
        }
    }

    fn hostile(&self, entry: &Path, reason: impl Into<String>) -> ImageError {
        ImageError::HostileEntry {
            layer: self.layer.to_string(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    fn io(&self, step: String) -> impl FnOnce(io::Error) -> ImageError + '_ {
        move |source| ImageError::Unpack {
            layer: self.layer.to_string(),
            step,
            source,
        }
    }

    fn errno(&self, step: String) -> impl FnOnce(Errno) -> ImageError + '_ {
        move |e| ImageError::Unpack {
            layer: self.layer.to_string(),
            step,
            source: e.into(),
        }
    }

    fn apply_all(&mut self, stream: &mut impl Read) -> Result<(), ImageError> {
        let mut archive = tar::Archive::new(stream);
        let entries = archive
            .entries()
            .map_err(self.io("read tar header".to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(self.io("read tar entry".to_string()))?;
            self.apply(&mut entry)?;
        }
        Ok(())
    }

    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw_path = entry
            .path()
            .map_err(self.io("read entry path".to_string()))?
            .into_owned();
        let path = clean_path(&raw_path).map_err(|r| self.hostile(&raw_path, r.reason()))?;
        let kind = entry.header().entry_type();
        if path.as_os_str().is_empty() {
            return Ok(()); // the layer root itself: its metadata is ours, not the layer's
        }
        let (parent_path, name) = split_leaf(&path);
        let name_bytes = name.as_bytes();
        if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            let parent = self.parent_dir(parent_path, &raw_path)?;
            return self.whiteout(&parent, name, &path, &raw_path);
        }
        let parent = self.parent_dir(parent_path, &raw_path)?;
        let meta = Meta::of(entry, &path)
            .map_err(self.io(format!("read metadata of {}", path.display())))?;
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => {
                self.clear_leaf(&parent, name, &path, false)?;
                self.regular(&parent, name, &path, entry, &meta)
            }
            T::Directory => {
                self.explicit.insert(path.clone());
                self.directory(&parent, name, &path, &meta)
            }
            T::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(self.io(format!("read symlink target of {}", path.display())))?
                    .ok_or_else(|| self.hostile(&raw_path, "symlink without a target"))?
                    .into_owned();
                self.clear_leaf(&parent, name, &path, false)?;
                self.symlink(&parent, name, &path, &target, &meta)
            }
            T::Link => {
                let target = entry
                    .link_name()
                    .map_err(self.io(format!("read hardlink target of {}", path.display())))?
                    .ok_or_else(|| self.hostile(&raw_path, "hardlink without a target"))?
                    .into_owned();
                self.clear_leaf(&parent, name, &path, false)?;
                self.hardlink(&parent, name, &path, &target, &raw_path)
            }
            T::Fifo => {
                self.clear_leaf(&parent, name, &path, false)?;
                rustix::fs::mknodat(&parent, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(self.errno(format!("create fifo {}", path.display())))?;
                self.meta_at(&parent, name, &path, &meta)
            }
            T::Char | T::Block => match self.opts.devices {
                DevicePolicy::Refuse => {
                    Err(self.hostile(&raw_path, "device node refused by policy"))
                }
                DevicePolicy::Skip => {
                    tracing::debug!(layer = self.layer, entry = %path.display(), "device node skipped");
                    Ok(())
                }
            },
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => Ok(()),
            other => Err(self.hostile(&raw_path, format!("unsupported entry type {other:?}"))),
        }
    }

    /// Open (creating missing directories) the parent of an entry, never through a symlink.
    fn parent_dir(&mut self, parent: &Path, raw: &Path) -> Result<OwnedFd, ImageError> {
        match safefs::open_dir_beneath(&self.root, parent) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(match refusal_for(e) {
                    Some(reason) => self.hostile(raw, reason),
                    None => self.errno(format!("open {}", parent.display()))(e),
                })
            }
        }
        let mut cur = safefs::open_dir_beneath(&self.root, Path::new(""))
            .map_err(self.errno("open layer root".to_string()))?;
        let mut so_far = PathBuf::new();
        for comp in parent.iter() {
            so_far.push(comp);
            let next = match safefs::open_dir_beneath(&cur, Path::new(comp)) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    rustix::fs::mkdirat(&cur, comp, Mode::from_raw_mode(0o755))
                        .map_err(self.errno(format!("create directory {}", so_far.display())))?;
                    self.implicit.push(so_far.clone());
                    safefs::open_dir_beneath(&cur, Path::new(comp))
                        .map_err(self.errno(format!("open {}", so_far.display())))?
                }
                Err(e) => {
                    return Err(match refusal_for(e) {
                        Some(reason) => self.hostile(raw, reason),
                        None => self.errno(format!("open {}", so_far.display()))(e),
                    })
                }
            };
            cur = next;
        }
        Ok(cur)
    }

    /// Remove what is at `name` so a new entry can take its place (a later entry wins). A
    /// directory is kept when the new entry is a directory too.
    fn clear_leaf(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &Path,
        keep_dir: bool,
    ) -> Result<(), ImageError> {
        let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.errno(format!("stat {}", path.display()))(e)),
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(());
        }
        let flags = if is_dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        rustix::fs::unlinkat(parent, name, flags)
            .map_err(self.errno(format!("replace {}", path.display())))
    }

    fn regular<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &Path,
        entry: &mut tar::Entry<'_, R>,
        meta: &Meta,
    ) -> Result<(), ImageError> {
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(self.errno(format!("create {}", path.display())))?;
        let mut file = File::from(fd);
        loop {
            let n = entry
                .read(&mut self.buf)
                .map_err(self.io(format!("read data of {}", path.display())))?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n])
                .map_err(self.io(format!("write {}", path.display())))?;
        }
        self.meta_fd(file.as_fd(), path, meta, true)
    }

    fn directory(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &Path,
        meta: &Meta,
    ) -> Result<(), ImageError> {
        self.clear_leaf(parent, name, path, true)?;
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                return Err(self.errno(format!("create directory {}", path.display()))(
                    e,
                ))
            }
        }
        let fd = safefs::open_dir_beneath(parent, Path::new(name))
            .map_err(self.errno(format!("open directory {}", path.display())))?;
        self.meta_fd(fd.as_fd(), path, meta, false)?;
        self.dir_times.push((path.to_path_buf(), meta.mtime));
        Ok(())
    }

    fn symlink(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &Path,
        target: &Path,
        meta: &Meta,
    ) -> Result<(), ImageError> {
        // The target is only data: it is never followed while unpacking.
        rustix::fs::symlinkat(target, parent, name)
            .map_err(self.errno(format!("create symlink {}", path.display())))?;
        if self.opts.keep_owners {
            rustix::fs::chownat(
                parent,
                name,
                Some(meta.uid),
                Some(meta.gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(self.errno(format!("chown {}", path.display())))?;
        }
        rustix::fs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(self.errno(format!("set mtime of {}", path.display())))
    }

    fn hardlink(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &Path,
        target: &Path,
        raw: &Path,
    ) -> Result<(), ImageError> {
        let target = clean_path(target)
            .map_err(|r| self.hostile(raw, format!("hardlink target: {}", r.reason())))?;
        if target.as_os_str().is_empty() {
            return Err(self.hostile(raw, "hardlink to the layer root"));
        }
        let (tparent_path, tname) = split_leaf(&target);
        let tparent = match safefs::open_dir_beneath(&self.root, tparent_path) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                return Err(self.hostile(raw, "hardlink target is not in this layer"))
            }
            Err(e) => {
                return Err(match refusal_for(e) {
                    Some(reason) => self.hostile(raw, format!("hardlink target: {reason}")),
                    None => self.errno(format!("open {}", tparent_path.display()))(e),
                })
            }
        };
        match rustix::fs::linkat(&tparent, tname, parent, name, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::NOENT) => Err(self.hostile(raw, "hardlink target is not in this layer")),
            Err(Errno::PERM) => Err(self.hostile(raw, "hardlink target is a directory")),
            Err(e) => Err(self.errno(format!(
                "link {} to {}",
                path.display(),
                target.display()
            ))(e)),
        }
    }

    fn whiteout(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &Path,
        raw: &Path,
    ) -> Result<(), ImageError> {
        let bytes = name.as_bytes();
        if bytes == OPAQUE_MARKER.as_bytes() {
            return rustix::fs::fsetxattr(parent, OPAQUE_XATTR, b"y", XattrFlags::empty()).map_err(
                self.errno(format!(
                    "mark {} opaque",
                    path.parent().unwrap_or(path).display()
                )),
            );
        }
        let victim = &bytes[WHITEOUT_PREFIX.len()..];
        if victim.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Ok(()); // other AUFS metadata (.wh..wh.plnk …): not content
        }
        if victim.is_empty() || victim == b"." || victim == b".." {
            return Err(self.hostile(raw, "whiteout without a valid name"));
        }
        let victim = OsStr::from_bytes(victim);
        let victim_path = path.with_file_name(victim);
        self.clear_leaf(parent, victim, &victim_path, false)?;
        rustix::fs::mknodat(parent, victim, FileType::CharacterDevice, Mode::empty(), 0)
            .map_err(self.errno(format!("create whiteout for {}", victim_path.display())))
    }

    /// Owner, mode, xattrs and (for non-directories) mtime through an open fd.
    fn meta_fd(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        path: &Path,
        meta: &Meta,
        set_time: bool,
    ) -> Result<(), ImageError> {
        if self.opts.keep_owners {
            rustix::fs::fchown(fd, Some(meta.uid), Some(meta.gid))
                .map_err(self.errno(format!("chown {}", path.display())))?;
        }
        // After chown: chown clears set-id bits.
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))
            .map_err(self.errno(format!("chmod {}", path.display())))?;
        for (key, value) in &meta.xattrs {
            rustix::fs::fsetxattr(fd, key.as_str(), value, XattrFlags::empty())
                .map_err(self.errno(format!("set xattr {key} on {}", path.display())))?;
        }
        if set_time {
            rustix::fs::futimens(fd, &meta.times())
                .map_err(self.errno(format!("set mtime of {}", path.display())))?;
        }
        Ok(())
    }

    /// Owner, mode and mtime by name (fifos, which cannot be opened without blocking).
    fn meta_at(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &Path,
        meta: &Meta,
    ) -> Result<(), ImageError> {
        if self.opts.keep_owners {
            rustix::fs::chownat(
                parent,
                name,
                Some(meta.uid),
                Some(meta.gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(self.errno(format!("chown {}", path.display())))?;
        }
        rustix::fs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .map_err(self.errno(format!("chmod {}", path.display())))?;
        rustix::fs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(self.errno(format!("set mtime of {}", path.display())))
    }

    /// Set directory mtimes, deepest first, now that their contents are complete.
    fn finish(&self) -> Result<(), ImageError> {
        for (path, mtime) in self.dir_times.iter().rev() {
            let fd = safefs::open_dir_beneath(&self.root, path)
                .map_err(self.errno(format!("open directory {}", path.display())))?;
            rustix::fs::futimens(&fd, &times(*mtime))
                .map_err(self.errno(format!("set mtime of {}", path.display())))?;
        }
        Ok(())
    }

    fn implicit_dirs(&self) -> Vec<String> {
        self.implicit
            .iter()
            .filter(|p| !self.explicit.contains(*p))
            .map(|p| p.display().to_string())
            .collect()
    }
}

/// The metadata of one entry that is applied to what it creates.
struct Meta {
    uid: rustix::fs::Uid,
    gid: rustix::fs::Gid,
    mode: u32,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn of<R: Read>(entry: &mut tar::Entry<'_, R>, path: &Path) -> io::Result<Self> {
        let h = entry.header();
        let uid = u32::try_from(h.uid()?).map_err(|_| io::Error::other("uid out of range"))?;
        let gid = u32::try_from(h.gid()?).map_err(|_| io::Error::other("gid out of range"))?;
        let mode = h.mode()? & 0o7777;
        let mtime = h.mtime()?;
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                    continue;
                };
                // Only what a container may legitimately carry: never trusted.overlay.* (it would
                // steer overlayfs), nor other trusted/security attributes.
                if name.starts_with("user.") || name == "security.capability" {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                } else {
                    tracing::debug!(entry = %path.display(), xattr = name, "xattr skipped");
                }
            }
        }
        Ok(Self {
            uid: rustix::fs::Uid::from_raw(uid),
            gid: rustix::fs::Gid::from_raw(gid),
            mode,
            mtime,
            xattrs,
        })
    }

    fn times(&self) -> Timestamps {
        times(self.mtime)
    }
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A tar entry written with raw header bytes, so tests can build what the tar crate's
    /// safe setters refuse (`..`, absolute paths, hostile link targets).
    pub(crate) fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        path: &str,
        kind: tar::EntryType,
        link: &str,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_ustar();
        {
            let u = h.as_ustar_mut().unwrap();
            u.name[..path.len()].copy_from_slice(path.as_bytes());
            u.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn opts() -> UnpackOptions {
        UnpackOptions {
            keep_owners: false,
            ..Default::default()
        }
    }

    fn unpack(
        tar: Vec<u8>,
        o: &UnpackOptions,
    ) -> (tempfile::TempDir, Result<Unpacked, ImageError>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("layer")).unwrap();
        let r = unpack_layer(&tar[..], &d.path().join("layer"), "sha256:test", o);
        (d, r)
    }

    fn build(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        f(&mut b);
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_files_links_modes_and_times() {
        use tar::EntryType as T;
        let tar = build(|b| {
            raw_entry(b, "etc/", T::Directory, "", b"");
            raw_entry(b, "etc/hello", T::Regular, "", b"hi\n");
            raw_entry(b, "etc/link", T::Symlink, "/etc/hello", b"");
            raw_entry(b, "etc/hard", T::Link, "etc/hello", b"");
            raw_entry(b, "deep/er/file", T::Regular, "", b"x");
        });
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let (d, r) = unpack(gz.clone(), &opts());
        let u = r.unwrap();
        assert_eq!(u.diff_id, Digest::of(&tar));
        assert_eq!(u.blob, Digest::of(&gz));
        assert_eq!(u.implicit_dirs, ["deep", "deep/er"]);
        let l = d.path().join("layer");
        assert_eq!(
            std::fs::read_to_string(l.join("etc/hello")).unwrap(),
            "hi\n"
        );
        assert_eq!(
            std::fs::read_link(l.join("etc/link")).unwrap(),
            Path::new("/etc/hello")
        );
        let m = std::fs::metadata(l.join("etc/hello")).unwrap();
        assert_eq!(
            (m.nlink(), m.mode() & 0o7777, m.mtime()),
            (2, 0o644, 1_700_000_000)
        );
        assert_eq!(
            std::fs::metadata(l.join("etc")).unwrap().mtime(),
            1_700_000_000
        );
    }

    #[test]
    fn zstd_layers_unpack() {
        let tar = build(|b| raw_entry(b, "z", tar::EntryType::Regular, "", b"zstd"));
        let z = zstd::encode_all(&tar[..], 3).unwrap();
        let (d, r) = unpack(z, &opts());
        assert_eq!(r.unwrap().diff_id, Digest::of(&tar));
        assert_eq!(std::fs::read(d.path().join("layer/z")).unwrap(), b"zstd");
    }

    fn refused(f: impl FnOnce(&mut tar::Builder<Vec<u8>>), want: &str) -> tempfile::TempDir {
        let (d, r) = unpack(build(f), &opts());
        let e = r.unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        d
    }

    #[test]
    fn hostile_entries_are_refused_and_write_nothing_outside() {
        use tar::EntryType as T;
        let d = refused(|b| raw_entry(b, "../escape", T::Regular, "", b"x"), "'..'");
        assert!(!d.path().join("escape").exists());
        refused(
            |b| raw_entry(b, "/abs-escape", T::Regular, "", b"x"),
            "absolute path",
        );
        let d = refused(
            |b| {
                raw_entry(b, "up", T::Symlink, "..", b"");
                raw_entry(b, "up/through", T::Regular, "", b"x");
            },
            "goes through a symlink",
        );
        assert!(!d.path().join("through").exists());
        refused(
            |b| {
                raw_entry(b, "root", T::Symlink, "/", b"");
                raw_entry(b, "root/tmp/bt-unit-escape", T::Regular, "", b"x");
            },
            "goes through a symlink",
        );
        assert!(!Path::new("/tmp/bt-unit-escape").exists());
        refused(
            |b| raw_entry(b, "h", T::Link, "../outside", b""),
            "hardlink target",
        );
        refused(
            |b| raw_entry(b, "h", T::Link, "/etc/passwd", b""),
            "hardlink target",
        );
        refused(|b| raw_entry(b, "dev", T::Char, "", b""), "device node");
        refused(|b| raw_entry(b, "blk", T::Block, "", b""), "device node");
    }

    #[test]
    fn devices_can_be_skipped_by_policy() {
        let tar = build(|b| raw_entry(b, "dev", tar::EntryType::Char, "", b""));
        let o = UnpackOptions {
            devices: DevicePolicy::Skip,
            ..opts()
        };
        let (d, r) = unpack(tar, &o);
        r.unwrap();
        assert!(!d.path().join("layer/dev").exists());
    }

    #[test]
    fn a_decompression_bomb_hits_the_cap() {
        let tar =
            build(|b| raw_entry(b, "zeros", tar::EntryType::Regular, "", &vec![0u8; 4 << 20]));
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&tar).unwrap();
        let gz = e.finish().unwrap();
        let o = UnpackOptions {
            max_layer_bytes: 1 << 20,
            ..opts()
        };
        let (_d, r) = unpack(gz, &o);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("exceeds the cap of 1048576 bytes"), "{e}");
    }
}
