//! share: applies the `ami-lifecycle:share-with` tag of managed images to everything a
//! target account needs to launch AND copy them — launch permission, `createVolumePermission`
//! on every snapshot, and a grant on each customer managed KMS key — and revokes what the
//! suite granted once the tag stops listing a target.
//!
//! - [`ShareRequest`] ([`ShareRequest::from_trigger`]): what a run is asked for (full
//!   reconcile, one image, a tag change); [`run`] applies it and returns the
//!   [`crate::report::RunReport`]. [`Share`] is the runner ([`crate::runner::Runner`]).
//! - [`plan`]: the pure planner ([`plan::plan_image`] over [`plan::ImageFacts`]), and the
//!   choice of images a reconcile looks at ([`plan::select`]).
//! - [`record`]: the `ami-lifecycle:share-granted` record of what the suite granted.
//!
//! # Invariants
//! - Only **sealed** images of the deployment are shared ([`crate::seal`]): a forged
//!   `managed-by` is reported `unsealed` and never touched.
//! - Nothing outside `SHARE_ALLOWED` is ever granted; `all` needs `ALLOW_PUBLIC=true` and a
//!   region whose image block public access is off. A target the list does not admit is
//!   refused by name (`share-status` says so) while the allowed ones in the same value are
//!   granted, and **revoked** if the suite had granted it (the list shrank, or
//!   `ALLOW_PUBLIC` was turned off). A value that does not parse grants nothing, but still
//!   loses what is no longer allowed.
//! - Desired = the allowed targets of the governing value. A replica never governs itself:
//!   it follows its source's current value with `SHARE_REPLICAS`, else nothing. Add =
//!   desired − present. Revoke = (record − desired) ∩ present. A permission present and
//!   not in the record is someone else's and is never touched — unless share-with lists
//!   it: then the suite owns it from now on.
//! - The record is trusted only where its seal verifies, chunk by chunk
//!   ([`record::verified`]): a hand-written chunk revokes nothing.
//! - Write-ahead: before granting, the record is widened to record ∪ desired and read back
//!   (a concurrent run's write means planning again); after every change succeeded it is
//!   narrowed to desired, keeping what another run recorded meanwhile. A crash at any
//!   point leaves a record that names at least everything the suite granted.
//! - KMS grants need no record: their name `ami-lifecycle-<image>-<account>` proves they
//!   are the suite's; they are found again with ListGrants (idempotent), revoked when the
//!   account leaves the value, and retired by cleanup when the image is deleted. Keys
//!   managed by AWS (`aws/ebs`) cannot be shared: the image is refused with the remedy.
//! - Organizations and OUs get launch permission only: snapshots and grants cannot name
//!   them; the report gives the key-policy statement they need.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ami_core::fake::FakeCloud;
//! use ami_core::model::{AccountId, Grantee, ImageId, Region};
//! use ami_core::seal::Sealer;
//! use ami_core::share::record;
//!
//! let sealer = Sealer::new(Arc::new(FakeCloud::new("123456789012")));
//! let (region, image) = (Region::new("us-east-1"), ImageId::new("ami-1"));
//! let granted = vec![Grantee::Account(AccountId::parse("111122223333").ok_or("id")?)];
//! let owner = AccountId::parse("123456789012").ok_or("id")?;
//! let tags = record::sealed_tags(&sealer, "prod", &owner, &region, &image, &granted, &Default::default())
//!     .await?
//!     .ok_or("fits")?;
//! assert!(tags["ami-lifecycle:share-granted"].starts_with("111122223333 v2:"));
//! let read = record::verified(&sealer, "prod", Some(&owner), &region, &image, &tags).await?;
//! assert_eq!(read.grantees, granted);
//! # Ok(())
//! # }
//! ```

pub mod allowed;
pub mod hold;
pub mod plan;
pub mod record;
mod run;

pub use plan::{plan_image, Action, Changes, Governing, ImageFacts, ImagePlan};
pub use run::{retire_image_grants, run};

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::Config;
use crate::context::Context;
use crate::events::Trigger;
use crate::model::{ImageId, Region};
use crate::report::RunReport;
use crate::runner::{RequestError, Runner};

/// The function name in reports.
pub const FUNCTION: &str = "share";

