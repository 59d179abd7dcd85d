//! Issue 10 acceptance 7: every command of docs/walkthrough.md runs as written.
//!
//! The walkthrough states its convention at the top: each fenced block whose info string is
//! exactly `sh` is run, in order, in ONE bash shell with `set -e` (variables carry over), from
//! the checkout's top directory; a line `#=> TEXT` after some commands says what their output
//! (stdout and stderr) shows, and the test fails unless it contains TEXT (runs of blanks
//! compare as one space). Blocks marked `sh no-test` are not run here: each must name, in a
//! `# covered by:` line, the existing test files that cover it (checked below).
//!
//! The commands are the newcomer's, unchanged: they find the daemons through the CLI's own
//! environment variables (`BERTH_ROOT`, `BERTH_AGENT_SOCKET`, `BERTH_NETD_SOCKET`,
//! `BERTH_NFT_TABLE` for `berth inspect`/`topology`), which
//! point at a private berth-netd + berth-agent pair (`agent_support::start`) that runs inside
//! a throwaway network namespace playing the host; the whole script runs inside that
//! namespace too, so nothing touches the real host's links, routes or firewall. `TMPDIR` is
//! the test's directory (removed at the end), and the binaries under test come first on PATH.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use berth_tests::{bin_path, require_root, workspace_root, Cleanup};
use std::path::Path;
use std::process::{Command, Stdio};

/// One fenced `sh` block of the walkthrough.
#[derive(Debug, PartialEq, Eq)]
struct Block {
    /// The line of its opening fence (1-based).
    line: usize,
    /// `sh` (run) or `sh no-test` (not run).
    is_run: bool,
    /// Its lines, with their line numbers.
    lines: Vec<(usize, String)>,
}

/// Commands followed by what their output must contain.
#[derive(Debug, PartialEq, Eq)]
struct Step {
    /// The line of its first command.
    line: usize,
    /// The commands, as written.
    script: String,
    /// The `#=>` texts, whitespace-normalised.
    expect: Vec<String>,
}

/// Runs of blanks (spaces, tabs) as one space, trimmed.
fn squash(s: &str) -> String {
    s.split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `sh` and `sh no-test` blocks of `md`. Any other `sh …` info string is a mistake in
/// the document, and so is an unclosed fence.
fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    let mut in_other = false;
    for (i, line) in md.lines().enumerate() {
        let n = i + 1;
        let fence = line.trim_start().starts_with("```");
        // A closing fence carries no info string.
        let closing = line.trim() == "```";
        if let Some(b) = open.as_mut() {
            if closing {
                out.push(open.take().unwrap());
            } else {
                b.lines.push((n, line.to_owned()));
            }
            continue;
        }
        if in_other {
            in_other = !closing;
            continue;
        }
        if !fence {
            continue;
        }
        let info = line.trim_start().trim_start_matches('`').trim();
        match info {
            "sh" => {
                open = Some(Block {
                    line: n,
                    is_run: true,
                    lines: Vec::new(),
                })
            }
            "sh no-test" => {
                open = Some(Block {
                    line: n,
                    is_run: false,
                    lines: Vec::new(),
                })
            }
            other => {
                assert!(
                    !other.starts_with("sh"),
                    "line {n}: fence info '{other}': use `sh` (run by the test) or `sh no-test`"
                );
                in_other = true;
            }
        }
    }
    assert!(open.is_none() && !in_other, "an unclosed ``` fence");
    out
}

/// The steps of the run blocks: commands up to a run of `#=>` lines form one step.
fn steps(blocks: &[Block]) -> Vec<Step> {
    let mut out = Vec::new();
    for b in blocks.iter().filter(|b| b.is_run) {
        let mut cur: Option<Step> = None;
        for (n, line) in &b.lines {
            if let Some(text) = line.trim_start().strip_prefix("#=>") {
                let step = cur
                    .as_mut()
                    .or_else(|| out.last_mut().filter(|s: &&mut Step| s.line > b.line))
                    .unwrap_or_else(|| panic!("line {n}: `#=>` before any command"));
                step.expect.push(squash(text));
                if let Some(s) = cur.take() {
                    out.push(s);
                }
                continue;
            }
            match cur.as_mut() {
                Some(s) => {
                    s.script.push_str(line);
                    s.script.push('\n');
                }
                None if line.trim().is_empty() => {}
                None => {
                    cur = Some(Step {
                        line: *n,
                        script: format!("{line}\n"),
                        expect: Vec::new(),
                    })
                }
            }
        }
        out.extend(cur);
    }
    out
}

/// The bash script that runs `steps` one after the other, each step's output in
/// `work/out.N`, the step being run in `work/current`.
fn script(steps: &[Step], work: &Path, top: &Path) -> String {
    let w = work.display();
    let mut s = format!("set -e\ncd '{}'\n", top.display());
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!(
            "# docs/walkthrough.md:{}\necho {i} > '{w}/current'\n{{\n{}}} > '{w}/out.{i}' 2>&1 </dev/null\n",
            step.line, step.script
        ));
    }
    s.push_str(&format!("echo done > '{w}/current'\n"));
    s
}

