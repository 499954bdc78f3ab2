//! publish: "the latest image" of every lineage, in every region it has images, as an SSM
//! parameter launch templates, RunInstances and CloudFormation resolve
//! (`resolve:ssm:/ami-lifecycle/<deployment>/<lineage>/latest`), and the launch templates
//! that follow it.
//!
//! - [`Request`]: one image's lineage in its region (an `available` event: a new image or
//!   a finished replica), one lineage everywhere (`{"lineage": "web-1"}`), or everything
//!   (the hourly reconcile, `{}`). [`Publish`] is the runner.
//! - [`names`]: [`names::LineageNames`], the readable `<lineage>` of each instance, and the
//!   refused collisions.
//! - [`plan`]: the pure decision per region ([`plan::plan`]): what each parameter should
//!   hold (the newest publishable image, or the pin), what each tracked template needs.
//! - [`run()`]: reads the inventory, applies the plan, reports. [`rollback`]: `amictl
//!   rollback` and `amictl unpin`, which write or delete the pin and then publish.
//! - [`history`]: what cleanup must keep: the current and the last `PUBLISHED_KEEP`
//!   values of each parameter and the images of tracked templates' default versions.
//!
//! Parameters are `String` with data type `aws:ec2:image` (SSM validates the id, after
//! answering: a write is confirmed by reading it back, else reported `unconfirmed` and
//! written again by the next run). Each version is labelled `slot-YYYYMMDDTHHMMZ`; a
//! labelled oldest version would stop every write once the parameter has 100 versions
//! (`ParameterMaxVersionLimitExceeded`), so its labels are moved off first.

pub mod history;
pub mod names;
pub mod plan;
pub mod rollback;
mod run;

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Config;
use crate::context::Context;
use crate::events::{reconcile_rule, Trigger};
use crate::model::{ImageId, ImageState, Region};
use crate::report::RunReport;
use crate::runner::{RequestError, Runner};
use crate::time_util::slot_compact;

pub use self::plan::Scope;
pub use self::run::run;

/// The function name in reports.
pub const FUNCTION: &str = "publish";

/// How every launch template version the suite makes describes itself (and how the
/// publisher recognizes its own versions).
pub const VERSION_DESCRIPTION_PREFIX: &str = "ami-lifecycle";

/// The path of the deployment's parameters: `/ami-lifecycle/<deployment>`.
pub fn parameter_path(deployment: &str) -> String {
    format!("/ami-lifecycle/{deployment}")
}

/// `/ami-lifecycle/<deployment>/<lineage>/latest`.
pub fn latest_parameter(deployment: &str, lineage: &str) -> String {
    format!("{}/{lineage}/latest", parameter_path(deployment))
}

/// `/ami-lifecycle/<deployment>/<lineage>/pinned`: the image `amictl rollback` pinned.
pub fn pin_parameter(deployment: &str, lineage: &str) -> String {
    format!("{}/{lineage}/pinned", parameter_path(deployment))
}

/// The lineage a `latest` parameter's name is for.
pub fn lineage_of_parameter<'a>(deployment: &str, name: &'a str) -> Option<&'a str> {
    let rest = name.strip_prefix(&parameter_path(deployment))?;
    rest.strip_prefix('/')?
        .strip_suffix("/latest")
        .filter(|l| !l.contains('/'))
}

/// The label of a version: `slot-YYYYMMDDTHHMMZ` (a label may not start with a digit).
pub fn slot_label(slot: OffsetDateTime) -> String {
    format!("slot-{}", slot_compact(slot))
}

/// The publish runner.
pub struct Publish;

impl Runner for Publish {
    const NAME: &'static str = FUNCTION;
    type Request = Request;

    fn request(
        trigger: Trigger,
        config: &Config,
        _now: OffsetDateTime,
    ) -> Result<Request, RequestError> {
        Request::from_trigger(trigger, config)
    }

    async fn run(ctx: &Context, request: Request, now: OffsetDateTime) -> RunReport {
        run(ctx, request, now).await
    }
}

/// What one run of publish is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every lineage (`None`) or one, in every region.
    Reconcile { lineage: Option<String> },
    /// The lineage of one image, in the image's region (an `available` event).
    Image { image: ImageId, region: Region },
    /// An event publish does not act on: reported, nothing done.
    Ignore {
        image: ImageId,
        region: Region,
        why: String,
    },
}

fn bad(problem: impl std::fmt::Display) -> RequestError {
    RequestError::invalid(
        FUNCTION,
        format!(
            "{problem}. Send {{}} to reconcile every lineage or {{\"lineage\": \"web-1\"}} for one"
        ),
    )
}

impl Request {
    /// The schedule rule that triggers the reconcile.
    pub fn reconcile_rule(config: &Config) -> String {
        reconcile_rule(&config.deployment, FUNCTION)
    }

    /// Reads a request from a parsed trigger.
    pub fn from_trigger(trigger: Trigger, config: &Config) -> Result<Self, RequestError> {
        match trigger {
            Trigger::Schedule { rule, .. } => {
                let want = Self::reconcile_rule(config);
                if rule == want {
                    Ok(Self::Reconcile { lineage: None })
                } else {
                    Err(RequestError::unexpected(FUNCTION, format!("schedule rule {rule:?} is not publish's; expected {want:?} (check AMI_LIFECYCLE_NAME)")))
                }
            }
            Trigger::AmiState {
                image,
                state: ImageState::Available,
                region,
                ..
            } => Ok(Self::Image { image, region }),
            Trigger::AmiState {
                image,
                state,
                region,
                ..
            } => Ok(Self::Ignore {
                image,
                region,
                why: format!("state {}: publish acts on available images", state.as_str()),
            }),
            Trigger::ImageTags { .. } => Err(RequestError::unexpected(
                FUNCTION,
                "a tag change is for share, not publish",
            )),
            Trigger::Continuation(_) | Trigger::WorkItems(_) => Err(RequestError::unexpected(
                FUNCTION,
                "a continuation batch is for create-image, not publish",
            )),
            Trigger::Direct(v) => Self::from_direct(&v),
        }
    }

    fn from_direct(v: &Value) -> Result<Self, RequestError> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("a direct invocation must be a JSON object"))?;
        if let Some(k) = obj.keys().find(|k| k.as_str() != "lineage") {
            return Err(bad(format!(
                "unknown key {:?}",
                crate::tags::truncate(k, 80)
            )));
        }
        match obj.get("lineage") {
            None | Some(Value::Null) => Ok(Self::Reconcile { lineage: None }),
            Some(Value::String(n)) if names::is_valid(n.trim()) => Ok(Self::Reconcile {
                lineage: Some(n.trim().to_owned()),
            }),
            Some(other) => Err(bad(format!(
                "lineage {other} is not a lineage name (1-{} letters, digits, '_', '.' or '-')",
                names::MAX_NAME
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
