//! ARNs in AWS's format, and the names/ids/ARNs a request may use for the same object.

use super::error::ApiError;

/// Region and account the ARNs carry (configurable: `region`, `account_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    /// e.g. `us-east-1`.
    pub region: String,
    /// 12 digits.
    pub account: String,
}

impl Default for Arns {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }
}

/// A taggable resource named by its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `cluster/NAME`.
    Cluster(String),
    /// `task/CLUSTER/ID` (or the old `task/ID`).
    Task {
        /// The cluster the ARN names, if any.
        cluster: Option<String>,
        /// Task id.
        id: String,
    },
    /// `task-definition/FAMILY:REV`.
    TaskDefinition {
        /// Family.
        family: String,
        /// Revision.
        revision: i64,
    },
}

impl Arns {
    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}", self.region, self.account)
    }
    /// `arn:aws:ecs:R:A:cluster/NAME`.
    pub fn cluster(&self, name: &str) -> String {
        format!("{}:cluster/{name}", self.prefix())
    }
    /// `arn:aws:ecs:R:A:task/CLUSTER/ID`.
    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}:task/{cluster}/{id}", self.prefix())
    }
    /// `arn:aws:ecs:R:A:container/CLUSTER/TASK/UUID`.
    pub fn container(&self, cluster: &str, task: &str, uuid: &str) -> String {
        format!("{}:container/{cluster}/{task}/{uuid}", self.prefix())
    }
    /// `arn:aws:ecs:R:A:task-definition/FAMILY:REV`.
    pub fn task_definition(&self, family: &str, revision: i64) -> String {
        format!("{}:task-definition/{family}:{revision}", self.prefix())
    }

    /// The resource part (`cluster/NAME`) of an ECS ARN of this region and account.
    fn resource<'a>(&self, arn: &'a str) -> Result<&'a str, ApiError> {
        let prefix = format!("{}:", self.prefix());
        arn.strip_prefix(&prefix).ok_or_else(|| {
            ApiError::invalid(format!(
                "'{arn}' is not an ECS ARN of region {} and account {}",
                self.region, self.account
            ))
        })
    }

    /// A cluster named by short name or ARN; `None` → `default`.
    pub fn cluster_name(&self, given: Option<&str>) -> Result<String, ApiError> {
        let Some(given) = given.filter(|g| !g.is_empty()) else {
            return Ok(crate::store::DEFAULT_CLUSTER.into());
        };
        if given.starts_with("arn:") {
            let res = self.resource(given)?;
            return res
                .strip_prefix("cluster/")
                .map(str::to_owned)
                .ok_or_else(|| ApiError::invalid(format!("'{given}' is not a cluster ARN")));
        }
        Ok(given.to_owned())
    }

    /// A task named by id or ARN (long `task/CLUSTER/ID` or short `task/ID` form): its id,
    /// and the cluster the ARN names, if any.
    pub fn task_id(&self, given: &str) -> Result<(String, Option<String>), ApiError> {
        if given.starts_with("arn:") {
            let res = self.resource(given)?;
            let parts: Vec<&str> = res.split('/').collect();
            return match parts.as_slice() {
                ["task", cluster, id] => Ok(((*id).to_owned(), Some((*cluster).to_owned()))),
                ["task", id] => Ok(((*id).to_owned(), None)),
                _ => Err(ApiError::invalid(format!("'{given}' is not a task ARN"))),
            };
        }
        Ok((given.to_owned(), None))
    }

    /// The resource a TagResource/UntagResource/ListTagsForResource ARN names.
    pub fn resource_ref(&self, arn: &str) -> Result<Resource, ApiError> {
        if !arn.starts_with("arn:") {
            return Err(ApiError::invalid(format!(
                "resourceArn: '{arn}' is not an ARN"
            )));
        }
        let res = self.resource(arn)?;
        if res.starts_with("cluster/") {
            return Ok(Resource::Cluster(self.cluster_name(Some(arn))?));
        }
        if res.starts_with("task/") {
            let (id, cluster) = self.task_id(arn)?;
            return Ok(Resource::Task { cluster, id });
        }
        if res.starts_with("task-definition/") {
            return match self.task_definition_ref(arn)? {
                (family, Some(revision)) => Ok(Resource::TaskDefinition { family, revision }),
                (_, None) => Err(ApiError::invalid(format!(
                    "resourceArn: '{arn}' names no revision (task-definition/FAMILY:REVISION)"
                ))),
            };
        }
        Err(ApiError::invalid(format!(
            "resourceArn: '{arn}': berth tags clusters, tasks and task definitions only"
        )))
    }

    /// A task definition named by `family`, `family:revision` or ARN.
    pub fn task_definition_ref(&self, given: &str) -> Result<(String, Option<i64>), ApiError> {
        let text = if given.starts_with("arn:") {
            self.resource(given)?
                .strip_prefix("task-definition/")
                .ok_or_else(|| {
                    ApiError::invalid(format!("'{given}' is not a task definition ARN"))
                })?
        } else {
            given
        };
        match text.split_once(':') {
            None if !text.is_empty() => Ok((text.to_owned(), None)),
            Some((family, rev)) => rev
                .parse::<i64>()
                .ok()
                .filter(|r| *r > 0)
                .map(|r| (family.to_owned(), Some(r)))
                .ok_or_else(|| ApiError::client(format!("Invalid revision number. Number: {rev}"))),
            None => Err(ApiError::client("taskDefinition can not be blank.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let a = Arns::default();
        assert_eq!(
            a.cluster("demo"),
            "arn:aws:ecs:us-east-1:123456789012:cluster/demo"
        );
        assert_eq!(
            a.task("demo", "ab12"),
            "arn:aws:ecs:us-east-1:123456789012:task/demo/ab12"
        );
        assert_eq!(
            a.task_definition("web-app", 3),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web-app:3"
        );
    }

    #[test]
    fn resources() {
        let a = Arns::default();
        assert_eq!(
            a.resource_ref(&a.cluster("demo")).unwrap(),
            Resource::Cluster("demo".into())
        );
        assert_eq!(
            a.resource_ref(&a.task("demo", "ab")).unwrap(),
            Resource::Task {
                cluster: Some("demo".into()),
                id: "ab".into()
            }
        );
        assert_eq!(
            a.resource_ref(&a.task_definition("web", 2)).unwrap(),
            Resource::TaskDefinition {
                family: "web".into(),
                revision: 2
            }
        );
        for bad in [
            "demo",
            "arn:aws:ecs:us-east-1:123456789012:service/demo/web",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web",
            "arn:aws:ecs:eu-west-1:123456789012:cluster/demo",
        ] {
            assert!(a.resource_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        let a = Arns::default();
        assert_eq!(a.cluster_name(None).unwrap(), "default");
        assert_eq!(a.cluster_name(Some(&a.cluster("x"))).unwrap(), "x");
        assert_eq!(a.task_id("abc").unwrap(), ("abc".into(), None));
        assert_eq!(
            a.task_id(&a.task("c", "abc")).unwrap(),
            ("abc".into(), Some("c".into()))
        );
        assert!(a
            .task_id("arn:aws:ecs:eu-west-1:123456789012:task/c/abc")
            .is_err());
        assert_eq!(a.task_definition_ref("web").unwrap(), ("web".into(), None));
        assert_eq!(
            a.task_definition_ref("web:2").unwrap(),
            ("web".into(), Some(2))
        );
        assert_eq!(
            a.task_definition_ref(&a.task_definition("web", 7)).unwrap(),
            ("web".into(), Some(7))
        );
        assert!(a
            .task_definition_ref("web:x")
            .unwrap_err()
            .message
            .contains("Invalid revision"));
    }
}
