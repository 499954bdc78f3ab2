//! Ports: the narrow, domain-worded traits through which the suite reaches the cloud.
//!
//! Runners take a [`Cloud`] and ask it for one region's [`Ec2`] (itself the sum of the
//! narrow traits below) or [`Keys`], plus the [`Reports`] sink. Two implementations
//! exist: [`crate::aws::AwsCloud`] (the AWS SDK, paced to EC2's token buckets) and, with the
//! `test-util` feature, [`crate::fake::FakeCloud`] (in memory, for domain tests).
//!
//! Which trait to reach for:
//! - reading the inventory: [`Instances`], [`Images`];
//! - making images: [`ImageFactory`]; retiring them: [`ImageRetirement`];
//! - what still uses an image: [`References`] (this account), [`UsageReports`] (others);
//! - who may use an image: [`Sharing`] (EC2 side) and [`Keys`] (KMS side);
//! - writing outcome tags: [`Tagging`];
//! - proving an image is the suite's: [`Seals`] (through [`crate::seal::Sealer`]);
//! - whether a deleted image or snapshot can still be restored: [`RecycleBin`] (its
//!   [`RetentionRule`]s; cleanup decides coverage in [`crate::cleanup::recycle`]);
//! - quiescing an instance before its image: [`Agents`] (Systems Manager Run Command);
//! - the latest-image parameters the suite publishes: [`Parameters`] (SSM Parameter Store),
//!   and the launch templates that follow them: [`LaunchTemplates`] ([`crate::publish`]).

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::accounts::OrgAccount;
use crate::error::CloudResult;
use crate::model::{
    AccountId, DeviceName, Grantee, Image, ImageId, ImageReference, Instance, InstanceHealth,
    InstanceId, InstanceState, KeyGrant, KeyInfo, KeyRef, Region, Snapshot, SnapshotId, Tags,
};
use crate::report::RunReport;

/// One page of a listing; `next` is the token for the following page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Which images to list. Fields combine with AND, except that `owned_by_self` and `owners`
/// together mean "self OR these accounts" (EC2's `Owners` is a list). Empty vectors do not
/// filter; a query with no owner, executable-user or id filter lists public AMIs too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageQuery {
    /// Only images owned by this account (`Owners=self`).
    pub owned_by_self: bool,
    /// Only images owned by these accounts (used with `shared_with_me` for adoption).
    pub owners: Vec<AccountId>,
    /// Only images this account may launch but does not own (`ExecutableUsers=self`).
    pub shared_with_me: bool,
    pub ids: Vec<ImageId>,
    /// Exact tag `key=value`.
    pub tag: Option<(String, String)>,
    /// Images carrying this tag key, any value.
    pub tag_key: Option<String>,
    pub names: Vec<String>,
    /// Images CreateImage made of these instances (EC2's `source-instance-id` filter, on
    /// `SourceInstanceId`, which no tag can change); at most 200 per query.
    pub source_instances: Vec<InstanceId>,
    /// Include disabled images (`IncludeDisabled`) so their snapshots are not taken for orphans.
    pub include_disabled: bool,
    /// Only images in this state (EC2's `state` filter), e.g. the pending copies that
    /// hold a region's concurrent-copy slots.
    pub state: Option<crate::model::ImageState>,
    /// Page size (EC2 allows up to 1000).
    pub page_size: Option<u32>,
}

impl ImageQuery {
    /// This deployment's images: owned by this account, tagged
    /// `ami-lifecycle:managed-by=<deployment>`, disabled ones included (so their snapshots
    /// are never taken for orphans and their copies count as present), largest pages.
    /// The one query for "ours"; planners still check the tag on what comes back.
    pub fn managed_by(deployment: &str) -> Self {
        Self {
            owned_by_self: true,
            tag: Some((
                crate::tags::key::MANAGED_BY.to_owned(),
                deployment.to_owned(),
            )),
            include_disabled: true,
            page_size: Some(MAX_PAGE),
            ..Self::default()
        }
    }
}

/// The largest page of DescribeImages and DescribeSnapshots: `MaxResults` up to 1000 in
/// the EC2 API reference (the API model itself gives the shape no bound).
pub const MAX_PAGE: u32 = 1000;

