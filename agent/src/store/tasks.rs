//! Task rows: one write transaction per transition.

use super::{from_json, query, to_json, Store, StoreError};
use crate::model::{DesiredStatus, TaskRecord, TaskStatus};
use rusqlite::{params, OptionalExtension, Transaction};

/// ListTasks' filters.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Cluster name.
    pub cluster: String,
    /// Family.
    pub family: Option<String>,
    /// Desired status.
    pub desired: Option<DesiredStatus>,
    /// startedBy.
    pub started_by: Option<String>,
}

fn upsert(tx: &Transaction<'_>, t: &TaskRecord) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO tasks (id, cluster, family, desired, last_status, started_by, created_at, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(id) DO UPDATE SET desired = excluded.desired,
           last_status = excluded.last_status, record = excluded.record",
        params![
            t.id,
            t.cluster,
            t.family,
            t.desired.as_str(),
            t.last_status.as_str(),
            t.started_by,
            t.times.created_at,
            to_json(t, "task")?
        ],
    )
    .map_err(query(format!("write task {}", t.id)))?;
    Ok(())
}

impl Store {
    /// Insert RunTask's new tasks, and remember `client_token` → their ids, in one transaction.
    pub fn insert_tasks(
        &self,
        tasks: &[TaskRecord],
        client_token: Option<&str>,
        now: f64,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(query("insert tasks".into()))?;
        for t in tasks {
            upsert(&tx, t)?;
        }
        if let (Some(token), Some(first)) = (client_token, tasks.first()) {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            tx.execute(
                "INSERT INTO client_tokens (token, cluster, task_ids, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![token, first.cluster, to_json(&ids, "task ids")?, now],
            )
            .map_err(query(format!("record client token {token}")))?;
        }
        tx.commit().map_err(query("insert tasks".into()))?;
        Ok(())
    }

    /// The task ids a RunTask `clientToken` already produced, with their cluster.
    pub fn client_token(&self, token: &str) -> Result<Option<(String, Vec<String>)>, StoreError> {
        let conn = self.lock()?;
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT cluster, task_ids FROM client_tokens WHERE token = ?1",
                params![token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(query(format!("read client token {token}")))?;
        row.map(|(cluster, ids)| Ok((cluster, from_json(&ids, "task ids")?)))
            .transpose()
    }

    /// Write one transition of one task.
    pub fn put_task(&self, task: &TaskRecord) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn
            .transaction()
            .map_err(query(format!("write task {}", task.id)))?;
        upsert(&tx, task)?;
        tx.commit()
            .map_err(query(format!("write task {}", task.id)))?;
        Ok(())
    }

    /// A task by id.
    pub fn task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        let conn = self.lock()?;
        let record: Option<String> = conn
            .query_row("SELECT record FROM tasks WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(query(format!("read task {id}")))?;
        let Some(record) = record else {
            return Ok(None);
        };
        let mut task: TaskRecord = from_json(&record, &format!("task {id}"))?;
        if let Some(tags) = Store::task_tags(&conn, id)? {
            task.tags = tags;
        }
        Ok(Some(task))
    }

    /// Task ids matching `filter`, oldest first.
    pub fn task_ids(&self, filter: &TaskFilter) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare(
                "SELECT id FROM tasks WHERE cluster = ?1 AND (?2 IS NULL OR family = ?2)
                 AND (?3 IS NULL OR desired = ?3) AND (?4 IS NULL OR started_by = ?4)
                 ORDER BY created_at, id",
            )
            .map_err(query("list tasks".into()))?;
        let rows = stmt
            .query_map(
                params![
                    filter.cluster,
                    filter.family,
                    filter.desired.map(DesiredStatus::as_str),
                    filter.started_by
                ],
                |r| r.get(0),
            )
            .and_then(Iterator::collect)
            .map_err(query("list tasks".into()))?;
        Ok(rows)
    }

    /// Tasks not yet STOPPED: what a restarted agent must supervise again.
    pub fn unfinished_tasks(&self) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare(
                "SELECT id, record FROM tasks WHERE last_status != 'STOPPED' ORDER BY created_at",
            )
            .map_err(query("list unfinished tasks".into()))?;
        let rows: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(query("list unfinished tasks".into()))?;
        rows.iter()
            .map(|(id, r)| from_json(r, &format!("task {id}")))
            .collect()
    }

    /// (running, pending) task counts of a cluster, as DescribeClusters shows them.
    pub fn task_counts(&self, cluster: &str) -> Result<(i64, i64), StoreError> {
        let conn = self.lock()?;
        let count = |status_sql: &str| -> Result<i64, StoreError> {
            conn.query_row(
                &format!("SELECT COUNT(*) FROM tasks WHERE cluster = ?1 AND {status_sql}"),
                params![cluster],
                |r| r.get(0),
            )
            .map_err(query(format!("count tasks of {cluster}")))
        };
        let running = count("last_status = 'RUNNING'")?;
        let pending = count(&format!(
            "last_status IN ('{}', '{}', '{}')",
            TaskStatus::Provisioning.as_str(),
            TaskStatus::Pending.as_str(),
            TaskStatus::Activating.as_str()
        ))?;
        Ok((running, pending))
    }

    /// Whether a cluster has tasks that are not STOPPED.
    pub fn has_active_tasks(&self, cluster: &str) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM tasks WHERE cluster = ?1 AND last_status != 'STOPPED'",
                params![cluster],
                |r| r.get(0),
            )
            .map_err(query(format!("count tasks of {cluster}")))?;
        Ok(n > 0)
    }
}
