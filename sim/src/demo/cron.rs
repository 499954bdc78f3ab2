//! When a schedule expression fires on a simulated day.
//!
//! EventBridge's emulator never fires schedules, so the demo fires them itself, reading the
//! expressions from the template. `cron(min hour day-of-month month day-of-week year)` is
//! evaluated for one day (fields with `*`, `?`, numbers, lists, ranges, and `SUN`-`SAT` /
//! `1`-`7` with 1 = Sunday, as EventBridge counts); `rate(...)` fires once a simulated day,
//! at the end of it, standing in for the hourly reconciles.

use anyhow::{bail, Context};
use time::{Date, OffsetDateTime, Time};

/// The times on `day` at which `expression` fires (at most one for cron, sorted).
pub fn fires_on(expression: &str, day: Date) -> anyhow::Result<Vec<OffsetDateTime>> {
    if let Some(body) = expression
        .strip_prefix("rate(")
        .and_then(|s| s.strip_suffix(')'))
    {
        if body.split_whitespace().count() != 2 {
            bail!("rate expression {expression:?} is not rate(N unit)");
        }
        return Ok(vec![day.with_time(Time::from_hms(23, 0, 0)?).assume_utc()]);
    }
    let body = expression
        .strip_prefix("cron(")
        .and_then(|s| s.strip_suffix(')'))
        .with_context(|| format!("{expression:?} is neither cron(...) nor rate(...)"))?;
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minute, hour, dom, month, dow, year] = fields[..] else {
        bail!("cron expression {expression:?} needs 6 fields");
    };
    let weekday = i64::from(day.weekday().number_from_sunday());
    let ok = matches(dom, i64::from(day.day()), &[])?
        && matches(month, i64::from(u8::from(day.month())), &MONTHS)?
        && matches(dow, weekday, &DAYS)?
        && matches(year, i64::from(day.year()), &[])?;
    if !ok {
        return Ok(vec![]);
    }
    let minute: u8 = minute
        .parse()
        .with_context(|| format!("minute {minute:?}: the demo fires fixed-minute schedules"))?;
    let hour: u8 = hour
        .parse()
        .with_context(|| format!("hour {hour:?}: the demo fires fixed-hour schedules"))?;
    Ok(vec![day
        .with_time(Time::from_hms(hour, minute, 0)?)
        .assume_utc()])
}

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

fn value(token: &str, names: &[&str]) -> anyhow::Result<i64> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(token)) {
        return Ok(i as i64 + 1);
    }
    token
        .parse()
        .with_context(|| format!("{token:?} is not a number"))
}

fn matches(field: &str, actual: i64, names: &[&str]) -> anyhow::Result<bool> {
    if field == "*" || field == "?" {
        return Ok(true);
    }
    for part in field.split(',') {
        let hit = match part.split_once('-') {
            Some((a, b)) => (value(a, names)?..=value(b, names)?).contains(&actual),
            None => value(part, names)? == actual,
        };
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn daily_and_weekly_crons() -> anyhow::Result<()> {
        // 2026-11-22 is a Sunday.
        assert_eq!(
            fires_on("cron(0 3 * * ? *)", date!(2026 - 11 - 22))?,
            vec![datetime!(2026-11-22 03:00 UTC)]
        );
        assert_eq!(
            fires_on("cron(0 4 ? * SUN *)", date!(2026 - 11 - 22))?,
            vec![datetime!(2026-11-22 04:00 UTC)]
        );
        assert!(fires_on("cron(0 4 ? * SUN *)", date!(2026 - 11 - 23))?.is_empty());
        assert_eq!(
            fires_on("cron(30 5 ? * 2-6 *)", date!(2026 - 11 - 23))?.len(),
            1,
            "Monday is 2"
        );
        assert!(fires_on("cron(0 0 1 JAN ? *)", date!(2026 - 11 - 22))?.is_empty());
        Ok(())
    }

    #[test]
    fn rates_fire_once_a_day_and_garbage_is_an_error() -> anyhow::Result<()> {
        assert_eq!(
            fires_on("rate(1 hour)", date!(2026 - 11 - 22))?,
            vec![datetime!(2026-11-22 23:00 UTC)]
        );
        assert!(fires_on("at(2026-11-22T00:00:00)", date!(2026 - 11 - 22)).is_err());
        assert!(fires_on("cron(0 3 * *)", date!(2026 - 11 - 22)).is_err());
        Ok(())
    }
}
