//! The reliability tests' lifecycle cycle: a small estate, the create → replicate → share →
//! cleanup sequence driven through the real handlers at simulated times, and a snapshot of
//! the final state that compares across emulators (ids replaced by logical names).
//!
//! The estate: two instances (`i0`, `i1`, daily, no reboot) in [`HOME`], one replica region
//! with a customer managed key, `RETAIN=count=1`. Over two daily slots the cycle makes four
//! images and four replicas; after slot 0 a person points a launch template at `i1`'s
//! image, after slot 1 tags `i0`'s new image `share-with` = [`ALLOWED`]; share grants it and
//! its replica; cleanup deletes the slot-0 images and replicas except `i1`'s referenced
//! home image. Final: 3 images at home, 2 replicas, `i0`'s pair shared (+ a KMS grant).
//!
//! Functions are invoked as Lambda invokes them, through [`crate::dispatch`], with Scheduled
//! Events for the schedules and reconciles. Simulated times are after the real clock
//! (tomorrow on), as the emulator stamps creation dates with it.
//!
//! Main types: [`Estate`] (what [`seed`] made), [`CycleRun`] (what [`run_cycle`] did),
//! [`Observed`] / [`FinalState`] (what [`observe`] read back). Used by the `reliability_*`
//! tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ami_core::aws::AwsCloud;
use ami_core::config::Config;
use ami_core::context::Context;
use ami_core::model::{Grantee, Image, ImageId, Region};
use ami_core::ports::{all_images, all_snapshots, ImageQuery, SnapshotQuery};
use ami_core::tags::key;
use anyhow::{bail, Context as _};
use aws_config::{BehaviorVersion, SdkConfig};
use serde_json::{json, Value};
use time::{OffsetDateTime, Time};

use crate::{dispatch, EmulatorClient, ACCOUNT, OTHER_ACCOUNT};

pub const DEPLOYMENT: &str = "ami-lifecycle";
pub const HOME: &str = "us-east-1";
pub const REPLICA: &str = "us-west-2";
pub const REPLICA_KEY_ALIAS: &str = "alias/ami-replicas";
/// The account in `SHARE_ALLOWED`.
pub const ALLOWED: &str = OTHER_ACCOUNT;

/// The mutating EC2 actions the suite may call (those the crash test walks).
pub const MUTATING: &[&str] = &[
    "CreateImage",
    "CopyImage",
    "ModifyImageAttribute",
    "ModifySnapshotAttribute",
    "CreateTags",
    "DeleteTags",
    "DeregisterImage",
    "DeleteSnapshot",
    "EnableImageDeprecation",
    "DisableImageDeprecation",
];

/// The settings the functions read from their environment.
pub fn settings() -> Vec<(&'static str, String)> {
    vec![
        ("AMI_LIFECYCLE_NAME", DEPLOYMENT.into()),
        ("AWS_REGION", HOME.into()),
        ("AMI_LIFECYCLE_REGIONS", HOME.into()),
        ("REPLICA_REGIONS", REPLICA.into()),
        ("REPLICA_KMS_KEYS", format!("{REPLICA}={REPLICA_KEY_ALIAS}")),
        ("RETAIN", "count=1".into()),
        ("SHARE_ALLOWED", ALLOWED.into()),
    ]
}

pub fn config() -> Config {
    let pairs = settings();
    Config::from_lookup(|k| {
        pairs
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("cycle config: {e}"))
}

/// SDK configuration with `max_attempts` (1 = the code sees every injected fault).
pub fn sdk_config(emu: &EmulatorClient, region: &str, max_attempts: u32) -> SdkConfig {
    let creds = aws_credential_types::Credentials::new("testing", "secret", None, None, "emulator");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(ami_core::aws::http::DeferredTlsClient::shared())
        .region(aws_types::region::Region::new(region.to_owned()))
        .endpoint_url(&emu.endpoint)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(max_attempts)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build()
}

/// A runner context over the emulator with the SDK's standard retries at `max_attempts`.
pub fn context(emu: &EmulatorClient, max_attempts: u32) -> Context {
    let mut config = config();
    config.seal_key = Some(
        emu.seal_key(HOME, DEPLOYMENT)
            .unwrap_or_else(|e| panic!("the emulator's seal key: {e:#}")),
    );
    let cloud = Arc::new(AwsCloud::new(
        sdk_config(emu, HOME, max_attempts),
        &config,
        0.0,
    ));
    Context::new(cloud, config)
}

/// The seeded estate: instance ids by logical name, the replica key.
#[derive(Debug, Clone)]
pub struct Estate {
    /// (logical name, instance id)
    pub instances: Vec<(String, String)>,
    pub key_arn: String,
}

impl Estate {
    pub fn name_of(&self, instance: &str) -> String {
        self.instances
            .iter()
            .find(|(_, id)| id == instance)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("?{instance}"))
    }
}

