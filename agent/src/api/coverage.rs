//! What the ECS API accepts, read from the code itself: the actions the dispatcher serves and,
//! for each request shape, the members its serde type knows (`deny_unknown_fields`, so that is
//! exactly what a request may carry). docs/ecs-api.md's tables are checked against this by
//! `coverage::tests`, together with a request per refused member that must be refused by name,
//! so the document cannot drift from the code.

use super::requests;
use crate::taskdef::wire;
use serde::de::{self, Visitor};
use serde::Deserialize;

/// One request shape: its name in the docs, the members serde accepts, and those of them
/// berth refuses by name (ECS knows them; berth cannot honour them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// `RunTask`, `RunTask.overrides`, `RegisterTaskDefinition.containerDefinitions[]`, …
    pub name: &'static str,
    /// Every member the request type accepts.
    pub members: &'static [&'static str],
    /// Members refused by name when set.
    pub refused: &'static [&'static str],
}

/// A Deserializer that only records the member list serde's derive hands to
/// `deserialize_struct`, then stops.
struct Introspect<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for Introspect<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("introspected"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The members of a derived request type, as their JSON names.
pub fn members<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut fields));
    fields
}

/// RunTask members refused by name (see `parse_run_task`).
pub const RUN_TASK_REFUSED: &[&str] = &[
    "capacityProviderStrategy",
    "placementConstraints",
    "placementStrategy",
    "volumeConfigurations",
    "enableExecuteCommand",
    "enableECSManagedTags",
    "referenceId",
];
/// `overrides` members refused by name.
pub const TASK_OVERRIDE_REFUSED: &[&str] = &["ephemeralStorage", "inferenceAcceleratorOverrides"];
/// `overrides.containerOverrides[]` members refused by name.
pub const CONTAINER_OVERRIDE_REFUSED: &[&str] = &[
    "cpu",
    "memory",
    "memoryReservation",
    "environmentFiles",
    "resourceRequirements",
];
/// CreateCluster members refused by name.
pub const CREATE_CLUSTER_REFUSED: &[&str] = &[
    "settings",
    "configuration",
    "capacityProviders",
    "defaultCapacityProviderStrategy",
    "serviceConnectDefaults",
];
/// ListTasks members refused by name.
pub const LIST_TASKS_REFUSED: &[&str] = &["containerInstance", "serviceName", "daemonName"];

/// Every request shape the API parses, by action (nested shapes after their action).
pub fn shapes() -> Vec<Shape> {
    fn s<'de, T: Deserialize<'de>>(name: &'static str, refused: &'static [&'static str]) -> Shape {
        Shape {
            name,
            members: members::<T>(),
            refused,
        }
    }
    vec![
        s::<wire::RegisterTaskDefinitionRequest>("RegisterTaskDefinition", &[]),
        s::<wire::ContainerDefinition>("RegisterTaskDefinition.containerDefinitions[]", &[]),
        s::<requests::DeregisterTaskDefinition>("DeregisterTaskDefinition", &[]),
        s::<requests::DescribeTaskDefinition>("DescribeTaskDefinition", &[]),
        s::<requests::ListTaskDefinitions>("ListTaskDefinitions", &[]),
        s::<requests::ListTaskDefinitionFamilies>("ListTaskDefinitionFamilies", &[]),
        s::<requests::CreateCluster>("CreateCluster", CREATE_CLUSTER_REFUSED),
        s::<requests::DescribeClusters>("DescribeClusters", &[]),
        s::<requests::ListClusters>("ListClusters", &[]),
        s::<requests::DeleteCluster>("DeleteCluster", &[]),
        s::<requests::RunTask>("RunTask", RUN_TASK_REFUSED),
        s::<requests::NetworkConfiguration>("RunTask.networkConfiguration", &[]),
        s::<requests::AwsVpcConfiguration>("RunTask.networkConfiguration.awsvpcConfiguration", &[]),
        s::<requests::TaskOverride>("RunTask.overrides", TASK_OVERRIDE_REFUSED),
        s::<requests::ContainerOverride>(
            "RunTask.overrides.containerOverrides[]",
            CONTAINER_OVERRIDE_REFUSED,
        ),
        s::<requests::StopTask>("StopTask", &[]),
        s::<requests::DescribeTasks>("DescribeTasks", &[]),
        s::<requests::ListTasks>("ListTasks", LIST_TASKS_REFUSED),
        s::<requests::TagResource>("TagResource", &[]),
        s::<requests::UntagResource>("UntagResource", &[]),
        s::<requests::ListTagsForResource>("ListTagsForResource", &[]),
    ]
}

#[cfg(test)]
#[path = "coverage_tests.rs"]
pub(crate) mod tests;
