//! [`StartupTrace`]: how long each step of start-up took, for the bench.
//!
//! With `AMI_LIFECYCLE_STARTUP_TRACE=1` the shell writes one JSON line to stderr just before
//! it hands over to the Lambda runtime loop (which connects to the Runtime API and asks for
//! the first event):
//!
//! ```text
//! {"startup_trace":{"main_unix_us":…,"run_unix_us":…,"phases_us":{"runtime":…,"logging":…,"config":…,"sdk_config":…,"clients":…}}}
//! ```
//!
//! `main_unix_us` and `run_unix_us` are wall-clock times (the clock the bench shares with
//! the process: spawn → main and hand-over → first `next` are the bench's to compute);
//! the phases are measured on the monotonic clock. Without the variable nothing is
//! measured or written.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The variable that turns the trace on (`1`).
pub const TRACE_ENV: &str = "AMI_LIFECYCLE_STARTUP_TRACE";

/// Phase timings of one start-up; inert unless [`TRACE_ENV`] is `1`.
pub struct StartupTrace {
    on: Option<On>,
}

struct On {
    main_unix_us: u128,
    last: Instant,
    phases: Vec<(&'static str, u128)>,
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

impl StartupTrace {
    /// Starts the trace (call it first thing in `main`).
    pub fn start() -> Self {
        Self::with_enabled(std::env::var(TRACE_ENV).as_deref() == Ok("1"))
    }

    fn with_enabled(enabled: bool) -> Self {
        Self {
            on: enabled.then(|| On {
                main_unix_us: unix_us(),
                last: Instant::now(),
                phases: Vec::new(),
            }),
        }
    }

    /// Closes the phase that began at the previous mark (or at [`StartupTrace::start`]).
    pub fn mark(&mut self, phase: &'static str) {
        if let Some(on) = &mut self.on {
            let now = Instant::now();
            on.phases
                .push((phase, now.duration_since(on.last).as_micros()));
            on.last = now;
        }
    }

    /// The trace line, if tracing is on.
    pub fn line(&self) -> Option<String> {
        let on = self.on.as_ref()?;
        let phases: serde_json::Map<String, serde_json::Value> = on
            .phases
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::json!(*v as u64)))
            .collect();
        Some(
            serde_json::json!({"startup_trace": {
                "main_unix_us": on.main_unix_us as u64,
                "run_unix_us": unix_us() as u64,
                "phases_us": phases,
            }})
            .to_string(),
        )
    }

    /// Writes the trace line to stderr (the hand-over to the runtime loop is now).
    pub fn finish(self) {
        if let Some(line) = self.line() {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_it_measures_and_writes_nothing() {
        let mut t = StartupTrace::with_enabled(false);
        t.mark("config");
        assert!(t.line().is_none());
    }

    #[test]
    fn on_it_writes_every_phase_and_the_two_wall_times() {
        let mut t = StartupTrace::with_enabled(true);
        t.mark("runtime");
        std::thread::sleep(std::time::Duration::from_millis(3));
        t.mark("config");
        let v: serde_json::Value = serde_json::from_str(&t.line().unwrap()).unwrap();
        let trace = &v["startup_trace"];
        let phases = trace["phases_us"].as_object().unwrap();
        // The key order is serde_json's (sorted, or insertion order with `preserve_order`).
        let mut keys: Vec<&str> = phases.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["config", "runtime"]);
        assert!(phases["config"].as_u64().unwrap() >= 3000, "{trace}");
        let (main, run) = (
            trace["main_unix_us"].as_u64().unwrap(),
            trace["run_unix_us"].as_u64().unwrap(),
        );
        assert!(run >= main + 3000, "{trace}");
    }
}
