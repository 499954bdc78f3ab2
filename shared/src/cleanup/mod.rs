//! Cleanup: retention per lineage and region, with guards stronger than "old enough".
//!
//! - [`CleanupRequest`] ([`CleanupRequest::from_trigger`]): the regions to clean and
//!   whether this run is a dry run — from the cleanup schedule or a direct invocation
//!   (`{}`, `{"dry_run": true}`, `{"regions": ["eu-west-1"]}`). [`Cleanup`] is the runner
//!   ([`crate::runner::Runner`]).
//! - [`Inventory`] (`inventory.rs`): one region's managed images, streamed page by page
//!   into compact [`ImageRecord`]s grouped by [`Lineage`] (source instance × schedule;
//!   adopted images each a lineage of their own). Only images tagged
//!   `ami-lifecycle:managed-by=<deployment>` and owned by this account are ever recorded.
//! - [`plan`] (`plan.rs`, pure): [`plan::retention`] applies `RETAIN` or the newest
//!   image's `ami-lifecycle:retain`; [`plan::decide`] applies the guards (pending,
//!   `keep=true`, deregistration protection, `KEEP_IF_LAUNCHED_WITHIN`, shared or public
//!   unless `CLEANUP_SHARED`, referenced by an instance / launch template version / SSM
//!   parameter, any failed check) and the staged retirement (`DEPRECATION_GRACE`);
//!   [`plan::plan`] is the whole [`CleanupPlan`], which a dry run prints.
//! - [`run`] (`run.rs`): reads, checks and applies per region, regions in parallel, and
//!   reports orphaned snapshots (deleted only with `DELETE_ORPHANS=true`).
//! - [`recycle`] (`recycle.rs`, pure): which Recycle Bin retention rule keeps a deleted
//!   image or snapshot restorable, and until when (the report says it, or that deletion
//!   is final).
//! - [`usage`] (`usage.rs`, pure) and [`usage_check`] (`usage_check.rs`): cross-account
//!   use checks (issue 18): with `CLEANUP_SHARED=true` a shared image is disabled or
//!   deleted only once every account it is shared with answered "unused"
//!   (DescribeImageReferences through the spoke role, else an EC2 image usage report).
//! - [`restore`] (`restore.rs`): `amictl restore`, the way back from the deprecated and
//!   disabled stages (EnableImage, DisableImageDeprecation, `keep=true`).
//!
//! ```
//! use ami_core::cleanup::{plan, Facts, Inventory};
//! use ami_core::config::Config;
//! use time::macros::datetime;
//!
//! // An empty region plans nothing.
//! let config = Config::for_region("us-east-1");
//! let inventory = Inventory::new();
//! let plan = plan::plan(&inventory, &Facts::new(), &config, datetime!(2026-11-22 05:30 UTC));
//! assert_eq!(plan.deregistrations().count(), 0);
//! ```

pub mod chunked;
pub mod inventory;
pub mod plan;
pub mod recycle;
pub mod restore;
pub mod run;
pub mod usage;
pub mod usage_check;

pub use self::inventory::{ImageRecord, Inventory, Lineage};
pub use self::plan::{CleanupPlan, Decision, Facts, KeepWhy};
pub use self::run::{run, FUNCTION};

use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Config;
use crate::context::Context;
use crate::events::Trigger;
use crate::model::Region;
use crate::report::RunReport;
use crate::runner::{RequestError, Runner};

/// The cleanup runner.
pub struct Cleanup;

impl Runner for Cleanup {
    const NAME: &'static str = FUNCTION;
    type Request = CleanupRequest;

    fn request(
        trigger: Trigger,
        config: &Config,
        _now: OffsetDateTime,
    ) -> Result<CleanupRequest, RequestError> {
        CleanupRequest::from_trigger(trigger, config)
    }

    /// Every cleanup run: one work item per account and region cleaned (each region's
    /// plan is its own).
    fn split(request: &CleanupRequest, config: &Config) -> Option<crate::runner::Split> {
        let regions = if request.regions.is_empty() {
            config.all_regions()
        } else {
            request.regions.clone()
        };
        Some(crate::runner::Split::PerRegion(regions))
    }

