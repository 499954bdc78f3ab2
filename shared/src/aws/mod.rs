//! AWS SDK adapters: [`AwsCloud`] implements [`Cloud`] with the AWS SDK for Rust.
//!
//! Which file does what:
//! - [`ec2`]: [`AwsEc2`], every EC2 port of one region, paced to EC2's throttling buckets;
//! - [`references`]: what still uses an image (`DescribeImageReferences`, or a scan where
//!   it is missing, reading SSM parameters through [`ssm`]'s [`AwsParameters`]);
//! - [`kms`]: [`AwsKeys`], key facts and grants; [`seals`]: [`AwsSeals`], the seal's MAC;
//! - [`recycle_bin`]: [`AwsRecycleBin`], the region's Recycle Bin retention rules;
//! - [`organizations`]: [`AwsOrganization`], the accounts `ou:`/`org` select (issue 18);
//!   [`spoke`]: the spoke role's credentials (STS `AssumeRole`, external id, cached);
//! - [`reports`]: run reports as EventBridge events; [`continuations`]: delayed SQS messages;
//! - [`work_queue`]: [`SqsWorkQueue`], the fan-out's work items; [`ledger`]: [`DynamoLedger`],
//!   the run ledger (issue 18);
//! - [`errors`]: `SdkError` → [`crate::error::CloudError`]; [`convert`]: SDK ↔ model shapes;
//! - [`http`]: [`http::DeferredTlsClient`], the one HTTPS client every SDK client shares
//!   (TLS set up at the first request, not at each client's construction: start-up time).
//!
//! Only this module names `aws_sdk_*`. The endpoint, credentials and retry settings are
//! the SDK's own: `AWS_ENDPOINT_URL` points every client at an emulator and
//! `AWS_MAX_ATTEMPTS` sets the retries (the standard mode retries throttling and 5xx).
//! One addition for EC2: each retry waits for a token of the region's [`Pacer`] before
//! it is sent ([`http::PacedRetries`]), as each first attempt does at its call site.
//!
//! ```no_run
//! # async fn run(config: &ami_core::config::Config) {
//! use ami_core::aws::AwsCloud;
//! use ami_core::model::Region;
//! use ami_core::ports::{all_images, Cloud, ImageQuery};
//!
//! let cloud = AwsCloud::from_env(config).await;
//! let ec2 = cloud.ec2(&Region::new("eu-west-1"));
//! let mine = all_images(ec2.as_ref(), &ImageQuery { owned_by_self: true, ..Default::default() }).await;
//! # }
//! ```

pub mod agents;
pub mod continuations;
pub mod convert;
pub mod ec2;
pub mod errors;
mod fleet;
pub mod http;
pub mod kms;
pub mod launch_templates;
pub mod ledger;
pub mod organizations;
pub mod recycle_bin;
pub mod references;
pub mod reports;
pub mod seals;
pub mod spoke;
pub mod ssm;
pub mod ssm_publish;
#[cfg(test)]
mod tests;
pub mod usage_reports;
pub mod work_queue;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};

pub use self::agents::AwsAgents;
pub use self::continuations::SqsContinuations;
pub use self::ec2::AwsEc2;
pub use self::kms::AwsKeys;
pub use self::ledger::DynamoLedger;
pub use self::organizations::AwsOrganization;
pub use self::recycle_bin::AwsRecycleBin;
pub use self::reports::EventBridgeReports;
pub use self::seals::AwsSeals;
pub use self::ssm::AwsParameters;
pub use self::work_queue::SqsWorkQueue;
use crate::accounts::ExternalId;
use crate::config::Config;
use crate::error::{CloudError, CloudResult};
use crate::model::{AccountId, Region};
use crate::pacing::Pacer;
use crate::ports::{
    Agents, Cloud, Continuations, Ec2, Keys, LaunchTemplates, Ledger, Organization, Parameters,
    RecycleBin, Reports, Seals, WorkQueue,
};

/// Environment variable scaling the client-side EC2 pacing: `1` (default) paces to the
/// published bucket rates, `2` to twice them (a raised account limit or a time-scaled
/// emulator), `0` turns pacing off.
pub const PACE_SCALE_ENV: &str = "AMI_LIFECYCLE_PACE_SCALE";

