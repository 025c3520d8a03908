//! The stop signals of a container: SIGTERM from the kubelet, SIGINT from
//! a terminal.

use std::io;

use lameduck_core::format_duration;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

use crate::drain::Drain;

// === impl Drain ===

impl Drain {
    /// Triggers the drain on SIGTERM or SIGINT; a second SIGINT cuts the
    /// delay short, as in `lameduck run`. Call it inside a tokio runtime;
    /// the handlers stay for the life of the process.
    pub fn listen_for_signals(&self) -> io::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let drain = self.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    Some(()) = term.recv() => "SIGTERM",
                    Some(()) = int.recv() => "SIGINT",
                    else => return,
                };
                if !drain.is_triggered() {
                    // The stop and its plan, logged once, before the drain
                    // moves (it then logs the phase change alone).
                    let timing = drain.timing();
                    info!(
                        signal = name,
                        delay = %timing.delay,
                        deadline = %format_duration(timing.deadline),
                        close_grace = %format_duration(timing.close_grace),
                        "stop requested"
                    );
                    drain.trigger_logged();
                } else if name == "SIGINT" {
                    info!(
                        signal = name,
                        "second SIGINT: cutting the drain delay short"
                    );
                    drain.hurry();
                }
            }
        });
        Ok(())
    }
}
