//! [`ScheduleExpression`]: an EventBridge schedule expression (`cron(...)`, `rate(...)`),
//! and the two questions create-image's reconcile asks of it: when did the schedule last
//! fire ([`ScheduleExpression::last_fire`], the slot that should have an image) and how
//! long is its period ([`ScheduleExpression::period`], which sizes the catch-up window and
//! says when a lineage is stale).
//!
//! Cron follows EventBridge: six fields `minute hour day-of-month month day-of-week year`,
//! each `*`, `?`, a number, a name (`JAN`-`DEC`, `SUN`-`SAT`, 1 = Sunday), a list (`,`) or
//! a range (`-`); UTC. `rate(N unit)` has no slots (it fires relative to the rule's
//! creation), so only its period is known. The simulator fires the template's schedules
//! with [`ScheduleExpression::fires_on`].

use time::{Date, Duration, OffsetDateTime, Time};

/// How far back [`ScheduleExpression::last_fire`] looks (a yearly schedule at most).
const LOOK_BACK_DAYS: i64 = 400;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    Cron(Cron),
    Rate(Duration),
}

/// The six fields of a cron expression, checked at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minute: String,
    hour: String,
    day_of_month: String,
    month: String,
    day_of_week: String,
    year: String,
}

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

fn value(token: &str, names: &[&str]) -> Result<i64, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(token)) {
        return Ok(i as i64 + 1);
    }
    token
        .parse()
        .map_err(|_| format!("{token:?} is not a number or a name"))
}

fn matches(field: &str, actual: i64, names: &[&str]) -> Result<bool, String> {
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

impl ScheduleExpression {
    /// Parses `cron(...)` or `rate(N minute|minutes|hour|hours|day|days)`. The error says
    /// what is wrong and what is accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some(body) = t.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
            let mut parts = body.split_whitespace();
            let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("{t:?} is not rate(N unit)"));
            };
            let n: i64 = n
                .parse()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{t:?}: N must be a whole number from 1"))?;
            let unit = match unit {
                "minute" | "minutes" => Duration::minutes(1),
                "hour" | "hours" => Duration::hours(1),
                "day" | "days" => Duration::days(1),
                other => {
                    return Err(format!(
                        "{t:?}: unit {other:?} is not minute(s), hour(s) or day(s)"
                    ))
                }
            };
            return Ok(Self::Rate(unit * n as i32));
        }
        let body = t
            .strip_prefix("cron(")
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| format!("{t:?} is neither cron(...) nor rate(...)"))?;
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [minute, hour, dom, month, dow, year] = fields[..] else {
            return Err(format!("{t:?}: a cron expression has 6 fields"));
        };
        let cron = Cron {
            text: t.to_owned(),
            minute: minute.to_owned(),
            hour: hour.to_owned(),
            day_of_month: dom.to_owned(),
            month: month.to_owned(),
            day_of_week: dow.to_owned(),
            year: year.to_owned(),
        };
        // Every field must evaluate (a name or number where one is expected).
        cron.day_matches(
            Date::from_calendar_date(2026, time::Month::January, 1).map_err(|e| e.to_string())?,
        )?;
        if cron.times_of_day()?.is_empty() {
            return Err(format!(
                "{t:?}: the minute and hour fields name no time of day"
            ));
        }
        Ok(Self::Cron(cron))
    }

    /// The times on `day` at which the schedule fires (cron only; sorted).
    pub fn fires_on(&self, day: Date) -> Vec<OffsetDateTime> {
        match self {
            Self::Rate(_) => Vec::new(),
            Self::Cron(c) => {
                if !c.day_matches(day).unwrap_or(false) {
                    return Vec::new();
                }
                c.times_of_day()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| day.with_time(t).assume_utc())
                    .collect()
            }
        }
    }

    /// The latest time at or before `now` at which the schedule fired (cron only).
    pub fn last_fire(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let today = now.date();
        (0..=LOOK_BACK_DAYS)
            .filter_map(|back| today.checked_sub(Duration::days(back)))
            .find_map(|day| self.fires_on(day).into_iter().rev().find(|t| *t <= now))
    }

    /// The time between two fires: the rate, or the gap between the last two cron fires
    /// before `now` (a weekly schedule: 7 days).
    pub fn period(&self, now: OffsetDateTime) -> Option<Duration> {
        match self {
            Self::Rate(d) => Some(*d),
            Self::Cron(_) => {
                let last = self.last_fire(now)?;
                let before = self.last_fire(last - Duration::minutes(1))?;
                Some(last - before)
            }
        }
    }
}

