//! docs/ecs-api.md against the code: the request-member table lists exactly what each request
//! type accepts, split into accepted and refused-by-name, and each refused member really is
//! refused by name.

use super::*;
use crate::api::arn::Arns;
use crate::api::{parse, TARGET_PREFIX};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DOC: &str = include_str!("../../../docs/ecs-api.md");

/// The lines of the section that starts with `heading`, up to the next heading of that level.
pub(crate) fn section<'a>(doc: &'a str, heading: &str) -> Vec<&'a str> {
    let level = heading.split(' ').next().unwrap_or("##");
    doc.lines()
        .skip_while(|l| l.trim_end() != heading)
        .skip(1)
        .take_while(|l| !(l.starts_with(level) && l[level.len()..].starts_with(' ')))
        .collect()
}

/// The backticked words of one table cell.
fn words(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// `shape → (accepted, refused)` from the doc's "Request members" table.
fn doc_table() -> Vec<(String, BTreeSet<String>, BTreeSet<String>)> {
    section(DOC, "## Request members")
        .into_iter()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // ["", shape, accepted, refused, ""]
            assert_eq!(cells.len(), 5, "a row of shape | accepted | refused: {l}");
            let shape = words(cells[1]).into_iter().next().unwrap();
            (shape, words(cells[2]), words(cells[3]))
        })
        .collect()
}

#[test]
fn the_doc_lists_every_request_member() {
    let doc = doc_table();
    let code = shapes();
    let doc_names: Vec<&str> = doc.iter().map(|(n, _, _)| n.as_str()).collect();
    let code_names: Vec<&str> = code.iter().map(|s| s.name).collect();
    assert_eq!(
        doc_names, code_names,
        "docs/ecs-api.md's Request members rows vs coverage::shapes()"
    );
    for (shape, (name, accepted, refused)) in code.iter().zip(&doc) {
        assert!(!shape.members.is_empty(), "{name}: no members introspected");
        let all: BTreeSet<String> = shape.members.iter().map(|m| (*m).to_owned()).collect();
        let want_refused: BTreeSet<String> =
            shape.refused.iter().map(|m| (*m).to_owned()).collect();
        assert!(
            want_refused.is_subset(&all),
            "{name}: refused members not in the type"
        );
        let want_accepted: BTreeSet<String> = all.difference(&want_refused).cloned().collect();
        assert_eq!(
            accepted, &want_accepted,
            "{name}: accepted members in the doc vs the code"
        );
        assert_eq!(
            refused, &want_refused,
            "{name}: refused members in the doc vs the code"
        );
    }
}

#[test]
fn every_action_has_its_request_shape() {
    let code = shapes();
    for action in crate::api::ACTIONS {
        assert!(
            code.iter().any(|s| s.name == *action),
            "{action} has no shape in coverage::shapes()"
        );
    }
}

fn refused_by_name(action: &str, body: Value, member: &str) {
    let err = parse(
        &Arns::default(),
        Some(&format!("{TARGET_PREFIX}{action}")),
        body.to_string().as_bytes(),
    )
    .expect_err(&format!("{action} with {member}: {body}"));
    assert!(
        err.message.contains(member),
        "{action}: `{}` does not name {member}",
        err.message
    );
}

/// A value that makes each refused member "set".
fn sample(member: &str) -> Value {
    match member {
        "enableExecuteCommand" | "enableECSManagedTags" => json!(true),
        "cpu" | "memory" | "memoryReservation" => json!(1),
        "referenceId" | "containerInstance" | "serviceName" | "daemonName" => json!("x"),
        "inferenceAcceleratorOverrides" | "environmentFiles" | "resourceRequirements" => {
            json!([{"x": 1}])
        }
        "ephemeralStorage" | "configuration" | "serviceConnectDefaults" => json!({}),
        _ => json!([]),
    }
}

#[test]
fn refused_members_are_refused_by_name() {
    let run = json!({"taskDefinition": "web"});
    for m in RUN_TASK_REFUSED {
        let mut b = run.clone();
        b[*m] = sample(m);
        refused_by_name("RunTask", b, m);
    }
    for m in TASK_OVERRIDE_REFUSED {
        let mut b = run.clone();
        b["overrides"] = json!({});
        b["overrides"][*m] = sample(m);
        refused_by_name("RunTask", b, &format!("overrides.{m}"));
    }
    for m in CONTAINER_OVERRIDE_REFUSED {
        let mut b = run.clone();
        b["overrides"] = json!({"containerOverrides": [{"name": "web"}]});
        b["overrides"]["containerOverrides"][0][*m] = sample(m);
        refused_by_name("RunTask", b, &format!("containerOverrides[0].{m}"));
    }
    for m in CREATE_CLUSTER_REFUSED {
        let mut b = json!({"clusterName": "c"});
        b[*m] = sample(m);
        refused_by_name("CreateCluster", b, m);
    }
    for m in LIST_TASKS_REFUSED {
        let mut b = json!({});
        b[*m] = sample(m);
        refused_by_name("ListTasks", b, m);
    }
}

#[test]
fn introspection_reads_serde_names() {
    let m = members::<requests::RunTask>();
    assert!(
        m.contains(&"enableECSManagedTags") && m.contains(&"taskDefinition"),
        "{m:?}"
    );
}

/// Prints the table for docs/ecs-api.md:
/// `cargo test -p berth-agent --lib print_request_members -- --ignored --nocapture`.
#[test]
#[ignore = "prints the doc table"]
fn print_request_members() {
    println!("| shape | accepted | refused by name |\n|---|---|---|");
    for s in shapes() {
        let tick = |v: Vec<&str>| {
            if v.is_empty() {
                "—".to_owned()
            } else {
                v.iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let accepted: Vec<&str> = s
            .members
            .iter()
            .copied()
            .filter(|m| !s.refused.contains(m))
            .collect();
        println!(
            "| `{}` | {} | {} |",
            s.name,
            tick(accepted),
            tick(s.refused.to_vec())
        );
    }
}
