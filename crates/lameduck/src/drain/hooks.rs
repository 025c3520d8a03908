//! Hooks: work of the service's own (deregister, flush, tell clients) run
//! as a phase begins, within the drain's deadline, with their outcome kept.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use lameduck_core::Phase;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};
use tracing::{info, warn};

type HookFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A hook registered with [`Drain::on`](super::Drain::on), not run yet.
pub(super) struct Hook {
    pub(super) phase: Phase,
    pub(super) name: String,
    pub(super) start: Box<dyn FnOnce() -> HookFuture + Send>,
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("phase", &self.phase)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Hook {
    pub(super) fn new<F, Fut, E>(phase: Phase, name: String, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        Hook {
            phase,
            name,
            start: Box::new(move || {
                Box::pin(async move { hook().await.map_err(|e| e.to_string()) })
            }),
        }
    }
}

/// How one hook ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookOutcome {
    /// The name it was registered with.
    pub name: String,
    /// The phase it ran at.
    pub phase: Phase,
    /// What came of it.
    pub result: HookResult,
}

/// What came of a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookResult {
    /// It returned `Ok`.
    Succeeded,
    /// It returned an error, shown here.
    Failed(String),
    /// It was still running at the deadline (plus the close grace) and was
    /// dropped.
    TimedOut,
    /// It panicked.
    Panicked,
}

/// A started hook's task: `None` when the deadline dropped it.
type HookTask = JoinHandle<Option<Result<(), String>>>;

/// The hooks of one drain that were started.
#[derive(Default)]
pub(super) struct Running(Vec<(String, Phase, HookTask)>);

impl Running {
    /// Starts `hooks`, each bounded by `until`.
    pub(super) fn start(&mut self, hooks: Vec<Hook>, until: Instant) {
        for hook in hooks {
            info!(hook = %hook.name, phase = %hook.phase, "hook started");
            let fut = (hook.start)();
            let handle = tokio::spawn(async move { timeout_at(until, fut).await.ok() });
            self.0.push((hook.name, hook.phase, handle));
        }
    }

    /// Waits for every started hook (each is bounded) and reports them.
    pub(super) async fn finish(self) -> Vec<HookOutcome> {
        let mut outcomes = Vec::with_capacity(self.0.len());
        for (name, phase, handle) in self.0 {
            let result = match handle.await {
                Ok(Some(Ok(()))) => HookResult::Succeeded,
                Ok(Some(Err(e))) => HookResult::Failed(e),
                Ok(None) => HookResult::TimedOut,
                Err(_) => HookResult::Panicked,
            };
            match &result {
                HookResult::Succeeded => info!(hook = %name, "hook succeeded"),
                HookResult::Failed(e) => warn!(hook = %name, error = %e, "hook failed"),
                HookResult::TimedOut => {
                    warn!(hook = %name, "hook still running at the deadline: dropped")
                }
                HookResult::Panicked => warn!(hook = %name, "hook panicked"),
            }
            outcomes.push(HookOutcome {
                name,
                phase,
                result,
            });
        }
        outcomes
    }
}
