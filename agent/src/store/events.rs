//! The recent task state-change events (`berth events`), kept so they survive an agent
//! restart: one row per event, its JSON line as written, trimmed to the newest few thousand.

use super::{query, Store, StoreError};
use rusqlite::params;

/// How many events the table keeps (the newest); older rows are deleted as new ones come.
pub const KEPT_EVENTS: i64 = 5000;

impl Store {
    /// Append event `seq` of `task`.
    pub fn append_event(&self, seq: i64, task: &str, line: &str) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT OR REPLACE INTO events (seq, task, line) VALUES (?1, ?2, ?3)",
            params![seq, task, line],
        )
        .map_err(query(format!("append event {seq}")))?;
        // Trim now and then rather than on every insert.
        if seq % 100 == 0 {
            conn.execute(
                "DELETE FROM events WHERE seq <= ?1",
                params![seq - KEPT_EVENTS],
            )
            .map_err(query("trim events".into()))?;
        }
        Ok(())
    }

    /// The newest `limit` events, oldest first: `(seq, line)`.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare("SELECT seq, line FROM events ORDER BY seq DESC LIMIT ?1")
            .map_err(query("read events".into()))?;
        let rows = stmt
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(query("read events".into()))?;
        let mut out = rows
            .collect::<Result<Vec<(i64, String)>, _>>()
            .map_err(query("read events".into()))?;
        out.reverse();
        Ok(out)
    }
}

impl Store {
    /// How many tasks there are of each `lastStatus` (every cluster).
    pub fn task_status_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare("SELECT last_status, COUNT(*) FROM tasks GROUP BY last_status")
            .map_err(query("count tasks by status".into()))?;
        let rows = stmt
            .query_map([], |r| {
                let n: i64 = r.get(1)?;
                Ok((r.get(0)?, u64::try_from(n).unwrap_or(0)))
            })
            .map_err(query("count tasks by status".into()))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(query("count tasks by status".into()))
    }
}