/// The smallest non-zero pace scale (a hundredth of the published rates).
pub const PACE_SCALE_MIN: f64 = 0.01;
/// The largest pace scale (a thousand times the published rates).
pub const PACE_SCALE_MAX: f64 = 1000.0;

/// The region used when neither the SDK configuration nor the config names one.
const FALLBACK_REGION: &str = "us-east-1";

/// Reads a pace scale; anything but 0 or a number in [`PACE_SCALE_MIN`]..=[`PACE_SCALE_MAX`]
/// means `1` (with a warning).
pub fn parse_pace_scale(value: Option<&str>) -> f64 {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => 1.0,
        Some(v) => match v.parse::<f64>() {
            // 0 turns pacing off; a scale outside [PACE_SCALE_MIN, PACE_SCALE_MAX] would
            // make intervals overflow (1e-20) or pacing meaningless.
            Ok(s) if s == 0.0 || (PACE_SCALE_MIN..=PACE_SCALE_MAX).contains(&s) => s,
            _ => {
                tracing::warn!(
                    variable = PACE_SCALE_ENV,
                    value = v,
                    "not 0 or a number from 0.01 to 1000; pacing at scale 1"
                );
                1.0
            }
        },
    }
}

/// The AWS cloud: per-region EC2 and KMS ports built lazily from one `SdkConfig`, one
/// [`Pacer`] per region, reports to EventBridge and continuations to SQS in the home region.
/// [`Cloud::for_account`] gives the same cloud acting in another account (its own
/// `SdkConfig` with the spoke role's credentials, its own pacers: EC2's buckets are per
/// account) that shares the hub's reports, continuations and seal.
#[derive(Debug)]
pub struct AwsCloud {
    sdk: SdkConfig,
    pace_scale: f64,
    home: Region,
    ec2: Mutex<HashMap<Region, Arc<AwsEc2>>>,
    keys: Mutex<HashMap<Region, Arc<AwsKeys>>>,
    parameters: Mutex<HashMap<Region, Arc<AwsParameters>>>,
    reports: Arc<EventBridgeReports>,
    continuations: Option<Arc<SqsContinuations>>,
    /// The fan-out's work queue and run ledger (the hub's, shared with spoke clouds).
    work_queue: Option<Arc<SqsWorkQueue>>,
    ledger: Option<Arc<DynamoLedger>>,
    seals: Arc<AwsSeals>,
    /// Organizations, with the hub's credentials also in spoke clouds (only the hub may
    /// list the organization: `SHARE_ALLOWED=org` in a spoke's share run reads it here).
    /// Built at its first use (only `ou:`/`org` selections read it), from `hub_sdk`.
    organization: Arc<OnceLock<Arc<AwsOrganization>>>,
    /// The hub's SDK configuration in the home region (for the organization client).
    hub_sdk: SdkConfig,
    /// What naming and assuming spoke roles needs (the hub's settings).
    deployment: String,
    external_id: Option<ExternalId>,
    /// The account this cloud acts in, once known (`GetCallerIdentity`, or the spoke's).
    account: Mutex<Option<AccountId>>,
    /// Spoke clouds by (account, function): the role is assumed once per warm container
    /// and its credentials renewed by the provider.
    spokes: Mutex<HashMap<(AccountId, String), Arc<AwsCloud>>>,
}

