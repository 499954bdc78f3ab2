//! Cleanup: retention per lineage and region, with guards stronger than "old enough".
//!
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

pub mod inventory;
pub mod plan;
pub mod run;

pub use self::inventory::{ImageRecord, Inventory, Lineage};
pub use self::plan::{CleanupPlan, Decision, Facts, KeepWhy};
pub use self::run::{run, CleanupRequest, FUNCTION};

#[cfg(test)]
mod run_tests;
