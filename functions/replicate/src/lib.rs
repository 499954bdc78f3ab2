//! The replicate Lambda function: EventBridge (AMI State Change, the reconcile schedule) or
//! a direct invocation in, [`ami_core::replicate::run`], the run report out.
//! See [`handler::handle`].

pub mod handler;
