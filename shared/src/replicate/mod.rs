//! replicate: copy managed images to their destination regions, re-encrypted, exactly once;
//! adopt images other accounts share with us.
//!
//! - [`Request`]: what a run is about — one image (an `available` event, `amictl replicate
//!   --image`), one failed copy (a `failed` event), or a full reconcile (the hourly
//!   schedule, `{}`, `amictl replicate`). [`Request::from_trigger`] reads it from an event;
//!   [`Replicate`] is the runner ([`crate::runner::Runner`]).
//! - [`plan::plan`]: the pure planner over a [`plan::Inventory`]; [`plan::Plan`] lists
//!   copies ([`plan::CopyPlan`], each with its deterministic `ClientToken`), failed copies to
//!   remove and decisions to report.
//! - [`run()`]: lists the inventory through the ports, checks replica keys, applies the plan
//!   and returns the [`crate::report::RunReport`] (`copied`, `already-existed`, `late`,
//!   `deferred`, `failed`, `refused`; `planned` in a dry run).
//!
//! Events make it fast; the reconcile makes it correct: a lost event is caught by the next
//! reconcile, a duplicated one finds the copy present (or gets the same copy back from the
//! token), and a copy refused for throttling is reported `deferred` and requested again
//! by the next reconcile. A copy refused for a destination's concurrent-copy cap
//! (`ResourceLimitExceeded`) starts as soon as a slot frees there ([`slots`]): a run that
//! waits (the reconcile, `amictl`) polls for a copy there to complete, bounded
//! by the deadline; an event's run defers it, and the `available` event of the copy that
//! completes — provably ours: managed, a copy, sealed — fills its region (the planner
//! narrowed to that destination, [`plan::Inventory::only_region`]). Every path judges a
//! source within its whole lineage ([`crate::lineage`], as cleanup does, per destination
//! region): a lost or failed copy is made again while retention keeps its source, newest
//! or not. A lost copy is requested under a fresh token (EC2 answers a used token with the
//! copy it first made, even once deregistered). With `COPY_COMPLETION_MINUTES`, a copy
//! still pending past its completion duration is reported `late`.
//!
//! ```
//! use ami_core::config::Config;
//! use ami_core::events::Trigger;
//! use ami_core::replicate::Request;
//!
//! let config = Config::for_region("us-east-1");
//! let request = Request::from_trigger(Trigger::Direct(serde_json::json!({})), &config)?;
//! assert_eq!(request, Request::Reconcile);
//! # Ok::<(), ami_core::runner::RequestError>(())
//! ```

mod lines;
pub mod plan;
mod run;
pub mod slots;

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Config;
use crate::context::Context;
use crate::events::{reconcile_rule, Trigger};
use crate::model::{ImageId, ImageState, Region};
use crate::report::RunReport;
use crate::runner::{RequestError, Runner};

pub use self::plan::{plan, CopyKind, CopyPlan, Inventory, KeyStatus, Plan};
pub use self::run::run;

/// The function name in reports.
pub const FUNCTION: &str = "replicate";

/// The replicate runner.
pub struct Replicate;

impl Runner for Replicate {
    const NAME: &'static str = FUNCTION;
    type Request = Request;

    fn request(
        trigger: Trigger,
        config: &Config,
        _now: OffsetDateTime,
    ) -> Result<Request, RequestError> {
        Request::from_trigger(trigger, config)
    }

    /// The reconcile: one work item per account and managed (source) region; copies go
    /// to every replica region from there.
    fn split(request: &Request, config: &Config) -> Option<crate::runner::Split> {
        matches!(request, Request::Reconcile)
            .then(|| crate::runner::Split::PerRegion(config.regions.clone()))
    }

    /// The reconcile of one source region; the config stays whole (destinations and
    /// the managed regions are judged as in a full reconcile).
    fn narrow(request: Request, _config: &mut Config, region: Option<&Region>) -> Request {
        match (request, region) {
            (Request::Reconcile, Some(r)) => Request::ReconcileIn(r.clone()),
            (other, _) => other,
        }
    }

    async fn run(ctx: &Context, request: Request, now: OffsetDateTime) -> RunReport {
        run(ctx, request, now).await
    }
}

