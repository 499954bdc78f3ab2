//! [`CloudError`]: what a port call returns when AWS (or the fake) says no.
//!
//! It keeps the operation, the region, the AWS error code and the source error, and sorts
//! the failure into an [`ErrorKind`] the runners act on: throttling and resource limits
//! defer work to the next run, a duplicate name means "already done", the rest fail the
//! one item they concern.

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
    /// The resource does not exist (any more).
    NotFound,
    /// The name is taken (`InvalidAMIName.Duplicate`): the work was already done.
    Duplicate,
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
    /// Classifies an AWS error code (EC2, KMS, EventBridge, SQS).
    pub fn from_code(code: &str) -> Self {
        match code {
            "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "SlowDown" => Self::Throttled,
            "ResourceLimitExceeded" | "LimitExceededException" | "AMIQuotaExceeded" => {
                Self::ResourceLimit
            }
            "InvalidAMIName.Duplicate" => Self::Duplicate,
            c if c.ends_with(".NotFound")
                || c.ends_with("NotFoundException")
                || c == "InvalidAMIID.Unavailable" =>
            {
                Self::NotFound
            }
            "UnauthorizedOperation"
            | "AccessDenied"
            | "AccessDeniedException"
            | "OperationNotPermitted"
            | "DisabledException"
            | "KMSInvalidStateException" => Self::Denied,
            "InternalError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "Unavailable"
            | "KMSInternalException"
            | "DependencyTimeoutException" => Self::Transient,
            c if c.starts_with("Invalid")
                || c.starts_with("Missing")
                || c.starts_with("Malformed")
                || c == "ValidationException"
                || c == "UnsupportedOperation" =>
            {
                Self::Invalid
            }
            _ => Self::Other,
        }
    }

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
    /// An error from an AWS error code; the kind follows from the code.
    pub fn from_code(
        operation: &'static str,
        region: Option<Region>,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            region,
            code: code.to_owned(),
            message: message.into(),
            kind: ErrorKind::from_code(code),
            source: None,
        }
    }

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
    fn codes_map_to_kinds() {
        for (code, kind) in [
            ("RequestLimitExceeded", ErrorKind::Throttled),
            ("ResourceLimitExceeded", ErrorKind::ResourceLimit),
            ("InvalidAMIName.Duplicate", ErrorKind::Duplicate),
            ("InvalidAMIID.NotFound", ErrorKind::NotFound),
            ("InvalidSnapshot.NotFound", ErrorKind::NotFound),
            ("NotFoundException", ErrorKind::NotFound),
            ("UnauthorizedOperation", ErrorKind::Denied),
            ("InternalError", ErrorKind::Transient),
            ("InvalidParameterValue", ErrorKind::Invalid),
            ("SomethingNew", ErrorKind::Other),
        ] {
            assert_eq!(ErrorKind::from_code(code), kind, "{code}");
        }
        assert!(ErrorKind::ResourceLimit.is_retryable());
        assert!(!ErrorKind::Invalid.is_retryable());
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
