//! The progress line while a rehearsal runs: the stage, the time, requests
//! answered and lost. Hidden when stderr is not a terminal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::ledger::Ledger;

/// A progress line that redraws itself until dropped.
pub struct Progress {
    bar: ProgressBar,
    stage: Arc<Mutex<String>>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts drawing; `visible` false draws nothing.
    pub fn start(ledger: Arc<Ledger>, visible: bool) -> Progress {
        let bar = if visible {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let stage = Arc::new(Mutex::new(String::from("starting pods")));
        let (b, s) = (bar.clone(), stage.clone());
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let (ok, lost) = ledger.totals();
                let stage = s.lock().map(|s| s.clone()).unwrap_or_default();
                b.set_message(format!(
                    "{:>5.1}s  {stage}  |  {ok} answered, {lost} lost",
                    ledger.now().as_secs_f64()
                ));
                b.tick();
            }
        });
        Progress { bar, stage, ticker }
    }

    /// Says what the rehearsal is doing now.
    pub fn stage(&self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!("{text}");
        if let Ok(mut s) = self.stage.lock() {
            *s = text;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
