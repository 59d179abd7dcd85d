//! The agent's embedded database, `<root>/agent.db`.
//!
//! SQLite (through rusqlite with the `bundled` feature, so no system library is needed) rather
//! than redb: the agent's reads are *queries* — tasks of a cluster filtered by family,
//! desired status and startedBy, task definitions by family prefix and status, the next
//! revision of a family — which SQL answers with indexes and one statement each, while a
//! key-value store would need hand-kept secondary indexes. Every state transition is exactly
//! one write transaction in SQLite's WAL journal with `synchronous=NORMAL`: a committed
//! transaction is in the WAL before the call returns, so it survives kill -9 of the agent
//! (the case the lifecycle's write-ahead records are for), and the database stays consistent
//! across power loss; commits do not wait for an fsync, only checkpoints do. What a power loss
//! may take back (the last transitions) describes processes, namespaces and mounts that the
//! same power loss ends, and recovery reconciles with what is really there. `FULL` cost 0.5–3
//! ms per transition here, eight of them on the way to RUNNING (docs/benchmarks.md, agent).
//!
//! Each row keeps its record as JSON next to the columns queries filter on, so the schema
//! does not churn with every field the lifecycle learns to track.

mod events;
mod tags;
mod tasks;

pub use tasks::TaskFilter;

