//! Container logs on disk: what the per-container shim writes and `berth logs` reads.
//!
//! Each line a container writes to stdout or stderr becomes one record in the CRI log format
//! that containerd and CRI-O use: `2026-11-28T02:58:01.123456789Z stdout F hello`. The tag is
//! `F` for a full line and `P` for a part of a longer one (a line over [`MAX_LINE_BYTES`], or
//! the unterminated tail the stream ended with); a reader joins `P` parts up to the next `F`.
//! Files rotate by size: `output.log` is the live one, `output.log.1` the previous, up to
//! `max_files` files in all, each at most `max_bytes` long.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The live log file in a container's bundle; rotated ones are `output.log.1`, ….
pub const LIVE_LOG: &str = "output.log";

/// The longest content of one record; longer lines are split into `P` parts (as Docker's
/// 16 KiB).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Room for the timestamp, stream and tag of one record.
const RECORD_OVERHEAD: usize = 64;
/// The smallest file cap accepted (one record of [`MAX_LINE_BYTES`] must fit).
pub const MIN_MAX_BYTES: u64 = (MAX_LINE_BYTES + RECORD_OVERHEAD) as u64;

/// How much log one container keeps: recorded per task, so a task keeps the limits it was
/// started with across agent restarts and config changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimits {
    /// The most one file holds, bytes.
    pub max_bytes: u64,
    /// How many files are kept, the live one included.
    pub max_files: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_files: 3,
        }
    }
}

impl LogLimits {
    /// Check the limits a config names; the message names the key.
    pub fn validate(self) -> Result<Self, String> {
        if self.max_bytes < MIN_MAX_BYTES {
            return Err(format!(
                "log_max_bytes {} is below {MIN_MAX_BYTES} (one 16 KiB line must fit)",
                self.max_bytes
            ));
        }
        if self.max_files == 0 || self.max_files > 100 {
            return Err(format!(
                "log_max_files {} is not between 1 and 100",
                self.max_files
            ));
        }
        Ok(self)
    }
}

/// Which output a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// fd 1.
    Stdout,
    /// fd 2.
    Stderr,
}

impl Stream {
    /// The name in a record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// `time` as RFC 3339 in UTC with nanoseconds: `2026-11-28T02:58:01.123456789Z`.
pub fn rfc3339_nanos(time: SystemTime) -> String {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// One record as bytes.
pub fn format_record(time: &str, stream: Stream, is_partial: bool, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + RECORD_OVERHEAD);
    out.extend_from_slice(time.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if is_partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
    out
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// RFC 3339 timestamp.
    pub time: &'a str,
    /// Which stream.
    pub stream: Stream,
    /// A part of a longer line.
    pub is_partial: bool,
    /// The text (without the newline).
    pub content: &'a str,
}

/// Parse one line of a log file; a line in another format (a log written before records
/// existed) reads as a full stdout line with no time.
pub fn parse_record(line: &str) -> Record<'_> {
    let raw = Record {
        time: "",
        stream: Stream::Stdout,
        is_partial: false,
        content: line,
    };
    let mut parts = line.splitn(4, ' ');
    let (Some(time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return raw;
    };
    let stream = match stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return raw,
    };
    let is_partial = match tag {
        "P" => true,
        "F" => false,
        _ => return raw,
    };
    if !time.ends_with('Z') || time.len() < 20 || !time.as_bytes()[0].is_ascii_digit() {
        return raw;
    }
    Record {
        time,
        stream,
        is_partial,
        content: parts.next().unwrap_or(""),
    }
}

/// Cuts a byte stream into lines of at most [`MAX_LINE_BYTES`]: `(is_partial, content)`.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feed what a read returned; the complete records it makes.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let room = MAX_LINE_BYTES - self.pending.len();
            // The newline itself takes no room: a line of exactly the maximum is one record.
            match data.iter().take(room + 1).position(|b| *b == b'\n') {
                Some(i) => {
                    self.pending.extend_from_slice(&data[..i]);
                    out.push((false, std::mem::take(&mut self.pending)));
                    data = &data[i + 1..];
                }
                None if data.len() >= room => {
                    self.pending.extend_from_slice(&data[..room]);
                    out.push((true, std::mem::take(&mut self.pending)));
                    data = &data[room..];
                }
                None => {
                    self.pending.extend_from_slice(data);
                    data = &[];
                }
            }
        }
        out
    }

    /// The stream ended: the unterminated tail, as a part.
    pub fn finish(&mut self) -> Option<(bool, Vec<u8>)> {
        (!self.pending.is_empty()).then(|| (true, std::mem::take(&mut self.pending)))
    }
}

/// The files of one log, oldest first: `base.N`, …, `base.1`, `base`.
pub fn log_files(dir: &Path, base: &str) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(base)?.strip_prefix('.')?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let live = dir.join(base);
    if live.is_file() {
        files.push(live);
    }
    files
}

/// Appends records to `dir/base`, rotating before a record would take it over `max_bytes`.
pub struct RotatingWriter {
    dir: PathBuf,
    base: String,
    limits: LogLimits,
    file: File,
    size: u64,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl RotatingWriter {
    /// Open (or continue) `dir/base`.
    pub fn open(dir: &Path, base: &str, limits: LogLimits) -> std::io::Result<Self> {
        let file = open_append(&dir.join(base))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_owned(),
            base: base.to_owned(),
            limits,
            file,
            size,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{}.{n}", self.base))
    }

    /// `base` becomes `base.1`, `base.1` becomes `base.2`, …; the oldest beyond `max_files`
    /// goes.
    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.limits.max_files.saturating_sub(1);
        let gone = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        gone(std::fs::remove_file(self.rotated(keep.max(1))))?;
        if keep == 0 {
            gone(std::fs::remove_file(self.dir.join(&self.base)))?;
        } else {
            for n in (1..keep).rev() {
                gone(std::fs::rename(self.rotated(n), self.rotated(n + 1)))?;
            }
            std::fs::rename(self.dir.join(&self.base), self.rotated(1))?;
        }
        self.file = open_append(&self.dir.join(&self.base))?;
        self.size = 0;
        Ok(())
    }

