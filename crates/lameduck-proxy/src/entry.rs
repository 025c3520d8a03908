//! The two ways the proxy runs: alone as a sidecar (`lameduck proxy`), and
//! beside the app as the supervisor's drainer on a thread of its own
//! (`lameduck run --listen`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lameduck::{Drain, Report};
use lameduck_supervisor::{Drainer, Waker};

use crate::{Config, Error, Proxy};

/// A tokio runtime for the proxy's first worker: one thread, as the proxy
/// is meant to sit on one core beside the app unless `--workers` says more.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    crate::workers::runtime()
}

/// Runs the proxy alone, as a sidecar: binds, drains on SIGTERM or SIGINT (a
/// second SIGINT cuts the delay short) or `POST /drain`, and returns once
/// drained.
pub fn run_sidecar(config: Config) -> Result<Report, Error> {
    runtime()?.block_on(async move {
        let proxy = Proxy::bind(config).await?;
        let drain = proxy.drain();
        drain.listen_for_signals().map_err(Error::Signals)?;
        let report = proxy.run().await;
        // The other workers' threads end too.
        drain.finish();
        Ok(report)
    })
}

/// The proxy as the supervisor's [`Drainer`]: runs on a thread of its own.
#[derive(Debug)]
pub struct ProxyDrainer {
    drain: Drain,
    done: Arc<AtomicBool>,
}

impl ProxyDrainer {
    /// Binds the proxy and starts it on a new thread; fails if it cannot
    /// bind, so the app is never started behind a proxy that is not there.
    pub fn start(config: Config, waker: Waker) -> Result<Box<dyn Drainer>, Error> {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let done_flag = done.clone();
        std::thread::Builder::new()
            .name("lameduck-proxy".into())
            .spawn(move || {
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => return drop(bound_tx.send(Err(e))),
                };
                rt.block_on(async move {
                    let proxy = match Proxy::bind(config).await {
                        Ok(p) => p,
                        Err(e) => return drop(bound_tx.send(Err(e))),
                    };
                    let drain = proxy.drain();
                    let _ = bound_tx.send(Ok(drain.clone()));
                    // The drain may begin from the admin port.
                    tokio::spawn(async move {
                        drain.triggered().await;
                        waker.wake();
                    });
                    proxy.run().await;
                    done_flag.store(true, Ordering::Release);
                    waker.wake();
                    // Keep answering probes and finishing tunnels until the
                    // supervisor exits the process.
                    std::future::pending::<()>().await;
                });
            })
            .map_err(Error::Thread)?;
        let drain = bound_rx.recv().map_err(|_| Error::ThreadEnded)??;
        Ok(Box::new(ProxyDrainer { drain, done }))
    }
}

impl Drainer for ProxyDrainer {
    fn begin(&mut self) {
        // The supervisor logged the stop and its plan.
        self.drain.trigger_logged();
    }

    fn hurry(&mut self) {
        self.drain.hurry();
    }

    fn app_exited(&mut self) {
        self.drain.trigger();
        self.drain.hurry();
    }

    fn requested(&self) -> bool {
        self.drain.is_triggered()
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}
