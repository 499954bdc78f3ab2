//! [`FakeCloud`]: an in-memory cloud implementing every port, for domain tests.
//!
//! It keeps instances, images, snapshots, launch-template references, KMS keys and grants
//! per region, records every call, and behaves as AWS documents where the planners depend
//! on it: unique image names (`InvalidAMIName.Duplicate`), `ClientToken` idempotency on
//! copies, a concurrent-copy cap (`ResourceLimitExceeded`), images that start `pending`,
//! snapshots that survive deregistration while another image uses them, deregistration
//! protection. Failures are injected per operation and subject with [`FakeCloud::fail`].
//!
//! ```
//! use ami_core::fake::FakeCloud;
//! let cloud = FakeCloud::new("123456789012");
//! let id = cloud.add_instance("us-east-1", &[("ami-lifecycle:schedule", "daily")]);
//! assert!(id.as_str().starts_with("i-"));
//! ```

mod agents;
mod ec2;
mod fanout;
mod fleet;
mod kms;
mod publish;
mod usage;

pub use self::agents::{FakeAgent, FakeOutcome};
pub use self::fanout::{FakeFanOut, FakeRun, FanOutState};
pub use self::fleet::{FakeFleet, FleetState};
pub use self::publish::{FakeParameter, FakeTemplate};
pub use self::usage::FakeUsage;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::accounts::OrgAccount;
use crate::error::{CloudError, CloudResult};
use crate::model::{
    AccountId, AttachedVolume, DeviceName, Grantee, Image, ImageDisk, ImageId, ImageState,
    Instance, InstanceId, InstanceState, KeyGrant, KeyRef, Region, Snapshot, SnapshotId, Tags,
};
use crate::ports::{
    Agents, Cloud, Continuations, Ec2, Keys, LaunchTemplates, Ledger, Organization, Parameters,
    RecycleBin, Reports, RetentionRule, Seals, WorkQueue,
};
use crate::report::RunReport;
use crate::seal::Subject;
use crate::tags::key;

/// One injected failure: calls of `operation` (about `subject`, if set) fail with `code`.
#[derive(Debug, Clone)]
struct Fault {
    operation: String,
    subject: Option<String>,
    code: String,
    remaining: Option<usize>,
}

/// A KMS key in the fake.
#[derive(Debug, Clone)]
pub struct FakeKey {
    pub arn: String,
    pub aliases: Vec<String>,
    pub enabled: bool,
    pub aws_managed: bool,
}

/// Everything the fake knows; public so tests can assert on state directly.
#[derive(Debug, Default)]
pub struct FakeState {
    pub account: String,
    pub now: Option<OffsetDateTime>,
    pub instances: BTreeMap<InstanceId, Instance>,
    pub volumes: HashMap<String, (u64, bool, Option<KeyRef>)>,
    pub images: BTreeMap<ImageId, Image>,
    pub snapshots: BTreeMap<SnapshotId, Snapshot>,
    pub launch_permissions: HashMap<ImageId, BTreeSet<Grantee>>,
    pub snapshot_permissions: HashMap<SnapshotId, BTreeSet<Grantee>>,
    /// EBS snapshot locks: mode and end ([`FakeCloud::lock_snapshot`]).
    pub snapshot_locks: BTreeMap<SnapshotId, (String, OffsetDateTime)>,
    /// Recycle Bin retention rules per region ([`FakeCloud::add_retention_rule`]).
    pub retention_rules: BTreeMap<Region, Vec<RetentionRule>>,
    /// Launch template versions and SSM parameters referencing images: (region, arn, image).
    pub extra_references: Vec<(Region, String, String, ImageId)>,
    pub copy_tokens: HashMap<(Region, String), ImageId>,
    pub copy_cap: Option<usize>,
    pub public_blocked: bool,
    pub keys: BTreeMap<(Region, String), FakeKey>,
    pub grants: Vec<KeyGrant>,
    pub reports: Vec<RunReport>,
    pub continuations: Vec<(serde_json::Value, u32)>,
    pub reboots: Vec<(InstanceId, ImageId)>,
    /// Instances whose instance status check is `impaired` ([`FakeCloud::set_impaired`]).
    pub impaired: BTreeSet<InstanceId>,
    pub calls: Vec<(Region, String)>,
    /// SSM parameters by (region, name) ([`FakeCloud::parameter`]).
    pub parameters: BTreeMap<(Region, String), FakeParameter>,
    /// Launch templates by (region, id) ([`FakeCloud::add_launch_template`]).
    pub templates: BTreeMap<(Region, String), FakeTemplate>,
    /// Systems Manager agents by instance ([`FakeCloud::set_agent`]).
    pub agents: BTreeMap<InstanceId, FakeAgent>,
    /// Command id → (instance, action).
    pub command_actions: BTreeMap<String, (InstanceId, String)>,
    /// Commands sent and CreateImage calls, in order ("SendCommand DOC freeze i-…",
    /// "CreateImage i-… no-reboot=true").
    pub timeline: Vec<String>,
    /// Image usage reports and what they find ([`FakeCloud::use_elsewhere`]).
    pub usage: FakeUsage,
    faults: Vec<Fault>,
    next_id: u64,
}

