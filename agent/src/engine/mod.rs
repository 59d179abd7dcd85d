//! The engine: one long-lived task that receives typed [`Command`]s from the API listeners,
//! answers them from the store, and starts one [`supervisor`] per ECS task. Supervisors are
//! tracked in a `JoinSet`; each is the only writer of its task's record.

mod actions;
pub mod bundle;
pub mod command;
#[cfg(test)]
pub mod fakes;
pub mod health;
pub mod lifecycle;
mod pidfd;
pub mod real;
pub mod seams;
pub mod security;
pub mod shutdown;
pub mod supervisor;
mod tags;
mod tasks;

use crate::api::arn::Arns;
use crate::api::error::{ApiError, ErrorType};
use crate::model::TaskRecord;
use crate::store::{Store, StoreError};
use command::Command;
use seams::Seams;
use shutdown::CancellationToken;
use std::collections::HashMap;
use supervisor::{Supervisor, TaskCmd};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

type Reply = oneshot::Sender<Result<serde_json::Value, ApiError>>;

/// The API's handle on the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<(Command, Reply)>,
}

impl EngineHandle {
    /// Send `cmd` and wait for its answer.
    pub async fn call(&self, cmd: Command) -> Result<serde_json::Value, ApiError> {
        let (reply, rx) = oneshot::channel();
        let gone = || ApiError::new(ErrorType::ServerException, "the agent is shutting down");
        self.tx.send((cmd, reply)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

/// The engine's state.
pub struct Engine {
    store: Store,
    arns: Arns,
    seams: Seams,
    supervisors: HashMap<String, mpsc::Sender<TaskCmd>>,
    running: JoinSet<TaskRecord>,
    relays: JoinSet<()>,
    shutdown: CancellationToken,
}

impl Engine {
    /// An engine over `store` driving `seams`.
    pub fn new(store: Store, arns: Arns, seams: Seams, shutdown: CancellationToken) -> Self {
        Self {
            store,
            arns,
            seams,
            supervisors: HashMap::new(),
            running: JoinSet::new(),
            relays: JoinSet::new(),
            shutdown,
        }
    }

    /// Start the engine: adopt every unfinished task from the store (recovery goes through the
    /// normal lifecycle), then serve commands until shutdown. Returns the handle and the
    /// engine's own task.
    pub fn spawn(mut self) -> Result<(EngineHandle, tokio::task::JoinHandle<()>), StoreError> {
        for task in self.store.unfinished_tasks()? {
            tracing::info!(task = %task.id, status = task.last_status.as_str(), "adopting task");
            self.supervise(task);
        }
        let (tx, rx) = mpsc::channel(256);
        let handle = tokio::spawn(self.serve(rx));
        Ok((EngineHandle { tx }, handle))
    }

    fn supervise(&mut self, task: TaskRecord) {
        let (tx, rx) = mpsc::channel(16);
        self.supervisors.insert(task.id.clone(), tx);
        let sup = Supervisor::new(task, self.store.clone(), self.seams.clone());
        self.running.spawn(sup.run(rx, self.shutdown.clone()));
    }

    async fn serve(mut self, mut rx: mpsc::Receiver<(Command, Reply)>) {
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some((Command::StopTask { cluster, task, reason }, reply)) => {
                        self.stop_task(&cluster, &task, reason, reply).await;
                    }
                    Some((cmd, reply)) => {
                        let answer = self.handle(cmd);
                        let _ = reply.send(answer);
                    }
                    None => break,
                },
                Some(done) = self.running.join_next() => self.reap(done),
                Some(Err(e)) = self.relays.join_next() => tracing::error!(error = %e, "a StopTask relay failed"),
                () = self.shutdown.cancelled() => break,
            }
        }
        // Supervisors stop on the same token; containers keep running.
        while let Some(done) = self.running.join_next().await {
            self.reap(done);
        }
    }

    fn reap(&mut self, done: Result<TaskRecord, tokio::task::JoinError>) {
        match done {
            Ok(task) => {
                tracing::debug!(task = %task.id, status = task.last_status.as_str(), "supervisor finished");
                self.supervisors.remove(&task.id);
            }
            Err(e) => {
                tracing::error!(error = %e, "a task supervisor panicked");
                self.supervisors.retain(|_, tx| !tx.is_closed());
            }
        }
    }

    fn handle(&mut self, cmd: Command) -> Result<serde_json::Value, ApiError> {
        match cmd {
            Command::RunTask(run) => self.run_task(*run),
            Command::DescribeTasks {
                cluster,
                tasks,
                include_tags,
            } => self.describe_tasks(&cluster, &tasks, include_tags),
            Command::ListTasks { filter, page } => self.list_tasks(&filter, page),
            cmd @ (Command::TagResource { .. }
            | Command::UntagResource { .. }
            | Command::ListTagsForResource { .. }) => self.handle_tags(cmd),
            other => self.handle_definitions(other),
        }
    }
}

#[cfg(test)]
mod ecs_api_tests;
#[cfg(test)]
mod tests;
