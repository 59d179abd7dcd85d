//! Task-definition and cluster actions.

use super::command::{Command, Page};
use super::Engine;
use crate::api::error::{ApiError, ErrorType};
use crate::api::{next_token, shapes};
use crate::model::now_epoch;
use serde_json::{json, Value};

/// One page of `items`.
pub(super) fn paged<T: Clone>(items: &[T], page: Page) -> (Vec<T>, Option<String>) {
    let slice = items
        .iter()
        .skip(page.offset)
        .take(page.max)
        .cloned()
        .collect();
    (slice, next_token(page, items.len()))
}

fn with_token(mut v: Value, token: Option<String>) -> Value {
    if let Some(t) = token {
        v["nextToken"] = json!(t);
    }
    v
}

impl Engine {
    pub(super) fn handle_definitions(&mut self, cmd: Command) -> Result<Value, ApiError> {
        let arns = self.arns.clone();
        match cmd {
            Command::RegisterTaskDefinition(spec) => {
                for w in &spec.warnings {
                    tracing::warn!(family = %spec.body.family, warning = %w, "task definition accepted with a caveat");
                }
                let td = self.store.register_task_definition(&spec, now_epoch())?;
                tracing::info!(family = %td.family, revision = td.revision, "task definition registered");
                let mut out = json!({"taskDefinition": shapes::task_definition(&arns, &td)});
                if !td.tags.is_empty() {
                    out["tags"] = shapes::tags(&td.tags);
                }
                Ok(out)
            }
            Command::DeregisterTaskDefinition { family, revision } => {
                if self
                    .store
                    .task_definition(&family, Some(revision))?
                    .is_none()
                {
                    return Err(ApiError::client(
                        "The specified task definition does not exist.",
                    ));
                }
                self.store
                    .deregister_task_definition(&family, revision, now_epoch())?;
                let td = self.store.task_definition(&family, Some(revision))?;
                let td = td.ok_or_else(|| {
                    ApiError::client("The specified task definition does not exist.")
                })?;
                Ok(json!({"taskDefinition": shapes::task_definition(&arns, &td)}))
            }
            Command::DescribeTaskDefinition {
                family,
                revision,
                include_tags,
            } => {
                let td = self
                    .store
                    .task_definition(&family, revision)?
                    .ok_or_else(|| ApiError::client("Unable to describe task definition."))?;
                let mut out = json!({"taskDefinition": shapes::task_definition(&arns, &td)});
                if include_tags {
                    out["tags"] = shapes::tags(&td.tags);
                }
                Ok(out)
            }
            Command::ListTaskDefinitions {
                family,
                status,
                descending,
                page,
            } => {
                let all = self
                    .store
                    .task_definitions(family.as_deref(), &status, descending)?;
                let arns_list: Vec<String> = all
                    .iter()
                    .map(|(f, r)| arns.task_definition(f, *r))
                    .collect();
                let (items, token) = paged(&arns_list, page);
                Ok(with_token(json!({"taskDefinitionArns": items}), token))
            }
            Command::ListTaskDefinitionFamilies {
                prefix,
                status,
                page,
            } => {
                let all = self.store.families(prefix.as_deref(), status.as_deref())?;
                let (items, token) = paged(&all, page);
                Ok(with_token(json!({"families": items}), token))
            }
            Command::CreateCluster { name, tags } => {
                let c = self.store.create_cluster(&name, &tags, now_epoch())?;
                let (running, pending) = self.store.task_counts(&name)?;
                Ok(json!({"cluster": shapes::cluster(&arns, &c, running, pending, true)}))
            }
            Command::DescribeClusters {
                names,
                include_tags,
            } => {
                let mut clusters = Vec::new();
                let mut failures = Vec::new();
                for (name, given) in names {
                    match self.store.cluster(&name)? {
                        Some(c) if c.status == "ACTIVE" => {
                            let (running, pending) = self.store.task_counts(&name)?;
                            clusters.push(shapes::cluster(
                                &arns,
                                &c,
                                running,
                                pending,
                                include_tags,
                            ));
                        }
                        Some(c) => clusters.push(shapes::cluster(&arns, &c, 0, 0, include_tags)),
                        None => {
                            let arn = if given.starts_with("arn:") {
                                given
                            } else {
                                arns.cluster(&name)
                            };
                            failures.push(shapes::failure(&arn, "MISSING"));
                        }
                    }
                }
                Ok(json!({"clusters": clusters, "failures": failures}))
            }
            Command::ListClusters { page } => {
                let all: Vec<String> = self
                    .store
                    .clusters()?
                    .iter()
                    .map(|n| arns.cluster(n))
                    .collect();
                let (items, token) = paged(&all, page);
                Ok(with_token(json!({"clusterArns": items}), token))
            }
            Command::DeleteCluster { name } => {
                let c = match self.store.cluster(&name)? {
                    Some(c) if c.status == "ACTIVE" => c,
                    _ => return Err(ApiError::cluster_not_found()),
                };
                if self.store.has_active_tasks(&name)? {
                    return Err(ApiError::new(
                        ErrorType::ClusterContainsTasksException,
                        "The Cluster cannot be deleted while Tasks are active.",
                    ));
                }
                self.store.deactivate_cluster(&name)?;
                let mut c = c;
                c.status = "INACTIVE".into();
                Ok(json!({"cluster": shapes::cluster(&arns, &c, 0, 0, true)}))
            }
            other => Err(ApiError::new(
                ErrorType::ServerException,
                format!("misrouted command {other:?}"),
            )),
        }
    }
}
