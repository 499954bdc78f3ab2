//! Retention rules: how many images of one lineage in one region to keep.
//!
//! A [`RetentionRule`] is parsed from `RETAIN` or the `ami-lifecycle:retain` tag:
//! `count=7`, `days=30`, `count=7,days=30` (keep what either keeps), or
//! grandfather-father-son `daily=7,weekly=4,monthly=12` (optionally `yearly=N`).
//! [`RetentionRule::keep`] is pure: given a lineage's images and `now`, it returns the ones
//! the rule keeps and why. The newest image is always kept, whatever the rule says.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::model::ImageId;
use crate::values::{split_list, truncate};

/// A parsed retention rule. Every present part keeps images; the union is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRule {
    pub count: Option<u32>,
    pub days: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
}

/// A retention value that does not parse; [`crate::tags::TagError::from_retention`] reports
/// it against a tag, and config against its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?}: {problem}; expected count=N, days=N, both (count=7,days=30) or daily=N,weekly=N,monthly=N")]
pub struct RetentionError {
    pub value: String,
    pub problem: String,
}

/// The one order of "newer" every decision uses: the later time first; on a tie, the
/// smaller id, so plans are deterministic and every caller picks the same "newest".
pub fn newest_first<T: Ord>(a: (T, &ImageId), b: (T, &ImageId)) -> Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

/// A grandfather-father-son period: its name, how many to keep, and the bucket of a time.
type GfsBucket = (&'static str, Option<u32>, fn(OffsetDateTime) -> i64);

/// Why an image is kept (printed in plans).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeepReason {
    /// The newest available image of its lineage.
    Newest,
    /// Among the newest `count`.
    Count(u32),
    /// Younger than `days`.
    Age(u32),
    /// The newest of its day/week/month/year bucket.
    Gfs(&'static str, u32),
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Newest => f.write_str("newest of its lineage"),
            Self::Count(n) => write!(f, "within the newest {n} (count={n})"),
            Self::Age(d) => write!(f, "younger than {d} days (days={d})"),
            Self::Gfs(period, n) => write!(
                f,
                "newest of its {period} within the last {n} ({period}={n})"
            ),
        }
    }
}

impl RetentionRule {
    pub fn parse(value: &str) -> Result<Self, RetentionError> {
        let err = |problem: String| RetentionError {
            value: truncate(value, 80),
            problem,
        };
        let mut rule = RetentionRule::default();
        let mut any = false;
        for part in split_list(value) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err(format!("{:?} is not key=number", truncate(part, 80))))?;
            let n: u32 = v
                .trim()
                .parse()
                .map_err(|_| err(format!("{:?} is not a whole number", truncate(v, 80))))?;
            if n == 0 || n > 100_000 {
                return Err(err(format!(
                    "{}={n} is out of range 1-100000",
                    truncate(k, 80)
                )));
            }
            let slot = match k.trim() {
                "count" => &mut rule.count,
                "days" => &mut rule.days,
                "daily" => &mut rule.daily,
                "weekly" => &mut rule.weekly,
                "monthly" => &mut rule.monthly,
                "yearly" => &mut rule.yearly,
                other => return Err(err(format!("unknown key {:?}", truncate(other, 80)))),
            };
            if slot.replace(n).is_some() {
                return Err(err(format!("{k} given twice")));
            }
            any = true;
        }
        if !any {
            return Err(err("empty rule".to_owned()));
        }
        Ok(rule)
    }

    /// Which of `images` (one lineage in one region, any order, `(id, created)`) the rule
    /// keeps at `now`, each with its first reason. The newest is always kept.
    pub fn keep(
        &self,
        images: &[(ImageId, OffsetDateTime)],
        now: OffsetDateTime,
    ) -> BTreeMap<ImageId, KeepReason> {
        let mut sorted: Vec<&(ImageId, OffsetDateTime)> = images.iter().collect();
        sorted.sort_by(|a, b| newest_first((a.1, &a.0), (b.1, &b.0)));
        let mut kept = BTreeMap::new();
        if let Some((id, _)) = sorted.first() {
            kept.insert(id.clone(), KeepReason::Newest);
        }
        if let Some(n) = self.count {
            for (id, _) in sorted.iter().take(n as usize) {
                kept.entry(id.clone()).or_insert(KeepReason::Count(n));
            }
        }
        if let Some(d) = self.days {
            let horizon = now - Duration::days(i64::from(d));
            for (id, created) in &sorted {
                if *created > horizon {
                    kept.entry(id.clone()).or_insert(KeepReason::Age(d));
                }
            }
        }
        let buckets: [GfsBucket; 4] = [
            ("day", self.daily, |t| t.unix_timestamp().div_euclid(86_400)),
            ("week", self.weekly, |t| {
                // ISO weeks start on Monday; 1970-01-01 was a Thursday, so shift by 3 days.
                (t.unix_timestamp() + 3 * 86_400).div_euclid(7 * 86_400)
            }),
            ("month", self.monthly, |t| {
                i64::from(t.year()) * 12 + i64::from(u8::from(t.month()))
            }),
            ("year", self.yearly, |t| i64::from(t.year())),
        ];
        for (period, limit, bucket_of) in buckets {
            let Some(n) = limit else { continue };
            let now_bucket = bucket_of(now);
            let mut seen = std::collections::BTreeSet::new();
            for (id, created) in &sorted {
                let b = bucket_of(*created);
                // The last n buckets counting the current one; the newest image of each.
                if now_bucket - b < i64::from(n) && seen.insert(b) {
                    kept.entry(id.clone()).or_insert(KeepReason::Gfs(period, n));
                }
            }
        }
        kept
    }
}