impl FakeState {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:017x}", self.next_id)
    }

    fn now(&self) -> OffsetDateTime {
        self.now.unwrap_or_else(OffsetDateTime::now_utc)
    }

    /// Records the call and returns the injected failure, if one matches.
    fn call(
        &mut self,
        region: &Region,
        operation: &'static str,
        subject: Option<&str>,
    ) -> CloudResult<()> {
        self.calls.push((region.clone(), operation.to_owned()));
        let hit = self.faults.iter_mut().position(|f| {
            f.operation == operation
                && f.remaining != Some(0)
                && match (&f.subject, subject) {
                    (None, _) => true,
                    (Some(want), Some(got)) => want == got,
                    (Some(_), None) => false,
                }
        });
        match hit {
            None => Ok(()),
            Some(i) => {
                let fault = &mut self.faults[i];
                if let Some(n) = fault.remaining.as_mut() {
                    *n -= 1;
                }
                Err(CloudError::from_code(
                    operation,
                    Some(region.clone()),
                    &fault.code,
                    "injected by the fake",
                ))
            }
        }
    }

    fn locked(&self, snapshot: &SnapshotId) -> bool {
        let now = self.now();
        self.snapshot_locks
            .get(snapshot)
            .is_some_and(|(_, until)| *until > now)
    }

    fn images_using(&self, snapshot: &SnapshotId) -> usize {
        self.images
            .values()
            .filter(|i| {
                i.state != ImageState::Deregistered && i.snapshot_ids().any(|s| s == snapshot)
            })
            .count()
    }
}

/// The organization around a fake hub (issue 18): the spoke accounts' own states, what
/// Organizations lists and the spoke roles assumed.
#[derive(Debug, Default)]
pub struct FakeOrg {
    /// Each spoke account's state ([`FakeCloud::add_account`]); an account without one has
    /// no spoke role (AssumeRole answers `AccessDenied`).
    pub spokes: BTreeMap<String, Arc<Mutex<FakeState>>>,
    /// Organizations' accounts, each with the OUs it is under (nearest last).
    pub listed: Vec<(OrgAccount, Vec<String>)>,
    /// Spoke roles assumed: (account, role ARN, session name).
    pub assumed: Vec<(String, String, String)>,
    /// The organization's ARN (`DescribeOrganization`); none: not in an organization.
    pub arn: Option<String>,
}

/// The in-memory cloud. Cheap to clone: clones share state.
#[derive(Clone)]
pub struct FakeCloud {
    state: Arc<Mutex<FakeState>>,
    with_continuations: bool,
    org: Arc<Mutex<FakeOrg>>,
    /// The hub's work queue and run ledger, when the fan-out is on ([`FakeCloud::fan_out`]).
    fanout: Option<FakeFanOut>,
}

impl FakeCloud {
    pub fn new(account: &str) -> Self {
        let state = FakeState {
            account: account.to_owned(),
            ..FakeState::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            with_continuations: true,
            org: Arc::default(),
            fanout: None,
        }
    }

    /// This (hub) cloud with a work queue and a run ledger (issue 18's fan-out); the
    /// returned handle shows what was sent and recorded. Spokes opened later share them.
    pub fn fan_out(&mut self) -> FakeFanOut {
        let f = FakeFanOut {
            hub: self.state.clone(),
            state: Arc::default(),
        };
        self.fanout = Some(f.clone());
        f
    }

