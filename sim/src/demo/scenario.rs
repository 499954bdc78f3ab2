//! The simulated days: which schedules fire (read from the template), what a person does
//! on which day (share, refuse, revoke, a launch template), and the state expected at the
//! end.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use time::{Date, OffsetDateTime, Time};

use super::estate::{Seeded, HOME, REPLICA, SECOND};
use super::wiring::{Trigger, Wiring};

/// A person's action on a given day, after that day's image runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A launch template whose non-default version uses web-1's image of this day.
    LaunchTemplateKeepsToday,
    /// Tag this day's image of `instance` with share-with = `value`.
    Share {
        instance: &'static str,
        value: &'static str,
    },
    /// Remove the share-with tag from the image shared on `day`.
    Unshare { instance: &'static str, day: u32 },
    /// A launch template in the home and the replica region whose image is
    /// `resolve:ssm:` web-1's latest-image parameter: the same text, two different ids.
    LatestTemplates,
    /// `amictl rollback --lineage web-1 --to <day's slot> --all-regions --apply`: a bad
    /// release found; the parameters go back to that day's image and stay pinned.
    Rollback { lineage: &'static str, to_day: u32 },
    /// `amictl migrate --instance <instance> --to-az <another zone> --yes`, then the same
    /// command again (as after an interruption): it finds everything and makes nothing new.
    Migrate { instance: &'static str },
}

/// The day the demo moves app-eu-1 to another zone.
pub const MIGRATE_DAY: u32 = 3;
/// The instance it moves, and how the final table names its successor.
pub const MIGRATED: &str = "app-eu-1";
pub const MIGRATED_SUCCESSOR: &str = "app-eu-1 (moved)";

/// The latest-image parameter the demo's launch templates resolve.
pub const WEB_LATEST: &str = "/ami-lifecycle/ami-lifecycle/web-1/latest";

/// The day of the rollback and the day it goes back to.
pub const ROLLBACK_DAY: u32 = 6;
pub const ROLLBACK_TO_DAY: u32 = 4;

/// Day number (1-based) → actions at 09:00.
pub fn actions() -> Vec<(u32, Action)> {
    vec![
        (1, Action::LaunchTemplateKeepsToday),
        (1, Action::LatestTemplates),
        (
            2,
            Action::Share {
                instance: "web-1",
                value: super::estate::ALLOWED_ACCOUNT,
            },
        ),
        (
            2,
            Action::Share {
                instance: "batch-1",
                value: super::estate::STRANGER_ACCOUNT,
            },
        ),
        (
            5,
            Action::Unshare {
                instance: "web-1",
                day: 2,
            },
        ),
        (
            6,
            Action::Share {
                instance: "db-1",
                value: super::estate::ALLOWED_ACCOUNT,
            },
        ),
        (MIGRATE_DAY, Action::Migrate { instance: MIGRATED }),
        (
            ROLLBACK_DAY,
            Action::Rollback {
                lineage: "web-1",
                to_day: ROLLBACK_TO_DAY,
            },
        ),
    ]
}

/// The day (1-based) whose daily schedule event is lost on its way to create-image.
pub const LOST_EVENT_DAY: u32 = 3;

/// Whether the Scheduled Event of `rule` on day `n` is lost (never delivered).
pub fn event_lost(n: u32, rule: &str) -> bool {
    n == LOST_EVENT_DAY && rule.ends_with("-schedule-daily")
}

pub fn at(day: Date, h: u8, m: u8) -> OffsetDateTime {
    day.with_time(Time::from_hms(h, m, 0).unwrap_or(Time::MIDNIGHT))
        .assume_utc()
}

/// Schedule firings of `day`, in time order: (time, rule name, function).
pub fn firings(
    wiring: &Wiring,
    day: Date,
) -> anyhow::Result<Vec<(OffsetDateTime, String, String)>> {
    let mut out = Vec::new();
    for rule in &wiring.rules {
        if let Trigger::Schedule(expr) = &rule.trigger {
            for t in super::cron::fires_on(expr, day)? {
                out.push((t, rule.name.clone(), rule.function.clone()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The Scheduled Event EventBridge delivers for `rule` at `time`.
pub fn scheduled_event(rule: &str, time: OffsetDateTime, account: &str) -> Value {
    json!({
        "version": "0",
        "id": format!("demo-{rule}-{}", time.unix_timestamp()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": ami_core::time_util::rfc3339(time),
        "region": HOME,
        "resources": [format!("arn:aws:events:{HOME}:{account}:rule/{rule}")],
        "detail": {}
    })
}

/// Images expected at the end per (region, instance name), with RETAIN=count=3 over
/// `days` days: three per daily lineage, in each region separately; web-1 keeps one more
/// in the home region (its launch template) and, once rolled back, the image it was
/// rolled back to in both regions (published and pinned: PUBLISHED_KEEP); weekly lineages
/// have one image per Sunday.
pub fn expected_images(
    estate: &[Seeded],
    days: u32,
    sundays: u32,
) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    let retained = |made: u32| made.min(3) as usize;
    for s in estate {
        let made = if s.schedules.contains(&"weekly") {
            sundays
        } else {
            days
        };
        if made == 0 {
            continue;
        }
        let mut here = retained(made);
        if s.name == "web-1" && days > 3 {
            here += 1;
        }
        // The move's image (day 3, 09:00) joins the lineage; once three daily images are
        // newer, retention alone would retire it, but the moved instance runs from it.
        if s.name == MIGRATED && days >= MIGRATE_DAY + 3 {
            here += 1;
        }
        // The moved instance carries the schedule: its own lineage from the next day on,
        // replicated like the others.
        if s.name == MIGRATED && days > MIGRATE_DAY {
            let made = (days - MIGRATE_DAY) as usize;
            out.insert(
                (s.region.to_owned(), MIGRATED_SUCCESSOR.to_owned()),
                made.min(3),
            );
            out.insert(
                (REPLICA.to_owned(), MIGRATED_SUCCESSOR.to_owned()),
                made.min(3),
            );
        }
        // The rolled-back-to image, older than the three newest, is kept by its pin.
        let pinned =
            usize::from(s.name == "web-1" && days >= ROLLBACK_DAY && days > ROLLBACK_TO_DAY + 2);
        out.insert((s.region.to_owned(), s.name.to_owned()), here + pinned);
        // Every managed region's images are replicated to the replica region.
        if s.region == HOME || s.region == SECOND {
            out.insert(
                (REPLICA.to_owned(), s.name.to_owned()),
                retained(made) + pinned,
            );
        }
    }
    out
}