    /// Append one record (from [`format_record`]).
    pub fn write_record(&mut self, record: &[u8]) -> std::io::Result<()> {
        let len = record.len() as u64;
        if self.size > 0 && self.size + len > self.limits.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(record)?;
        self.size += len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_795_834_681, 5);
        assert_eq!(rfc3339_nanos(t), "2026-11-28T02:58:01.000000005Z");
        assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let leap = UNIX_EPOCH + Duration::new(951_782_400, 123_456_789);
        assert_eq!(rfc3339_nanos(leap), "2000-02-29T00:00:00.123456789Z");
    }

    #[test]
    fn records_round_trip() {
        let r = format_record(
            "2026-11-28T02:58:01.000000005Z",
            Stream::Stderr,
            true,
            b"a b",
        );
        let line = std::str::from_utf8(&r).unwrap();
        assert_eq!(line, "2026-11-28T02:58:01.000000005Z stderr P a b\n");
        assert_eq!(
            parse_record(line.trim_end_matches('\n')),
            Record {
                time: "2026-11-28T02:58:01.000000005Z",
                stream: Stream::Stderr,
                is_partial: true,
                content: "a b"
            }
        );
        let empty = parse_record("2026-11-28T02:58:01.000000005Z stdout F ");
        assert_eq!((empty.content, empty.is_partial), ("", false));
        let old = parse_record("hello-from-web");
        assert_eq!((old.time, old.content), ("", "hello-from-web"));
        assert_eq!(parse_record("hello stdout F x").content, "hello stdout F x");
    }

    #[test]
    fn partial_lines_wait_for_their_end() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"hel"), vec![]);
        assert_eq!(
            s.push(b"lo\nwor"),
            vec![(false, b"hello".to_vec())],
            "completed across two reads"
        );
        assert_eq!(
            s.push(b"ld\n\n"),
            vec![(false, b"world".to_vec()), (false, Vec::new())]
        );
        assert_eq!(s.push(b"tail"), vec![]);
        assert_eq!(s.finish(), Some((true, b"tail".to_vec())));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn long_lines_are_cut_into_parts() {
        let mut s = LineSplitter::default();
        let mut line = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        line.push(b'\n');
        let out = s.push(&line);
        assert_eq!(out.len(), 3);
        assert_eq!((out[0].0, out[0].1.len()), (true, MAX_LINE_BYTES));
        assert_eq!((out[1].0, out[1].1.len()), (true, MAX_LINE_BYTES));
        assert_eq!((out[2].0, out[2].1.len()), (false, 10));
        // Exactly the maximum, then its newline in the next read: one full record.
        let mut s = LineSplitter::default();
        assert_eq!(s.push(&vec![b'y'; MAX_LINE_BYTES - 1]), vec![]);
        let out = s.push(b"y\n");
        assert_eq!(out, vec![(false, vec![b'y'; MAX_LINE_BYTES])]);
    }

    fn sizes(dir: &Path) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rotation_keeps_at_most_max_files_each_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let limits = LogLimits {
            max_bytes: 100,
            max_files: 3,
        };
        let mut w = RotatingWriter::open(dir.path(), "output.log", limits).unwrap();
        for i in 0..20 {
            let r = format_record(
                "T",
                Stream::Stdout,
                false,
                format!("line {i:02}").as_bytes(),
            );
            assert_eq!(r.len(), 19);
            w.write_record(&r).unwrap();
        }
        // 5 records of 19 bytes fit in 100: 20 records made 4 files, the oldest went.
        let s = sizes(dir.path());
        assert_eq!(
            s,
            vec![
                ("output.log".into(), 95),
                ("output.log.1".into(), 95),
                ("output.log.2".into(), 95)
            ]
        );
        let files = log_files(dir.path(), "output.log");
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["output.log.2", "output.log.1", "output.log"]);
        let oldest = std::fs::read_to_string(&files[0]).unwrap();
        assert!(oldest.starts_with("T stdout F line 05\n"), "{oldest}");
        let live = std::fs::read_to_string(&files[2]).unwrap();
        assert!(live.ends_with("T stdout F line 19\n"), "{live}");
        // A reopened writer continues the live file and its size.
        let mut w = RotatingWriter::open(dir.path(), "output.log", limits).unwrap();
        w.write_record(&format_record("T", Stream::Stdout, false, b"line 20"))
            .unwrap();
        assert_eq!(sizes(dir.path())[0], ("output.log".into(), 19));
    }

    #[test]
    fn one_file_means_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let limits = LogLimits {
            max_bytes: 40,
            max_files: 1,
        };
        let mut w = RotatingWriter::open(dir.path(), "o", limits).unwrap();
        for _ in 0..5 {
            w.write_record(&format_record("T", Stream::Stdout, false, b"1234567890"))
                .unwrap();
        }
        assert_eq!(sizes(dir.path()), vec![("o".into(), 22)]);
    }

    #[test]
    fn limits_are_checked() {
        assert!(LogLimits::default().validate().is_ok());
        let e = LogLimits {
            max_bytes: 100,
            max_files: 3,
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("log_max_bytes 100"), "{e}");
        let e = LogLimits {
            max_bytes: MIN_MAX_BYTES,
            max_files: 0,
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("log_max_files 0"), "{e}");
    }
}
