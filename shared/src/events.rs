//! Incoming events, parsed into what the functions act on.
//!
//! Lambda hands each function an EventBridge envelope (or, for create-image's
//! continuation, an SQS batch). [`parse_trigger`] turns any of them into a [`Trigger`]:
//! a fired schedule, an AMI state change, a tag change on an image, a batch of
//! continuations, or a manual request (`{"schedule": "daily"}`, `{"image": "ami-…"}`,
//! `{}` = reconcile). Malformed input is an [`EventError`] that says what was wrong; it
//! never panics and never yields a half-read trigger. What a trigger asks of each function
//! is the runner's decision (`Runner::request` in [`crate::runner`]).
//!
//! The names the template gives its schedule rules live here too ([`schedule_of_rule`],
//! [`reconcile_rule`], [`cleanup_rule`]), so a runner and the template agree in one place.

use serde_json::Value;
use time::OffsetDateTime;

use crate::model::{ImageId, ImageState, Region, ScheduleName, Tags};
use crate::tags::truncate;
use crate::time_util::parse_rfc3339;

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A schedule rule fired (`Scheduled Event`); `rule` is the rule name.
    Schedule {
        rule: String,
        time: OffsetDateTime,
        region: Region,
    },
    /// `EC2 AMI State Change`.
    AmiState {
        image: ImageId,
        state: ImageState,
        region: Region,
        error: Option<String>,
        time: OffsetDateTime,
    },
    /// `Tag Change on Resource` for an image (or a CloudTrail CreateTags/DeleteTags call).
    ImageTags {
        image: ImageId,
        region: Region,
        changed_keys: Vec<String>,
        tags: Option<Tags>,
        /// The other images of a CloudTrail call that tagged several resources at once
        /// (`Tag Change on Resource` names one resource per event).
        more: Vec<ImageId>,
    },
    /// An SQS batch (create-image's continuation queue): each message's body, read as JSON.
    Continuation(Vec<Value>),
    /// A manual invocation: free-form JSON.
    Direct(Value),
    /// An SQS batch of work items of a fanned-out run (issue 18, [`crate::fanout`]).
    WorkItems(Vec<crate::fanout::QueuedItem>),
}

/// The most images one tagging call may name for share to act on them from the event
/// (each costs a few reads and, when shared, a few writes within one invocation); a larger
/// call is left to the hourly reconcile.
pub const MAX_TAGGED_IMAGES: usize = 100;

/// An event the functions cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable event: {problem} (at {path})")]
pub struct EventError {
    pub path: String,
    pub problem: String,
}

fn err(path: &str, problem: impl Into<String>) -> EventError {
    EventError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

fn str_at<'a>(v: &'a Value, path: &str) -> Result<&'a str, EventError> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part).ok_or_else(|| err(path, "missing"))?;
    }
    cur.as_str()
        .ok_or_else(|| err(path, format!("expected a string, found {}", kind(cur))))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn image_id(s: &str, path: &str) -> Result<ImageId, EventError> {
    ImageId::parse(s).map_err(|bad| err(path, format!("{:?} is not an image id", bad.value)))
}

fn region(s: &str, path: &str) -> Result<Region, EventError> {
    if crate::tags::is_region_name(s) {
        Ok(Region::new(s))
    } else {
        Err(err(
            path,
            format!(
                "{:?} is not a region",
                crate::tags::TagError::new("", s, "", "").value
            ),
        ))
    }
}

fn time(v: &Value) -> Result<OffsetDateTime, EventError> {
    let t = str_at(v, "time")?;
    parse_rfc3339(t).ok_or_else(|| {
        err(
            "time",
            format!("{:?} is not an RFC 3339 time", truncate(t, 80)),
        )
    })
}

/// The image id at the end of an image ARN (`arn:aws:ec2:REGION:[ACCOUNT]:image/ami-…`).
fn image_from_resources(v: &Value) -> Option<&str> {
    v.get("resources")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|arn| arn.split_once(":image/").map(|(_, id)| id))
}