/// Which snapshots to list (own snapshots only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotQuery {
    pub tag: Option<(String, String)>,
    pub ids: Vec<SnapshotId>,
    pub page_size: Option<u32>,
}

impl SnapshotQuery {
    /// This deployment's snapshots (tagged `ami-lifecycle:managed-by=<deployment>`).
    pub fn managed_by(deployment: &str) -> Self {
        Self {
            tag: Some((
                crate::tags::key::MANAGED_BY.to_owned(),
                deployment.to_owned(),
            )),
            page_size: Some(MAX_PAGE),
            ..Self::default()
        }
    }
}

/// A CreateImage request. Tags are applied at creation to the image and its snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImage {
    pub instance: InstanceId,
    pub name: String,
    pub description: String,
    pub no_reboot: bool,
    /// Devices left out of the image (`NoDevice`).
    pub exclude_devices: Vec<DeviceName>,
    pub image_tags: Tags,
    pub snapshot_tags: Tags,
}

/// A CopyImage request, sent to the destination region.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageCopy {
    pub source_image: ImageId,
    pub source_region: Region,
    pub name: String,
    pub description: String,
    /// Makes the copy idempotent: the same token returns the same copy.
    pub client_token: String,
    /// Re-encrypt with this key in the destination region (`Encrypted=true`).
    pub kms_key: Option<KeyRef>,
    /// `CopyImageTags`: carry the source's user tags (same account only).
    pub copy_source_tags: bool,
    /// Tags for the copy.
    pub tags: Tags,
    /// Tags for the copy's snapshots.
    pub snapshot_tags: Tags,
    /// `SnapshotCopyCompletionDurationMinutes`: a time-based copy, each snapshot done
    /// within this many minutes (15-minute steps, 15–2880); `None`: best effort.
    pub completion_minutes: Option<u32>,
}

/// An EBS snapshot lock (`DescribeLockedSnapshots`): the snapshot cannot be deleted until
/// the lock ends.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotLock {
    pub snapshot: SnapshotId,
    /// `compliance`, `governance` or `compliance-cooloff`.
    pub mode: String,
    /// `LockExpiresOn`; `None` when EC2 gives no end.
    pub expires: Option<OffsetDateTime>,
}

/// What a Recycle Bin retention rule retains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecycleResource {
    /// `EC2_IMAGE`: deregistered EBS-backed AMIs.
    Image,
    /// `EBS_SNAPSHOT`: deleted EBS snapshots.
    Snapshot,
}

impl RecycleResource {
    /// The API's `ResourceType` value.
    pub fn as_api(self) -> &'static str {
        match self {
            Self::Image => "EC2_IMAGE",
            Self::Snapshot => "EBS_SNAPSHOT",
        }
    }
}

/// A tag a retention rule matches on: `ResourceTagKey` and the optional
/// `ResourceTagValue` (the model allows an empty or absent value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTag {
    pub key: String,
    pub value: Option<String>,
}

/// One Recycle Bin retention rule of a region (`ListRules` for the ids, `GetRule` for the
/// tags: `ListRules` summaries carry neither `ResourceTags` nor `ExcludeResourceTags`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionRule {
    /// `Identifier` (11 letters and digits).
    pub id: String,
    pub resource: RecycleResource,
    /// `RetentionPeriodValue` in days (`RetentionPeriodUnit` is always `DAYS`; 1–3650
    /// in the model).
    pub retention_days: u32,
    /// Tag-level rule: retains resources with ANY of these tags. Empty: a region-level rule.
    pub resource_tags: Vec<RuleTag>,
    /// Region-level rules only: resources with any of these tags are not retained.
    pub exclude_tags: Vec<RuleTag>,
    /// `LockState`: `locked`, `pending_unlock` or `unlocked` (`None` if not reported).
    pub lock_state: Option<String>,
    /// `Status`: only an `available` rule retains (`pending` while being created).
    pub available: bool,
}

