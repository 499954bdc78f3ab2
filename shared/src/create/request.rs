//! What create-image is asked to do, and how a JSON payload becomes a request.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::model::{ImageId, Region, ScheduleName};
use crate::tags::parse_schedule_name;
use crate::time_util::{parse_rfc3339, rfc3339, slot_of};

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

    /// The body of the continuation message that runs the next wave of this slot.
    pub fn continuation_body(&self) -> Value {
        json!({"continue": {"schedule": self.schedule.as_str(), "slot": rfc3339(self.slot)}})
    }
}

/// A create-image invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateRequest {
    /// A schedule fired (or an operator asked): image the instances of this slot.
    Schedule(ScheduleRun),
    /// The next reboot wave of a slot (sent by an earlier invocation).
    Continue(ScheduleRun),
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
            Self::Schedule(r) | Self::Continue(r) => Some(r),
            Self::ImageFailed { .. } => None,
        }
    }
}

/// A direct payload that is not a create-image request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a create-image request: {0}")]
pub struct RequestError(pub String);

fn schedule_run_from(
    v: &Value,
    at: &str,
    now: OffsetDateTime,
) -> Result<ScheduleRun, RequestError> {
    let schedule = match v.get("schedule") {
        Some(Value::String(s)) => parse_schedule_name("schedule", s)
            .map_err(|e| RequestError(format!("{at}schedule: {e}")))?,
        Some(other) => {
            return Err(RequestError(format!(
                "{at}schedule must be a string such as \"daily\", found {other}"
            )))
        }
        None => {
            return Err(RequestError(format!(
                "{at}schedule is missing; send {{\"schedule\": \"daily\"}}"
            )))
        }
    };
    let slot = match v.get("slot") {
        None | Some(Value::Null) => slot_of(now),
        Some(Value::String(s)) => parse_rfc3339(s).ok_or_else(|| {
            RequestError(format!(
                "{at}slot {s:?} is not an RFC 3339 time such as 2026-11-22T03:00:00Z"
            ))
        })?,
        Some(other) => {
            return Err(RequestError(format!(
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
            return Err(RequestError(
                "continue must be an object {\"schedule\": …, \"slot\": …}".to_owned(),
            ));
        }
        if c.get("slot").is_none() {
            return Err(RequestError(
                "continue.slot is missing: a continuation names the slot it continues".to_owned(),
            ));
        }
        return schedule_run_from(c, "continue.", now).map(CreateRequest::Continue);
    }
    if v.get("schedule").is_some() {
        return schedule_run_from(v, "", now).map(CreateRequest::Schedule);
    }
    Err(RequestError(format!(
        "expected {{\"schedule\": \"daily\", \"slot\": \"2026-11-22T03:00:00Z\"}} or a continuation {{\"continue\": {{…}}}}, got {}",
        crate::tags::TagError::new("", &v.to_string(), "", "").value
    )))
}

#[cfg(test)]
mod tests {
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
            request_from_direct(&run.continuation_body(), NOW)?,
            CreateRequest::Continue(run)
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