/// Parses one EventBridge event (or a direct invocation payload).
pub fn parse_trigger(v: &Value) -> Result<Trigger, EventError> {
    if !v.is_object() {
        return Err(err(
            "$",
            format!("expected a JSON object, found {}", kind(v)),
        ));
    }
    let Some(detail_type) = v.get("detail-type") else {
        if let Some(records) = v.get("Records") {
            let bodies = sqs_batch(records)?;
            if bodies.iter().any(crate::fanout::is_work_item) {
                let records = records.as_array().map_or(&[][..], Vec::as_slice);
                return crate::fanout::queued_items(records).map(Trigger::WorkItems);
            }
            return Ok(Trigger::Continuation(bodies));
        }
        return Ok(Trigger::Direct(v.clone()));
    };
    let detail_type = detail_type
        .as_str()
        .ok_or_else(|| err("detail-type", "expected a string"))?;
    let source = str_at(v, "source")?;
    match (source, detail_type) {
        ("aws.events", "Scheduled Event") | ("aws.scheduler", "Scheduled Event") => {
            let arn = v
                .get("resources")
                .and_then(Value::as_array)
                .and_then(|r| r.iter().find_map(Value::as_str))
                .ok_or_else(|| err("resources", "a scheduled event names its rule in resources"))?;
            let rule = arn.rsplit('/').next().unwrap_or(arn).to_owned();
            Ok(Trigger::Schedule {
                rule,
                time: time(v)?,
                region: region(str_at(v, "region")?, "region")?,
            })
        }
        ("aws.ec2", "EC2 AMI State Change") => {
            let id = str_at(v, "detail.ImageId")?;
            let state = str_at(v, "detail.State")?;
            let error = v
                .get("detail")
                .and_then(|d| d.get("ErrorMessage"))
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(str::to_owned);
            Ok(Trigger::AmiState {
                image: image_id(id, "detail.ImageId")?,
                state: ImageState::from_aws(state),
                region: region(str_at(v, "region")?, "region")?,
                error,
                time: time(v)?,
            })
        }
        ("aws.tag", "Tag Change on Resource") => {
            let id = image_from_resources(v)
                .ok_or_else(|| err("resources", "no image ARN in resources"))?;
            let detail = v.get("detail").ok_or_else(|| err("detail", "missing"))?;
            let keys = detail
                .get("changed-tag-keys")
                .and_then(Value::as_array)
                .ok_or_else(|| err("detail.changed-tag-keys", "expected an array"))?
                .iter()
                .map(|k| {
                    k.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| err("detail.changed-tag-keys", "expected strings"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let tags = match detail.get("tags") {
                None | Some(Value::Null) => None,
                Some(Value::Object(m)) => Some(
                    m.iter()
                        .map(|(k, v)| {
                            v.as_str()
                                .map(|s| (k.clone(), s.to_owned()))
                                .ok_or_else(|| {
                                    err(
                                        "detail.tags",
                                        format!("tag {:?} is not a string", truncate(k, 80)),
                                    )
                                })
                        })
                        .collect::<Result<Tags, _>>()?,
                ),
                Some(other) => {
                    return Err(err(
                        "detail.tags",
                        format!("expected an object, found {}", kind(other)),
                    ))
                }
            };
            Ok(Trigger::ImageTags {
                image: image_id(id, "resources")?,
                region: region(str_at(v, "region")?, "region")?,
                changed_keys: keys,
                tags,
                more: Vec::new(),
            })
        }
        ("aws.ec2", "AWS API Call via CloudTrail") => {
            let name = str_at(v, "detail.eventName")?;
            if name != "CreateTags" && name != "DeleteTags" {
                return Err(err(
                    "detail.eventName",
                    format!(
                        "{:?} is not CreateTags or DeleteTags",
                        crate::tags::truncate(name, 80)
                    ),
                ));
            }
            // CreateTags/DeleteTags: detail.requestParameters.resourcesSet.items[].resourceId
            let items = v
                .pointer("/detail/requestParameters/resourcesSet/items")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    err(
                        "detail.requestParameters.resourcesSet.items",
                        "expected an array",
                    )
                })?;
            // Every image of the call (one CreateTags may tag many resources); instances,
            // snapshots and the rest are not share's.
            let mut images: Vec<ImageId> = Vec::new();
            for id in items
                .iter()
                .filter_map(|i| i.get("resourceId").and_then(Value::as_str))
                .filter_map(|id| ImageId::parse(id).ok())
            {
                if !images.contains(&id) {
                    images.push(id);
                }
            }
            if images.len() > MAX_TAGGED_IMAGES {
                return Err(err(
                    "detail.requestParameters.resourcesSet.items",
                    format!(
                        "{} images in one call, more than {MAX_TAGGED_IMAGES}: left to the scheduled reconcile",
                        images.len()
                    ),
                ));
            }
            let mut images = images.into_iter();
            let first = images.next().ok_or_else(|| {
                err(
                    "detail.requestParameters.resourcesSet.items",
                    "no image among the tagged resources",
                )
            })?;
            let keys = v
                .pointer("/detail/requestParameters/tagSet/items")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Trigger::ImageTags {
                image: first,
                region: region(str_at(v, "region")?, "region")?,
                changed_keys: keys,
                tags: None,
                more: images.collect(),
            })
        }
        (s, d) => Err(err(
            "detail-type",
            format!(
                "unexpected event {:?} from {:?}",
                truncate(d, 80),
                truncate(s, 80)
            ),
        )),
    }
}

