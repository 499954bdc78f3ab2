//! create-image: scheduled, consistent AMIs of opted-in instances, in staggered reboot waves.
//!
//! - [`Request`] ([`Request::from_trigger`]): what one invocation asks — the runs of a
//!   fired schedule, an operator's request, a batch of continuations or an image that ended
//!   `failed`, each a [`CreateRequest`] ([`ScheduleRun`]: schedule + slot); or an event it
//!   only reports (a rule of no known schedule, an AMI state it does not act on).
//!   [`request_from_direct`] reads direct and continuation JSON. [`CreateImage`] is the
//!   runner ([`crate::runner::Runner`]).
//! - [`plan::plan`]: the pure planner over an [`Inventory`] → [`Plan`] of [`Action`]s
//!   (create now, already exists, wait for a later wave, skip, fail).
//! - [`run::run`]: reads the inventory, applies the plan (CreateImage with tags at creation,
//!   `InvalidAMIName.Duplicate` counted as done), sends the continuation of the next wave,
//!   and returns the [`RunReport`]; [`run::run_wave`] also says whether waves remain (the
//!   CLI's loop).
//!
//! ```
//! use ami_core::config::Config;
//! use ami_core::create::{image_name, plan, Inventory, ScheduleRun};
//! use ami_core::model::InstanceId;
//! use time::macros::datetime;
//!
//! let config = Config::for_region("us-east-1");
//! let run = ScheduleRun::new("daily".into(), datetime!(2026-11-22 03:00:41 UTC));
//! assert_eq!(
//!     image_name(&config.deployment, &InstanceId::new("i-0abc"), &run),
//!     "ami-lifecycle/i-0abc/daily/20261122T0300Z"
//! );
//! let empty = plan(&run, &Inventory::default(), &config, run.slot);
//! assert!(empty.items.is_empty() && !empty.waves_remain());
//! ```

pub mod plan;
mod quiesce;
#[cfg(test)]
mod quiesce_tests;
pub mod reconcile;
pub mod run;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::config::Config;
use crate::context::Context;
use crate::events::{schedule_of_rule, Trigger};
use crate::model::{ImageId, ImageState, Region, ScheduleName};
use crate::report::{Outcome, RunReport};
use crate::runner::{RequestError, Runner};
use crate::tags::parse_schedule_name;
use crate::time_util::{parse_rfc3339, rfc3339, slot_of};

pub use self::plan::{
    check_schedule, image_name, image_tags, plan, Action, Inventory, Plan, PlanItem, Wave,
};
pub use self::run::{run, run_wave, WaveRun, FUNCTION};

/// The create-image runner.
pub struct CreateImage;

impl Runner for CreateImage {
    const NAME: &'static str = FUNCTION;
    type Request = Request;

    fn request(
        trigger: Trigger,
        config: &Config,
        now: OffsetDateTime,
    ) -> Result<Request, RequestError> {
        Request::from_trigger(trigger, config, now)
    }

    /// Schedules and the reconcile: one work item per account, all its regions (a reboot
    /// group's waves may cross regions, and REBOOT_CONCURRENCY counts the whole group).
    /// Continuations, failed images and operator runs of one slot stay one run.
    fn split(request: &Request, _config: &Config) -> Option<crate::runner::Split> {
        let fans = match request {
            Request::Reconcile => true,
            Request::Run(runs) => {
                !runs.is_empty() && runs.iter().all(|r| matches!(r, CreateRequest::Schedule(_)))
            }
            _ => false,
        };
        fans.then_some(crate::runner::Split::PerAccount)
    }

    async fn run(ctx: &Context, request: Request, now: OffsetDateTime) -> RunReport {
        request.run(ctx, now).await
    }
}

/// What one create-image invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// These runs, in order, into one report: one for a schedule, an operator or a failed
    /// image; one per message of a continuation batch.
    Run(Vec<CreateRequest>),
    /// A schedule rule that names no schedule of this deployment: reported `failed` (so the
    /// misnamed rule is seen), nothing imaged. `why` names the rule and the fix.
    UnknownRule { rule: String, why: String },
    /// The scheduled reconcile ([`reconcile::reconcile`]): missed slots caught up or
    /// reported, stale lineages reported.
    Reconcile,
    /// An AMI state change create-image does not act on (only `failed` is): reported
    /// `skipped`.
    Ignore {
        image: ImageId,
        region: Region,
        state: ImageState,
    },
}

