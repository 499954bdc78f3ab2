//! live-test: the suite's black-box lifecycle on a real AWS account, for whoever deploys
//! (`make live-test`; never part of `make test`).
//!
//! - [`settings`]: the opt-in gate ([`settings::mode`], [`settings::Refusal`]) and the
//!   [`settings::Settings`] of a run, named by its [`settings::RunId`];
//! - [`plan`]: the [`plan::Plan`] of what a run creates and does, printed before anything
//!   is created (and alone by the dry run), with the [`cost`] estimate;
//! - [`lifecycle`]: the steps and their checks, entering the suite only through
//!   [`invoke::invoke_function`]; [`scaffold`]: what the suite does not create itself;
//! - [`teardown`]: deletes everything tagged with the run, always, and lists what is left;
//! - [`app`]: the order of it all, Ctrl-C included, and the exit code.
//!
//! ```
//! use live_test::plan::Plan;
//! use live_test::settings::{mode, Mode, RunId, Settings};
//!
//! let env = |k: &str| (k == "LIVE_DRY_RUN").then(|| "1".to_owned());
//! assert_eq!(mode(&[], env)?, Mode::DryRun);
//! let run = RunId::new(time::macros::datetime!(2026-12-01 15:40 UTC), 1);
//! let settings = Settings::from_lookup(env, None, Mode::DryRun, run)?;
//! assert!(Plan::new(&settings).to_string().contains("12 versions"));
//! # Ok::<(), live_test::settings::Refusal>(())
//! ```

pub mod app;
pub mod cost;
pub mod invoke;
pub mod lifecycle;
pub mod plan;
pub mod scaffold;
pub mod settings;
pub mod teardown;
