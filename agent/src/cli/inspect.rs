//! `berth inspect TASK [-o json]`: the task's isolation as the kernel holds it. The agent names
//! the task's containers and their runtime, berth-runtime gives each init's pid, netd gives the
//! ENI's netns path and group ids; every value shown is then read from the kernel (see
//! `crate::inspect`). Run it where netd runs (its network namespace) to see the host end of the
//! veth and netd's nft table.

use super::client::AgentClient;
use super::task::Output;
use super::{CliError, Ctx};
use crate::inspect::{self, nft::Nft, ContainerRef, Pointers};
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// `berth inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Task id or ARN.
    pub task: String,
    /// The cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// berth-netd's API socket (for the ENI's netns path and the group ids).
    #[arg(long, env = "BERTH_NETD_SOCKET", default_value = netd::api::DEFAULT_SOCKET)]
    pub netd_socket: PathBuf,
    /// netd's nft table (family inet): netd's `table` key.
    #[arg(long, env = "BERTH_NFT_TABLE", default_value = "berth")]
    pub nft_table: String,
    /// The `nft` binary used to list the table.
    #[arg(long, default_value = "nft")]
    pub nft: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

/// The init pid and status berth-runtime reports for container `id`.
fn runtime_state(binary: &str, root: &str, id: &str) -> (Option<i32>, String) {
    let out = Command::new(binary)
        .args(["--root", root, "state", id])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
            let status = v["status"].as_str().unwrap_or("unknown").to_owned();
            let pid = v["pid"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p > 0 && status != "stopped");
            (pid, status)
        }
        Ok(_) => (None, "deleted".to_owned()),
        Err(e) => (None, format!("unknown ({binary}: {e})")),
    }
}

/// The pointers for a described task (the runtime and netd are asked here).
fn pointers(task: &Value, netd: &netd::api::Client) -> Pointers {
    let arn = task["taskArn"].as_str().unwrap_or("").to_owned();
    let id = arn.rsplit('/').next().unwrap_or("").to_owned();
    let mut notes = Vec::new();
    let containers = task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or("").to_owned();
            let runtime_id = c["runtimeId"].as_str().map(str::to_owned);
            let (pid, runtime_status) = match (
                &runtime_id,
                c["berthRuntime"]["binary"].as_str(),
                c["berthRuntime"]["root"].as_str(),
            ) {
                (Some(rid), Some(bin), Some(root)) => runtime_state(bin, root, rid),
                _ => (None, "not created".to_owned()),
            };
            ContainerRef {
                name,
                runtime_id,
                pid,
                runtime_status,
            }
        })
        .collect();
    let (netns_path, host_interface) = match netd.eni(&id) {
        Ok(e) => (Some(e.netns_path), Some(e.host_interface)),
        Err(e) if e.status() == Some(404) => (None, None),
        Err(e) => {
            notes.push(format!(
                "eni: cannot ask netd at {}: {}",
                netd.socket().display(),
                super::error_chain(&e)
            ));
            (None, None)
        }
    };
    let group_ids = netd
        .security_groups()
        .map(|gs| gs.into_iter().map(|g| g.id).collect())
        .unwrap_or_default();
    Pointers {
        task_id: id,
        task_arn: arn,
        last_status: task["lastStatus"].as_str().unwrap_or("").to_owned(),
        desired_status: task["desiredStatus"].as_str().unwrap_or("").to_owned(),
        containers,
        netns_path,
        host_interface,
        group_ids,
        notes,
    }
}

/// `berth inspect TASK`.
pub fn inspect(a: InspectArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let mut body = json!({"tasks": [a.task]});
    if let Some(c) = &a.cluster {
        body["cluster"] = json!(c);
    }
    let d = AgentClient::new(&ctx.agent_socket).call("DescribeTasks", &body)?;
    let Some(task) = d["tasks"].get(0) else {
        return Err(format!(
            "no task {} (reason: {})",
            a.task,
            d["failures"][0]["reason"].as_str().unwrap_or("unknown")
        )
        .into());
    };
    let netd = netd::api::Client::new(&a.netd_socket);
    let p = pointers(task, &netd);
    let nft = Nft {
        binary: a.nft,
        table: a.nft_table,
    };
    let facts = inspect::collect(&p, &nft);
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&facts)?),
        Output::Table => print!("{}", inspect::render::page(&facts)),
    }
    Ok(ExitCode::SUCCESS)
}