impl fmt::Display for RetentionRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            ("count", self.count),
            ("days", self.days),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
        .iter()
        .filter_map(|(k, v)| v.map(|n| format!("{k}={n}")))
        .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn lineage(days_ago: &[i64], now: OffsetDateTime) -> Vec<(ImageId, OffsetDateTime)> {
        days_ago
            .iter()
            .map(|d| {
                (
                    ImageId::new(format!("ami-{d:03}")),
                    now - Duration::days(*d),
                )
            })
            .collect()
    }

    fn kept_ids(rule: &str, days_ago: &[i64]) -> Result<Vec<String>, RetentionError> {
        let now = datetime!(2026-11-22 03:00 UTC);
        let rule = RetentionRule::parse(rule)?;
        Ok(rule
            .keep(&lineage(days_ago, now), now)
            .keys()
            .map(|k| k.to_string())
            .collect())
    }

    #[test]
    fn count_keeps_the_newest_n() -> Result<(), RetentionError> {
        assert_eq!(kept_ids("count=2", &[0, 1, 2, 3])?, ["ami-000", "ami-001"]);
        Ok(())
    }

    #[test]
    fn age_keeps_younger_than_days_and_always_the_newest() -> Result<(), RetentionError> {
        assert_eq!(kept_ids("days=3", &[1, 2, 5, 9])?, ["ami-001", "ami-002"]);
        // Everything is older than the horizon: the newest still survives.
        assert_eq!(kept_ids("days=3", &[10, 20, 30])?, ["ami-010"]);
        Ok(())
    }

    #[test]
    fn both_keep_what_either_keeps() -> Result<(), RetentionError> {
        assert_eq!(
            kept_ids("count=1,days=3", &[0, 1, 2, 5])?,
            ["ami-000", "ami-001", "ami-002"]
        );
        assert_eq!(
            kept_ids("count=3,days=1", &[0, 4, 5, 6])?,
            ["ami-000", "ami-004", "ami-005"]
        );
        Ok(())
    }

    #[test]
    fn gfs_keeps_newest_per_bucket() -> Result<(), RetentionError> {
        // 2026-11-22 is a Sunday. Daily=2 keeps today's and yesterday's newest;
        // weekly=2 keeps the newest of this ISO week (ami-000) and of last week (ami-007).
        let kept = kept_ids("daily=2,weekly=2", &[0, 1, 2, 7, 8, 15])?;
        assert_eq!(kept, ["ami-000", "ami-001", "ami-007"]);
        let kept = kept_ids("monthly=2", &[0, 10, 25, 40, 70])?;
        // November: ami-000; October: ami-025 (Oct 28) is the newest of October.
        assert_eq!(kept, ["ami-000", "ami-025"]);
        Ok(())
    }

    #[test]
    fn newest_is_kept_even_by_the_smallest_rule() -> Result<(), RetentionError> {
        let now = datetime!(2026-11-22 03:00 UTC);
        let rule = RetentionRule::parse("days=1")?;
        let kept = rule.keep(&lineage(&[400, 500], now), now);
        assert_eq!(
            kept.get(&ImageId::new("ami-400")),
            Some(&KeepReason::Newest)
        );
        assert_eq!(kept.len(), 1);
        Ok(())
    }

    #[test]
    fn parse_errors_say_what_is_accepted() {
        for (bad, words) in [
            ("", "empty rule"),
            ("count", "not key=number"),
            ("count=x", "not a whole number"),
            ("count=0", "out of range"),
            ("hourly=3", "unknown key"),
            ("count=1,count=2", "given twice"),
        ] {
            match RetentionRule::parse(bad) {
                Ok(r) => panic!("{bad:?} parsed as {r:?}"),
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.contains(words), "{text}");
                    assert!(text.contains("expected count=N"), "{text}");
                }
            }
        }
    }

    #[test]
    fn display_round_trips() -> Result<(), RetentionError> {
        for s in [
            "count=7",
            "days=30",
            "count=7,days=30",
            "daily=7,weekly=4,monthly=12,yearly=2",
        ] {
            assert_eq!(RetentionRule::parse(s)?.to_string(), s);
        }
        Ok(())
    }
}
