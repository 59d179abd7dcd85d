//! Tags changed after creation (TagResource/UntagResource). Clusters and task definitions keep
//! theirs in their own row; a task's go to `task_tags`, because the task row belongs to its
//! supervisor (the only writer of the record), and [`Store::task`] lays them over the record.

use super::{from_json, query, to_json, Store, StoreError};
use crate::taskdef::wire::Tag;
use rusqlite::{params, OptionalExtension};

impl Store {
    /// Replace a cluster's tags.
    pub fn set_cluster_tags(&self, name: &str, tags: &[Tag]) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "UPDATE clusters SET tags = ?2 WHERE name = ?1",
                params![name, to_json(tags, "cluster tags")?],
            )
            .map_err(query(format!("tag cluster {name}")))?;
        Ok(())
    }

    /// Replace a task definition revision's tags.
    pub fn set_task_definition_tags(
        &self,
        family: &str,
        revision: i64,
        tags: &[Tag],
    ) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "UPDATE task_definitions SET tags = ?3 WHERE family = ?1 AND revision = ?2",
                params![family, revision, to_json(tags, "tags")?],
            )
            .map_err(query(format!("tag task definition {family}:{revision}")))?;
        Ok(())
    }

    /// Replace a task's tags.
    pub fn set_task_tags(&self, id: &str, tags: &[Tag]) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "INSERT INTO task_tags (id, tags) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET tags = excluded.tags",
                params![id, to_json(tags, "task tags")?],
            )
            .map_err(query(format!("tag task {id}")))?;
        Ok(())
    }

    /// A task's tags as changed by TagResource/UntagResource, if ever.
    pub(super) fn task_tags(
        conn: &rusqlite::Connection,
        id: &str,
    ) -> Result<Option<Vec<Tag>>, StoreError> {
        let row: Option<String> = conn
            .query_row(
                "SELECT tags FROM task_tags WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(query(format!("read tags of task {id}")))?;
        row.map(|t| from_json(&t, &format!("tags of task {id}")))
            .transpose()
    }
}