    /// The organization this fake belongs to: spokes, listing, roles assumed.
    pub fn org(&self) -> MutexGuard<'_, FakeOrg> {
        self.org.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A spoke account with its spoke roles (each account has its own instances, images…);
    /// returns its view for seeding and assertions. The hub reaches it through
    /// [`Cloud::for_account`]; make its role refuse with
    /// `fail("AssumeRole", Some(account), "AccessDenied", None)` on the hub.
    pub fn add_account(&self, account: &str) -> FakeCloud {
        let state = Arc::new(Mutex::new(FakeState {
            account: account.to_owned(),
            now: self.state().now,
            ..FakeState::default()
        }));
        self.org().spokes.insert(account.to_owned(), state.clone());
        FakeCloud {
            state,
            with_continuations: self.with_continuations,
            org: self.org.clone(),
            fanout: self.fanout.clone(),
        }
    }

    /// An account as Organizations lists it, under `ous` (outermost first).
    pub fn list_account(&self, account: &str, name: &str, status: &str, ous: &[&str]) {
        let Some(id) = AccountId::parse(account) else {
            panic!("{account:?} is not a 12-digit account id");
        };
        self.org().listed.push((
            OrgAccount::new(id, name, status),
            ous.iter().map(|o| (*o).to_owned()).collect(),
        ));
    }

    /// Direct access to the state, for seeding and assertions.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fixes the clock the fake uses for creation dates.
    pub fn set_now(&self, now: OffsetDateTime) {
        self.state().now = Some(now);
    }

