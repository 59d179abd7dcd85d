//! The typed commands the API hands to the engine, one per ECS action. Everything in them is
//! already parsed and validated; the engine only checks what needs state (does the cluster
//! exist, which revision is latest).

use crate::api::arn::Resource;
use crate::api::requests::TaskOverride;
use crate::model::NetworkRequest;
use crate::store::TaskFilter;
use crate::taskdef::wire::Tag;
use crate::taskdef::TaskDefinitionSpec;

/// A page of a List call: skip `offset`, return at most `max` (1–100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// From the decoded `nextToken`.
    pub offset: usize,
    /// `maxResults`, default 100.
    pub max: usize,
}

/// RunTask, validated.
#[derive(Debug, Clone)]
pub struct RunTaskCmd {
    /// Cluster name.
    pub cluster: String,
    /// Family.
    pub family: String,
    /// Revision, or the latest ACTIVE.
    pub revision: Option<i64>,
    /// 1–10.
    pub count: usize,
    /// `FARGATE`, `EC2`, or chosen from the definition.
    pub launch_type: Option<String>,
    /// awsvpcConfiguration.
    pub network: Option<NetworkRequest>,
    /// Overrides as sent.
    pub overrides: TaskOverride,
    /// startedBy.
    pub started_by: Option<String>,
    /// group.
    pub group: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Idempotency token.
    pub client_token: Option<String>,
    /// `propagateTags: TASK_DEFINITION`: the definition's tags go onto the tasks too.
    pub propagate_definition_tags: bool,
}

/// One ECS action.
#[derive(Debug, Clone)]
pub enum Command {
    /// RegisterTaskDefinition.
    RegisterTaskDefinition(Box<TaskDefinitionSpec>),
    /// DeregisterTaskDefinition.
    DeregisterTaskDefinition {
        /// Family.
        family: String,
        /// Revision (required by ECS).
        revision: i64,
    },
    /// DescribeTaskDefinition.
    DescribeTaskDefinition {
        /// Family.
        family: String,
        /// Revision, or latest ACTIVE.
        revision: Option<i64>,
        /// `include: ["TAGS"]`.
        include_tags: bool,
    },
    /// ListTaskDefinitions.
    ListTaskDefinitions {
        /// The exact family.
        family: Option<String>,
        /// `ACTIVE` (default) or `INACTIVE`.
        status: String,
        /// `sort: DESC`.
        descending: bool,
        /// Page.
        page: Page,
    },
    /// ListTaskDefinitionFamilies.
    ListTaskDefinitionFamilies {
        /// Prefix.
        prefix: Option<String>,
        /// `ACTIVE`, `INACTIVE`, or any (`ALL`).
        status: Option<String>,
        /// Page.
        page: Page,
    },
    /// CreateCluster.
    CreateCluster {
        /// Name (`default` when omitted).
        name: String,
        /// Tags.
        tags: Vec<Tag>,
    },
    /// DescribeClusters.
    DescribeClusters {
        /// Names (resolved from names or ARNs); `default` when none given.
        names: Vec<(String, String)>,
        /// `include: ["TAGS"]`.
        include_tags: bool,
    },
    /// ListClusters.
    ListClusters {
        /// Page.
        page: Page,
    },
    /// DeleteCluster.
    DeleteCluster {
        /// Name.
        name: String,
    },
    /// RunTask.
    RunTask(Box<RunTaskCmd>),
    /// StopTask.
    StopTask {
        /// Cluster name.
        cluster: String,
        /// Task id.
        task: String,
        /// `reason`, or AWS's default.
        reason: Option<String>,
    },
    /// DescribeTasks.
    DescribeTasks {
        /// Cluster name.
        cluster: String,
        /// (as given, id) pairs.
        tasks: Vec<(String, String)>,
        /// `include: ["TAGS"]`.
        include_tags: bool,
    },
    /// ListTasks.
    ListTasks {
        /// Filters.
        filter: TaskFilter,
        /// Page.
        page: Page,
    },
    /// TagResource.
    TagResource {
        /// What to tag.
        resource: Resource,
        /// Tags to add or replace.
        tags: Vec<Tag>,
    },
    /// UntagResource.
    UntagResource {
        /// What to untag.
        resource: Resource,
        /// Keys to remove.
        keys: Vec<String>,
    },
    /// ListTagsForResource.
    ListTagsForResource {
        /// Whose tags.
        resource: Resource,
    },
}