/// The share runner.
pub struct Share;

impl Runner for Share {
    const NAME: &'static str = FUNCTION;
    type Request = ShareRequest;

    fn request(
        trigger: Trigger,
        _config: &Config,
        _now: OffsetDateTime,
    ) -> Result<ShareRequest, RequestError> {
        ShareRequest::from_trigger(trigger)
    }

    // No `split`: share never fans out. Its grant record (tags on the image, read, merged
    // and written back) is safe only with one share run at a time (the template reserves
    // a concurrency of 1), so a reconcile runs the accounts one after the other in one
    // invocation and the deadline defers the rest to the next hourly run.

    async fn run(ctx: &Context, request: ShareRequest, now: OffsetDateTime) -> RunReport {
        run(ctx, request, now).await
    }
}

/// This runner's request under the contract's name (`<runner>::Request`, read by
/// `Request::from_trigger`), as in every runner folder.
pub type Request = ShareRequest;

/// What a share run is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareRequest {
    /// Every managed image, in every region, that has a share-with value (its own or its
    /// source's) or a record of grants the suite made.
    Reconcile,
    /// One image (searched in every region when `region` is `None`), with its source
    /// and replicas when `SHARE_REPLICAS` is on.
    Image {
        image: ImageId,
        region: Option<Region>,
    },
    /// A tag change on an image: acted on only when share-with changed (or the changed
    /// keys are unknown). The event's tags are hints; the image is always described.
    TagChange {
        image: ImageId,
        region: Region,
        changed_keys: Vec<String>,
        /// The other images the same tagging call named (CloudTrail).
        more: Vec<ImageId>,
    },
}

impl ShareRequest {
    /// What a trigger asks of share. Any schedule is a reconcile (the template's is
    /// [`crate::events::reconcile_rule`]); an AMI state change reconciles that image; a
    /// direct invocation is `{}` (reconcile) or `{"image": "ami-…", "region": "…"}`
    /// (`region` optional).
    pub fn from_trigger(trigger: Trigger) -> Result<Self, RequestError> {
        match trigger {
            Trigger::Schedule { .. } => Ok(Self::Reconcile),
            Trigger::ImageTags {
                image,
                region,
                changed_keys,
                more,
                ..
            } => Ok(Self::TagChange {
                image,
                region,
                changed_keys,
                more,
            }),
            Trigger::AmiState { image, region, .. } => Ok(Self::Image {
                image,
                region: Some(region),
            }),
            Trigger::Continuation(_) | Trigger::WorkItems(_) => Err(RequestError::unexpected(
                FUNCTION,
                "a continuation batch is for create-image, not share",
            )),
            Trigger::Direct(v) => Self::from_direct(&v),
        }
    }

    fn from_direct(v: &Value) -> Result<Self, RequestError> {
        let bad = |m: String| {
            RequestError::invalid(
                FUNCTION,
                format!("{m}. Send {{}} to reconcile everything or {{\"image\": \"ami-…\", \"region\": \"us-east-1\"}} for one image"),
            )
        };
        let obj = v
            .as_object()
            .ok_or_else(|| bad("a direct invocation must be a JSON object".to_owned()))?;
        if let Some(unknown) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "image" | "region"))
        {
            return Err(bad(format!(
                "unknown key {:?}",
                crate::tags::truncate(unknown, 80)
            )));
        }
        let text = |k: &str| match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(bad(format!("{k:?} must be a string"))),
        };
        let region = match text("region")? {
            Some(r) if crate::tags::is_region_name(&r) => Some(Region::new(r)),
            Some(r) => return Err(bad(format!("region {r:?} is not a region name"))),
            None => None,
        };
        match text("image")? {
            Some(id)
                if id
                    .strip_prefix("ami-")
                    .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())) =>
            {
                Ok(Self::Image {
                    image: ImageId::new(id),
                    region,
                })
            }
            Some(id) => Err(bad(format!("image {id:?} is not an image id"))),
            None if region.is_some() => Err(bad("region given without image".to_owned())),
            None => Ok(Self::Reconcile),
        }
    }
}

#[cfg(test)]
mod request_tests;

#[cfg(test)]
mod hold_tests;

#[cfg(test)]
mod allowed_tests;
