//! create-image: scheduled, consistent AMIs of opted-in instances, in staggered reboot waves.
//!
//! - [`CreateRequest`]: a fired schedule or a continuation ([`ScheduleRun`]: schedule + slot),
//!   or an image that ended `failed`; [`request_from_direct`] reads direct/continuation JSON.
//! - [`plan::plan`]: the pure planner over an [`Inventory`] → [`Plan`] of [`Action`]s
//!   (create now, already exists, wait for a later wave, skip, fail).
//! - [`run::run`]: reads the inventory, applies the plan (CreateImage with tags at creation,
//!   `InvalidAMIName.Duplicate` counted as done), sends the continuation of the next wave,
//!   and returns the [`RunReport`](crate::report::RunReport); [`run::run_wave`] also says
//!   whether waves remain (the CLI's loop).
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
pub mod request;
pub mod run;

pub use self::plan::{
    check_schedule, image_name, image_tags, plan, Action, Inventory, Plan, PlanItem, Wave,
};
pub use self::request::{request_from_direct, CreateRequest, RequestError, ScheduleRun};
pub use self::run::{run, run_wave, WaveRun};
