//! [`CloudError`]: what a port call returns when AWS (or the fake) says no.
//!
//! It keeps the operation, the region, the AWS error code and the source error, and sorts
//! the failure into an [`ErrorKind`] the runners act on: throttling and resource limits
//! defer work to the next run ([`crate::report::Outcome::for_error`]), a duplicate name
//! means "already done", the rest fail the one item they concern. Runners compare kinds,
//! never code strings; the table from AWS error codes to kinds is the adapter's
//! ([`crate::aws::errors`]: `ErrorKind::from_code`, `CloudError::from_code`).

use std::fmt;

use crate::model::Region;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a runner should treat a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// `RequestLimitExceeded` and friends: slow down, try again later.
    Throttled,
    /// A quota such as concurrent copies (`ResourceLimitExceeded`): defer, never drop.
    ResourceLimit,
    /// A quota that minutes will not free (`AMIQuotaExceeded`, `SnapshotLimitExceeded`:
    /// the region holds as many AMIs or snapshots as it may): failed with the quota to
    /// raise, not retried every minute.
    QuotaExceeded,
    /// The resource does not exist (any more).
    NotFound,
    /// The name is taken (`InvalidAMIName.Duplicate`): the work was already done.
    Duplicate,
    /// Still used by something else (`InvalidSnapshot.InUse`: another image's snapshot):
    /// keep it; it goes with its last user.
    InUse,
    /// A setting of the resource itself forbids the operation (`OperationNotPermitted`,
    /// e.g. deregistration protection): keep it, the operator decided.
    NotPermitted,
    /// The request is wrong; retrying the same request will not help.
    Invalid,
    /// Not allowed by IAM or by a resource setting.
    Denied,
    /// A 5xx, a timeout or a dropped connection: safe to retry.
    Transient,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Work that failed this way is deferred to a later run rather than failed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::ResourceLimit | Self::Transient
        )
    }
}

/// A failed call to a cloud API.
#[derive(Debug, thiserror::Error)]
pub struct CloudError {
    /// The API operation, e.g. `CreateImage`.
    pub operation: &'static str,
    pub region: Option<Region>,
    /// The AWS error code (`InvalidAMIName.Duplicate`), or a short word for transport errors.
    pub code: String,
    pub message: String,
    pub kind: ErrorKind,
    #[source]
    pub source: Option<BoxError>,
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation)?;
        if let Some(r) = &self.region {
            write!(f, " in {r}")?;
        }
        write!(f, " failed: {}", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl CloudError {
    pub fn with_source(mut self, source: BoxError) -> Self {
        self.source = Some(source);
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

pub type CloudResult<T> = Result<T, CloudError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_failures_are_retryable() {
        for kind in [
            ErrorKind::Throttled,
            ErrorKind::ResourceLimit,
            ErrorKind::Transient,
        ] {
            assert!(kind.is_retryable(), "{kind:?}");
        }
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::Duplicate,
            ErrorKind::InUse,
            ErrorKind::NotPermitted,
            ErrorKind::Invalid,
            ErrorKind::Denied,
            ErrorKind::Other,
        ] {
            assert!(!kind.is_retryable(), "{kind:?}");
        }
    }

    #[test]
    fn display_names_operation_region_and_code() {
        let e = CloudError::from_code(
            "CopyImage",
            Some(Region::new("eu-west-1")),
            "ResourceLimitExceeded",
            "too many copies",
        );
        assert_eq!(
            e.to_string(),
            "CopyImage in eu-west-1 failed: ResourceLimitExceeded: too many copies"
        );
    }
}