/// What one run of replicate is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every managed source in every managed region, every destination; adoption.
    Reconcile,
    /// The reconcile of the sources in one managed region (a work item of a fanned-out
    /// run, issue 18): every destination of those sources, as the full reconcile does.
    ReconcileIn(Region),
    /// One image (searched in every managed region when `region` is `None`).
    Image {
        image: ImageId,
        region: Option<Region>,
        from_event: bool,
    },
    /// A copy that ended `failed`: report it, copy again with a fresh token, remove it.
    FailedCopy {
        image: ImageId,
        region: Region,
        error: Option<String>,
    },
    /// An event replicate does not act on (another AMI state): reported, nothing done.
    Ignore {
        image: ImageId,
        region: Region,
        why: String,
    },
}

/// A direct payload replicate cannot read: the field, what is wrong, what is accepted.
fn bad(field: &str, problem: impl std::fmt::Display) -> RequestError {
    RequestError::invalid(FUNCTION, format!("{field}: {problem}"))
}

impl Request {
    /// The schedule rule that triggers the reconcile.
    pub fn reconcile_rule(config: &Config) -> String {
        reconcile_rule(&config.deployment, FUNCTION)
    }

    /// Reads a request from a parsed trigger. Direct payloads: `{}` (reconcile) or
    /// `{"image": "ami-…", "region": "eu-west-1"}` (`region` optional).
    pub fn from_trigger(trigger: Trigger, config: &Config) -> Result<Self, RequestError> {
        match trigger {
            Trigger::Schedule { rule, .. } => {
                let want = Self::reconcile_rule(config);
                if rule == want {
                    Ok(Self::Reconcile)
                } else {
                    Err(RequestError::unexpected(FUNCTION, format!("schedule rule {rule:?} is not replicate's; expected {want:?} (check AMI_LIFECYCLE_NAME)")))
                }
            }
            Trigger::AmiState {
                image,
                state: ImageState::Available,
                region,
                ..
            } => Ok(Self::Image {
                image,
                region: Some(region),
                from_event: true,
            }),
            Trigger::AmiState {
                image,
                state: ImageState::Failed,
                region,
                error,
                ..
            } => Ok(Self::FailedCopy {
                image,
                region,
                error,
            }),
            Trigger::AmiState {
                image,
                state,
                region,
                ..
            } => Ok(Self::Ignore {
                image,
                region,
                why: format!(
                    "state {}: replicate acts on available and failed",
                    state.as_str()
                ),
            }),
            // A tag change (e.g. replicate-to added) replicates that image now.
            Trigger::ImageTags { image, region, .. } => Ok(Self::Image {
                image,
                region: Some(region),
                from_event: true,
            }),
            Trigger::Continuation(_) | Trigger::WorkItems(_) => Err(RequestError::unexpected(
                FUNCTION,
                "a continuation batch is for create-image, not replicate",
            )),
            Trigger::Direct(v) => Self::from_direct(&v),
        }
    }

    fn from_direct(v: &Value) -> Result<Self, RequestError> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("$", "expected a JSON object"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "image" | "region"))
        {
            return Err(bad(&format!("{:?}", crate::tags::truncate(k, 80)), "unknown key; replicate takes {} (reconcile) or {\"image\": \"ami-…\", \"region\": \"…\"}"));
        }
        let region = match obj.get("region") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if crate::tags::is_region_name(r) => {
                Some(Region::new(r.as_str()))
            }
            Some(other) => {
                return Err(bad(
                    "region",
                    format!("{other} is not a region name such as eu-west-1"),
                ))
            }
        };
        match obj.get("image") {
            None | Some(Value::Null) if region.is_none() => Ok(Self::Reconcile),
            None | Some(Value::Null) => Err(bad(
                "image",
                "region given without an image; pass both, or {} to reconcile",
            )),
            Some(Value::String(id)) if ImageId::parse(id).is_ok() => Ok(Self::Image {
                image: ImageId::new(id.as_str()),
                region,
                from_event: false,
            }),
            Some(other) => Err(bad("image", format!("{other} is not an image id (ami-…)"))),
        }
    }
}

#[cfg(test)]
mod request_tests;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod slots_tests;