fn walkthrough() -> String {
    std::fs::read_to_string(workspace_root().join("docs/walkthrough.md"))
        .expect("read docs/walkthrough.md")
}

#[test]
fn the_parser_splits_blocks_into_steps_with_their_expectations() {
    let md = "text\n```sh\na=1\necho $a\n#=> 1\n#=>  two   words \n\nb\n```\n\
              ```text\n```sh not this\n```\n```sh no-test\n# covered by: x\nmake\n```\n";
    let b = blocks(md);
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b[0].is_run && !b[1].is_run);
    let s = steps(&b);
    assert_eq!(
        s,
        vec![
            Step {
                line: 3,
                script: "a=1\necho $a\n".into(),
                expect: vec!["1".into(), "two words".into()]
            },
            Step {
                line: 8,
                script: "b\n".into(),
                expect: vec![]
            },
        ]
    );
    let bad = std::panic::catch_unwind(|| blocks("```sh -x\n```\n"));
    assert!(bad.is_err(), "an unknown sh info string is refused");
}

/// The document's own rules, without root: every no-test block names existing tests, and
/// the run blocks check what they show.
#[test]
fn the_walkthrough_follows_its_convention() {
    let md = walkthrough();
    let b = blocks(&md);
    let top = workspace_root();
    for block in b.iter().filter(|b| !b.is_run) {
        let covered: Vec<&str> = block
            .lines
            .iter()
            .filter_map(|(_, l)| l.trim().strip_prefix("# covered by:"))
            .flat_map(|l| l.split([' ', ',', ';', '(', ')']))
            .filter(|w| w.starts_with("tests/tests/") && w.ends_with(".rs"))
            .collect();
        assert!(
            !covered.is_empty(),
            "docs/walkthrough.md:{}: a `sh no-test` block needs a `# covered by: tests/tests/X.rs` line",
            block.line
        );
        for t in covered {
            assert!(
                top.join(t).is_file(),
                "docs/walkthrough.md:{}: {t} does not exist",
                block.line
            );
        }
    }
    let s = steps(&b);
    let checked = s.iter().filter(|s| !s.expect.is_empty()).count();
    assert!(
        s.len() >= 10 && checked >= 10,
        "{} steps, {checked} with expectations",
        s.len()
    );
    assert!(
        md.contains("tests/tests/docs_walkthrough.rs"),
        "the walkthrough names the test that runs it"
    );
}

#[test]
fn every_command_of_the_walkthrough_runs_as_written() {
    if !require_root() {
        return;
    }
    let md = walkthrough();
    let steps = steps(&blocks(&md));
    let mut guard = Cleanup::new();
    let env = agent_support::start(&mut guard, "dw", "10.233.20.0/24");
    let work = env.dir.join("walkthrough");
    std::fs::create_dir_all(&work).unwrap();
    let top = workspace_root();
    std::fs::write(work.join("script.sh"), script(&steps, &work, &top)).unwrap();
    let bin_dir = bin_path("berth").parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
    );
    let tmp = env.dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let status = Command::new("timeout")
        .args(["900", "nsenter"])
        .arg(format!("--net=/run/netns/{}", env.netns))
        .arg("bash")
        .arg(work.join("script.sh"))
        .env("PATH", path)
        .env("BERTH_ROOT", &env.root)
        .env("BERTH_AGENT_SOCKET", &env.agent_sock)
        .env("BERTH_NETD_SOCKET", env.dir.join("netd.sock"))
        // netd's nft table in this env is named like its directory (agent_support::start).
        .env("BERTH_NFT_TABLE", env.dir.file_name().unwrap())
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .status()
        .expect("run the walkthrough script");
    let current = std::fs::read_to_string(work.join("current")).unwrap_or_default();
    let output =
        |i: usize| std::fs::read_to_string(work.join(format!("out.{i}"))).unwrap_or_default();
    let ran = match current.trim() {
        "done" => steps.len(),
        n => n.parse::<usize>().unwrap_or(0),
    };
    for (i, step) in steps.iter().enumerate().take(ran) {
        let out = output(i);
        println!("$ docs/walkthrough.md:{}\n{}{out}", step.line, step.script);
        for want in &step.expect {
            assert!(
                out.lines().any(|l| squash(l).contains(want.as_str())),
                "docs/walkthrough.md:{}: the output of\n{}\ndoes not show `{want}`; it was:\n{out}",
                step.line,
                step.script
            );
        }
    }
    assert!(
        status.success() && current.trim() == "done",
        "docs/walkthrough.md:{}: failed ({status}):\n{}\noutput:\n{}\nagent log: {}",
        steps.get(ran).map_or(0, |s| s.line),
        steps.get(ran).map_or("", |s| s.script.as_str()),
        output(ran),
        std::fs::read_to_string(env.dir.join("agent.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The walkthrough's clean-up leaves nothing of the task: no container, no ENI.
    assert_eq!(
        agent_support::runtime_ids(&env.runtime_root),
        Vec::<String>::new()
    );
    let enis = env.net(&["enis", "--output", "json"]);
    assert_eq!(enis.trim(), "[]", "ENIs left: {enis}");
    drop(env);
}