/// The bodies of an SQS batch (`Records[].body`, each a JSON document).
fn sqs_batch(records: &Value) -> Result<Vec<Value>, EventError> {
    let records = records
        .as_array()
        .ok_or_else(|| err("Records", "expected an array of SQS messages"))?;
    records
        .iter()
        .enumerate()
        .map(|(n, record)| {
            let path = format!("Records[{n}].body");
            let body = record
                .get("body")
                .and_then(Value::as_str)
                .ok_or_else(|| err(&path, "missing or not a string"))?;
            serde_json::from_str(body).map_err(|e| err(&path, format!("not JSON: {e}")))
        })
        .collect()
}

// The template's rule names. A fired `Scheduled Event` names its rule; these say what the
// rule stands for.

/// The schedule a create-image rule stands for: the template names schedule rules
/// `DEPLOYMENT-schedule-NAME`; `DEPLOYMENT-NAME` is accepted too.
pub fn schedule_of_rule(rule: &str, deployment: &str) -> Option<ScheduleName> {
    let rest = rule.strip_prefix(deployment)?.strip_prefix('-')?;
    let name = rest.strip_prefix("schedule-").unwrap_or(rest);
    crate::tags::parse_schedule_name("rule", name).ok()
}

/// The rule of `function`'s periodic reconcile (`create-image`, `replicate`, `share`,
/// `publish`):
/// `DEPLOYMENT-FUNCTION-reconcile`.
pub fn reconcile_rule(deployment: &str, function: &str) -> String {
    format!("{deployment}-{function}-reconcile")
}

