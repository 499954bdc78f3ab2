//! create-image: the Lambda handler over [`ami_core::create`], as a library so the
//! integration tests can invoke it exactly as Lambda does.
pub mod handler;
