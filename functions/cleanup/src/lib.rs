//! cleanup: the Lambda handler over [`ami_core::cleanup`], as a library so tests can
//! invoke it exactly as Lambda does.
pub mod handler;
