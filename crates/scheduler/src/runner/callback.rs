//! The in-process runner: functions a host that embeds the crate registers by name.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Progress, RunRequest, RunResult, TaskRunner};
use crate::spec::RunnerSpec;

/// A registered function: takes the request and a progress handle, returns the result.
pub type Callback = Arc<
    dyn Fn(RunRequest, Progress) -> Pin<Box<dyn Future<Output = RunResult> + Send>> + Send + Sync,
>;

/// Runs [`RunnerSpec::Callback`] tasks with the functions registered under their names.
#[derive(Default, Clone)]
pub struct CallbackRunner {
    callbacks: HashMap<String, Callback>,
}

impl std::fmt::Debug for CallbackRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackRunner")
            .field("names", &self.callbacks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CallbackRunner {
    /// No callbacks yet.
    pub fn new() -> CallbackRunner {
        CallbackRunner::default()
    }

    /// Registers `f` under `name` (replacing any before).
    pub fn register<F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(RunRequest, Progress) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RunResult> + Send + 'static,
    {
        self.callbacks
            .insert(name.to_string(), Arc::new(move |r, p| Box::pin(f(r, p))));
        self
    }
}

#[async_trait::async_trait]
impl TaskRunner for CallbackRunner {
    async fn run(&self, request: RunRequest, progress: Progress) -> RunResult {
        let RunnerSpec::Callback { name } = &request.runner else {
            return RunResult::failed("not a callback task");
        };
        match self.callbacks.get(name).cloned() {
            Some(f) => f(request, progress).await,
            None => RunResult::failed(format!("no callback registered as `{name}`")),
        }
    }
}