    fn narrow(
        mut request: CleanupRequest,
        _config: &mut Config,
        region: Option<&Region>,
    ) -> CleanupRequest {
        if let Some(r) = region {
            request.regions = vec![r.clone()];
        }
        request
    }

    async fn run(ctx: &Context, request: CleanupRequest, now: OffsetDateTime) -> RunReport {
        run(ctx, request, now).await
    }
}

/// This runner's request under the contract's name (`<runner>::Request`, read by
/// `Request::from_trigger`), as in every runner folder.
pub type Request = CleanupRequest;

/// What to clean.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanupRequest {
    /// Regions to clean; empty = every region the suite touches ([`Config::all_regions`]).
    pub regions: Vec<Region>,
    /// Plan and report, change nothing — even when `DRY_RUN` is off. (A request cannot
    /// turn a configured dry run off.)
    pub dry_run: bool,
}

impl CleanupRequest {
    /// Reads what a trigger asks of cleanup: any schedule is cleanup's own (the template
    /// gives it one, [`crate::events::cleanup_rule`]); a direct invocation is
    /// `{"dry_run": bool, "regions": [...]}`, both optional, the regions ones this
    /// deployment manages. Other events are refused.
    pub fn from_trigger(trigger: Trigger, config: &Config) -> Result<Self, RequestError> {
        let unexpected = |what: String| {
            RequestError::unexpected(
                FUNCTION,
                format!("cleanup runs on its schedule or a direct invocation, not on {what}"),
            )
        };
        match trigger {
            Trigger::Schedule { .. } => Ok(Self::default()),
            Trigger::Direct(body) => Self::from_direct(&body, config),
            Trigger::AmiState { image, .. } => {
                Err(unexpected(format!("an AMI state change ({image})")))
            }
            Trigger::ImageTags { image, .. } => Err(unexpected(format!("a tag change ({image})"))),
            Trigger::Continuation(_) | Trigger::WorkItems(_) => {
                Err(unexpected("a continuation batch".to_owned()))
            }
        }
    }

    fn from_direct(body: &Value, config: &Config) -> Result<Self, RequestError> {
        let bad = |m: String| {
            RequestError::invalid(
                FUNCTION,
                format!("{m}. Accepted: {{\"dry_run\": true, \"regions\": [\"eu-west-1\"]}}"),
            )
        };
        let Some(fields) = body.as_object() else {
            return Err(bad("expected a JSON object".to_owned()));
        };
        let mut request = Self::default();
        for (k, v) in fields {
            match k.as_str() {
                "dry_run" => {
                    request.dry_run = v
                        .as_bool()
                        .ok_or_else(|| bad(format!("dry_run={v} is not true or false")))?;
                }
                "regions" => {
                    let list = v
                        .as_array()
                        .ok_or_else(|| bad(format!("regions={v} is not a list")))?;
                    let known = config.all_regions();
                    for r in list {
                        let name = r
                            .as_str()
                            .ok_or_else(|| bad(format!("region {r} is not a string")))?;
                        let region = Region::new(name);
                        if !known.contains(&region) {
                            let names: Vec<&str> = known.iter().map(Region::as_str).collect();
                            return Err(bad(format!(
                                "region {name:?} is not managed by this deployment (AMI_LIFECYCLE_REGIONS and REPLICA_REGIONS: {})",
                                names.join(",")
                            )));
                        }
                        request.regions.push(region);
                    }
                }
                other => return Err(bad(format!("unknown field {other:?}"))),
            }
        }
        Ok(request)
    }

    /// The context this request runs in: `ctx`, as a dry run when the request asks for one.
    pub fn context(&self, ctx: &Context) -> Context {
        let mut ctx = ctx.clone();
        if self.dry_run && !ctx.config.dry_run {
            let mut config = (*ctx.config).clone();
            config.dry_run = true;
            ctx.config = Arc::new(config);
        }
        ctx
    }
}

#[cfg(test)]
mod request_tests;

#[cfg(test)]
mod run_tests;

#[cfg(test)]
mod recycle_tests;

#[cfg(test)]
mod usage_tests;