impl Cron {
    fn day_matches(&self, day: Date) -> Result<bool, String> {
        let weekday = i64::from(day.weekday().number_from_sunday());
        Ok(matches(&self.day_of_month, i64::from(day.day()), &[])?
            && matches(&self.month, i64::from(u8::from(day.month())), &MONTHS)?
            && matches(&self.day_of_week, weekday, &DAYS)?
            && matches(&self.year, i64::from(day.year()), &[])?)
    }

    fn times_of_day(&self) -> Result<Vec<Time>, String> {
        let mut out = Vec::new();
        for h in 0..24u8 {
            if !matches(&self.hour, i64::from(h), &[])? {
                continue;
            }
            for m in 0..60u8 {
                if matches(&self.minute, i64::from(m), &[])? {
                    out.push(Time::from_hms(h, m, 0).map_err(|e| e.to_string())?);
                }
            }
        }
        Ok(out)
    }
}

impl std::fmt::Display for ScheduleExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cron(c) => f.write_str(&c.text),
            Self::Rate(d) => write!(f, "rate({} minutes)", d.whole_minutes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn parse(s: &str) -> ScheduleExpression {
        ScheduleExpression::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn daily_and_weekly_crons_fire_as_eventbridge_counts() {
        // 2026-11-22 is a Sunday.
        assert_eq!(
            parse("cron(0 3 * * ? *)").fires_on(date!(2026 - 11 - 22)),
            vec![datetime!(2026-11-22 03:00 UTC)]
        );
        let weekly = parse("cron(0 4 ? * SUN *)");
        assert_eq!(
            weekly.fires_on(date!(2026 - 11 - 22)),
            vec![datetime!(2026-11-22 04:00 UTC)]
        );
        assert!(weekly.fires_on(date!(2026 - 11 - 23)).is_empty());
        assert_eq!(
            parse("cron(30 5 ? * 2-6 *)")
                .fires_on(date!(2026 - 11 - 23))
                .len(),
            1,
            "Monday is 2"
        );
        assert!(parse("cron(0 0 1 JAN ? *)")
            .fires_on(date!(2026 - 11 - 22))
            .is_empty());
    }

    #[test]
    fn the_last_fire_and_the_period() {
        let daily = parse("cron(0 3 * * ? *)");
        let now = datetime!(2026-11-24 10:17 UTC);
        assert_eq!(daily.last_fire(now), Some(datetime!(2026-11-24 03:00 UTC)));
        assert_eq!(
            daily.last_fire(datetime!(2026-11-24 02:59 UTC)),
            Some(datetime!(2026-11-23 03:00 UTC))
        );
        assert_eq!(daily.period(now), Some(Duration::days(1)));
        let weekly = parse("cron(0 4 ? * SUN *)");
        assert_eq!(weekly.last_fire(now), Some(datetime!(2026-11-22 04:00 UTC)));
        assert_eq!(weekly.period(now), Some(Duration::days(7)));
        let twice = parse("cron(0 3,15 * * ? *)");
        assert_eq!(twice.period(now), Some(Duration::hours(12)));
        assert_eq!(parse("rate(6 hours)").period(now), Some(Duration::hours(6)));
        assert_eq!(parse("rate(6 hours)").last_fire(now), None);
    }

    #[test]
    fn garbage_is_refused_with_what_is_accepted() {
        for (bad, words) in [
            ("at(2026-11-22T00:00:00)", "neither cron"),
            ("cron(0 3 * *)", "6 fields"),
            ("cron(0 3 * * MOON *)", "not a number"),
            ("rate(0 hours)", "from 1"),
            ("rate(1 fortnight)", "unit"),
        ] {
            match ScheduleExpression::parse(bad) {
                Ok(e) => panic!("{bad} parsed as {e}"),
                Err(e) => assert!(e.contains(words), "{bad}: {e}"),
            }
        }
    }
}
