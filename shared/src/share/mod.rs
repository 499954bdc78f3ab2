//! share: applies the `ami-lifecycle:share-with` tag of managed images to everything a
//! target account needs to launch AND copy them — launch permission, `createVolumePermission`
//! on every snapshot, and a grant on each customer managed KMS key — and revokes what the
//! suite granted once the tag stops listing a target.
//!
//! - [`ShareRequest`]: what a run is asked for (full reconcile, one image, a tag change);
//!   [`run`] applies it and returns the [`crate::report::RunReport`].
//! - [`plan`]: the pure planner ([`plan::plan_image`] over [`plan::ImageFacts`]), and the
//!   choice of images a reconcile looks at ([`plan::select`]).
//! - [`record`]: the `ami-lifecycle:share-granted` record of what the suite granted.
//!
//! # Invariants
//! - Only images tagged `ami-lifecycle:managed-by` = the deployment are shared.
//! - Every target must be in `SHARE_ALLOWED`; `all` needs `ALLOW_PUBLIC=true` and a region
//!   whose image block public access is off. One invalid or refused entry changes nothing
//!   (no grant, no revoke); the image's `ami-lifecycle:share-status` says why.
//! - Desired = the parsed share-with value (a replica follows its source's value when
//!   `SHARE_REPLICAS` is on and the source exists). Add = desired − present. Revoke =
//!   (record − desired) ∩ present. A permission present and not in the record is someone
//!   else's and is never touched — unless share-with lists it: then the suite owns it from
//!   now on (after a successful run, record = desired), so a crash between a grant and the
//!   record cannot leave a grant nobody revokes.
//! - Write-ahead: before granting, the record is widened to record ∪ desired; after every
//!   change succeeded it is narrowed to desired. A crash at any point leaves a record that
//!   names at least everything the suite granted, so nothing it granted is ever leaked.
//! - KMS grants need no record: their name `ami-lifecycle-<image>-<account>` proves they
//!   are the suite's; they are found again with ListGrants (idempotent) and revoked when
//!   the account leaves the value. Keys managed by AWS (`aws/ebs`) cannot be shared: the
//!   image is refused with the remedy (copy it with a customer managed key).
//! - Organizations and OUs get launch permission only: snapshots and grants cannot name
//!   them; the report gives the key-policy statement they need.
//!
//! ```
//! use ami_core::config::Config;
//! use ami_core::model::{AccountId, Grantee};
//! use ami_core::share::record;
//!
//! let granted = vec![Grantee::Account(AccountId::parse("111122223333").ok_or("id")?)];
//! let tags = record::tags_for(&granted, &Default::default()).ok_or("fits")?;
//! assert_eq!(tags.get("ami-lifecycle:share-granted").map(String::as_str), Some("111122223333"));
//! assert_eq!(record::read(&tags), granted);
//! # let _ = Config::for_region("us-east-1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod plan;
pub mod record;
mod run;

pub use plan::{plan_image, Action, Changes, Governing, ImageFacts, ImagePlan};
pub use run::{run, ShareRequest};