    /// Calls of `operation` (about `subject`, when given) fail with AWS error `code`,
    /// `times` times (None = always).
    pub fn fail(&self, operation: &str, subject: Option<&str>, code: &str, times: Option<usize>) {
        self.state().faults.push(Fault {
            operation: operation.to_owned(),
            subject: subject.map(str::to_owned),
            code: code.to_owned(),
            remaining: times,
        });
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// How many calls of `operation` were made (any region).
    pub fn calls(&self, operation: &str) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|(_, op)| op == operation)
            .count()
    }

    /// A running instance with an 8 GiB root volume `/dev/xvda`, in `region`, with `tags`.
    pub fn add_instance(&self, region: &str, tags: &[(&str, &str)]) -> InstanceId {
        self.add_instance_with(region, tags, InstanceState::Running, &[])
    }

    /// An instance in `state` with a root volume and the given extra data devices.
    pub fn add_instance_with(
        &self,
        region: &str,
        tags: &[(&str, &str)],
        state: InstanceState,
        data_devices: &[&str],
    ) -> InstanceId {
        let mut s = self.state();
        let id = InstanceId::new(s.id("i"));
        let mut volumes = Vec::new();
        for (n, dev) in std::iter::once("/dev/xvda")
            .chain(data_devices.iter().copied())
            .enumerate()
        {
            let vol = s.id("vol");
            s.volumes
                .insert(vol.clone(), (if n == 0 { 8 } else { 100 }, false, None));
            volumes.push(AttachedVolume {
                device: DeviceName::new(dev),
                volume_id: vol,
            });
        }
        let instance = Instance {
            id: id.clone(),
            region: Region::new(region),
            state,
            tags: to_tags(tags),
            root_device: Some(DeviceName::new("/dev/xvda")),
            volumes,
            image_id: None,
            instance_store: false,
            launched: None,
        };
        s.instances.insert(id.clone(), instance);
        id
    }

    /// Makes an instance's status check `impaired` (or `ok` again).
    pub fn set_impaired(&self, id: &InstanceId, impaired: bool) {
        let mut s = self.state();
        if impaired {
            s.impaired.insert(id.clone());
        } else {
            s.impaired.remove(id);
        }
    }

    /// Makes an instance instance-store-backed (its root device is an instance store).
    pub fn set_instance_store(&self, id: &InstanceId) {
        if let Some(i) = self.state().instances.get_mut(id) {
            i.instance_store = true;
        }
    }

    /// Locks a snapshot (EBS snapshot lock) in `mode` until `until`: it cannot be deleted,
    /// alone or with its image, before then.
    pub fn lock_snapshot(&self, id: &SnapshotId, mode: &str, until: OffsetDateTime) {
        self.state()
            .snapshot_locks
            .insert(id.clone(), (mode.to_owned(), until));
    }

    /// A Recycle Bin retention rule in `region` (what `ListRules`/`GetRule` return there).
    pub fn add_retention_rule(&self, region: &str, rule: RetentionRule) {
        self.state()
            .retention_rules
            .entry(Region::new(region))
            .or_default()
            .push(rule);
    }

    /// Sets an instance's state (a reboot in progress, a stop, a termination).
    pub fn set_instance_state(&self, id: &InstanceId, state: InstanceState) {
        if let Some(i) = self.state().instances.get_mut(id) {
            i.state = state;
        }
    }

    /// An available image with one snapshot, as if made earlier: by the suite when the
    /// tags say `managed-by` (sealed, and EC2's `SourceInstanceId` is its
    /// `source-instance` tag, as CreateImage would record), by anyone else otherwise.
    pub fn add_image(
        &self,
        region: &str,
        name: &str,
        created: OffsetDateTime,
        tags: &[(&str, &str)],
    ) -> ImageId {
        let id = self.add_unsealed_image(region, name, created, tags);
        let mut s = self.state();
        let Some(image) = s.images.get_mut(&id) else {
            return id;
        };
        let Some(deployment) = image.tags.get(key::MANAGED_BY).cloned() else {
            return id;
        };
        if image.tags.contains_key(key::SOURCE_IMAGE) {
            let src = image
                .tags
                .get(key::SOURCE_IMAGE)
                .cloned()
                .unwrap_or_default();
            let src_region = image
                .tags
                .get(key::SOURCE_REGION)
                .map_or_else(|| image.region.clone(), |r| Region::new(r.as_str()));
            image.source = Some((ImageId::new(src), src_region));
        } else {
            image.source_instance = image
                .tags
                .get(key::SOURCE_INSTANCE)
                .map(|i| InstanceId::new(i.as_str()));
        }
        let seal = fake_seal(&Subject::of_image(image, &deployment));
        image.tags.insert(key::SEAL.to_owned(), seal);
        let mut snap_tags = image.tags.clone();
        snap_tags.insert(key::IMAGE_NAME.to_owned(), image.name.clone());
        snap_tags.insert(
            key::SEAL.to_owned(),
            match &image.owner {
                Some(owner) => fake_seal(&Subject::snapshot(
                    &deployment,
                    owner,
                    &image.region,
                    &snap_tags,
                )),
                None => String::new(),
            },
        );
        let snaps: Vec<SnapshotId> = image.snapshot_ids().cloned().collect();
        for sid in snaps {
            if let Some(snap) = s.snapshots.get_mut(&sid) {
                snap.tags = snap_tags.clone();
            }
        }
        id
    }

    /// [`FakeCloud::add_image`] without the seal and EC2's provenance fields: an image
    /// made by hand, or one whose `managed-by` tag is forged.
    pub fn add_unsealed_image(
        &self,
        region: &str,
        name: &str,
        created: OffsetDateTime,
        tags: &[(&str, &str)],
    ) -> ImageId {
        let mut s = self.state();
        let id = ImageId::new(s.id("ami"));
        let snap = SnapshotId::new(s.id("snap"));
        let account = AccountId::parse(&s.account);
        s.snapshots.insert(
            snap.clone(),
            Snapshot {
                id: snap.clone(),
                region: Region::new(region),
                tags: to_tags(tags),
                size_gib: 8,
                encrypted: false,
                kms_key: None,
                started: created,
                full_size_bytes: None,
            },
        );
        s.images.insert(
            id.clone(),
            Image {
                id: id.clone(),
                region: Region::new(region),
                name: name.to_owned(),
                state: ImageState::Available,
                owner: account,
                created,
                tags: to_tags(tags),
                disks: vec![ImageDisk {
                    device: DeviceName::new("/dev/xvda"),
                    snapshot_id: snap,
                    size_gib: 8,
                    encrypted: false,
                    kms_key: None,
                }],
                public: false,
                deprecation_time: None,
                last_launched: None,
                deregistration_protected: false,
                source: None,
                billing_products: Vec::new(),
                source_instance: None,
            },
        );
        id
    }

    /// Edits an image in place (state, protection, last launch, encryption…).
    pub fn edit_image(&self, id: &ImageId, edit: impl FnOnce(&mut Image)) {
        if let Some(i) = self.state().images.get_mut(id) {
            edit(i);
        }
    }

    pub fn image(&self, id: &ImageId) -> Option<Image> {
        self.state().images.get(id).cloned()
    }

    /// Images in `region` not deregistered.
    pub fn live_images(&self, region: &str) -> Vec<Image> {
        self.state()
            .images
            .values()
            .filter(|i| i.region.as_str() == region && i.state != ImageState::Deregistered)
            .cloned()
            .collect()
    }

    /// Makes every pending image available (as EC2 does once snapshots complete).
    pub fn complete_pending(&self) -> Vec<ImageId> {
        let mut s = self.state();
        let mut done = Vec::new();
        for img in s.images.values_mut() {
            if img.state == ImageState::Pending {
                img.state = ImageState::Available;
                done.push(img.id.clone());
            }
        }
        done
    }

    /// A launch template version (or SSM parameter, by `resource_type`) referencing `image`.
    pub fn add_reference(&self, region: &str, resource_type: &str, arn: &str, image: &ImageId) {
        self.state().extra_references.push((
            Region::new(region),
            resource_type.to_owned(),
            arn.to_owned(),
            image.clone(),
        ));
    }

    /// A KMS key in `region`; `alias` like `alias/replicas`.
    pub fn add_key(&self, region: &str, alias: Option<&str>, aws_managed: bool) -> String {
        let mut s = self.state();
        let key_id = s.id("key");
        let arn = format!("arn:aws:kms:{region}:{}:key/{key_id}", s.account);
        let key = FakeKey {
            arn: arn.clone(),
            aliases: alias.map(|a| vec![a.to_owned()]).unwrap_or_default(),
            enabled: true,
            aws_managed,
        };
        s.keys.insert((Region::new(region), arn.clone()), key);
        arn
    }

    /// The launch permissions of an image.
    pub fn launch_permissions(&self, id: &ImageId) -> BTreeSet<Grantee> {
        self.state()
            .launch_permissions
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// The create-volume permissions of a snapshot.
    pub fn snapshot_permissions(&self, id: &SnapshotId) -> BTreeSet<Grantee> {
        self.state()
            .snapshot_permissions
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// Without a continuation queue (as when `CONTINUATION_QUEUE_URL` is unset).
    pub fn without_continuations(mut self) -> Self {
        self.with_continuations = false;
        self
    }
}

/// One region's view of the fake.
pub struct FakeRegion {
    state: Arc<Mutex<FakeState>>,
    region: Region,
}

impl FakeRegion {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Ec2 for FakeRegion {
    fn region(&self) -> &Region {
        &self.region
    }
}

#[async_trait]
impl Cloud for FakeCloud {
    fn ec2(&self, region: &Region) -> Arc<dyn Ec2> {
        Arc::new(FakeRegion {
            state: self.state.clone(),
            region: region.clone(),
        })
    }
    fn keys(&self, region: &Region) -> Arc<dyn Keys> {
        Arc::new(FakeRegion {
            state: self.state.clone(),
            region: region.clone(),
        })
    }
    fn recycle_bin(&self, region: &Region) -> Arc<dyn RecycleBin> {
        Arc::new(FakeRegion {
            state: self.state.clone(),
            region: region.clone(),
        })
    }
    fn reports(&self) -> Arc<dyn Reports> {
        Arc::new(self.clone())
    }
    fn continuations(&self) -> Option<Arc<dyn Continuations>> {
        self.with_continuations
            .then(|| Arc::new(self.clone()) as Arc<dyn Continuations>)
    }
    fn seals(&self) -> Arc<dyn Seals> {
        Arc::new(self.clone())
    }
    fn parameters(&self, region: &Region) -> Arc<dyn Parameters> {
        Arc::new(FakeRegion {
            state: self.state.clone(),
            region: region.clone(),
        })
    }
    fn launch_templates(&self, region: &Region) -> Arc<dyn LaunchTemplates> {
        Arc::new(FakeRegion {
            state: self.state.clone(),
            region: region.clone(),
        })
    }
    fn agents(&self, region: &Region) -> Arc<dyn Agents> {
        Arc::new(FakeRegion {
            state: self.state.clone(),
            region: region.clone(),
        })
    }
    fn organization(&self) -> Arc<dyn Organization> {
        Arc::new(self.clone())
    }
    async fn account(&self) -> CloudResult<AccountId> {
        let mut s = self.state();
        s.call(&Region::new("global"), "GetCallerIdentity", None)?;
        AccountId::parse(&s.account).ok_or_else(|| {
            CloudError::from_code("GetCallerIdentity", None, "InvalidResponse", "no account")
        })
    }
    async fn for_account(
        &self,
        account: &AccountId,
        function: &str,
    ) -> CloudResult<Arc<dyn Cloud>> {
        let role = crate::accounts::spoke_role_arn("aws", account, "ami-lifecycle", function);
        self.state()
            .call(&Region::new("global"), "AssumeRole", Some(account.as_str()))?;
        if self.state().account == account.as_str() {
            return Ok(Arc::new(self.clone()));
        }
        let mut org = self.org();
        let Some(state) = org.spokes.get(account.as_str()).cloned() else {
            return Err(CloudError::from_code(
                "AssumeRole",
                None,
                "AccessDenied",
                format!("{role}: no such role in the fake"),
            ));
        };
        org.assumed.push((
            account.to_string(),
            role,
            crate::accounts::session_name(function),
        ));
        Ok(Arc::new(FakeCloud {
            state,
            with_continuations: self.with_continuations,
            org: self.org.clone(),
            fanout: self.fanout.clone(),
        }))
    }
    fn work_queue(&self) -> Option<Arc<dyn WorkQueue>> {
        self.fanout
            .clone()
            .map(|f| Arc::new(f) as Arc<dyn WorkQueue>)
    }
    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        self.fanout.clone().map(|f| Arc::new(f) as Arc<dyn Ledger>)
    }
}

#[async_trait]
impl Organization for FakeCloud {
    async fn accounts(&self) -> CloudResult<Vec<OrgAccount>> {
        self.state()
            .call(&Region::new("global"), "ListAccounts", None)?;
        Ok(self.org().listed.iter().map(|(a, _)| a.clone()).collect())
    }
    async fn organization_arn(&self) -> CloudResult<String> {
        self.state()
            .call(&Region::new("global"), "DescribeOrganization", None)?;
        self.org().arn.clone().ok_or_else(|| {
            CloudError::from_code(
                "DescribeOrganization",
                None,
                "AWSOrganizationsNotInUseException",
                "this account is not a member of an organization",
            )
        })
    }
    async fn accounts_under(&self, ou: &str) -> CloudResult<Vec<OrgAccount>> {
        self.state()
            .call(&Region::new("global"), "ListAccountsForParent", Some(ou))?;
        Ok(self
            .org()
            .listed
            .iter()
            .filter(|(_, ous)| ous.iter().any(|o| o == ou))
            .map(|(a, _)| a.clone())
            .collect())
    }
}

/// The fake's HMAC: SHA-256 over a secret only the fake knows and the message (a test
/// forges seals by writing any other value).
pub fn fake_mac(message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"fake seal key, known to FakeCloud only\0");
    h.update(message);
    h.finalize().to_vec()
}

