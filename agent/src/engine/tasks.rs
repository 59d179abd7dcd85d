//! Task actions: RunTask, StopTask, DescribeTasks, ListTasks.

use super::actions::paged;
use super::command::{Page, RunTaskCmd};
use super::supervisor::TaskCmd;
use super::{Engine, Reply};
use crate::api::error::ApiError;
use crate::api::shapes;
use crate::model::{
    now_epoch, random_hex, random_uuid, ContainerRecord, DesiredStatus, TaskRecord, TaskStatus,
    Timestamps,
};
use crate::store::{TaskDefRecord, TaskFilter};
use crate::taskdef::fargate::{is_fargate_size, parse_cpu_units, parse_memory_mib};
use serde_json::{json, Value};
use tokio::sync::oneshot;

impl Engine {
    fn active_cluster(&self, name: &str) -> Result<(), ApiError> {
        match self.store.cluster(name)? {
            Some(c) if c.status == "ACTIVE" => Ok(()),
            _ => Err(ApiError::cluster_not_found()),
        }
    }

    pub(super) fn run_task(&mut self, run: RunTaskCmd) -> Result<Value, ApiError> {
        self.active_cluster(&run.cluster)?;
        if let Some(token) = &run.client_token {
            if let Some((cluster, ids)) = self.store.client_token(token)? {
                // The same request again (a client retry): answer with the tasks it made.
                let tasks = ids
                    .iter()
                    .filter_map(|id| self.store.task(id).transpose())
                    .map(|t| t.map(|t| shapes::task(&self.arns, &t, false)))
                    .collect::<Result<Vec<_>, _>>()?;
                tracing::info!(%token, %cluster, "RunTask retried with a known clientToken");
                return Ok(json!({"tasks": tasks, "failures": []}));
            }
        }
        let td = self
            .store
            .task_definition(&run.family, run.revision)?
            .ok_or_else(|| ApiError::client("Unable to describe task definition."))?;
        if td.status != "ACTIVE" {
            return Err(ApiError::client(format!(
                "TaskDefinition {}:{} is INACTIVE and cannot run new tasks",
                td.family, td.revision
            )));
        }
        let launch_type = launch_type(&run, &td)?;
        let (cpu, memory) = task_size(&run, &td, &launch_type)?;
        for (j, o) in run.overrides.container_overrides.iter().enumerate() {
            let name = o.name.as_deref().unwrap_or("");
            if !td.containers.iter().any(|c| c.name == name) {
                return Err(ApiError::invalid(format!(
                    "overrides.containerOverrides[{j}].name: '{name}' is not a container in the TaskDefinition"
                )));
            }
        }
        // The task role must be one the credentials endpoint can serve: refused before any
        // task exists.
        let task_role_arn = run
            .overrides
            .task_role_arn
            .clone()
            .or_else(|| td.body.task_role_arn.clone())
            .filter(|r| !r.is_empty());
        if let Some(role) = &task_role_arn {
            self.seams
                .endpoints
                .check_role(role)
                .map_err(ApiError::invalid)?;
        }
        let tags = if run.propagate_definition_tags {
            super::tags::merge(&td.tags, &run.tags)
        } else {
            run.tags.clone()
        };
        let now = now_epoch();
        let overrides = serde_json::to_value(&run.overrides).unwrap_or(Value::Null);
        let mut records = Vec::with_capacity(run.count);
        for _ in 0..run.count {
            let id = random_hex(16).map_err(|e| {
                ApiError::new(
                    crate::api::error::ErrorType::ServerException,
                    format!("random task id: {e}"),
                )
            })?;
            let containers = td
                .containers
                .iter()
                .map(|spec| Ok(ContainerRecord::new(spec.clone(), random_uuid()?)))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| {
                    ApiError::new(
                        crate::api::error::ErrorType::ServerException,
                        format!("random container id: {e}"),
                    )
                })?;
            records.push(TaskRecord {
                id,
                cluster: run.cluster.clone(),
                family: td.family.clone(),
                revision: td.revision,
                desired: DesiredStatus::Running,
                last_status: TaskStatus::Provisioning,
                containers,
                network: run.network.clone().unwrap_or_default(),
                eni: None,
                is_eni_detached: false,
                times: Timestamps {
                    created_at: now,
                    ..Timestamps::default()
                },
                stop_code: None,
                stopped_reason: None,
                started_by: run.started_by.clone(),
                group: run
                    .group
                    .clone()
                    .unwrap_or_else(|| format!("family:{}", td.family)),
                launch_type: launch_type.clone(),
                cpu: cpu.clone(),
                memory: memory.clone(),
                overrides: overrides.clone(),
                tags: tags.clone(),
                version: 1,
                log_limits: self.seams.log_limits,
                credentials_id: match &task_role_arn {
                    Some(_) => Some(random_hex(16).map_err(|e| {
                        ApiError::new(
                            crate::api::error::ErrorType::ServerException,
                            format!("random credentials id: {e}"),
                        )
                    })?),
                    None => None,
                },
                task_role_arn: task_role_arn.clone(),
            });
        }
        self.store
            .insert_tasks(&records, run.client_token.as_deref(), now)?;
        let tasks: Vec<Value> = records
            .iter()
            .map(|t| shapes::task(&self.arns, t, false))
            .collect();
        for t in records {
            tracing::info!(task = %t.id, family = %t.family, revision = t.revision, "task created");
            self.supervise(t);
        }
        Ok(json!({"tasks": tasks, "failures": []}))
    }

    /// StopTask: the supervisor records desired STOPPED and answers with the task; the
    /// engine does not wait for that answer itself (a supervisor may be in the middle of a
    /// long step), a helper task relays it to the caller.
    pub(super) async fn stop_task(
        &mut self,
        cluster: &str,
        id: &str,
        reason: Option<String>,
        reply: Reply,
    ) {
        let not_found = || ApiError::invalid("The referenced task was not found.");
        let found = self.active_cluster(cluster).and_then(|()| {
            self.store
                .task(id)?
                .filter(|t| t.cluster == cluster)
                .ok_or_else(not_found)
        });
        let task = match found {
            Ok(t) => t,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let arns = self.arns.clone();
        let answer = move |t: &TaskRecord| Ok(json!({"task": shapes::task(&arns, t, false)}));
        let Some(tx) = self.supervisors.get(id).cloned() else {
            // Already stopped (or stopping with no supervisor left): StopTask is idempotent.
            let _ = reply.send(answer(&task));
            return;
        };
        let (sup_reply, rx) = oneshot::channel();
        if tx
            .try_send(TaskCmd::Stop {
                reason,
                reply: sup_reply,
            })
            .is_err()
        {
            let _ = reply.send(answer(&task));
            return;
        }
        self.relays.spawn(async move {
            let t = rx.await.unwrap_or(task);
            let _ = reply.send(answer(&t));
        });
    }

    pub(super) fn describe_tasks(
        &self,
        cluster: &str,
        ids: &[(String, String)],
        include_tags: bool,
    ) -> Result<Value, ApiError> {
        self.active_cluster(cluster)?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for (given, id) in ids {
            match self.store.task(id)?.filter(|t| t.cluster == cluster) {
                Some(t) => {
                    let mut shape = shapes::task(&self.arns, &t, include_tags);
                    if let Some(at) = self.seams.runtime.location() {
                        shapes::add_berth_runtime(&mut shape, &at);
                    }
                    tasks.push(shape);
                }
                None => {
                    let arn = if given.starts_with("arn:") {
                        given.clone()
                    } else {
                        self.arns.task(cluster, id)
                    };
                    failures.push(shapes::failure(&arn, "MISSING"));
                }
            }
        }
        Ok(json!({"tasks": tasks, "failures": failures}))
    }

    pub(super) fn list_tasks(&self, filter: &TaskFilter, page: Page) -> Result<Value, ApiError> {
        self.active_cluster(&filter.cluster)?;
        let ids = self.store.task_ids(filter)?;
        let arns: Vec<String> = ids
            .iter()
            .map(|id| self.arns.task(&filter.cluster, id))
            .collect();
        let (items, token) = paged(&arns, page);
        let mut out = json!({"taskArns": items});
        if let Some(t) = token {
            out["nextToken"] = json!(t);
        }
        Ok(out)
    }
}

