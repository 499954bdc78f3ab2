//! Moving an instance to another Availability Zone or region through its image
//! (`amictl migrate`, issue 20).
//!
//! The documented way to move an instance is: make a consistent image of it, launch the
//! same configuration from that image in the other zone (across regions: copy the image
//! first and find everything regional again there), check the new instance, retire the
//! old one. This module holds the one decision of that procedure:
//!
//! - [`plan::plan`] takes a snapshot of the source ([`SourceInstance`]), of the target
//!   region's network ([`TargetNetwork`]), the images that may be reused and the operator's
//!   [`Target`], and answers a [`MigrationPlan`] — or a [`PlanError`] naming the resource
//!   that could not be matched and the flag that resolves it. It never guesses: a subnet,
//!   a security group or a key pair is either the source's own (same region), matched by
//!   its `Name` tag (another region), or given explicitly.
//! - [`token::client_token`] derives the idempotency token of a migration from the source
//!   instance and the target, so a second run after a failure finds the instance the first
//!   one launched instead of launching another.
//!
//! Nothing here calls AWS: the apply step follows the plan, and the dry run is the plan
//! printed ([`MigrationPlan`] is `Serialize`).

pub mod error;
pub mod fleet;
pub mod model;
mod network;
pub mod plan;
pub mod run;
pub mod text;
pub mod token;

#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod tests;

pub use error::PlanError;
pub use model::{
    ElasticIp, MetadataOptions, PlacementGroup, SecurityGroup, SourceInstance, Subnet, Target,
    TargetNetwork, VolumeSpec,
};
pub use plan::{AddressStep, CopyStep, ImageStep, LaunchSpec, MigrationPlan, SourceAfter};

/// Tag on the new instance (and the migration image): the instance it was moved from.
/// Written at creation for the operator; the proof that an image belongs to the source
/// stays EC2's own `SourceInstanceId`.
pub const MIGRATED_FROM: &str = "ami-lifecycle:migrated-from";
/// Tag on the new instance and the migration image: the migration's client token, which
/// is how a re-run finds what the first run made.
pub const MIGRATION: &str = "ami-lifecycle:migration";
