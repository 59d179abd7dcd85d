//! `berth register | run | ps | describe | stop`: thin clients of berth-agent's ECS API.
//! Human tables by default, the agent's JSON with `--output json`.

use super::client::AgentClient;
use super::{CliError, Ctx};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Human tables.
    #[default]
    Table,
    /// The agent's ECS JSON, unchanged.
    Json,
}

/// `berth register FILE`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// An ECS task definition (JSON, as for `aws ecs register-task-definition
    /// --cli-input-json`); `-` reads stdin.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

/// `berth run FAMILY[:REV]`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Task definition: `family`, `family:revision` or ARN.
    pub task_definition: String,
    /// How many tasks (1-10).
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// The subnet (netd's first subnet when absent).
    #[arg(long)]
    pub subnet: Option<String>,
    /// A security group (repeatable, at most 5).
    #[arg(long = "security-group")]
    pub security_groups: Vec<String>,
    /// Ask for a public IP (assignPublicIp ENABLED).
    #[arg(long)]
    pub public_ip: bool,
    /// The cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// startedBy.
    #[arg(long)]
    pub started_by: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

/// `berth ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Also stopped tasks.
    #[arg(long, short)]
    pub all: bool,
    /// The cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

/// `berth describe TASK`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Task id or ARN.
    pub task: String,
    /// The cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

/// `berth stop TASK`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Task id or ARN.
    pub task: String,
    /// Shown as stoppedReason.
    #[arg(long)]
    pub reason: Option<String>,
    /// The cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

fn client(ctx: &Ctx) -> AgentClient {
    AgentClient::new(&ctx.agent_socket)
}

fn print_json(v: &Value) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn with_cluster(mut body: Value, cluster: &Option<String>) -> Value {
    if let Some(c) = cluster {
        body["cluster"] = json!(c);
    }
    body
}

/// `berth register FILE`.
pub fn register(a: RegisterArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let text = if a.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&a.file)
            .map_err(|e| format!("reading {}: {e}", a.file.display()))?
    };
    let body: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", a.file.display()))?;
    let out = client(ctx).call("RegisterTaskDefinition", &body)?;
    match a.output {
        Output::Json => print_json(&out)?,
        Output::Table => {
            let td = &out["taskDefinition"];
            println!(
                "registered {}:{}  {}",
                s(&td["family"]),
                td["revision"],
                s(&td["taskDefinitionArn"])
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth run FAMILY[:REV]`.
pub fn run(a: RunArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let mut body = json!({"taskDefinition": a.task_definition, "count": a.count});
    if a.subnet.is_some() || !a.security_groups.is_empty() || a.public_ip {
        let subnets: Vec<String> = a.subnet.into_iter().collect();
        if subnets.is_empty() {
            return Err("--security-group and --public-ip need --subnet".into());
        }
        body["networkConfiguration"] = json!({"awsvpcConfiguration": {
            "subnets": subnets, "securityGroups": a.security_groups,
            "assignPublicIp": if a.public_ip { "ENABLED" } else { "DISABLED" }}});
    }
    if let Some(sb) = a.started_by {
        body["startedBy"] = json!(sb);
    }
    let out = client(ctx).call("RunTask", &with_cluster(body, &a.cluster))?;
    match a.output {
        Output::Json => print_json(&out)?,
        Output::Table => {
            for t in out["tasks"].as_array().into_iter().flatten() {
                println!("{}", task_id(t));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth ps [-a]`.
pub fn ps(a: PsArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let c = client(ctx);
    let statuses: &[&str] = if a.all {
        &["RUNNING", "STOPPED"]
    } else {
        &["RUNNING"]
    };
    let mut ids = Vec::new();
    for status in statuses {
        ids.extend(c.list_task_arns(with_cluster(json!({"desiredStatus": status}), &a.cluster))?);
    }
    let mut tasks = Vec::new();
    for chunk in ids.chunks(100) {
        let d = c.call(
            "DescribeTasks",
            &with_cluster(json!({"tasks": chunk}), &a.cluster),
        )?;
        tasks.extend(d["tasks"].as_array().into_iter().flatten().cloned());
    }
    match a.output {
        Output::Json => print_json(&json!({"tasks": tasks}))?,
        Output::Table => {
            println!(
                "{:<32}  {:<24}  {:<14}  {:<8}  {:<15}  REASON",
                "TASK", "DEFINITION", "STATUS", "DESIRED", "IP"
            );
            for t in &tasks {
                println!(
                    "{:<32}  {:<24}  {:<14}  {:<8}  {:<15}  {}",
                    task_id(t),
                    definition(t),
                    s(&t["lastStatus"]),
                    s(&t["desiredStatus"]),
                    ip(t),
                    s(&t["stoppedReason"])
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth describe TASK`.
pub fn describe(a: DescribeArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let d = client(ctx).call(
        "DescribeTasks",
        &with_cluster(json!({"tasks": [a.task], "include": ["TAGS"]}), &a.cluster),
    )?;
    let Some(t) = d["tasks"].get(0) else {
        return Err(format!(
            "no task {} (reason: {})",
            a.task,
            s(&d["failures"][0]["reason"])
        )
        .into());
    };
    match a.output {
        Output::Json => print_json(t)?,
        Output::Table => {
            for (k, v) in [
                ("task", task_id(t)),
                ("arn", s(&t["taskArn"])),
                ("definition", definition(t)),
                (
                    "status",
                    format!(
                        "{} (desired {})",
                        s(&t["lastStatus"]),
                        s(&t["desiredStatus"])
                    ),
                ),
                ("ip", ip(t)),
                ("stopCode", s(&t["stopCode"])),
                ("stoppedReason", s(&t["stoppedReason"])),
            ] {
                if !v.is_empty() {
                    println!("{k:<14} {v}");
                }
            }
            println!(
                "
{:<20}  {:<40}  {:<8}  {:<5}  REASON",
                "CONTAINER", "IMAGE", "STATUS", "EXIT"
            );
            for c in t["containers"].as_array().into_iter().flatten() {
                let exit = c["exitCode"]
                    .as_i64()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                println!(
                    "{:<20}  {:<40}  {:<8}  {:<5}  {}",
                    s(&c["name"]),
                    s(&c["image"]),
                    s(&c["lastStatus"]),
                    exit,
                    s(&c["reason"])
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth stop TASK`.
pub fn stop(a: StopArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    let mut body = with_cluster(json!({"task": a.task}), &a.cluster);
    if let Some(r) = a.reason {
        body["reason"] = json!(r);
    }
    let out = client(ctx).call("StopTask", &body)?;
    match a.output {
        Output::Json => print_json(&out)?,
        Output::Table => println!(
            "{} {}",
            task_id(&out["task"]),
            s(&out["task"]["lastStatus"])
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

fn task_id(t: &Value) -> String {
    t["taskArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("")
        .to_owned()
}

fn definition(t: &Value) -> String {
    t["taskDefinitionArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or("")
        .to_owned()
}

fn ip(t: &Value) -> String {
    t["attachments"][0]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == "privateIPv4Address")
        .map(|d| s(&d["value"]))
        .unwrap_or_default()
}