impl AwsCloud {
    /// Builds the cloud from an SDK configuration. The home region (reports,
    /// continuations) is `sdk`'s region, else the first of `config.regions`.
    pub fn new(sdk: SdkConfig, config: &Config, pace_scale: f64) -> Self {
        let home = sdk
            .region()
            .map(|r| Region::new(r.as_ref()))
            .or_else(|| config.regions.first().cloned())
            .unwrap_or_else(|| Region::new(FALLBACK_REGION));
        let home_sdk = with_region(&sdk, &home);
        let reports = Arc::new(EventBridgeReports::new(
            aws_sdk_eventbridge::Client::new(&home_sdk),
            home.clone(),
            &config.report_bus,
        ));
        let continuations = config.continuation_queue.as_ref().map(|url| {
            Arc::new(SqsContinuations::new(
                aws_sdk_sqs::Client::new(&home_sdk),
                home.clone(),
                url,
            ))
        });
        let work_queue = config.work_queue.as_ref().map(|url| {
            Arc::new(SqsWorkQueue::new(
                aws_sdk_sqs::Client::new(&home_sdk),
                home.clone(),
                url,
            ))
        });
        let ledger = config.run_ledger.as_ref().map(|table| {
            Arc::new(DynamoLedger::new(
                aws_sdk_dynamodb::Client::new(&home_sdk),
                home.clone(),
                table,
            ))
        });
        let seals = Arc::new(AwsSeals::new(
            aws_sdk_kms::Client::new(&home_sdk),
            home.clone(),
            config.seal_key.clone(),
        ));
        Self {
            seals,
            organization: Arc::default(),
            hub_sdk: home_sdk,
            sdk,
            pace_scale,
            home,
            ec2: Mutex::default(),
            keys: Mutex::default(),
            parameters: Mutex::default(),
            reports,
            continuations,
            work_queue,
            ledger,
            deployment: config.deployment.clone(),
            external_id: config.spoke_external_id.clone(),
            account: Mutex::default(),
            spokes: Mutex::default(),
        }
    }

    /// This cloud in `account`, acting through `sdk` (the spoke role's credentials); the
    /// hub's reports, continuations and seal.
    fn in_account(&self, sdk: SdkConfig, account: &AccountId) -> Self {
        Self {
            sdk,
            pace_scale: self.pace_scale,
            home: self.home.clone(),
            ec2: Mutex::default(),
            keys: Mutex::default(),
            parameters: Mutex::default(),
            reports: self.reports.clone(),
            continuations: self.continuations.clone(),
            work_queue: self.work_queue.clone(),
            ledger: self.ledger.clone(),
            seals: self.seals.clone(),
            organization: self.organization.clone(),
            hub_sdk: self.hub_sdk.clone(),
            deployment: self.deployment.clone(),
            external_id: self.external_id.clone(),
            account: Mutex::new(Some(account.clone())),
            spokes: Mutex::default(),
        }
    }

    /// Loads the SDK's standard configuration chain (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`, `AWS_MAX_ATTEMPTS`, …) and the pace scale from
    /// [`PACE_SCALE_ENV`].
    pub async fn from_env(config: &Config) -> Self {
        Self::from_sdk_env(Self::sdk_from_env().await, config)
    }

    /// The SDK's standard configuration chain (region and credentials providers, endpoint,
    /// retries), every client on the one [`http::DeferredTlsClient`]. No request is made:
    /// the credentials chain resolves at the first signed request.
    pub async fn sdk_from_env() -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(http::DeferredTlsClient::shared())
            .load()
            .await
    }

    /// [`AwsCloud::new`] with the pace scale from [`PACE_SCALE_ENV`].
    pub fn from_sdk_env(sdk: SdkConfig, config: &Config) -> Self {
        let scale = parse_pace_scale(std::env::var(PACE_SCALE_ENV).ok().as_deref());
        Self::new(sdk, config, scale)
    }

    /// The concrete EC2 adapter of `region` (the same value on every call).
    pub fn aws_ec2(&self, region: &Region) -> Arc<AwsEc2> {
        let mut cache = self.ec2.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(region.clone())
            .or_insert_with(|| {
                let sdk = with_region(&self.sdk, region);
                let pacer = Arc::new(Pacer::new(self.pace_scale));
                // The SDK's retries wait for a token of the same pacer (see `pacing`).
                let inner = sdk
                    .http_client()
                    .unwrap_or_else(http::DeferredTlsClient::shared);
                let conf = aws_sdk_ec2::config::Builder::from(&sdk)
                    .http_client(http::PacedRetries::new(inner, pacer.clone()))
                    .build();
                Arc::new(AwsEc2::new(
                    aws_sdk_ec2::Client::from_conf(conf),
                    region.clone(),
                    pacer,
                    self.aws_parameters(region),
                ))
            })
            .clone()
    }

    /// The concrete KMS adapter of `region`.
    /// The SSM adapter of `region` (one client per region).
    pub fn aws_parameters(&self, region: &Region) -> Arc<AwsParameters> {
        let mut cache = self.parameters.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(region.clone())
            .or_insert_with(|| {
                Arc::new(AwsParameters::new(
                    aws_sdk_ssm::Client::new(&with_region(&self.sdk, region)),
                    region.clone(),
                ))
            })
            .clone()
    }

    pub fn aws_keys(&self, region: &Region) -> Arc<AwsKeys> {
        let mut cache = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(region.clone())
            .or_insert_with(|| {
                Arc::new(AwsKeys::new(
                    aws_sdk_kms::Client::new(&with_region(&self.sdk, region)),
                    region.clone(),
                ))
            })
            .clone()
    }
}