fn launch_type(run: &RunTaskCmd, td: &TaskDefRecord) -> Result<String, ApiError> {
    let is_fargate_ok = td.compatibilities.iter().any(|c| c == "FARGATE");
    match run.launch_type.as_deref() {
        Some("FARGATE") if !is_fargate_ok => Err(ApiError::invalid(format!(
            "Task definition does not support launch_type FARGATE. ({}:{} was not registered with FARGATE in requiresCompatibilities)",
            td.family, td.revision
        ))),
        Some(lt) => Ok(lt.to_owned()),
        None if is_fargate_ok => Ok("FARGATE".into()),
        None => Ok("EC2".into()),
    }
}

/// The task's cpu/memory strings: the definition's, or RunTask's overrides (valid Fargate
/// sizes on FARGATE).
fn task_size(
    run: &RunTaskCmd,
    td: &TaskDefRecord,
    launch_type: &str,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let cpu =
        match &run.overrides.cpu {
            Some(t) => Some(parse_cpu_units(t).ok_or_else(|| {
                ApiError::invalid(format!("overrides.cpu: '{t}' is not CPU units"))
            })?),
            None => td.body.cpu.as_deref().and_then(parse_cpu_units),
        };
    let memory = match &run.overrides.memory {
        Some(t) => Some(
            parse_memory_mib(t)
                .ok_or_else(|| ApiError::invalid(format!("overrides.memory: '{t}' is not MiB")))?,
        ),
        None => td.body.memory.as_deref().and_then(parse_memory_mib),
    };
    if launch_type == "FARGATE" && (run.overrides.cpu.is_some() || run.overrides.memory.is_some()) {
        let fits = matches!((cpu, memory), (Some(c), Some(m)) if is_fargate_size(c, m));
        if !fits {
            return Err(ApiError::client("Invalid 'cpu' setting for task. (overrides.cpu/overrides.memory is not a Fargate size)"));
        }
    }
    Ok((cpu.map(|c| c.to_string()), memory.map(|m| m.to_string())))
}