/// What DeregisterImage with `DeleteAssociatedSnapshots` did to the snapshots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deregistered {
    pub snapshots_deleted: Vec<SnapshotId>,
    /// Snapshots AWS kept (still used by another image), with its return code.
    pub snapshots_kept: Vec<(SnapshotId, String)>,
}

#[async_trait]
pub trait Instances: Send + Sync {
    /// Instances carrying the `ami-lifecycle:schedule` tag key (any value, any state).
    async fn scheduled_instances(&self) -> CloudResult<Vec<Instance>>;
    /// Instances by id (states for wave progress, devices for validation).
    async fn instances(&self, ids: &[InstanceId]) -> CloudResult<Vec<Instance>>;
    /// The status checks of these instances (any state), for health-gated reboot waves.
    async fn health(&self, ids: &[InstanceId]) -> CloudResult<Vec<InstanceHealth>>;
}

#[async_trait]
pub trait Images: Send + Sync {
    /// One page of images matching `query`. Pass the previous page's `next` to continue.
    async fn images_page(
        &self,
        query: &ImageQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Image>>;
    /// One page of own snapshots matching `query`.
    async fn snapshots_page(
        &self,
        query: &SnapshotQuery,
        token: Option<String>,
    ) -> CloudResult<Page<Snapshot>>;
}

#[async_trait]
pub trait ImageFactory: Send + Sync {
    async fn create_image(&self, request: &NewImage) -> CloudResult<ImageId>;
    /// Called on the destination region's port.
    async fn copy_image(&self, request: &ImageCopy) -> CloudResult<ImageId>;
}

#[async_trait]
pub trait ImageRetirement: Send + Sync {
    async fn deprecate(&self, image: &ImageId, at: OffsetDateTime) -> CloudResult<()>;
    async fn deregister(
        &self,
        image: &ImageId,
        delete_snapshots: bool,
    ) -> CloudResult<Deregistered>;
    async fn delete_snapshot(&self, snapshot: &SnapshotId) -> CloudResult<()>;
    /// `DisableImage`: the image cannot be launched, is left out of DescribeImages by
    /// default, and loses every launch permission (EC2 makes it private).
    async fn disable(&self, image: &ImageId) -> CloudResult<()>;
    /// `EnableImage`: a disabled image is `available` again (its launch permissions are
    /// not restored: the share reconcile grants them again).
    async fn enable(&self, image: &ImageId) -> CloudResult<()>;
    /// `DisableImageDeprecation`: clears the image's deprecation time.
    async fn cancel_deprecation(&self, image: &ImageId) -> CloudResult<()>;
    /// This account's snapshots in this region that are locked now
    /// (`DescribeLockedSnapshots`, every page; lock state `expired` left out).
    async fn snapshot_locks(&self) -> CloudResult<Vec<SnapshotLock>>;
}

#[async_trait]
pub trait References: Send + Sync {
    /// What references these images in this region: instances, launch template versions,
    /// SSM parameters.
    async fn references(&self, images: &[ImageId]) -> CloudResult<Vec<ImageReference>>;
}

/// One image usage report (`DescribeImageUsageReports`): which other accounts use an image
/// this account owns, computed asynchronously by EC2 ([`crate::cleanup::usage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    pub id: String,
    pub image: ImageId,
    /// The accounts the report is limited to; empty: every account.
    pub accounts: Vec<AccountId>,
    /// `pending`, `available`, `error` (or what EC2 adds later).
    pub state: String,
    pub state_reason: Option<String>,
    pub created: Option<OffsetDateTime>,
}

/// One line of an available usage report (`DescribeImageUsageReportEntries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEntry {
    pub account: AccountId,
    /// `ec2:Instance`, `ec2:LaunchTemplate`, …
    pub resource_type: String,
    pub count: u64,
}

/// EC2 image usage reports of one region, for accounts the hub cannot look into.
#[async_trait]
pub trait UsageReports: Send + Sync {
    /// `CreateImageUsageReport` for instances and launch templates, limited to `accounts`
    /// (empty: every account); `token` makes a repeat return the same report.
    async fn create_usage_report(
        &self,
        image: &ImageId,
        accounts: &[AccountId],
        token: &str,
    ) -> CloudResult<String>;
    /// Every live report of `image` (every page).
    async fn usage_reports(&self, image: &ImageId) -> CloudResult<Vec<UsageReport>>;
    /// The entries of one available report (every page).
    async fn usage_report_entries(&self, report: &str) -> CloudResult<Vec<UsageEntry>>;
}