pub async fn seed(emu: &EmulatorClient) -> anyhow::Result<Estate> {
    let key_arn = emu.create_key(REPLICA, Some(REPLICA_KEY_ALIAS)).await?;
    let mut instances = Vec::new();
    for (name, devices) in [("i0", &["/dev/sdf"][..]), ("i1", &[][..])] {
        let tags = [
            ("Name", name),
            (key::SCHEDULE, "daily"),
            (key::REBOOT, "false"),
        ];
        instances.push((
            name.to_owned(),
            emu.launch_instance(HOME, &tags, devices).await?,
        ));
    }
    Ok(Estate { instances, key_arn })
}

/// Slot `n` (0-based): 03:00 UTC, `n + 1` days after today (after the emulator's clock).
pub fn slot(n: i64) -> OffsetDateTime {
    let today = OffsetDateTime::now_utc().date();
    (today + time::Duration::days(n + 1))
        .with_time(Time::from_hms(3, 0, 0).unwrap_or(Time::MIDNIGHT))
        .assume_utc()
}

/// The Scheduled Event EventBridge delivers for `rule` at `at`.
pub fn scheduled_event(rule: &str, at: OffsetDateTime) -> Value {
    json!({
        "version": "0",
        "id": format!("cycle-{rule}-{}", at.unix_timestamp()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": ami_core::time_util::rfc3339(at),
        "region": HOME,
        "resources": [format!("arn:aws:events:{HOME}:{ACCOUNT}:rule/{rule}")],
        "detail": {}
    })
}

/// One handler invocation of a cycle.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub step: String,
    pub result: Result<Value, String>,
}

impl Invocation {
    pub fn count(&self, outcome: &str) -> u64 {
        self.result
            .as_ref()
            .ok()
            .and_then(|v| v["counts"][outcome].as_u64())
            .unwrap_or(0)
    }
}

/// Everything one pass of the cycle did.
#[derive(Debug, Clone, Default)]
pub struct CycleRun {
    pub invocations: Vec<Invocation>,
    /// Problems of the person's own step (tagging), which a person retries.
    pub notes: Vec<String>,
}