/// The rule of cleanup's schedule: `DEPLOYMENT-cleanup`.
pub fn cleanup_rule(deployment: &str) -> String {
    format!("{deployment}-cleanup")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../tests/fixtures/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn reads_the_aws_shaped_fixtures() -> Result<(), EventError> {
        assert_eq!(
            parse_trigger(&fixture("scheduled-event.json"))?,
            Trigger::Schedule {
                rule: "ami-lifecycle-daily".into(),
                time: datetime!(2026-11-22 03:00 UTC),
                region: Region::new("us-east-1")
            }
        );
        match parse_trigger(&fixture("ami-state-change-failed.json"))? {
            Trigger::AmiState {
                image,
                state,
                region,
                error,
                ..
            } => {
                assert_eq!(image.as_str(), "ami-0fedcba9876543210");
                assert_eq!(state, ImageState::Failed);
                assert_eq!(region.as_str(), "us-west-2");
                assert_eq!(error.as_deref(), Some("Description of failure"));
            }
            other => panic!("{other:?}"),
        }
        match parse_trigger(&fixture("ami-state-change-available.json"))? {
            Trigger::AmiState { state, error, .. } => {
                assert_eq!(state, ImageState::Available);
                assert_eq!(error, None, "an empty ErrorMessage is no error");
            }
            other => panic!("{other:?}"),
        }
        match parse_trigger(&fixture("tag-change-on-image.json"))? {
            Trigger::ImageTags {
                image,
                changed_keys,
                tags,
                ..
            } => {
                assert_eq!(image.as_str(), "ami-0abcdef1234567890");
                assert_eq!(changed_keys, vec!["ami-lifecycle:share-with".to_owned()]);
                assert_eq!(
                    tags.and_then(|t| t.get("ami-lifecycle:share-with").cloned())
                        .as_deref(),
                    Some("111122223333,444455556666")
                );
            }
            other => panic!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn direct_payloads_pass_through() -> Result<(), EventError> {
        let v = serde_json::json!({"schedule": "daily"});
        assert_eq!(parse_trigger(&v)?, Trigger::Direct(v));
        Ok(())
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        let mut bad = fixture("ami-state-change-available.json");
        bad["detail"]["ImageId"] = Value::from(42);
        let e = parse_trigger(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("detail.ImageId") && e.contains("expected a string, found a number"),
            "{e}"
        );

        let mut bad = fixture("ami-state-change-available.json");
        bad["detail"]["ImageId"] = Value::from("snap-123");
        let e = parse_trigger(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("is not an image id"), "{e}");

        let mut bad = fixture("scheduled-event.json");
        bad["time"] = Value::from("yesterday");
        assert!(parse_trigger(&bad).is_err());

        assert!(parse_trigger(&Value::from("[]")).is_err());
        let unknown = serde_json::json!({"detail-type": "Something", "source": "aws.s3"});
        assert!(parse_trigger(&unknown)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("unexpected event"));
    }

    #[test]
    fn cloudtrail_calls_other_than_tagging_are_rejected() -> Result<(), EventError> {
        let dir = format!("{}/../tests/fixtures/events", env!("CARGO_MANIFEST_DIR"));
        let read = |name: &str| -> Value {
            let text = std::fs::read_to_string(format!("{dir}/{name}"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        assert!(matches!(
            parse_trigger(&read("cloudtrail-create-tags.json"))?,
            Trigger::ImageTags { .. }
        ));
        let e = parse_trigger(&read("cloudtrail-run-instances.json"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("detail.eventName") && e.contains("RunInstances"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn an_sqs_batch_is_a_continuation_of_its_bodies() -> Result<(), EventError> {
        let body =
            serde_json::json!({"continue": {"schedule": "daily", "slot": "2026-11-22T03:00:00Z"}});
        let batch = serde_json::json!({"Records": [
            {"messageId": "1", "eventSource": "aws:sqs", "body": body.to_string()},
            {"messageId": "2", "eventSource": "aws:sqs", "body": "{}"},
        ]});
        assert_eq!(
            parse_trigger(&batch)?,
            Trigger::Continuation(vec![body, serde_json::json!({})])
        );
        for (records, path, words) in [
            (serde_json::json!({"a": 1}), "Records", "expected an array"),
            (
                serde_json::json!([{"body": 3}]),
                "Records[0].body",
                "not a string",
            ),
            (
                serde_json::json!([{"body": "{}"}, {"body": "not json"}]),
                "Records[1].body",
                "not JSON",
            ),
        ] {
            let e = parse_trigger(&serde_json::json!({ "Records": records }))
                .err()
                .unwrap_or_else(|| panic!("{records} accepted"));
            assert_eq!(e.path, path);
            assert!(e.to_string().contains(words), "{e}");
        }
        Ok(())
    }

    #[test]
    fn rule_names_match_the_template() {
        assert_eq!(
            reconcile_rule("prod", "replicate"),
            "prod-replicate-reconcile"
        );
        assert_eq!(cleanup_rule("prod"), "prod-cleanup");
        let template =
            std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR")))
                .unwrap_or_else(|e| panic!("template.yaml: {e}"));
        for name in [
            reconcile_rule("${DeploymentName}", "create-image"),
            reconcile_rule("${DeploymentName}", "replicate"),
            reconcile_rule("${DeploymentName}", "share"),
            reconcile_rule("${DeploymentName}", "publish"),
            cleanup_rule("${DeploymentName}"),
            "${DeploymentName}-schedule-daily".to_owned(),
        ] {
            assert!(
                template.contains(&format!(" Name: !Sub {name}\n")),
                "template.yaml names no rule {name}"
            );
        }
    }

    #[test]
    fn schedule_names_come_from_rule_names() {
        assert_eq!(
            schedule_of_rule("ami-lifecycle-schedule-daily", "ami-lifecycle"),
            Some(ScheduleName::new("daily"))
        );
        assert_eq!(
            schedule_of_rule("prod-schedule-weekly", "prod"),
            Some(ScheduleName::new("weekly"))
        );
        assert_eq!(
            schedule_of_rule("ami-lifecycle-daily", "ami-lifecycle"),
            Some(ScheduleName::new("daily"))
        );
        assert_eq!(
            schedule_of_rule("other-schedule-daily", "ami-lifecycle"),
            None
        );
        assert_eq!(
            schedule_of_rule("ami-lifecycle-schedule-bad name", "ami-lifecycle"),
            None
        );
    }

    #[test]
    fn a_cloudtrail_call_tagging_several_resources_names_every_image_of_it(
    ) -> Result<(), EventError> {
        let mut e = fixture("cloudtrail-create-tags.json");
        e["detail"]["requestParameters"]["resourcesSet"]["items"] = serde_json::json!([
            {"resourceId": "i-0123456789abcdef0"},
            {"resourceId": "ami-0000000000000000a"},
            {"resourceId": "snap-0123456789abcdef0"},
            {"resourceId": "ami-0000000000000000b"},
            {"resourceId": "ami-0000000000000000a"},
        ]);
        match parse_trigger(&e)? {
            Trigger::ImageTags { image, more, .. } => {
                assert_eq!(image.as_str(), "ami-0000000000000000a");
                assert_eq!(more, vec![ImageId::new("ami-0000000000000000b")]);
            }
            other => panic!("{other:?}"),
        }
        // A call naming only instances is not share's.
        e["detail"]["requestParameters"]["resourcesSet"]["items"] =
            serde_json::json!([{"resourceId": "i-0123456789abcdef0"}]);
        assert!(parse_trigger(&e).is_err_and(|e| e.to_string().contains("no image")));
        // A huge call is left to the reconcile, with a clear error.
        let many: Vec<Value> = (0..=MAX_TAGGED_IMAGES)
            .map(|n| serde_json::json!({"resourceId": format!("ami-{n:017x}")}))
            .collect();
        e["detail"]["requestParameters"]["resourcesSet"]["items"] = Value::Array(many);
        assert!(parse_trigger(&e).is_err_and(|e| e.to_string().contains("reconcile")));
        Ok(())
    }
}