#[async_trait]
pub trait Sharing: Send + Sync {
    async fn launch_permissions(&self, image: &ImageId) -> CloudResult<Vec<Grantee>>;
    async fn modify_launch_permissions(
        &self,
        image: &ImageId,
        add: &[Grantee],
        remove: &[Grantee],
    ) -> CloudResult<()>;
    /// Accounts (and `Public`) allowed to create volumes from a snapshot.
    async fn snapshot_permissions(&self, snapshot: &SnapshotId) -> CloudResult<Vec<Grantee>>;
    async fn modify_snapshot_permissions(
        &self,
        snapshot: &SnapshotId,
        add: &[AccountId],
        remove: &[AccountId],
    ) -> CloudResult<()>;
    /// Whether the region's image block public access setting blocks new public sharing.
    async fn public_sharing_blocked(&self) -> CloudResult<bool>;
}

#[async_trait]
pub trait Tagging: Send + Sync {
    /// Adds or overwrites tags on an image or snapshot.
    async fn set_tags(&self, resource: &str, tags: &Tags) -> CloudResult<()>;
    async fn remove_tags(&self, resource: &str, keys: &[String]) -> CloudResult<()>;
}

/// Everything the suite asks of EC2 in one region.
pub trait Ec2:
    Instances + Images + ImageFactory + ImageRetirement + References + UsageReports + Sharing + Tagging
{
    fn region(&self) -> &Region;
}

#[async_trait]
pub trait Keys: Send + Sync {
    async fn describe_key(&self, key: &KeyRef) -> CloudResult<KeyInfo>;
    async fn list_grants(&self, key_arn: &str) -> CloudResult<Vec<KeyGrant>>;
    /// Returns the grant id.
    async fn create_grant(
        &self,
        key_arn: &str,
        grantee_principal: &str,
        operations: &[String],
        name: &str,
    ) -> CloudResult<String>;
    /// Revokes a grant (as the key's account).
    async fn revoke_grant(&self, key_arn: &str, grant_id: &str) -> CloudResult<()>;
}

/// The seal's MAC (KMS `GenerateMac`/`VerifyMac` with the deployment's HMAC key):
/// see [`crate::seal`], which is the only caller.
#[async_trait]
pub trait Seals: Send + Sync {
    /// The MAC of `message`.
    async fn mac(&self, message: &[u8]) -> CloudResult<Vec<u8>>;
    /// Whether `mac` is the MAC of `message` (`Ok(false)` for a MAC that does not match).
    async fn verify(&self, message: &[u8], mac: &[u8]) -> CloudResult<bool>;
}

/// The Recycle Bin of one region.
#[async_trait]
pub trait RecycleBin: Send + Sync {
    /// Every retention rule of the region for images (`EC2_IMAGE`) and snapshots
    /// (`EBS_SNAPSHOT`), every page.
    async fn retention_rules(&self) -> CloudResult<Vec<RetentionRule>>;
}

#[async_trait]
pub trait Reports: Send + Sync {
    /// Publishes a run report as an `ami-lifecycle` event.
    async fn publish(&self, report: &RunReport) -> CloudResult<()>;
}

#[async_trait]
pub trait Continuations: Send + Sync {
    /// Asks for this function to be invoked again with `body` after `delay_seconds` (≤ 900).
    async fn continue_later(&self, body: &serde_json::Value, delay_seconds: u32)
        -> CloudResult<()>;
}

/// One version of an SSM parameter (`GetParameterHistory`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterVersion {
    pub version: i64,
    pub value: String,
    pub labels: Vec<String>,
    pub description: Option<String>,
}

/// A parameter's current value (`GetParametersByPath`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    pub version: i64,
    /// `DataType`: `aws:ec2:image` or `text` (`None` when not reported).
    pub data_type: Option<String>,
    /// `LastModifiedDate`.
    pub modified: Option<OffsetDateTime>,
}

