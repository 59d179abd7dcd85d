//! TagResource, UntagResource, ListTagsForResource on clusters, tasks and task definitions.
//! The engine handles one command at a time, so each read-modify-write of a tag list is whole.

use super::command::Command;
use super::Engine;
use crate::api::arn::Resource;
use crate::api::error::{ApiError, ErrorType};
use crate::api::shapes;
use crate::taskdef::wire::Tag;
use serde_json::{json, Value};

/// ECS's limit of tags per resource.
const MAX_TAGS: usize = 50;

/// `base` with `add` applied: a key already there takes the new value, new keys go last.
pub(super) fn merge(base: &[Tag], add: &[Tag]) -> Vec<Tag> {
    let mut out = base.to_vec();
    for t in add {
        match out.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value.clone_from(&t.value),
            None => out.push(t.clone()),
        }
    }
    out
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        ErrorType::ResourceNotFoundException,
        format!("The specified resource could not be found: {what}"),
    )
}

impl Engine {
    pub(super) fn handle_tags(&mut self, cmd: Command) -> Result<Value, ApiError> {
        match cmd {
            Command::ListTagsForResource { resource } => {
                Ok(json!({"tags": shapes::tags(&self.tags_of(&resource)?)}))
            }
            Command::TagResource { resource, tags } => {
                let merged = merge(&self.tags_of(&resource)?, &tags);
                if merged.len() > MAX_TAGS {
                    return Err(ApiError::invalid(format!(
                        "tags: a resource has at most {MAX_TAGS} tags ({} after this request)",
                        merged.len()
                    )));
                }
                self.set_tags(&resource, &merged)?;
                Ok(json!({}))
            }
            Command::UntagResource { resource, keys } => {
                let mut tags = self.tags_of(&resource)?;
                tags.retain(|t| !keys.contains(&t.key));
                self.set_tags(&resource, &tags)?;
                Ok(json!({}))
            }
            other => Err(ApiError::new(
                ErrorType::ServerException,
                format!("misrouted command {other:?}"),
            )),
        }
    }

    /// The current tags, or the error ECS gives for a resource that is not there.
    fn tags_of(&self, resource: &Resource) -> Result<Vec<Tag>, ApiError> {
        match resource {
            Resource::Cluster(name) => match self.store.cluster(name)? {
                Some(c) if c.status == "ACTIVE" => Ok(c.tags),
                _ => Err(ApiError::cluster_not_found()),
            },
            Resource::TaskDefinition { family, revision } => self
                .store
                .task_definition(family, Some(*revision))?
                .map(|td| td.tags)
                .ok_or_else(|| not_found(&format!("task definition {family}:{revision}"))),
            Resource::Task { cluster, id } => {
                if let Some(c) = cluster {
                    if !matches!(self.store.cluster(c)?, Some(r) if r.status == "ACTIVE") {
                        return Err(ApiError::cluster_not_found());
                    }
                }
                self.store
                    .task(id)?
                    .filter(|t| cluster.as_ref().is_none_or(|c| *c == t.cluster))
                    .map(|t| t.tags)
                    .ok_or_else(|| not_found(&format!("task {id}")))
            }
        }
    }

    fn set_tags(&self, resource: &Resource, tags: &[Tag]) -> Result<(), ApiError> {
        match resource {
            Resource::Cluster(name) => self.store.set_cluster_tags(name, tags)?,
            Resource::TaskDefinition { family, revision } => {
                self.store
                    .set_task_definition_tags(family, *revision, tags)?;
            }
            Resource::Task { id, .. } => self.store.set_task_tags(id, tags)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn merge_replaces_and_appends() {
        assert_eq!(
            merge(&[t("a", "1"), t("b", "2")], &[t("b", "3"), t("c", "4")]),
            vec![t("a", "1"), t("b", "3"), t("c", "4")]
        );
    }
}