impl Request {
    /// Reads what a trigger asks of create-image. `now` is the slot of a direct request
    /// that names none.
    pub fn from_trigger(
        trigger: Trigger,
        config: &Config,
        now: OffsetDateTime,
    ) -> Result<Self, RequestError> {
        Ok(match trigger {
            Trigger::Schedule { rule, .. }
                if rule == crate::events::reconcile_rule(&config.deployment, FUNCTION) =>
            {
                Self::Reconcile
            }
            Trigger::Schedule { rule, time, .. } => {
                match schedule_of_rule(&rule, &config.deployment) {
                    Some(schedule) => {
                        let run = ScheduleRun::new(schedule, time);
                        check_slot(&run, now, SlotAuthority::Event, config).map_err(bad)?;
                        Self::Run(vec![CreateRequest::Schedule(run)])
                    }
                    None => {
                        let why = format!(
                        "rule {rule:?} does not name a schedule of deployment {d:?}: name create-image rules {d}-schedule-NAME with NAME in SCHEDULES={s}; nothing was imaged",
                        d = config.deployment,
                        s = config.schedules.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
                    );
                        Self::UnknownRule { rule, why }
                    }
                }
            }
            Trigger::AmiState {
                image,
                state: ImageState::Failed,
                region,
                error,
                ..
            } => Self::Run(vec![CreateRequest::ImageFailed {
                region,
                image,
                error,
            }]),
            Trigger::AmiState {
                image,
                state,
                region,
                ..
            } => Self::Ignore {
                image,
                region,
                state,
            },
            Trigger::ImageTags { image, .. } => {
                return Err(RequestError::unexpected(
                    FUNCTION,
                    format!("a tag change on {image} is for share, not create-image"),
                ))
            }
            Trigger::Continuation(bodies) => Self::Run(
                bodies
                    .iter()
                    .enumerate()
                    .map(|(n, body)| {
                        continuation_from_body(body, now, config).map_err(|e| {
                            RequestError::invalid(
                                FUNCTION,
                                format!("Records[{n}].body: {}", e.cause()),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Trigger::Direct(v) => Self::Run(vec![direct_request(&v, now, config)?]),
            Trigger::WorkItems(_) => {
                // runner::handle_report consumes work items before asking any runner.
                return Err(RequestError::unexpected(
                    FUNCTION,
                    "a batch of work items is consumed by the fan-out, not read as one request",
                ));
            }
        })
    }

    /// Applies the request: every run, merged into one report.
    pub async fn run(self, ctx: &Context, now: OffsetDateTime) -> RunReport {
        let mut report = RunReport::new(FUNCTION, ctx.dry_run(), now);
        match self {
            Self::Run(runs) => {
                let mut merged: Option<RunReport> = None;
                for r in runs {
                    let one = run::run(ctx, r, now).await;
                    match merged.as_mut() {
                        Some(all) => all.merge(one),
                        None => merged = Some(one),
                    }
                }
                return merged.unwrap_or(report);
            }
            Self::Reconcile => return reconcile::reconcile(ctx, now).await,
            Self::UnknownRule { rule, why } => {
                let home = ctx
                    .config
                    .regions
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "us-east-1".into());
                report.push(&home, format!("rule {rule}"), None, Outcome::Failed, why);
            }
            Self::Ignore {
                image,
                region,
                state,
            } => report.push(
                &region,
                image.as_str(),
                Some(&image),
                Outcome::Skipped,
                format!(
                    "state {}: create-image acts on failed images only",
                    state.as_str()
                ),
            ),
        }
        report
    }
}

fn bad(why: String) -> RequestError {
    RequestError::invalid(FUNCTION, why)
}

/// How far ahead of now any slot may be: a clock a little fast, never a date in the
/// future (a slot is a retention time, and a bogus future one must not look newest).
pub const SLOT_MAX_AHEAD: time::Duration = time::Duration::minutes(5);

/// Who asks for a slot, which decides how old it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotAuthority {
    /// An EventBridge schedule or a continuation from the queue (only create-image's role
    /// may send to it): any past slot (late deliveries and later waves are normal).
    Event,
    /// A direct invocation: the slot must be in the current window (`SLOT_WINDOW`).
    Direct,
    /// An operator's explicit `force` (`amictl create-images --slot`): any past slot.
    Forced,
}

/// The edge check of a slot: never more than [`SLOT_MAX_AHEAD`] ahead of `now`; for a
/// direct invocation without `force`, at most `SLOT_WINDOW` minutes old. The error names
/// the slot, the limit and the fix; nothing is imaged.
pub fn check_slot(
    run: &ScheduleRun,
    now: OffsetDateTime,
    authority: SlotAuthority,
    config: &Config,
) -> Result<(), String> {
    if run.slot > now + SLOT_MAX_AHEAD {
        return Err(format!(
            "slot {} of schedule {} is in the future (now is {}; at most {} min ahead is accepted): a slot is the time an image stands for; fix the slot",
            rfc3339(run.slot),
            run.schedule,
            rfc3339(now),
            SLOT_MAX_AHEAD.whole_minutes()
        ));
    }
    let window = time::Duration::minutes(i64::from(config.slot_window_minutes));
    if authority == SlotAuthority::Direct && run.slot < now - window {
        return Err(format!(
            "slot {} of schedule {} is older than SLOT_WINDOW={} min: a direct invocation images the current slot only; to image a past slot, run amictl create-images --schedule {} --slot {} (or send \"force\": true)",
            rfc3339(run.slot),
            run.schedule,
            config.slot_window_minutes,
            run.schedule,
            rfc3339(run.slot)
        ));
    }
    Ok(())
}

/// A direct invocation: `{"schedule": …, "slot": …, "force": true}` (slot and force
/// optional). A continuation body is refused here: continuations come from the queue.
pub fn direct_request(
    v: &Value,
    now: OffsetDateTime,
    config: &Config,
) -> Result<CreateRequest, RequestError> {
    if v.get("continue").is_some() {
        return Err(bad(
            "a continuation is accepted only from the continuation queue; invoke with {\"schedule\": \"daily\"} instead".to_owned(),
        ));
    }
    let force = match v.get("force") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => return Err(bad(format!("force must be true or false, found {other}"))),
    };
    let request = request_from_direct(v, now)?;
    if let Some(run) = request.schedule_run() {
        let authority = if force {
            SlotAuthority::Forced
        } else {
            SlotAuthority::Direct
        };
        check_slot(run, now, authority, config).map_err(bad)?;
    }
    Ok(request)
}

/// One continuation message body from the queue.
fn continuation_from_body(
    v: &Value,
    now: OffsetDateTime,
    config: &Config,
) -> Result<CreateRequest, RequestError> {
    let request = request_from_direct(v, now)?;
    if let Some(run) = request.schedule_run() {
        check_slot(run, now, SlotAuthority::Event, config).map_err(bad)?;
    }
    Ok(request)
}

/// One schedule slot: the schedule that fired and the minute it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRun {
    pub schedule: ScheduleName,
    /// Always truncated to the minute ([`slot_of`]).
    #[serde(with = "time::serde::rfc3339")]
    pub slot: OffsetDateTime,
}

impl ScheduleRun {
    pub fn new(schedule: ScheduleName, slot: OffsetDateTime) -> Self {
        Self {
            schedule,
            slot: slot_of(slot),
        }
    }

    /// The body of the continuation message that runs the next wave of this slot: its
    /// `round` (1 for the first continuation) bounds how long a slot keeps continuing.
    pub fn continuation_body(&self, round: u32) -> Value {
        json!({"continue": {"schedule": self.schedule.as_str(), "slot": rfc3339(self.slot), "round": round}})
    }
}

/// A create-image invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateRequest {
    /// A schedule fired (or an operator asked): image the instances of this slot.
    Schedule(ScheduleRun),
    /// The next reboot wave of a slot (sent by an earlier invocation).
    /// The number is the continuation's round (1, 2, …), at most
    /// [`run::MAX_CONTINUATION_ROUNDS`].
    Continue(ScheduleRun, u32),
    /// An image ended `failed` (EC2 AMI State Change): report it and clean up its snapshots.
    ImageFailed {
        region: Region,
        image: ImageId,
        error: Option<String>,
    },
}

impl CreateRequest {
    /// The slot this request images, if it images one.
    pub fn schedule_run(&self) -> Option<&ScheduleRun> {
        match self {
            Self::Schedule(r) | Self::Continue(r, _) => Some(r),
            Self::ImageFailed { .. } => None,
        }
    }
}

fn schedule_run_from(
    v: &Value,
    at: &str,
    now: OffsetDateTime,
) -> Result<ScheduleRun, RequestError> {
    let schedule = match v.get("schedule") {
        Some(Value::String(s)) => {
            parse_schedule_name("schedule", s).map_err(|e| bad(format!("{at}schedule: {e}")))?
        }
        Some(other) => {
            return Err(bad(format!(
                "{at}schedule must be a string such as \"daily\", found {other}"
            )))
        }
        None => {
            return Err(bad(format!(
                "{at}schedule is missing; send {{\"schedule\": \"daily\"}}"
            )))
        }
    };
    let slot = match v.get("slot") {
        None | Some(Value::Null) => slot_of(now),
        Some(Value::String(s)) => parse_rfc3339(s).ok_or_else(|| {
            bad(format!(
                "{at}slot {s:?} is not an RFC 3339 time such as 2026-11-22T03:00:00Z"
            ))
        })?,
        Some(other) => {
            return Err(bad(format!(
                "{at}slot must be an RFC 3339 string, found {other}"
            )))
        }
    };
    Ok(ScheduleRun::new(schedule, slot))
}

/// Reads a direct payload: `{"schedule": "daily", "slot": "2026-11-22T03:00:00Z"}` (slot
/// optional: now, truncated to the minute) or a continuation `{"continue": {...}}`.
pub fn request_from_direct(v: &Value, now: OffsetDateTime) -> Result<CreateRequest, RequestError> {
    if let Some(c) = v.get("continue") {
        if !c.is_object() {
            return Err(bad(
                "continue must be an object {\"schedule\": …, \"slot\": …}".to_owned(),
            ));
        }
        if c.get("slot").is_none() {
            return Err(bad(
                "continue.slot is missing: a continuation names the slot it continues".to_owned(),
            ));
        }
        let round = match c.get("round") {
            None | Some(Value::Null) => 1,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    bad(format!(
                        "continue.round must be a whole number from 1, found {n}"
                    ))
                })?,
            Some(other) => {
                return Err(bad(format!(
                    "continue.round must be a whole number from 1, found {other}"
                )))
            }
        };
        return schedule_run_from(c, "continue.", now).map(|r| CreateRequest::Continue(r, round));
    }
    if v.get("schedule").is_some() {
        if let Some(unknown) = v.as_object().and_then(|o| {
            o.keys()
                .find(|k| !matches!(k.as_str(), "schedule" | "slot" | "force"))
        }) {
            return Err(bad(format!(
                "unknown key {:?}; send {{\"schedule\": \"daily\", \"slot\": \"2026-11-22T03:00:00Z\"}}",
                crate::tags::truncate(unknown, 80)
            )));
        }
        return schedule_run_from(v, "", now).map(CreateRequest::Schedule);
    }
    Err(bad(format!(
        "expected {{\"schedule\": \"daily\", \"slot\": \"2026-11-22T03:00:00Z\"}} or a continuation {{\"continue\": {{…}}}}, got {}",
        crate::tags::TagError::new("", &v.to_string(), "", "").value
    )))
}