/// What to write with `PutParameter` (always `Type=String`, `Overwrite=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewParameterVersion {
    pub name: String,
    pub value: String,
    pub description: String,
    /// `aws:ec2:image` (validated by SSM, usable as `resolve:ssm:`) or `text`.
    pub data_type: &'static str,
}

/// The SSM Parameter Store of one region, as far as the suite's own path goes.
#[async_trait]
pub trait Parameters: Send + Sync {
    /// Every parameter under `path`, recursively, with its current value (every page).
    async fn under_path(&self, path: &str) -> CloudResult<Vec<ParameterValue>>;
    /// One parameter's current value (`GetParameter`); `None` when it does not exist.
    async fn get(&self, name: &str) -> CloudResult<Option<ParameterValue>>;
    /// Every version of `name` still kept (at most 100), oldest first; empty when the
    /// parameter does not exist.
    async fn history(&self, name: &str) -> CloudResult<Vec<ParameterVersion>>;
    /// Writes a new version; returns the version SSM answered. For `aws:ec2:image` SSM
    /// validates the value after answering: the version may not exist yet (or ever).
    async fn put(&self, parameter: &NewParameterVersion) -> CloudResult<i64>;
    /// Moves `labels` onto `version` (a label is on one version of a parameter at a time).
    async fn label(&self, name: &str, version: i64, labels: &[String]) -> CloudResult<()>;
    /// Removes `labels` from `version`.
    async fn unlabel(&self, name: &str, version: i64, labels: &[String]) -> CloudResult<()>;
    /// Deletes the parameter and its history (only `amictl unpin`, on the pin parameter).
    async fn delete(&self, name: &str) -> CloudResult<()>;
}

/// A launch template tagged `ami-lifecycle:track`, with the image of its default and of
/// its latest version (as stored: an AMI id or a `resolve:ssm:` reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedTemplate {
    pub id: String,
    pub name: String,
    pub tags: Tags,
    pub default_version: i64,
    pub default_image: Option<String>,
    pub latest_version: i64,
    pub latest_image: Option<String>,
    pub latest_description: Option<String>,
}

/// A new launch template version: `source_version`'s data with only the image changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTemplateVersion {
    pub template: String,
    pub source_version: i64,
    pub image: ImageId,
    pub description: String,
    /// `ClientToken`: the same request twice makes one version.
    pub token: String,
}

/// The launch templates of one region that follow a lineage.
#[async_trait]
pub trait LaunchTemplates: Send + Sync {
    /// Every launch template carrying the `ami-lifecycle:track` tag key.
    async fn tracked_templates(&self) -> CloudResult<Vec<TrackedTemplate>>;
    /// Creates a version; returns its number.
    async fn create_version(&self, request: &NewTemplateVersion) -> CloudResult<i64>;
    /// Makes `version` the template's default.
    async fn set_default_version(&self, template: &str, version: i64) -> CloudResult<()>;
}

/// What Systems Manager knows of an instance (`DescribeInstanceInformation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub instance: InstanceId,
    /// `PingStatus` is `Online`.
    pub online: bool,
    /// `PingStatus` as reported (`Online`, `ConnectionLost`, `Inactive`).
    pub ping: String,
    /// `PlatformType`: `Linux`, `Windows`, `MacOS`.
    pub platform: String,
}

/// A Run Command to send to one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCommand {
    pub document: String,
    pub parameters: std::collections::BTreeMap<String, Vec<String>>,
    /// `TimeoutSeconds`: how long the command may wait to start and run (≥ 30).
    pub timeout_seconds: u32,
    pub comment: String,
}

/// Where a command stands on one instance (`GetCommandInvocation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandStatus {
    /// Pending, InProgress, Delayed, or not visible yet.
    Running,
    Success,
    /// Failed, Cancelled, TimedOut…: the status and what the command printed on stderr.
    Failed {
        status: String,
        detail: String,
    },
}

