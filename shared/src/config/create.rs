//! create-image's settings: the schedules it knows, reboot waves, copied instance tags and
//! the continuation queue.
//!
//! Schedule names and copied tags feed derived values with AWS limits: the schedule rule
//! `NAME-schedule-SCHEDULE` (EventBridge rule names: at most 64 characters) and the
//! image's tags (at most 50 per resource), so both are checked against them here.

use super::common::DEPLOYMENT_MAX;
use super::parse::{err, u32_setting, Lookup};
use super::ConfigError;
use crate::model::ScheduleName;
use crate::schedule::ScheduleExpression;
use crate::tags;

/// EventBridge `PutRule` `Name`: 1–64 characters.
pub const RULE_NAME_MAX: usize = 64;

/// Tags one resource may carry (EC2: 50 user tags per resource).
pub const TAGS_PER_RESOURCE: usize = 50;

/// The most tags the suite itself puts on an image or a replica (create-image: managed-by,
/// source-instance, schedule, slot, consistency and the instance's `Name`, `retain`,
/// `replicate-to`, `share-with`; replicate adds source-image, source-region,
/// source-account, attempt; share and replicate write a status and a granted tag), with
/// room to spare for tags a later version adds.
pub const SUITE_TAGS_MAX: usize = 20;

/// `COPY_INSTANCE_TAGS` may name at most this many keys, so an image never needs more
/// than [`TAGS_PER_RESOURCE`] tags.
pub const COPIED_TAGS_MAX: usize = TAGS_PER_RESOURCE - SUITE_TAGS_MAX;

/// EC2 tag keys: at most 128 characters.
const TAG_KEY_MAX: usize = 128;

pub(super) struct CreateSettings {
    pub schedules: Vec<ScheduleName>,
    pub reboot_concurrency: u32,
    pub copy_instance_tags: Vec<String>,
    pub continuation_queue: Option<String>,
    pub continuation_delay_seconds: u32,
    pub reboot_min_interval_minutes: u32,
    pub slot_window_minutes: u32,
    pub schedule_expressions: std::collections::BTreeMap<ScheduleName, ScheduleExpression>,
    pub catch_up_window_minutes: Option<u32>,
    pub stale_grace_minutes: u32,
    pub wave_max_wait_minutes: u32,
}

/// The EventBridge rule that runs `schedule` for `deployment`.
pub fn schedule_rule_name(deployment: &str, schedule: &str) -> String {
    format!("{deployment}-schedule-{schedule}")
}

impl CreateSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>, deployment: &str) -> Result<Self, ConfigError> {
        const SCHEDULES_ACCEPTED: &str = "schedule names separated by commas, e.g. daily,weekly";
        let schedules = match get("SCHEDULES") {
            Some(v) => tags::parse_schedules("SCHEDULES", &v)
                .map_err(|e| err("SCHEDULES", &v, e.problem, SCHEDULES_ACCEPTED))?,
            None => vec![ScheduleName::new("daily"), ScheduleName::new("weekly")],
        };
        for s in &schedules {
            let rule = schedule_rule_name(deployment, s.as_str());
            if rule.len() > RULE_NAME_MAX {
                return Err(err(
                    "SCHEDULES",
                    s.as_str(),
                    format!(
                        "its rule name {rule:?} is {} characters, EventBridge allows {RULE_NAME_MAX}; \
                         shorten the schedule name to {} characters or AMI_LIFECYCLE_NAME (at most {DEPLOYMENT_MAX})",
                        rule.len(),
                        RULE_NAME_MAX.saturating_sub(rule.len() - s.as_str().len()),
                    ),
                    SCHEDULES_ACCEPTED,
                ));
            }
        }

        const EXPRESSIONS_ACCEPTED: &str =
            "NAME=EXPRESSION pairs separated by ';', e.g. daily=cron(0 3 * * ? *);weekly=cron(0 4 ? * SUN *)";
        let mut schedule_expressions = std::collections::BTreeMap::new();
        if let Some(v) = get("SCHEDULE_EXPRESSIONS") {
            for pair in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, expr) = pair.split_once('=').ok_or_else(|| {
                    err(
                        "SCHEDULE_EXPRESSIONS",
                        &v,
                        format!("{pair:?} has no '='"),
                        EXPRESSIONS_ACCEPTED,
                    )
                })?;
                let name = ScheduleName::new(name.trim());
                if !schedules.contains(&name) {
                    return Err(err(
                        "SCHEDULE_EXPRESSIONS",
                        &v,
                        format!("{name} is not one of SCHEDULES"),
                        EXPRESSIONS_ACCEPTED,
                    ));
                }
                let parsed = ScheduleExpression::parse(expr)
                    .map_err(|e| err("SCHEDULE_EXPRESSIONS", &v, e, EXPRESSIONS_ACCEPTED))?;
                schedule_expressions.insert(name, parsed);
            }
        }

        let copy_instance_tags = get("COPY_INSTANCE_TAGS")
            .map(|v| tags::split_list(&v).map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default();
        if let Some(bad) = copy_instance_tags
            .iter()
            .find(|k| k.starts_with("aws:") || k.chars().count() > TAG_KEY_MAX)
        {
            return Err(err(
                "COPY_INSTANCE_TAGS",
                bad,
                "tag keys starting with aws: are reserved and keys are at most 128 characters",
                "instance tag keys separated by commas",
            ));
        }
        if copy_instance_tags.len() > COPIED_TAGS_MAX {
            return Err(err(
                "COPY_INSTANCE_TAGS",
                &copy_instance_tags.join(","),
                format!(
                    "{} keys: with the suite's own tags an image could need more than the {TAGS_PER_RESOURCE} tags EC2 allows; name at most {COPIED_TAGS_MAX}",
                    copy_instance_tags.len()
                ),
                "at most 30 instance tag keys separated by commas",
            ));
        }

        Ok(Self {
            schedules,
            reboot_concurrency: u32_setting(
                get,
                "REBOOT_CONCURRENCY",
                (1, 1, 100),
                "a whole number from 1 to 100",
            )?,
            copy_instance_tags,
            continuation_queue: get("CONTINUATION_QUEUE_URL"),
            continuation_delay_seconds: u32_setting(
                get,
                "CONTINUATION_DELAY_SECONDS",
                (60, 0, 900),
                "seconds, a whole number from 0 to 900 (the SQS delay limit)",
            )?,
            reboot_min_interval_minutes: u32_setting(
                get,
                "REBOOT_MIN_INTERVAL",
                (60, 0, 10_080),
                "minutes, a whole number from 0 to 10080 (a week)",
            )?,
            slot_window_minutes: u32_setting(
                get,
                "SLOT_WINDOW",
                (60, 1, 1_440),
                "minutes, a whole number from 1 to 1440 (a day)",
            )?,
            schedule_expressions,
            catch_up_window_minutes: match get("CATCH_UP_WINDOW") {
                None => None,
                Some(_) => Some(u32_setting(
                    get,
                    "CATCH_UP_WINDOW",
                    (0, 1, 527_040),
                    "minutes, a whole number from 1 (default: half each schedule's period)",
                )?),
            },
            wave_max_wait_minutes: u32_setting(
                get,
                "WAVE_MAX_WAIT",
                (180, 1, 1_440),
                "minutes, a whole number from 1 to 1440",
            )?,
            stale_grace_minutes: u32_setting(
                get,
                "STALE_GRACE",
                (60, 0, 527_040),
                "minutes, a whole number from 0",
            )?,
        })
    }
}
