//! When a schedule expression fires on a simulated day.
//!
//! EventBridge's emulator never fires schedules, so the demo fires them itself, reading the
//! expressions from the template. A `cron(...)` fires when the suite's own evaluator
//! ([`ami_core::schedule::ScheduleExpression`], what create-image's reconcile uses) says;
//! `rate(...)` fires once a simulated day, at the end of it, standing in for the hourly
//! reconciles.

use ami_core::schedule::ScheduleExpression;
use anyhow::anyhow;
use time::{Date, OffsetDateTime, Time};

/// The times on `day` at which `expression` fires (sorted).
pub fn fires_on(expression: &str, day: Date) -> anyhow::Result<Vec<OffsetDateTime>> {
    match ScheduleExpression::parse(expression).map_err(|e| anyhow!(e))? {
        ScheduleExpression::Rate(_) => {
            Ok(vec![day.with_time(Time::from_hms(23, 0, 0)?).assume_utc()])
        }
        cron => Ok(cron.fires_on(day)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn crons_fire_as_the_core_says_and_rates_once_a_day() -> anyhow::Result<()> {
        assert_eq!(
            fires_on("cron(0 4 ? * SUN *)", date!(2026 - 11 - 22))?,
            vec![datetime!(2026-11-22 04:00 UTC)]
        );
        assert_eq!(
            fires_on("rate(1 hour)", date!(2026 - 11 - 22))?,
            vec![datetime!(2026-11-22 23:00 UTC)]
        );
        assert!(fires_on("at(2026-11-22T00:00:00)", date!(2026 - 11 - 22)).is_err());
        Ok(())
    }
}