/// Systems Manager Run Command in one region.
#[async_trait]
pub trait Agents: Send + Sync {
    /// The managed instances among `ids` (an instance not listed is not managed).
    async fn agents(&self, ids: &[InstanceId]) -> CloudResult<Vec<AgentInfo>>;
    /// Sends `command` to `instance`; returns the command id.
    async fn send(&self, instance: &InstanceId, command: &AgentCommand) -> CloudResult<String>;
    /// The command's status on `instance`.
    async fn status(&self, command_id: &str, instance: &InstanceId) -> CloudResult<CommandStatus>;
}

/// AWS Organizations, read from the hub (the management account or a delegated
/// administrator): which accounts `ou:` and `org` select ([`crate::accounts`]).
#[async_trait]
pub trait Organization: Send + Sync {
    /// Every account of the organization, whatever its status (`ListAccounts`, every page).
    async fn accounts(&self) -> CloudResult<Vec<OrgAccount>>;
    /// Every account under `ou` and its child OUs, whatever its status
    /// (`ListAccountsForParent`, `ListOrganizationalUnitsForParent`, every page).
    async fn accounts_under(&self, ou: &str) -> CloudResult<Vec<OrgAccount>>;
    /// The organization's ARN (`DescribeOrganization`): `SHARE_ALLOWED=org` admits it and
    /// its OUs as grantees.
    async fn organization_arn(&self) -> CloudResult<String>;
}

/// The cloud as the suite sees it.
///
/// One `Cloud` acts in one account. [`Cloud::for_account`] hands out the same ports acting in
/// another account through its spoke role (issue 18); run reports, continuations and the
/// seal stay the hub's (the spoke roles have none of those permissions).
#[async_trait]
pub trait Cloud: Send + Sync {
    fn ec2(&self, region: &Region) -> Arc<dyn Ec2>;
    fn keys(&self, region: &Region) -> Arc<dyn Keys>;
    fn recycle_bin(&self, region: &Region) -> Arc<dyn RecycleBin>;
    fn reports(&self) -> Arc<dyn Reports>;
    fn continuations(&self) -> Option<Arc<dyn Continuations>>;
    /// The deployment's seal key (in the home region).
    fn seals(&self) -> Arc<dyn Seals>;
    fn parameters(&self, region: &Region) -> Arc<dyn Parameters>;
    fn launch_templates(&self, region: &Region) -> Arc<dyn LaunchTemplates>;
    fn agents(&self, region: &Region) -> Arc<dyn Agents>;
    /// Organizations, with the hub's credentials (a spoke cloud keeps the hub's: only the
    /// hub may list the organization).
    fn organization(&self) -> Arc<dyn Organization>;
    /// The account this cloud acts in (`sts:GetCallerIdentity`, read once). Only called
    /// when `AMI_LIFECYCLE_ACCOUNTS` is set.
    async fn account(&self) -> CloudResult<AccountId>;
    /// This cloud acting in `account` as `function`'s spoke role
    /// ([`crate::accounts::spoke_role_arn`], session `ami-lifecycle-<function>`, the
    /// configured external id). The role is assumed here, once, so a refusal is one error
    /// about the account (not a failure of every call in it); the credentials are cached
    /// and renewed by the returned cloud.
    async fn for_account(&self, account: &AccountId, function: &str)
        -> CloudResult<Arc<dyn Cloud>>;
    /// This function's own work queue (`WORK_QUEUE_URL`, issue 18's fan-out), the hub's
    /// whatever account the cloud acts in; `None` when not configured.
    fn work_queue(&self) -> Option<Arc<dyn WorkQueue>> {
        None
    }
    /// The run ledger (`RUN_LEDGER_TABLE`), the hub's; `None` when not configured.
    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        None
    }
}

/// Streams every image matching `query`, page by page, into `visit`; memory stays flat.
pub async fn for_each_image(
    ec2: &dyn Ec2,
    query: &ImageQuery,
    mut visit: impl FnMut(Image),
) -> CloudResult<()> {
    let mut token = None;
    loop {
        let page = ec2.images_page(query, token).await?;
        page.items.into_iter().for_each(&mut visit);
        match page.next {
            Some(t) => token = Some(t),
            None => return Ok(()),
        }
    }
}

