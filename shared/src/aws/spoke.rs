//! The spoke role's credentials (issue 18): `sts:AssumeRole` into
//! `arn:<partition>:iam::<account>:role/ami-lifecycle/<deployment>-spoke-<function>` with the
//! external id, session `ami-lifecycle-<function>`, through the SDK's own
//! `AssumeRoleProvider` (which renews the session before it expires).
//!
//! The role is assumed at once ([`assume`]), so a refusal is one error naming the account,
//! the role and the fix instead of a credentials failure on every call in that account.
//! The first session is handed to the clients (no second `AssumeRole`); one lazy identity
//! cache per account makes every regional client of the account share the session.

use std::error::Error as _;
use std::sync::Mutex;

use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::{
    error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider,
};
use aws_credential_types::Credentials;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::sdk_config::TimeSource;

use crate::accounts::{session_name, ExternalId};
use crate::error::{CloudError, CloudResult, ErrorKind};

/// The operation named in errors.
const OPERATION: &str = "AssumeRole";

/// `home` with the credentials of `role`'s session: assumed now, renewed later.
pub async fn assume(
    home: &SdkConfig,
    role: &str,
    function: &str,
    external_id: Option<&ExternalId>,
) -> CloudResult<SdkConfig> {
    let Some(external_id) = external_id else {
        return Err(CloudError::from_code(
            OPERATION,
            None,
            "MissingExternalId",
            format!(
                "cannot assume {role}: SPOKE_EXTERNAL_ID is not set (the spoke roles trust the hub only with the ExternalId of infra/spoke-role.yaml)"
            ),
        ));
    };
    // The provider needs a clock; a configuration built by hand (the simulator's) has none.
    let home = if home.time_source().is_some() {
        home.clone()
    } else {
        home.to_builder().time_source(SystemClock).build()
    };
    let home = &home;
    let provider = AssumeRoleProvider::builder(role)
        .session_name(session_name(function))
        .external_id(external_id.expose())
        .configure(home)
        .build()
        .await;
    let first = provider
        .provide_credentials()
        .await
        .map_err(|e| assume_error(&e))?;
    let primed = Primed {
        first: Mutex::new(Some(first)),
        provider,
    };
    Ok(home
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(primed))
        .identity_cache(IdentityCache::lazy().build())
        .build())
}

/// The system clock, for an `SdkConfig` that has none.
#[derive(Debug)]
struct SystemClock;

impl TimeSource for SystemClock {
    fn now(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }
}

/// The provider, with the session [`assume`] already obtained handed out first.
#[derive(Debug)]
struct Primed {
    first: Mutex<Option<Credentials>>,
    provider: AssumeRoleProvider,
}

impl ProvideCredentials for Primed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
        match first {
            Some(c) => future::ProvideCredentials::ready(Ok(c)),
            None => self.provider.provide_credentials(),
        }
    }
}

/// A refused or failed `AssumeRole`: STS's code when it answered (`AccessDenied`: no such
/// role, or its trust does not admit this function or external id), else a transient
/// failure (a later run may succeed). The caller names the role.
fn assume_error(e: &CredentialsError) -> CloudError {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(sdk) = s.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            if let Some(service) = sdk.as_service_error() {
                let code = service.code().unwrap_or("AccessDenied");
                let message = service.message().unwrap_or_default();
                return CloudError::from_code(OPERATION, None, code, message);
            }
            break;
        }
        source = s.source();
    }
    let mut err = CloudError::from_code(
        OPERATION,
        None,
        "AssumeRoleFailed",
        DisplayErrorContext(e).to_string(),
    );
    if matches!(
        e,
        CredentialsError::ProviderTimedOut(_) | CredentialsError::ProviderError(_)
    ) {
        err.kind = ErrorKind::Transient;
    }
    err
}