use crate::taskdef::wire::{Tag, TaskDefinitionBody};
use crate::taskdef::{ContainerSpec, TaskDefinitionSpec};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A store failure, naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state root could not be created.
    #[error("creating state root {path}")]
    CreateRoot {
        /// The root.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database could not be opened or its schema created.
    #[error("opening database {path}")]
    Open {
        /// `<root>/agent.db`.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database: {what}")]
    Query {
        /// What was being done (`insert task abc…`).
        what: String,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A stored record does not decode.
    #[error("database: decoding {what}")]
    Decode {
        /// Which record.
        what: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// A thread panicked while holding the connection.
    #[error("database: the connection lock is poisoned")]
    Poisoned,
}

/// A cluster: a logical grouping of tasks on this host.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRecord {
    /// Its name.
    pub name: String,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// Its tags.
    pub tags: Vec<Tag>,
}

/// One registered revision.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefRecord {
    /// Family.
    pub family: String,
    /// Revision, from 1.
    pub revision: i64,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// What DescribeTaskDefinition echoes.
    pub body: TaskDefinitionBody,
    /// Tags.
    pub tags: Vec<Tag>,
    /// What it validated for.
    pub compatibilities: Vec<String>,
    /// The lifecycle's view of its containers.
    pub containers: Vec<ContainerSpec>,
    /// Epoch seconds.
    pub registered_at: f64,
    /// Epoch seconds.
    pub deregistered_at: Option<f64>,
}

/// The database handle; cheap to clone. Calls are short and synchronous.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS clusters (
    name TEXT PRIMARY KEY, status TEXT NOT NULL, tags TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS task_definitions (
    family TEXT NOT NULL, revision INTEGER NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL,
    tags TEXT NOT NULL, compatibilities TEXT NOT NULL, containers TEXT NOT NULL,
    registered_at REAL NOT NULL, deregistered_at REAL, PRIMARY KEY (family, revision));
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, cluster TEXT NOT NULL, family TEXT NOT NULL, desired TEXT NOT NULL,
    last_status TEXT NOT NULL, started_by TEXT, created_at REAL NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_by_cluster ON tasks (cluster, created_at);
CREATE TABLE IF NOT EXISTS task_tags (id TEXT PRIMARY KEY, tags TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS client_tokens (
    token TEXT PRIMARY KEY, cluster TEXT NOT NULL, task_ids TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, task TEXT NOT NULL, line TEXT NOT NULL);
";

/// The cluster every account has.
pub const DEFAULT_CLUSTER: &str = "default";

impl Store {
    /// Open (or create) `<root>/agent.db` with mode 0600, create the schema and the `default`
    /// cluster.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::CreateRoot {
            path: root.to_owned(),
            source,
        })?;
        let path = root.join("agent.db");
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        set_private(&path).map_err(|source| StoreError::CreateRoot {
            path: path.clone(),
            source,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        let store = Self {
            conn: Arc::new(Mutex::new(conn)),
            path,
        };
        store.create_cluster(DEFAULT_CLUSTER, &[], crate::model::now_epoch())?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Create a cluster, or return the existing active one (ECS's CreateCluster is idempotent).
    /// A deleted (INACTIVE) cluster of that name becomes ACTIVE again.
    pub fn create_cluster(
        &self,
        name: &str,
        tags: &[Tag],
        now: f64,
    ) -> Result<ClusterRecord, StoreError> {
        let conn = self.lock()?;
        let tags_json = to_json(tags, "cluster tags")?;
        conn.execute(
            "INSERT INTO clusters (name, status, tags, created_at) VALUES (?1, 'ACTIVE', ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET status = 'ACTIVE',
               tags = CASE WHEN clusters.status = 'ACTIVE' THEN clusters.tags ELSE excluded.tags END",
            params![name, tags_json, now],
        )
        .map_err(query(format!("create cluster {name}")))?;
        drop(conn);
        self.cluster(name)?.ok_or_else(|| StoreError::Query {
            what: format!("read back cluster {name}"),
            source: rusqlite::Error::QueryReturnedNoRows,
        })
    }

    /// A cluster by name, active or not.
    pub fn cluster(&self, name: &str) -> Result<Option<ClusterRecord>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .query_row(
                "SELECT name, status, tags FROM clusters WHERE name = ?1",
                params![name],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(query(format!("read cluster {name}")))?;
        row.map(|(name, status, tags)| {
            Ok(ClusterRecord {
                tags: from_json(&tags, "cluster tags")?,
                name,
                status,
            })
        })
        .transpose()
    }

    /// Active clusters, by name.
    pub fn clusters(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare("SELECT name FROM clusters WHERE status = 'ACTIVE' ORDER BY name")
            .map_err(query("list clusters".into()))?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(Iterator::collect)
            .map_err(query("list clusters".into()))?;
        Ok(names)
    }

    /// Mark a cluster INACTIVE.
    pub fn deactivate_cluster(&self, name: &str) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "UPDATE clusters SET status = 'INACTIVE' WHERE name = ?1",
                params![name],
            )
            .map_err(query(format!("delete cluster {name}")))?;
        Ok(())
    }

    /// Register the next revision of `spec.body.family` in one transaction.
    pub fn register_task_definition(
        &self,
        spec: &TaskDefinitionSpec,
        now: f64,
    ) -> Result<TaskDefRecord, StoreError> {
        let mut conn = self.lock()?;
        let family = &spec.body.family;
        let what = || format!("register task definition {family}");
        let tx = conn.transaction().map_err(query(what()))?;
        let revision: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(revision), 0) + 1 FROM task_definitions WHERE family = ?1",
                params![family],
                |r| r.get(0),
            )
            .map_err(query(what()))?;
        tx.execute(
            "INSERT INTO task_definitions (family, revision, status, body, tags, compatibilities,
               containers, registered_at) VALUES (?1, ?2, 'ACTIVE', ?3, ?4, ?5, ?6, ?7)",
            params![
                family,
                revision,
                to_json(&spec.body, "task definition")?,
                to_json(&spec.tags, "tags")?,
                to_json(&spec.compatibilities, "compatibilities")?,
                to_json(&spec.containers, "containers")?,
                now
            ],
        )
        .map_err(query(what()))?;
        tx.commit().map_err(query(what()))?;
        Ok(TaskDefRecord {
            family: family.clone(),
            revision,
            status: "ACTIVE".into(),
            body: spec.body.clone(),
            tags: spec.tags.clone(),
            compatibilities: spec.compatibilities.clone(),
            containers: spec.containers.clone(),
            registered_at: now,
            deregistered_at: None,
        })
    }

    /// `family:revision`, or with no revision the latest ACTIVE one.
    pub fn task_definition(
        &self,
        family: &str,
        revision: Option<i64>,
    ) -> Result<Option<TaskDefRecord>, StoreError> {
        let conn = self.lock()?;
        let cols = "family, revision, status, body, tags, compatibilities, containers, registered_at, deregistered_at";
        let what = format!("read task definition {family}");
        let row = match revision {
            Some(rev) => conn
                .query_row(
                    &format!(
                        "SELECT {cols} FROM task_definitions WHERE family = ?1 AND revision = ?2"
                    ),
                    params![family, rev],
                    taskdef_row,
                )
                .optional(),
            None => conn
                .query_row(
                    &format!(
                        "SELECT {cols} FROM task_definitions WHERE family = ?1 AND status = 'ACTIVE'
                         ORDER BY revision DESC LIMIT 1"
                    ),
                    params![family],
                    taskdef_row,
                )
                .optional(),
        }
        .map_err(query(what))?;
        row.map(RawTaskDef::decode).transpose()
    }

    /// Mark a revision INACTIVE (still describable, still usable by running tasks).
    pub fn deregister_task_definition(
        &self,
        family: &str,
        revision: i64,
        now: f64,
    ) -> Result<(), StoreError> {
        self.lock()?
            .execute(
                "UPDATE task_definitions SET status = 'INACTIVE', deregistered_at = ?3
                 WHERE family = ?1 AND revision = ?2 AND status = 'ACTIVE'",
                params![family, revision, now],
            )
            .map_err(query(format!("deregister {family}:{revision}")))?;
        Ok(())
    }

    /// `(family, revision)` pairs matching a family prefix and status, in family then revision
    /// order (descending when `descending`).
    pub fn task_definitions(
        &self,
        family_prefix: Option<&str>,
        status: &str,
        descending: bool,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let conn = self.lock()?;
        let order = if descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT family, revision FROM task_definitions WHERE status = ?1
             AND (?2 IS NULL OR family = ?2) ORDER BY family {order}, revision {order}"
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(query("list task definitions".into()))?;
        let rows = stmt
            .query_map(params![status, family_prefix], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .and_then(Iterator::collect)
            .map_err(query("list task definitions".into()))?;
        Ok(rows)
    }

    /// Families with at least one revision in `status` (`None`: any), starting with `prefix`.
    pub fn families(
        &self,
        prefix: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare(
                "SELECT DISTINCT family FROM task_definitions WHERE (?1 IS NULL OR status = ?1)
                 AND (?2 IS NULL OR substr(family, 1, length(?2)) = ?2) ORDER BY family",
            )
            .map_err(query("list families".into()))?;
        let rows = stmt
            .query_map(params![status, prefix], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(query("list families".into()))?;
        Ok(rows)
    }
}

type RawTaskDef = (
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    f64,
    Option<f64>,
);

fn taskdef_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawTaskDef> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

trait Decode {
    fn decode(self) -> Result<TaskDefRecord, StoreError>;
}

impl Decode for RawTaskDef {
    fn decode(self) -> Result<TaskDefRecord, StoreError> {
        let (
            family,
            revision,
            status,
            body,
            tags,
            compat,
            containers,
            registered_at,
            deregistered_at,
        ) = self;
        let what = format!("task definition {family}:{revision}");
        Ok(TaskDefRecord {
            body: from_json(&body, &what)?,
            tags: from_json(&tags, &what)?,
            compatibilities: from_json(&compat, &what)?,
            containers: from_json(&containers, &what)?,
            family,
            revision,
            status,
            registered_at,
            deregistered_at,
        })
    }
}

pub(crate) fn query(what: String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(
    value: &T,
    what: &str,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Decode {
        what: what.to_owned(),
        source,
    })
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Decode {
        what: what.to_owned(),
        source,
    })
}

fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests;