/// Collects every image matching `query`.
pub async fn all_images(ec2: &dyn Ec2, query: &ImageQuery) -> CloudResult<Vec<Image>> {
    let mut out = Vec::new();
    for_each_image(ec2, query, |i| out.push(i)).await?;
    Ok(out)
}

/// One of this account's images by id; `None` when it does not exist (any more): EC2
/// answers an unknown id with `InvalidAMIID.NotFound`, not an empty list.
pub async fn own_image(ec2: &dyn Ec2, id: &ImageId) -> CloudResult<Option<Image>> {
    let query = ImageQuery {
        owned_by_self: true,
        ids: vec![id.clone()],
        ..ImageQuery::default()
    };
    match all_images(ec2, &query).await {
        Ok(found) => Ok(found.into_iter().find(|i| &i.id == id)),
        Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Collects every snapshot matching `query`.
pub async fn all_snapshots(ec2: &dyn Ec2, query: &SnapshotQuery) -> CloudResult<Vec<Snapshot>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = ec2.snapshots_page(query, token).await?;
        out.extend(page.items);
        match page.next {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// Current states of instances, for wave progress.
pub async fn instance_states(
    ec2: &dyn Ec2,
    ids: &[InstanceId],
) -> CloudResult<Vec<(InstanceId, InstanceState)>> {
    Ok(ec2
        .instances(ids)
        .await?
        .into_iter()
        .map(|i| (i.id, i.state))
        .collect())
}

/// The function's own work queue: the fan-out sends work items to it and the same
/// function consumes them (issue 18, [`crate::fanout`]).
#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Sends each body as one message, `delay_seconds` later (at most 900, SQS's limit);
    /// one result per body, in order (a batch can fail in part).
    async fn send(&self, bodies: &[String], delay_seconds: u32) -> Vec<CloudResult<()>>;
}

/// How one work item of a fanned-out run ended, recorded once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemState {
    /// Ran to the end with no failed item.
    Done,
    /// Ran out of time or kept being throttled on its last delivery: the next scheduled
    /// run does the rest.
    Deferred,
    /// Could not run (account unreachable) or ended with failed items.
    Failed,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Deferred => "deferred",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "done" => Some(Self::Done),
            "deferred" => Some(Self::Deferred),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// The ledger's line about one finished work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    /// `<account>/<region|all>`, unique within its run.
    pub item: String,
    pub account: AccountId,
    pub region: Option<Region>,
    pub state: ItemState,
    /// One line for the run summary (what was done, or why not).
    pub line: String,
}

/// A fanned-out run's counters after an item was recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub total: u32,
    /// Items not yet recorded; 0 = the run is complete.
    pub remaining: u32,
    pub done: u32,
    pub deferred: u32,
    pub failed: u32,
}

/// The run ledger (DynamoDB): which work items of a run are finished, so a redelivered
/// item changes nothing, and when the last one finishes, so the summary is sent once.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Records a fanned-out run of `total` items; `false` when it was already recorded
    /// (a redelivered schedule: its items were sent then).
    async fn start_run(&self, run: &str, total: u32, now: OffsetDateTime) -> CloudResult<bool>;
    /// Counts one more item into an open run (create-image's later waves), once: `false`
    /// when `item` was already added or recorded (a redelivered item asking again).
    async fn add_item(&self, run: &str, item: &str, now: OffsetDateTime) -> CloudResult<bool>;
    /// How `item` of `run` ended, if it was recorded.
    async fn finished(&self, run: &str, item: &str) -> CloudResult<Option<ItemState>>;
    /// Records `record` once, with the run's counters, atomically: the counters after it,
    /// or `None` when the item was already recorded (nothing changed).
    async fn finish_item(
        &self,
        run: &str,
        record: &ItemRecord,
        now: OffsetDateTime,
    ) -> CloudResult<Option<RunCounts>>;
    /// Claims the run's summary: `true` for exactly one caller once no item remains.
    async fn claim_summary(&self, run: &str, now: OffsetDateTime) -> CloudResult<bool>;
    /// Every recorded item of `run`.
    async fn items(&self, run: &str) -> CloudResult<Vec<ItemRecord>>;
}
