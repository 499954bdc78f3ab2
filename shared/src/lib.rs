//! ami-core: the core of ami-lifecycle, shared by the five Lambda functions and `amictl`.
//! It knows nothing of the Lambda runtime (`lambda-shell` does).
//!
//! - [`model`]: identifiers and inventory records ([`model::Image`], [`model::Instance`], …).
//! - [`tags`]: the `ami-lifecycle:` tag contract and its parser ([`tags::InstanceSettings`]).
//! - [`config`]: the configuration contract ([`config::Config::from_env`]).
//! - [`accounts`]: which accounts one deployment acts on (`AMI_LIFECYCLE_ACCOUNTS`, issue 18);
//!   [`fanout`]: a run over many accounts as work items on the function's own SQS queue.
//! - [`retention`], [`share_target`]: the value languages of `RETAIN` and `share-with`
//!   ([`values`]: the list and echo helpers they share).
//! - [`lineage`]: which images are versions of one another, and the one retention decision
//!   cleanup, replicate and `amictl status` share ([`lineage::Lineage`], [`lineage::judge`]).
//! - [`migrate`]: moving an instance to another zone or region through its image
//!   (`amictl migrate`, issue 20): the pure planner ([`migrate::plan::plan`]).
//! - [`ports`]: narrow traits through which runners reach the cloud ([`ports::Cloud`]).
//! - [`aws`]: the AWS SDK adapters, paced to EC2's token buckets ([`aws::AwsCloud`]).
//! - [`fake`] (feature `test-util`): an in-memory cloud for domain tests.
//! - [`estate`]: the picture of the estate (`amictl report --html`): inventory and cleanup's
//!   dry run → a view model → one self-contained HTML page.
//! - [`report`]: the [`report::RunReport`] every run ends in; [`context::Context`] carries
//!   the cloud, the config and the deadline into each runner.
//! - Runners, one per function: [`create`], [`replicate`], [`cleanup`], [`share`],
//!   [`publish`] — each
//!   its request read from an event (`mod.rs`), a pure planner (`plan.rs`) and the code that
//!   applies the plan (`run.rs`). [`runner`]: the contract they share ([`runner::Runner`])
//!   and the one way in ([`runner::invoke`]) for the Lambda functions, `amictl`, the
//!   simulator and the tests; [`events`]: the events they are invoked with.
//!
//! ```
//! use ami_core::config::Config;
//! use ami_core::tags::InstanceSettings;
//!
//! let config = Config::from_lookup(|k| (k == "AWS_REGION").then(|| "eu-west-1".to_owned()))?;
//! assert_eq!(config.deployment, "ami-lifecycle");
//!
//! let tags = [("ami-lifecycle:schedule".to_owned(), "daily".to_owned())].into_iter().collect();
//! let settings = InstanceSettings::from_tags(&tags)?;
//! assert!(settings.reboot, "instances reboot for a consistent image unless they opt out");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod accounts;
pub mod aws;
pub mod cleanup;
pub mod config;
pub mod context;
pub mod create;
pub mod deadline;
pub mod error;
pub mod estate;
pub mod events;
#[cfg(feature = "test-util")]
pub mod fake;
pub mod fanout;
pub mod lineage;
pub mod migrate;
pub mod model;
pub mod pacing;
pub mod ports;
pub mod publish;
pub mod replicate;
pub mod report;
pub mod retention;
pub mod runner;
pub mod schedule;
pub mod seal;
pub mod share;
pub mod share_target;
pub mod tags;
pub mod time_util;
pub mod values;
