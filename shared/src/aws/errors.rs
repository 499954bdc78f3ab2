//! One mapping from the SDK's `SdkError` (any operation, any service) into [`CloudError`],
//! and the one table from AWS error codes to [`ErrorKind`] ([`ErrorKind::from_code`]).
//!
//! Runners act on [`ErrorKind`], never on SDK types, so every adapter funnels its failures
//! through [`cloud_error`]: a service error keeps AWS's code and message, a failure that
//! never reached a well-formed AWS answer (timeout, dispatch, bare 5xx) becomes `Transient`.
//! The SDK has already retried what it retries (throttling, 5xx) before this runs.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{CloudError, ErrorKind};
use crate::model::Region;

impl ErrorKind {
    /// Classifies an AWS error code (EC2, KMS, EventBridge, SQS). The table lives with the
    /// adapter: the domain only knows the kinds.
    pub fn from_code(code: &str) -> Self {
        match code {
            "RequestLimitExceeded"
            | "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "SlowDown"
            // SSM: another update of the same parameter is in flight.
            | "TooManyUpdates"
            // DynamoDB (the run ledger).
            | "ProvisionedThroughputExceededException" => Self::Throttled,
            "AMIQuotaExceeded" | "SnapshotLimitExceeded" => Self::QuotaExceeded,
            "ResourceLimitExceeded" | "LimitExceededException" => Self::ResourceLimit,
            "InvalidAMIName.Duplicate" => Self::Duplicate,
            // Before the `Invalid…` prefix below: `InvalidSnapshot.InUse` is not a bad request.
            c if c.ends_with(".InUse") => Self::InUse,
            c if c.ends_with(".NotFound")
                || c.ends_with("NotFoundException")
                || c == "InvalidAMIID.Unavailable"
                || c == "ParameterNotFound"
                || c == "ParameterVersionNotFound" =>
            {
                Self::NotFound
            }
            "OperationNotPermitted" => Self::NotPermitted,
            "UnauthorizedOperation"
            | "AccessDenied"
            | "AccessDeniedException"
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
}

/// The code given to failures that never got an answer from AWS.
pub const TRANSPORT: &str = "Transport";

/// Maps a failed SDK call of `operation` in `region` into a [`CloudError`], keeping the
/// original error as its source.
pub fn cloud_error<E>(
    operation: &'static str,
    region: Option<&Region>,
    err: SdkError<E, HttpResponse>,
) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = || DisplayErrorContext(&err).to_string();
    let (code, message, kind) = match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let message = ctx
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(detail);
            match ctx.err().code() {
                Some(code) => (code.to_owned(), message, ErrorKind::from_code(code)),
                None => status_code(status, message),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            (TRANSPORT.to_owned(), detail(), ErrorKind::Transient)
        }
        SdkError::ResponseError(ctx) => status_code(ctx.raw().status().as_u16(), detail()),
        SdkError::ConstructionFailure(_) => (
            "ConstructionFailure".to_owned(),
            detail(),
            ErrorKind::Invalid,
        ),
        _ => ("Unknown".to_owned(), detail(), ErrorKind::Other),
    };
    CloudError {
        operation,
        region: region.cloned(),
        code,
        message,
        kind,
        source: Some(Box::new(err)),
    }
}

/// An answer without an AWS error code: classify by HTTP status alone.
fn status_code(status: u16, message: String) -> (String, String, ErrorKind) {
    let kind = match status {
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    };
    (format!("Http{status}"), message, kind)
}

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
            ("InvalidSnapshot.InUse", ErrorKind::InUse),
            ("OperationNotPermitted", ErrorKind::NotPermitted),
            ("UnauthorizedOperation", ErrorKind::Denied),
            ("InternalError", ErrorKind::Transient),
            ("InvalidParameterValue", ErrorKind::Invalid),
            ("SomethingNew", ErrorKind::Other),
        ] {
            assert_eq!(ErrorKind::from_code(code), kind, "{code}");
        }
    }
}