impl CycleRun {
    pub fn deferred(&self) -> u64 {
        self.invocations.iter().map(|i| i.count("deferred")).sum()
    }
    pub fn failed(&self) -> u64 {
        self.invocations.iter().map(|i| i.count("failed")).sum()
    }
    pub fn errors(&self) -> Vec<String> {
        self.invocations
            .iter()
            .filter_map(|i| i.result.as_ref().err().map(|e| format!("{}: {e}", i.step)))
            .collect()
    }
    /// Snapshot ids any cleanup report names (orphans it reported, deletions it attempted).
    pub fn cleanup_mentions(&self) -> String {
        self.invocations
            .iter()
            .filter(|i| i.step.starts_with("cleanup"))
            .filter_map(|i| i.result.as_ref().ok().map(Value::to_string))
            .collect::<Vec<_>>()
            .join("\n")
    }
    pub fn summary(&self) -> String {
        self.invocations
            .iter()
            .map(|i| match &i.result {
                Ok(v) => format!("{}: {}", i.step, v["counts"]),
                Err(e) => format!("{}: ERROR {e}", i.step),
            })
            .chain(self.notes.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Makes due pending images available (the emulator's `pending_seconds` is 0).
pub fn settle(emu: &EmulatorClient) -> anyhow::Result<()> {
    emu.tick()?;
    Ok(())
}

/// The image of `instance` for `slot` in the home region (not a replica), if any.
pub async fn source_image(
    ctx: &Context,
    instance: &str,
    slot: OffsetDateTime,
) -> anyhow::Result<Option<ImageId>> {
    let ec2 = ctx.cloud.ec2(&Region::new(HOME));
    let query = ImageQuery {
        owned_by_self: true,
        tag: Some((key::SOURCE_INSTANCE.into(), instance.into())),
        ..ImageQuery::default()
    };
    let images = all_images(ec2.as_ref(), &query).await?;
    let want = ami_core::time_util::rfc3339(slot);
    Ok(images
        .into_iter()
        .find(|i| {
            i.tag(key::SLOT) == Some(want.as_str())
                && i.source.is_none()
                && i.tag(key::SOURCE_IMAGE).is_none()
        })
        .map(|i| i.id))
}

/// One pass of the cycle: slot 0 (create, replicate, the person's launch template, share
/// reconcile), slot 1 (create, replicate, the person shares `i0`'s image, share reconcile,
/// cleanup). Every step runs even when an earlier one failed, as the deployed functions
/// would.
pub async fn run_cycle(
    emu: &EmulatorClient,
    ctx: &Context,
    estate: &Estate,
) -> anyhow::Result<CycleRun> {
    run_cycle_with(emu, ctx, estate, 1).await
}

/// [`run_cycle`] with every scheduled invocation delivered `copies` times concurrently (1
/// or 3), as a duplicated EventBridge delivery would.
pub async fn run_cycle_with(
    emu: &EmulatorClient,
    ctx: &Context,
    estate: &Estate,
    copies: usize,
) -> anyhow::Result<CycleRun> {
    let mut run = CycleRun::default();
    let rules = [
        ("create-image", format!("{DEPLOYMENT}-schedule-daily"), 0),
        ("replicate", format!("{DEPLOYMENT}-replicate-reconcile"), 10),
        ("share", format!("{DEPLOYMENT}-share-reconcile"), 360),
        ("cleanup", format!("{DEPLOYMENT}-cleanup"), 390),
    ];
    for n in 0..2 {
        let t = slot(n);
        for (function, rule, minutes) in &rules {
            if *function == "share" {
                if n == 0 {
                    reference_first_image(emu, ctx, estate, t, &mut run).await?;
                } else {
                    share_image(emu, ctx, estate, t, &mut run).await?;
                }
            }
            if *function == "cleanup" && n == 0 {
                continue;
            }
            let now = t + time::Duration::minutes(*minutes);
            let event = scheduled_event(rule, now);
            // The emulator stamps creation dates at the simulated time, as AWS would.
            emu.set_clock(now)?;
            for (i, result) in deliver(ctx, function, &event, now, copies)
                .await
                .into_iter()
                .enumerate()
            {
                let copy = if copies > 1 {
                    format!(" #{}", i + 1)
                } else {
                    String::new()
                };
                run.invocations.push(Invocation {
                    step: format!("{function} slot{n}{copy}"),
                    result,
                });
            }
            settle(emu)?;
        }
    }
    Ok(run)
}

/// Delivers `payload` to `function` `copies` times concurrently (1, 2 or 3).
pub async fn deliver(
    ctx: &Context,
    function: &str,
    payload: &Value,
    now: OffsetDateTime,
    copies: usize,
) -> Vec<Result<Value, String>> {
    let one = || dispatch(function, ctx, payload.clone(), now);
    match copies {
        0 => vec![],
        1 => vec![one().await],
        2 => {
            let (a, b) = tokio::join!(one(), one());
            vec![a, b]
        }
        _ => {
            let (a, b, c) = tokio::join!(one(), one(), one());
            vec![a, b, c]
        }
    }
}

/// The person points a launch template (a non-default version) at `i1`'s slot image: a
/// reference cleanup must honour in the home region. Done once.
async fn reference_first_image(
    emu: &EmulatorClient,
    ctx: &Context,
    estate: &Estate,
    t: OffsetDateTime,
    run: &mut CycleRun,
) -> anyhow::Result<()> {
    let Some(image) = source_image(ctx, &estate.instances[1].1, t).await? else {
        run.notes
            .push("person: i1's slot-0 image is missing, no launch template".to_owned());
        return Ok(());
    };
    // A person retries a failed call (the emulator may be injecting faults).
    for attempt in 1..=5 {
        match emu
            .ec2(HOME)
            .describe_launch_templates()
            .launch_template_names(TEMPLATE)
            .send()
            .await
        {
            Ok(found) if !found.launch_templates().is_empty() => {
                // Made by an earlier pass or attempt: make sure a version uses the image.
                let ec2 = emu.ec2(HOME);
                match ec2
                    .describe_launch_template_versions()
                    .launch_template_name(TEMPLATE)
                    .send()
                    .await
                {
                    Ok(v)
                        if v.launch_template_versions().iter().any(|v| {
                            v.launch_template_data().and_then(|d| d.image_id())
                                == Some(image.as_str())
                        }) =>
                    {
                        return Ok(())
                    }
                    Ok(_) => {
                        let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                            .image_id(image.as_str())
                            .build();
                        match ec2.create_launch_template_version().launch_template_name(TEMPLATE).launch_template_data(data).send().await {
                            Ok(_) => return Ok(()),
                            Err(e) => run.notes.push(format!("person: CreateLaunchTemplateVersion failed (attempt {attempt}): {e}")),
                        }
                    }
                    Err(e) => run.notes.push(format!(
                        "person: DescribeLaunchTemplateVersions failed (attempt {attempt}): {e}"
                    )),
                }
                continue;
            }
            Ok(_) => {}
            Err(e) if format!("{e:?}").contains("NotFound") => {}
            Err(e) => {
                run.notes.push(format!(
                    "person: DescribeLaunchTemplates failed (attempt {attempt}): {e}"
                ));
                continue;
            }
        }
        let made = match emu.base_image(HOME).await {
            Ok(base) => emu
                .launch_template_referencing(HOME, TEMPLATE, &base, image.as_str())
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        match made {
            Ok(()) => return Ok(()),
            Err(e) => run.notes.push(format!(
                "person: launch template failed (attempt {attempt}): {e:#}"
            )),
        }
    }
    bail!(
        "person: could not create the launch template: {:?}",
        run.notes
    )
}

/// The launch template of [`reference_first_image`].
pub const TEMPLATE: &str = "fleet";

/// The person tags `i0`'s slot image with share-with (retrying a failed call, as a person
/// would; the tag is idempotent).
async fn share_image(
    emu: &EmulatorClient,
    ctx: &Context,
    estate: &Estate,
    t: OffsetDateTime,
    run: &mut CycleRun,
) -> anyhow::Result<()> {
    let instance = &estate.instances[0].1;
    let Some(image) = source_image(ctx, instance, t).await? else {
        run.notes
            .push("person: i0's slot-1 image is missing, not tagged".to_owned());
        return Ok(());
    };
    for attempt in 1..=5 {
        match emu
            .tag_image(HOME, image.as_str(), key::SHARE_WITH, ALLOWED)
            .await
        {
            Ok(()) => return Ok(()),
            Err(e) => run.notes.push(format!(
                "person: tagging {image} failed (attempt {attempt}): {e:#}"
            )),
        }
    }
    Ok(())
}

/// One image of the final state, by logical name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageKey {
    pub region: String,
    /// Logical instance name (`i0`, `i1`).
    pub lineage: String,
    pub slot: String,
    /// `source` or `replica`.
    pub kind: &'static str,
}

/// An image's state, launch permission accounts and per-snapshot create-volume accounts.
pub type ImageAccess = (String, BTreeSet<String>, Vec<BTreeSet<String>>);

/// The comparable final state: images, and who may use them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FinalState {
    /// Image → (state, launch permission accounts, per-snapshot create-volume accounts).
    pub images: BTreeMap<ImageKey, ImageAccess>,
    /// KMS grants on the replica key: (image key, grantee account) → how many.
    pub kms_grants: BTreeMap<(ImageKey, String), usize>,
}

/// Everything the invariants need besides the comparable state.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub state: FinalState,
    /// Invariant violations found while reading.
    pub problems: Vec<String>,
}

fn grantees(list: &[Grantee]) -> BTreeSet<String> {
    list.iter().map(ToString::to_string).collect()
}

/// Reads the final state and checks the invariants: no duplicate image per (instance, slot)
/// or copy per (source, region); no managed snapshot outside a live image (unless a cleanup
/// report names it: `reported`); every grant (launch, create-volume, KMS) consistent with
/// the share-with tags; no grant outside the allow-list. Reads with retries on (faults off).
pub async fn observe(
    emu: &EmulatorClient,
    estate: &Estate,
    reported: &str,
) -> anyhow::Result<Observed> {
    let ctx = context(emu, 3);
    let mut out = Observed::default();
    let mut by_id: BTreeMap<String, (ImageKey, Image)> = BTreeMap::new();
    let mut all: Vec<Image> = Vec::new();
    for region in [HOME, REPLICA] {
        let ec2 = ctx.cloud.ec2(&Region::new(region));
        let query = ImageQuery {
            owned_by_self: true,
            tag: Some((key::MANAGED_BY.into(), DEPLOYMENT.into())),
            include_disabled: true,
            ..ImageQuery::default()
        };
        all.extend(all_images(ec2.as_ref(), &query).await?);
    }
    let mut seen: BTreeMap<ImageKey, Vec<String>> = BTreeMap::new();
    let mut copies: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for img in &all {
        let replica = img
            .tag(key::SOURCE_IMAGE)
            .map(str::to_owned)
            .or_else(|| img.source.as_ref().map(|(id, _)| id.to_string()));
        let k = ImageKey {
            region: img.region.to_string(),
            lineage: estate.name_of(img.tag(key::SOURCE_INSTANCE).unwrap_or("-")),
            slot: img.tag(key::SLOT).unwrap_or("-").to_owned(),
            kind: if replica.is_some() {
                "replica"
            } else {
                "source"
            },
        };
        seen.entry(k.clone()).or_default().push(img.id.to_string());
        if let Some(src) = replica {
            copies
                .entry((src, img.region.to_string()))
                .or_default()
                .push(img.id.to_string());
        }
        by_id.insert(img.id.to_string(), (k, img.clone()));
    }
    for (k, ids) in seen.iter().filter(|(_, ids)| ids.len() > 1) {
        out.problems
            .push(format!("duplicate images for {k:?}: {ids:?}"));
    }
    for (k, ids) in copies.iter().filter(|(_, ids)| ids.len() > 1) {
        out.problems
            .push(format!("duplicate copies of {} in {}: {ids:?}", k.0, k.1));
    }
    // Orphaned snapshots.
    for region in [HOME, REPLICA] {
        let ec2 = ctx.cloud.ec2(&Region::new(region));
        let snaps = all_snapshots(
            ec2.as_ref(),
            &SnapshotQuery {
                tag: Some((key::MANAGED_BY.into(), DEPLOYMENT.into())),
                ..SnapshotQuery::default()
            },
        )
        .await?;
        for s in snaps {
            let used = all.iter().any(|i| i.snapshot_ids().any(|id| *id == s.id));
            if !used && !reported.contains(s.id.as_str()) {
                out.problems.push(format!(
                    "orphaned snapshot {} in {region} (tags {:?}) not named by any cleanup report",
                    s.id, s.tags
                ));
            }
        }
    }
    // Grants.
    let share_with = |img: &Image| {
        img.tag(key::SHARE_WITH)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default()
    };
    for (id, (k, img)) in &by_id {
        let ec2 = ctx.cloud.ec2(&img.region);
        let launch = grantees(&ec2.launch_permissions(&img.id).await?);
        let mut snaps = Vec::new();
        for s in img.snapshot_ids() {
            snaps.push(grantees(&ec2.snapshot_permissions(s).await?));
        }
        // Desired: its own share-with, or (a replica) its source's when the source lives.
        let desired = match img
            .tag(key::SOURCE_IMAGE)
            .or_else(|| img.source.as_ref().map(|(s, _)| s.as_str()))
        {
            Some(src) => by_id
                .get(src)
                .map(|(_, s)| share_with(s))
                .unwrap_or_else(|| share_with(img)),
            None => share_with(img),
        };
        let desired: BTreeSet<String> = desired.into_iter().filter(|a| a == ALLOWED).collect();
        if img.state == ami_core::model::ImageState::Available {
            if launch != desired {
                out.problems.push(format!(
                    "{id} {k:?}: launch permission {launch:?}, share-with says {desired:?}"
                ));
            }
            for (n, s) in snaps.iter().enumerate() {
                if *s != desired {
                    out.problems.push(format!("{id} {k:?}: snapshot #{n} create-volume permission {s:?}, share-with says {desired:?}"));
                }
            }
        }
        if launch.iter().any(|a| a != ALLOWED) {
            out.problems.push(format!(
                "{id}: launch permission outside the allow-list: {launch:?}"
            ));
        }
        out.state
            .images
            .insert(k.clone(), (img.state.as_str().to_owned(), launch, snaps));
    }
    let keys = ctx.cloud.keys(&Region::new(REPLICA));
    for g in keys.list_grants(&estate.key_arn).await? {
        let Some(name) = g.name.as_deref() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(&format!("{DEPLOYMENT}-")) else {
            continue;
        };
        let Some((image, account)) = rest.rsplit_once('-') else {
            out.problems
                .push(format!("KMS grant with an unexpected name {name}"));
            continue;
        };
        match by_id.get(image) {
            Some((k, _)) => {
                let launch = &out.state.images[k].1;
                if !launch.contains(account) {
                    out.problems.push(format!(
                        "KMS grant {name}: {account} has no launch permission on {image}"
                    ));
                }
                *out.state
                    .kms_grants
                    .entry((k.clone(), account.to_owned()))
                    .or_insert(0) += 1;
            }
            None => out.problems.push(format!(
                "KMS grant {name} names an image that no longer exists (leaked grant)"
            )),
        }
    }
    for (k, (state, launch, _)) in &out.state.images {
        if k.region == REPLICA && state == "available" {
            for a in launch {
                if !out.state.kms_grants.contains_key(&(k.clone(), a.clone())) {
                    out.problems.push(format!(
                        "{k:?} shared with {a} but no KMS grant on the replica key"
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// Per-action mutating call counts (all regions).
pub fn mutating_calls(emu: &EmulatorClient) -> anyhow::Result<BTreeMap<String, u64>> {
    let counters = emu.counters()?;
    let mut out = BTreeMap::new();
    let Some(regions) = counters["calls"].as_object() else {
        bail!("counters without calls: {counters}")
    };
    for actions in regions.values() {
        for (action, n) in actions.as_object().context("calls per region")? {
            if MUTATING.contains(&action.as_str()) {
                *out.entry(action.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
            }
        }
    }
    Ok(out)
}

/// The fault-free cycle's final state (asserted by the crash test's fault-free case).
pub fn expected() -> FinalState {
    let mut state = FinalState::default();
    let shared: std::collections::BTreeSet<String> = [ALLOWED.to_owned()].into();
    let none = std::collections::BTreeSet::new();
    for region in [HOME, REPLICA] {
        let kind = if region == HOME { "source" } else { "replica" };
        for (lineage, n, disks) in [("i0", 1, 2), ("i1", 0, 1), ("i1", 1, 1)] {
            // i1's slot-0 image stays in the home region only: a launch template uses it.
            if region == REPLICA && n == 0 {
                continue;
            }
            let k = ImageKey {
                region: region.to_owned(),
                lineage: lineage.to_owned(),
                slot: ami_core::time_util::rfc3339(slot(n)),
                kind,
            };
            let who = if lineage == "i0" {
                shared.clone()
            } else {
                none.clone()
            };
            if region == REPLICA && lineage == "i0" {
                state.kms_grants.insert((k.clone(), ALLOWED.to_owned()), 1);
            }
            state
                .images
                .insert(k, ("available".to_owned(), who.clone(), vec![who; disks]));
        }
    }
    state
}
