//! `berth logs TASK [CONTAINER] [-f] [--timestamps] [--tail N]`: what a task's containers
//! wrote to stdout and stderr, read from the state root (so it works while the agent is down).
//! A running container's log is `<root>/tasks/<task>/<container>/output.log[.N]` (written by
//! its shim, see [`crate::logs`]); once the task stopped it is kept as
//! `<root>/logs/<task>/<container>.log[.N]`. Lines go to stdout or stderr as the container
//! wrote them; with several containers each line is prefixed by the container's name.

use super::{CliError, Ctx};
use crate::logs::{log_files, parse_record, Stream, LIVE_LOG};
use clap::Args;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `berth logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Task id or ARN.
    pub task: String,
    /// Only this container (all of them, prefixed by name, when absent).
    pub container: Option<String>,
    /// Keep printing new lines until the container (every container) has stopped.
    #[arg(short, long)]
    pub follow: bool,
    /// Show each line's time (RFC 3339 with nanoseconds).
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only the last N lines (of each container).
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,
}

/// One line as the container wrote it (parts of a long line joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// When the shim read it (its first part).
    pub time: String,
    /// stdout or stderr.
    pub stream: Stream,
    /// The text.
    pub text: String,
}

/// Turns log file bytes into [`Line`]s: carries an unterminated record across reads and `P`
/// parts until their `F`.
#[derive(Debug, Default)]
pub struct Assembler {
    carry: Vec<u8>,
    partial: Option<Line>,
}

impl Assembler {
    /// Feed bytes read from a log file; the lines they complete.
    pub fn push(&mut self, data: &[u8]) -> Vec<Line> {
        self.carry.extend_from_slice(data);
        let Some(end) = self.carry.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.carry.drain(..=end).collect();
        let mut out = Vec::new();
        for raw in String::from_utf8_lossy(&complete).lines() {
            let r = parse_record(raw);
            let line = match self.partial.take() {
                Some(mut p) if p.stream == r.stream => {
                    p.text.push_str(r.content);
                    p
                }
                other => {
                    // A part whose stream changed before its end: show what there was.
                    out.extend(other);
                    Line {
                        time: r.time.to_owned(),
                        stream: r.stream,
                        text: r.content.to_owned(),
                    }
                }
            };
            if r.is_partial {
                self.partial = Some(line);
            } else {
                out.push(line);
            }
        }
        out
    }

    /// The file ended for good: a last part without its end is shown as it is.
    pub fn finish(&mut self) -> Option<Line> {
        self.partial.take()
    }
}

/// Where one container's log lives: its directory and the live file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    name: String,
    dir: PathBuf,
    base: String,
    /// The bundle, while the task runs (follow watches it for the container's end).
    bundle: Option<PathBuf>,
}

fn task_id(task: &str) -> &str {
    task.rsplit('/').next().unwrap_or(task)
}

/// The containers with a log under `root`, by name.
fn containers(root: &Path, task: &str) -> Vec<String> {
    let live = std::fs::read_dir(root.join("tasks").join(task))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned());
    let kept = std::fs::read_dir(root.join("logs").join(task))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split_once(".log").map(|(c, _)| c.to_owned())
        });
    let mut names: Vec<String> = live.chain(kept).collect();
    names.sort();
    names.dedup();
    names
}

fn source(root: &Path, task: &str, name: &str) -> Source {
    let bundle = root.join("tasks").join(task).join(name);
    if !log_files(&bundle, LIVE_LOG).is_empty() {
        return Source {
            name: name.to_owned(),
            dir: bundle.clone(),
            base: LIVE_LOG.to_owned(),
            bundle: Some(bundle),
        };
    }
    Source {
        name: name.to_owned(),
        dir: root.join("logs").join(task),
        base: format!("{name}.log"),
        bundle: None,
    }
}

fn print(line: &Line, prefix: Option<&str>, timestamps: bool) {
    let mut text = String::new();
    if let Some(p) = prefix {
        text.push_str(p);
        text.push_str(" | ");
    }
    if timestamps && !line.time.is_empty() {
        text.push_str(&line.time);
        text.push(' ');
    }
    text.push_str(&line.text);
    text.push('\n');
    // A closed pipe (`berth logs | head`) ends the output quietly.
    let _ = match line.stream {
        Stream::Stdout => std::io::stdout().write_all(text.as_bytes()),
        Stream::Stderr => std::io::stderr().write_all(text.as_bytes()),
    };
}

/// A container's log being read: every file so far, then (when following) the live one as
/// it grows and rotates.
struct Reader {
    source: Source,
    live: Option<(File, u64)>,
    assembler: Assembler,
    is_done: bool,
}

fn open_with_inode(path: &Path) -> Option<(File, u64)> {
    let f = File::open(path).ok()?;
    let ino = f.metadata().ok()?.ino();
    Some((f, ino))
}

fn read_to_end(f: &mut File, assembler: &mut Assembler) -> Vec<Line> {
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    assembler.push(&buf)
}

impl Reader {
    /// Read everything there is; keep the live file open for [`Reader::poll`].
    fn open(source: Source) -> (Self, Vec<Line>) {
        let live_path = source.dir.join(&source.base);
        // The live file first: whatever rotates after this is still read through this handle.
        let mut live = open_with_inode(&live_path);
        let mut assembler = Assembler::default();
        let mut lines = Vec::new();
        for file in log_files(&source.dir, &source.base) {
            if file == live_path {
                continue;
            }
            if let Ok(mut f) = File::open(&file) {
                lines.extend(read_to_end(&mut f, &mut assembler));
            }
        }
        if let Some((f, _)) = &mut live {
            lines.extend(read_to_end(f, &mut assembler));
        }
        let reader = Self {
            source,
            live,
            assembler,
            is_done: false,
        };
        (reader, lines)
    }

    /// Whether the container is gone: its shim recorded the exit (after draining its output)
    /// or the bundle was removed with the task.
    fn has_ended(&self) -> bool {
        match &self.source.bundle {
            Some(b) => crate::shim::read_exit(b).is_some() || !b.exists(),
            None => true,
        }
    }

    /// New lines since the last call; follows a rotation to the new live file.
    fn poll(&mut self) -> Vec<Line> {
        let ended = self.has_ended();
        let path = self.source.dir.join(&self.source.base);
        let mut lines = Vec::new();
        if let Some((f, _)) = &mut self.live {
            lines.extend(read_to_end(f, &mut self.assembler));
        }
        let now = std::fs::metadata(&path).ok().map(|m| m.ino());
        let current = self.live.as_ref().map(|(_, ino)| *ino);
        if now.is_some() && now != current {
            // Rotated: what was written to the old file before the switch, then the new one.
            if let Some((f, _)) = &mut self.live {
                lines.extend(read_to_end(f, &mut self.assembler));
            }
            self.live = open_with_inode(&path);
            if let Some((f, _)) = &mut self.live {
                lines.extend(read_to_end(f, &mut self.assembler));
            }
            return lines;
        }
        if ended {
            lines.extend(self.assembler.finish());
            self.is_done = true;
        }
        lines
    }
}

/// `berth logs TASK [CONTAINER]`.
pub fn logs(a: LogsArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let task = task_id(&a.task).to_owned();
    let all = containers(&ctx.root, &task);
    if all.is_empty() {
        return Err(format!(
            "no logs for task {task} under {} (no container of it has started)",
            ctx.root.display()
        )
        .into());
    }
    let names = match &a.container {
        Some(c) if all.contains(c) => vec![c.clone()],
        Some(c) => {
            return Err(format!(
                "no logs for container '{c}' of task {task} (containers with logs: {})",
                all.join(", ")
            )
            .into())
        }
        None => all,
    };
    let is_prefixed = names.len() > 1;
    let mut readers = Vec::new();
    for name in &names {
        let (mut reader, mut lines) = Reader::open(source(&ctx.root, &task, name));
        if !a.follow {
            lines.extend(reader.assembler.finish());
        }
        if let Some(n) = a.tail {
            let skip = lines.len().saturating_sub(n);
            lines.drain(..skip);
        }
        let prefix = is_prefixed.then_some(name.as_str());
        for l in &lines {
            print(l, prefix, a.timestamps);
        }
        readers.push(reader);
    }
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    while readers.iter().any(|r| !r.is_done) {
        for r in readers.iter_mut().filter(|r| !r.is_done) {
            let prefix = is_prefixed.then_some(r.source.name.clone());
            for l in r.poll() {
                print(&l, prefix.as_deref(), a.timestamps);
            }
        }
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{format_record, LogLimits, RotatingWriter};

    fn rec(stream: Stream, partial: bool, text: &str) -> Vec<u8> {
        format_record(
            "2026-11-28T00:00:00.000000001Z",
            stream,
            partial,
            text.as_bytes(),
        )
    }

    #[test]
    fn parts_are_joined_and_reads_may_split_records() {
        let mut a = Assembler::default();
        let mut bytes = rec(Stream::Stdout, true, "hel");
        bytes.extend(rec(Stream::Stdout, false, "lo"));
        bytes.extend(rec(Stream::Stderr, false, "oops"));
        let (first, second) = bytes.split_at(10);
        assert_eq!(a.push(first), vec![]);
        let lines = a.push(second);
        let texts: Vec<(&str, Stream)> =
            lines.iter().map(|l| (l.text.as_str(), l.stream)).collect();
        assert_eq!(texts, [("hello", Stream::Stdout), ("oops", Stream::Stderr)]);
        assert_eq!(lines[0].time, "2026-11-28T00:00:00.000000001Z");
        assert_eq!(a.push(&rec(Stream::Stdout, true, "tail")), vec![]);
        assert_eq!(a.finish().unwrap().text, "tail");
        // A log from before records existed reads as plain lines.
        let old = a.push(b"plain line\n");
        assert_eq!(
            (old[0].text.as_str(), old[0].time.as_str()),
            ("plain line", "")
        );
    }

    #[test]
    fn follows_across_rotation_and_ends_with_the_container() {
        let root = tempfile::tempdir().unwrap();
        let bundle = root.path().join("tasks/t1/web");
        std::fs::create_dir_all(&bundle).unwrap();
        let limits = LogLimits {
            max_bytes: 200,
            max_files: 2,
        };
        let mut w = RotatingWriter::open(&bundle, LIVE_LOG, limits).unwrap();
        w.write_record(&rec(Stream::Stdout, false, "one")).unwrap();
        let src = source(root.path(), "t1", "web");
        assert_eq!(src.bundle.as_deref(), Some(bundle.as_path()));
        let (mut r, first) = Reader::open(src);
        assert_eq!(first.len(), 1);
        // Enough records to rotate twice between two polls would lose the middle file (as
        // Docker's reader does); one rotation is followed.
        for i in 0..5 {
            w.write_record(&rec(Stream::Stdout, false, &format!("line {i}")))
                .unwrap();
        }
        let lines = r.poll();
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["line 0", "line 1", "line 2", "line 3", "line 4"]);
        assert!(bundle.join("output.log.1").exists(), "it rotated");
        assert!(!r.is_done);
        w.write_record(&rec(Stream::Stdout, true, "last")).unwrap();
        // The shim records the exit once it drained the pipes.
        std::fs::write(bundle.join("init.pid"), "42").unwrap();
        std::fs::write(bundle.join("exit.json"), r#"{"exitCode":0,"pid":42}"#).unwrap();
        let lines = r.poll();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "last");
        assert!(r.is_done);
        assert_eq!(containers(root.path(), "t1"), ["web"]);
    }

    #[test]
    fn kept_logs_are_found_after_the_task_stopped() {
        let root = tempfile::tempdir().unwrap();
        let logs = root.path().join("logs/t1");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("web.log.1"), rec(Stream::Stdout, false, "a")).unwrap();
        std::fs::write(logs.join("web.log"), rec(Stream::Stdout, false, "b")).unwrap();
        std::fs::write(logs.join("side.log"), rec(Stream::Stdout, false, "c")).unwrap();
        assert_eq!(containers(root.path(), "t1"), ["side", "web"]);
        let src = source(root.path(), "t1", "web");
        assert_eq!(src.bundle, None);
        let (mut r, lines) = Reader::open(src);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["a", "b"]);
        assert!(r.poll().is_empty());
        assert!(r.is_done, "a stopped task's log has nothing to follow");
    }
}
