//! [`Deadline`]: when a run must stop starting new work.
//!
//! A Lambda invocation has a hard end; a run that is cut off mid-call leaves work
//! half-done. Runners check [`Deadline::near`] before each item and, once it is near,
//! stop cleanly and report `incomplete`, leaving the rest to the next run (which
//! converges from whatever state it finds).

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Option<Instant>,
    margin: Duration,
}

impl Deadline {
    /// No deadline (the CLI).
    pub fn none() -> Self {
        Self {
            at: None,
            margin: Duration::ZERO,
        }
    }

    /// Stop starting work `margin` before `at`.
    pub fn at(at: Instant, margin: Duration) -> Self {
        Self {
            at: Some(at),
            margin,
        }
    }

    /// From Lambda's remaining time, keeping a margin for the report.
    pub fn after(remaining: Duration, margin: Duration) -> Self {
        Self::at(Instant::now() + remaining, margin)
    }

    pub fn near(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() + self.margin >= at)
    }

    /// Whether work taking `d` still ends before the margin (always, without a deadline).
    pub fn fits(&self, d: Duration) -> bool {
        self.at
            .is_none_or(|at| Instant::now() + self.margin + d <= at)
    }

    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_respects_the_margin() {
        assert!(!Deadline::none().near());
        assert!(Deadline::after(Duration::from_secs(5), Duration::from_secs(10)).near());
        assert!(!Deadline::after(Duration::from_secs(60), Duration::from_secs(10)).near());
    }
}
