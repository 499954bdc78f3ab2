//! The share Lambda function: EventBridge (`Tag Change on Resource` for images, the
//! CloudTrail CreateTags/DeleteTags rule, the reconcile schedule) or a direct invocation
//! in, [`ami_core::share::run`], the run report out. See [`handler::handle`].

pub mod handler;
