//! Signal names and numbers as users write them.

use std::fmt;
use std::str::FromStr;

/// A POSIX signal, by number.
///
/// Read from `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3` or `SIGRTMAX-1`,
/// written as `SIGTERM` or `SIGRTMIN+3`. Real-time signals count from the C
/// library's `SIGRTMIN`, which is what `kill -l` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// Why a signal name could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalError(String);

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown signal {:?}: write a name like TERM, SIGQUIT or RTMIN+2, or a number from 1 to {}",
            self.0,
            libc::SIGRTMAX()
        )
    }
}

impl std::error::Error for SignalError {}

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

// === impl Signal ===

impl Signal {
    /// SIGTERM, what the kubelet sends.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// SIGINT, what Ctrl-C sends.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// SIGQUIT, the graceful stop of nginx and php-fpm.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// SIGKILL, the end of every budget.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// SIGCONT, which resumes a suspended process.
    pub const CONT: Signal = Signal(libc::SIGCONT);
    /// SIGCHLD, a child changed state.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);

    /// The signal with this number, if the system has it.
    pub fn from_number(number: i32) -> Option<Signal> {
        (1..=libc::SIGRTMAX())
            .contains(&number)
            .then_some(Signal(number))
    }

    /// The signal's number.
    pub fn number(self) -> i32 {
        self.0
    }

    /// Whether this signal asks a supervisor to stop: SIGTERM (the kubelet,
    /// `docker stop`), SIGINT (Ctrl-C) or SIGQUIT.
    pub fn is_stop_request(self) -> bool {
        matches!(self.0, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
    }

    /// Whether a process can catch, block or ignore it (all but SIGKILL and SIGSTOP).
    pub fn is_catchable(self) -> bool {
        !matches!(self.0, libc::SIGKILL | libc::SIGSTOP)
    }

    /// Why this signal cannot be the one an app is asked to stop with, if
    /// it cannot: SIGSTOP, SIGTSTP, SIGTTIN and SIGTTOU suspend the app (it
    /// would sit frozen until the SIGKILL at the deadline), SIGCONT only
    /// resumes it, and SIGKILL ends it without a chance to finish anything
    /// (lameduck sends SIGKILL itself at the deadline). Every other signal
    /// may be an app's graceful stop (SIGQUIT for nginx, SIGWINCH for
    /// Apache httpd, SIGUSR1 or a real-time signal for others).
    pub fn stop_signal_problem(self) -> Option<&'static str> {
        match self.0 {
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => Some(
                "it suspends the app instead of stopping it: the app would stay frozen until it is killed at the deadline",
            ),
            libc::SIGCONT => Some("it only resumes a suspended process: the app would not stop"),
            libc::SIGKILL => Some(
                "it cannot be caught, so the app gets no chance to finish its work; lameduck sends SIGKILL itself when the grace period runs out",
            ),
            _ => None,
        }
    }

    /// Reads a stop signal (`--stop-signal`): a signal name or number that
    /// can stop an app gracefully (see [`Signal::check_stop_signal`]).
    pub fn parse_stop_signal(input: &str) -> Result<Signal, String> {
        let signal: Signal = input.parse().map_err(|e: SignalError| e.to_string())?;
        signal.check_stop_signal()
    }

    /// This signal, if it can be the one an app is asked to stop with, or
    /// why it cannot (see [`Signal::stop_signal_problem`]), with what to use.
    pub fn check_stop_signal(self) -> Result<Signal, String> {
        match self.stop_signal_problem() {
            Some(why) => Err(format!(
                "{self} cannot be the stop signal: {why}; use the signal the app stops gracefully on (TERM, the default, or QUIT, INT, WINCH, USR1, ...)"
            )),
            None => Ok(self),
        }
    }

    /// Every signal a process can catch, standard and real-time, in order.
    ///
    /// The two or three real-time signals below `SIGRTMIN` belong to the C
    /// library's threads and are left out.
    pub fn catchable() -> impl Iterator<Item = Signal> {
        (1..libc::SIGRTMIN())
            .filter(|n| NAMES.iter().any(|&(_, number)| number == *n))
            .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
            .map(Signal)
            .filter(|s| s.is_catchable())
    }

    /// The signal lameduck sends itself to wake its own event loop from
    /// another thread (SIGRTMAX): never forwarded.
    pub fn wake() -> Signal {
        Signal(libc::SIGRTMAX())
    }

