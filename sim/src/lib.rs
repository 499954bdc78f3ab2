//! The simulator: the local emulator and what drives the suite against it.
//!
//! - [`Emulator`] starts our extended moto on a free 127.0.0.1 port (stopped on drop);
//!   [`EmulatorClient`] builds SDK clients and a runner `Context` pointed at it, seeds
//!   instances and keys, drives the control API (and Systems Manager for quiesced images:
//!   the shipped document, SSM agents, per-instance timelines); [`EventQueue`] observes the events the
//!   emulator puts on its EventBridge bus.
//! - [`dispatch`]: the one place an event is handed to a function, as Lambda would.
//! - [`FanoutDriver`]: Lambda's SQS event source mapping for issue 18's fan-out (one record
//!   per invocation, bounded concurrency, partial batch failures, the queue's DLQ), with
//!   [`WorkQueue`], the run ledger table and [`Org`] (an organization, its spoke roles and
//!   the hub's function role).
//! - [`cycle`]: the reliability tests' lifecycle driver; [`demo`]: `ami-sim demo`, the
//!   whole lifecycle through the template's own wiring (what `make demo` plays).
//!
//! Used by the integration tests (`tests/`) and the benchmarks (`bench/`); never by the
//! shipped binaries.

mod agents;
mod client;
pub mod cycle;
pub mod demo;
mod dispatch;
mod emulator;
mod events;
mod fanout;
mod http;
mod org;
mod resources;
pub use resources::SealedTags;

pub use agents::{quiesce_document_name, QuiesceDocument, TimelineEntry};
pub use client::EmulatorClient;
pub use dispatch::dispatch;
pub use emulator::{amictl_binary, repo_root, Emulator};
pub use events::EventQueue;
pub use fanout::{
    ContextFactory, Delivery, DriveStats, FanoutDriver, InProcess, Invocation, Invoke, Invoked,
    WorkQueue,
};
pub use http::request as http_request;
pub use org::Org;

/// The account moto uses when the access key names none.
pub const ACCOUNT: &str = "123456789012";
/// A second account, selected by a 12-digit access key id.
pub const OTHER_ACCOUNT: &str = "111122223333";
