//! `berth topology`: the host's VPC, subnets, ENIs, tasks, containers and security groups as a
//! Graphviz DOT graph on stdout (`berth topology | dot -Tsvg > vpc.svg`). netd gives the
//! subnets, ENIs and groups (with their rules), the agent the running tasks, and netd's nft
//! table the VPC block. Run it where netd runs (its network namespace) for the VPC block.

use super::client::AgentClient;
use super::{CliError, Ctx};
use crate::inspect::nft::Nft;
use crate::inspect::topology::{self, Model, TaskNode};
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// `berth topology`.
#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// The cluster whose running tasks are drawn.
    #[arg(long)]
    pub cluster: Option<String>,
    /// berth-netd's API socket.
    #[arg(long, env = "BERTH_NETD_SOCKET", default_value = netd::api::DEFAULT_SOCKET)]
    pub netd_socket: PathBuf,
    /// netd's nft table (family inet), where the VPC block is read.
    #[arg(long, env = "BERTH_NFT_TABLE", default_value = "berth")]
    pub nft_table: String,
    /// The `nft` binary.
    #[arg(long, default_value = "nft")]
    pub nft: PathBuf,
}

fn running_tasks(agent: &AgentClient, cluster: &Option<String>) -> Result<Vec<TaskNode>, CliError> {
    let with_cluster = |mut v: Value| {
        if let Some(c) = cluster {
            v["cluster"] = json!(c);
        }
        v
    };
    let arns = agent.list_task_arns(with_cluster(json!({"desiredStatus": "RUNNING"})))?;
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let d = agent.call("DescribeTasks", &with_cluster(json!({"tasks": chunk})))?;
        for t in d["tasks"].as_array().into_iter().flatten() {
            let last = |v: &Value| {
                v.as_str()
                    .and_then(|a| a.rsplit('/').next())
                    .unwrap_or("")
                    .to_owned()
            };
            out.push(TaskNode {
                id: last(&t["taskArn"]),
                definition: last(&t["taskDefinitionArn"]),
                containers: t["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// `berth topology`.
pub fn topology(a: TopologyArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let netd = netd::api::Client::new(&a.netd_socket);
    let subnets = netd.subnets()?;
    let enis = netd.enis()?;
    let groups = netd.security_groups()?;
    let tasks = running_tasks(&AgentClient::new(&ctx.agent_socket), &a.cluster)?;
    let nft = Nft {
        binary: a.nft,
        table: a.nft_table,
    };
    let vpc_cidr = match nft.chain_rules("ingress") {
        Ok(rules) => topology::vpc_from_ingress(&rules),
        Err(e) => {
            eprintln!(
                "berth: the VPC block is unknown: {}",
                super::error_chain(&e)
            );
            None
        }
    };
    let model = Model {
        vpc_cidr,
        subnets,
        enis,
        tasks,
        groups,
    };
    print!("{}", topology::dot(&model));
    Ok(ExitCode::SUCCESS)
}