    /// The name without the `SIG` prefix, as `kill -l` lists it.
    pub fn short_name(self) -> String {
        if let Some((name, _)) = NAMES.iter().find(|&&(_, n)| n == self.0) {
            return (*name).to_owned();
        }
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        match self.0 {
            n if n == min => "RTMIN".to_owned(),
            n if n == max => "RTMAX".to_owned(),
            n if n > min && n - min <= (max - min) / 2 => format!("RTMIN+{}", n - min),
            n if n > min && n < max => format!("RTMAX-{}", max - n),
            n => n.to_string(),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.short_name();
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            write!(f, "signal {name}")
        } else {
            write!(f, "SIG{name}")
        }
    }
}

impl FromStr for Signal {
    type Err = SignalError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || SignalError(input.to_owned());
        let trimmed = input.trim();
        if let Ok(number) = trimmed.parse::<i32>() {
            return Signal::from_number(number).ok_or_else(err);
        }
        let upper = trimmed.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((_, number)) = NAMES.iter().find(|&&(n, _)| n == name) {
            return Ok(Signal(*number));
        }
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        let realtime = if let Some(rest) = name.strip_prefix("RTMIN") {
            offset(rest).map(|o| min + o)
        } else if let Some(rest) = name.strip_prefix("RTMAX") {
            offset(rest).map(|o| max + o)
        } else {
            None
        };
        match realtime {
            Some(n) if (min..=max).contains(&n) => Ok(Signal(n)),
            _ => Err(err()),
        }
    }
}

/// Reads the `+3` or `-1` after `RTMIN`/`RTMAX`; an empty rest is zero.
fn offset(rest: &str) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    let (sign, digits) = match rest.split_at(1) {
        ("+", digits) => (1, digits),
        ("-", digits) => (-1, digits),
        _ => return None,
    };
    digits.parse::<i32>().ok().map(|n| sign * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_numbers_and_realtime_offsets() {
        for (input, expected) in [
            ("TERM", libc::SIGTERM),
            ("SIGQUIT", libc::SIGQUIT),
            ("sigwinch", libc::SIGWINCH),
            ("15", 15),
            ("RTMIN", libc::SIGRTMIN()),
            ("SIGRTMIN+3", libc::SIGRTMIN() + 3),
            ("RTMAX-1", libc::SIGRTMAX() - 1),
        ] {
            assert_eq!(input.parse::<Signal>(), Ok(Signal(expected)), "{input}");
        }
    }

    #[test]
    fn refuses_unknown_names_and_numbers() {
        for input in ["TERMINATE", "0", "-1", "65", "RTMIN+99", "RTMIN3", ""] {
            let message = match input.parse::<Signal>() {
                Ok(s) => panic!("{input:?} was read as {s}"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains("TERM, SIGQUIT"), "{message}");
        }
    }

    #[test]
    fn names_round_trip() {
        for signal in Signal::catchable() {
            assert_eq!(signal.to_string().parse::<Signal>(), Ok(signal));
        }
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
    }

    #[test]
    fn catchable_leaves_out_kill_stop_and_the_threads_signals() {
        let all: Vec<_> = Signal::catchable().collect();
        assert!(!all.contains(&Signal::KILL));
        assert!(!all.contains(&Signal(libc::SIGSTOP)));
        assert!(!all.contains(&Signal(32)));
        assert!(all.contains(&Signal(libc::SIGRTMAX())));
        assert_eq!(
            all.len(),
            29 + (libc::SIGRTMAX() - libc::SIGRTMIN() + 1) as usize
        );
    }

    #[test]
    fn signals_that_suspend_resume_or_kill_cannot_be_the_stop_signal() {
        for name in ["STOP", "SIGTSTP", "TTIN", "ttou", "CONT", "KILL", "9", "19"] {
            let e = Signal::parse_stop_signal(name).expect_err(name);
            assert!(e.contains("cannot be the stop signal"), "{e}");
        }
        assert!(Signal::parse_stop_signal("STOP")
            .expect_err("STOP")
            .contains("frozen"));
        for name in ["TERM", "QUIT", "INT", "WINCH", "USR1", "HUP", "RTMIN+2"] {
            assert!(Signal::parse_stop_signal(name).is_ok(), "{name}");
        }
        assert!(Signal::parse_stop_signal("TERMINATE")
            .expect_err("unknown")
            .contains("unknown signal"));
    }

    #[test]
    fn only_term_int_and_quit_ask_for_a_stop() {
        let stops: Vec<_> = Signal::catchable()
            .filter(|s| s.is_stop_request())
            .collect();
        assert_eq!(stops, [Signal::INT, Signal::QUIT, Signal::TERM]);
    }
}