/// `sdk` with its region replaced: everything else (credentials, endpoint, retries) is shared.
fn with_region(sdk: &SdkConfig, region: &Region) -> SdkConfig {
    sdk.to_builder()
        .region(aws_types::region::Region::new(region.as_str().to_owned()))
        .build()
}

#[async_trait]
impl Cloud for AwsCloud {
    fn ec2(&self, region: &Region) -> Arc<dyn Ec2> {
        self.aws_ec2(region)
    }

    fn keys(&self, region: &Region) -> Arc<dyn Keys> {
        self.aws_keys(region)
    }

    fn recycle_bin(&self, region: &Region) -> Arc<dyn RecycleBin> {
        // Read once per region and run: no cache (cleanup asks at most once per region).
        Arc::new(AwsRecycleBin::new(
            aws_sdk_rbin::Client::new(&with_region(&self.sdk, region)),
            region.clone(),
        ))
    }

    fn reports(&self) -> Arc<dyn Reports> {
        self.reports.clone()
    }

    fn continuations(&self) -> Option<Arc<dyn Continuations>> {
        self.continuations
            .clone()
            .map(|c| c as Arc<dyn Continuations>)
    }
    fn work_queue(&self) -> Option<Arc<dyn WorkQueue>> {
        self.work_queue.clone().map(|q| q as Arc<dyn WorkQueue>)
    }
    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        self.ledger.clone().map(|l| l as Arc<dyn Ledger>)
    }

    fn seals(&self) -> Arc<dyn Seals> {
        self.seals.clone()
    }

    fn parameters(&self, region: &Region) -> Arc<dyn Parameters> {
        self.aws_parameters(region)
    }

    fn launch_templates(&self, region: &Region) -> Arc<dyn LaunchTemplates> {
        self.aws_ec2(region)
    }

    fn agents(&self, region: &Region) -> Arc<dyn Agents> {
        Arc::new(AwsAgents::new(
            self.aws_parameters(region).client().clone(),
            region.clone(),
        ))
    }

    fn organization(&self) -> Arc<dyn Organization> {
        self.organization
            .get_or_init(|| {
                Arc::new(AwsOrganization::new(aws_sdk_organizations::Client::new(
                    &self.hub_sdk,
                )))
            })
            .clone()
    }

    async fn account(&self) -> CloudResult<AccountId> {
        if let Some(a) = self
            .account
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(a);
        }
        let sts = aws_sdk_sts::Client::new(&with_region(&self.sdk, &self.home));
        let me = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| errors::cloud_error("GetCallerIdentity", Some(&self.home), e))?;
        let account = me.account().and_then(AccountId::parse).ok_or_else(|| {
            CloudError::from_code(
                "GetCallerIdentity",
                Some(self.home.clone()),
                "InvalidResponse",
                format!("no 12-digit account in the answer ({:?})", me.account()),
            )
        })?;
        *self.account.lock().unwrap_or_else(|p| p.into_inner()) = Some(account.clone());
        Ok(account)
    }

    async fn for_account(
        &self,
        account: &AccountId,
        function: &str,
    ) -> CloudResult<Arc<dyn Cloud>> {
        let key = (account.clone(), function.to_owned());
        if let Some(c) = self
            .spokes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let role = crate::accounts::spoke_role_arn(
            convert::partition(&self.home),
            account,
            &self.deployment,
            function,
        );
        let sdk = spoke::assume(
            &with_region(&self.sdk, &self.home),
            &role,
            function,
            self.external_id.as_ref(),
        )
        .await?;
        let cloud = Arc::new(self.in_account(sdk, account));
        self.spokes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, cloud.clone());
        Ok(cloud)
    }
}
