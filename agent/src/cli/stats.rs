//! `berth stats [TASK] [--no-stream]`: a live table (like `docker stats` / `podman stats`) of
//! each running task and its containers: CPU %, memory usage / limit, the ENI's received and
//! sent bytes, pids; refreshed every second, or printed once with `--no-stream`. The agent
//! reads the numbers from the cgroups and the ENI (`POST /berth/v1/stats`); CPU % is the CPU
//! time used between two readings over the wall time between them (100 % = one CPU).

use super::client::AgentClient;
use super::{CliError, Ctx};
use clap::Args;
use serde_json::{json, Value};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// `berth stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only this task (id or ARN); every task not yet STOPPED when absent.
    pub task: Option<String>,
    /// Print one table and exit (two readings half a second apart, for CPU %).
    #[arg(long)]
    pub no_stream: bool,
}

fn snapshot(client: &AgentClient, task: Option<&str>) -> Result<Vec<Value>, CliError> {
    let body = match task {
        Some(t) => json!({"task": t}),
        None => json!({}),
    };
    let v = client.berth("/berth/v1/stats", &body)?;
    Ok(v["tasks"].as_array().cloned().unwrap_or_default())
}

/// `12.3MiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

fn cpu_percent(prev: Option<&Value>, cur: &Value, prev_at: f64, cur_at: f64) -> String {
    let (Some(p), Some(c)) = (
        prev.and_then(|p| p["cpuSeconds"].as_f64()),
        cur["cpuSeconds"].as_f64(),
    ) else {
        return "--".into();
    };
    let wall = cur_at - prev_at;
    if wall <= 0.0 {
        return "--".into();
    }
    format!("{:.2}%", ((c - p).max(0.0) / wall) * 100.0)
}

fn memory(v: &Value) -> (String, String) {
    let Some(used) = v["memoryBytes"].as_u64() else {
        return ("--".into(), "--".into());
    };
    match v["memoryLimitBytes"].as_u64() {
        #[allow(clippy::cast_precision_loss)]
        Some(limit) if limit > 0 => (
            format!("{} / {}", human_bytes(used), human_bytes(limit)),
            format!("{:.2}%", used as f64 / limit as f64 * 100.0),
        ),
        _ => (format!("{} / --", human_bytes(used)), "--".into()),
    }
}

/// The table for `cur` (CPU % against `prev`).
pub fn table(prev: &[Value], cur: &[Value]) -> String {
    let mut rows = vec![[
        "TASK".to_owned(),
        "CONTAINER".to_owned(),
        "STATUS".to_owned(),
        "CPU %".to_owned(),
        "MEM USAGE / LIMIT".to_owned(),
        "MEM %".to_owned(),
        "NET RX / TX".to_owned(),
        "PIDS".to_owned(),
    ]];
    for t in cur {
        let id = t["task"].as_str().unwrap_or("");
        let p = prev.iter().find(|p| p["task"] == t["task"]);
        let (prev_at, cur_at) = (
            p.and_then(|p| p["readAt"].as_f64()).unwrap_or(0.0),
            t["readAt"].as_f64().unwrap_or(0.0),
        );
        let pids = |v: &Value| v["pids"].as_u64().map_or("--".into(), |n| n.to_string());
        let net = match (t["netRxBytes"].as_u64(), t["netTxBytes"].as_u64()) {
            (Some(rx), Some(tx)) => format!("{} / {}", human_bytes(rx), human_bytes(tx)),
            _ => "--".into(),
        };
        let (mem, mem_pct) = memory(t);
        rows.push([
            id.to_owned(),
            "(task)".into(),
            t["lastStatus"].as_str().unwrap_or("").to_owned(),
            cpu_percent(p, t, prev_at, cur_at),
            mem,
            mem_pct,
            net,
            pids(t),
        ]);
        for c in t["containers"].as_array().into_iter().flatten() {
            let pc = p.and_then(|p| {
                p["containers"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|x| x["name"] == c["name"]))
            });
            let (mem, mem_pct) = memory(c);
            rows.push([
                id.to_owned(),
                c["name"].as_str().unwrap_or("").to_owned(),
                c["lastStatus"].as_str().unwrap_or("").to_owned(),
                cpu_percent(pc, c, prev_at, cur_at),
                mem,
                mem_pct,
                String::new(),
                pids(c),
            ]);
        }
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Run `berth stats`.
pub fn stats(a: StatsArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let client = AgentClient::new(&ctx.agent_socket);
    let task = a.task.as_deref();
    let mut prev = snapshot(&client, task)?;
    if a.no_stream {
        std::thread::sleep(Duration::from_millis(500));
        let cur = snapshot(&client, task)?;
        print!("{}", table(&prev, &cur));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let cur = snapshot(&client, task)?;
        // Clear the screen and home the cursor, as docker stats does.
        let frame = format!("\x1b[2J\x1b[H{}", table(&prev, &cur));
        if out
            .write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(ExitCode::SUCCESS);
        }
        prev = cur;
    }
}