#[cfg(test)]
mod request_tests;

#[cfg(test)]
mod direct_tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:17:42 UTC);

    #[test]
    fn direct_schedule_with_and_without_slot() -> Result<(), RequestError> {
        let r = request_from_direct(
            &json!({"schedule": "daily", "slot": "2026-11-22T03:00:59Z"}),
            NOW,
        )?;
        assert_eq!(
            r,
            CreateRequest::Schedule(ScheduleRun::new(
                "daily".into(),
                datetime!(2026-11-22 03:00 UTC)
            ))
        );
        let r = request_from_direct(&json!({"schedule": "weekly"}), NOW)?;
        assert_eq!(
            r.schedule_run().map(|r| r.slot),
            Some(datetime!(2026-11-22 10:17 UTC))
        );
        Ok(())
    }

    #[test]
    fn continuation_round_trips() -> Result<(), RequestError> {
        let run = ScheduleRun::new("daily".into(), datetime!(2026-11-22 03:00 UTC));
        assert_eq!(
            request_from_direct(&run.continuation_body(7), NOW)?,
            CreateRequest::Continue(run, 7)
        );
        Ok(())
    }

    #[test]
    fn bad_payloads_say_what_is_expected() {
        for (payload, words) in [
            (json!({"schedule": 3}), "schedule must be a string"),
            (json!({"schedule": "no way"}), "a schedule name is"),
            (
                json!({"schedule": "daily", "slot": "tomorrow"}),
                "not an RFC 3339 time",
            ),
            (
                json!({"continue": {"schedule": "daily"}}),
                "continue.slot is missing",
            ),
            (json!({"image": "ami-1"}), "expected {\"schedule\""),
        ] {
            let text = request_from_direct(&payload, NOW)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(text.contains(words), "{payload}: {text:?} lacks {words:?}");
        }
    }
}
