//! The rehearsal's load: HTTP clients and long-lived sessions through the
//! balancer, from the start of the scenario until it is over.

mod http;
mod session;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::balancer::Routes;
use crate::ledger::Ledger;
use crate::plan::Plan;

/// Load that runs until [`Load::stop`].
pub struct Load {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    ledger: Arc<Ledger>,
}

impl Load {
    /// Starts every client of the plan against the balancer at `target`.
    pub fn start(
        plan: &Plan,
        target: SocketAddr,
        routes: Arc<Routes>,
        ledger: Arc<Ledger>,
    ) -> Load {
        let (stop, rx) = watch::channel(false);
        ledger.load_started();
        let mut tasks = JoinSet::new();
        let shared = Arc::new(http::Shared {
            target,
            routes: routes.clone(),
            ledger: ledger.clone(),
            load: plan.http.clone(),
            sent: AtomicU64::new(0),
        });
        for _ in 0..plan.http.clients {
            tasks.spawn(http::client(shared.clone(), rx.clone()));
        }
        let sessions = Arc::new(session::Shared {
            target,
            routes,
            ledger: ledger.clone(),
            path: plan.websocket_path.clone(),
        });
        for &(kind, count) in &plan.sessions {
            for _ in 0..count {
                tasks.spawn(session::keep_open(sessions.clone(), kind, rx.clone()));
            }
        }
        Load {
            stop,
            tasks,
            ledger,
        }
    }

    /// Asks every client to stop, and waits until their last requests have
    /// ended and their sessions are closed; an error when a client failed,
    /// for its counts cannot be trusted then.
    pub async fn stop(mut self) -> Result<(), String> {
        let _ = self.stop.send(true);
        let mut failed = None;
        while let Some(ended) = self.tasks.join_next().await {
            if let Err(e) = ended {
                failed.get_or_insert(format!("a client of the load failed: {e}"));
            }
        }
        self.ledger.load_stopped();
        failed.map_or(Ok(()), Err)
    }
}