/// The seal tag value the suite would write for `subject` on the fake.
pub fn fake_seal(subject: &Subject) -> String {
    format!(
        "{}{}",
        crate::seal::VERSION_PREFIX,
        aws_smithy_types::base64::encode(fake_mac(subject.as_bytes()))
    )
}

#[async_trait]
impl Seals for FakeCloud {
    async fn mac(&self, message: &[u8]) -> CloudResult<Vec<u8>> {
        self.state()
            .call(&Region::new("home"), "GenerateMac", None)?;
        Ok(fake_mac(message))
    }
    async fn verify(&self, message: &[u8], mac: &[u8]) -> CloudResult<bool> {
        self.state().call(&Region::new("home"), "VerifyMac", None)?;
        Ok(fake_mac(message) == mac)
    }
}

#[async_trait]
impl RecycleBin for FakeRegion {
    async fn retention_rules(&self) -> CloudResult<Vec<RetentionRule>> {
        let mut s = self.lock();
        s.call(&self.region, "ListRules", None)?;
        Ok(s.retention_rules
            .get(&self.region)
            .cloned()
            .unwrap_or_default())
    }
}

#[async_trait]
impl Reports for FakeCloud {
    async fn publish(&self, report: &RunReport) -> CloudResult<()> {
        let mut s = self.state();
        s.call(&Region::new("home"), "PutEvents", None)?;
        s.reports.push(report.clone());
        Ok(())
    }
}

#[async_trait]
impl Continuations for FakeCloud {
    async fn continue_later(
        &self,
        body: &serde_json::Value,
        delay_seconds: u32,
    ) -> CloudResult<()> {
        let mut s = self.state();
        s.call(&Region::new("home"), "SendMessage", None)?;
        s.continuations.push((body.clone(), delay_seconds));
        Ok(())
    }
}

fn to_tags(tags: &[(&str, &str)]) -> Tags {
    tags.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn not_found(operation: &'static str, region: &Region, code: &str, what: &str) -> CloudError {
    CloudError::from_code(
        operation,
        Some(region.clone()),
        code,
        format!("{what} does not exist"),
    )
}
