//! The share planner: from one image's facts to the changes that make its grants match
//! its `ami-lifecycle:share-with` value. Pure: no AWS call, no clock.
//!
//! Invariants (see the module docs of [`crate::share`]):
//! - only images managed by this deployment are ever shared;
//! - a value with one invalid entry, or one target outside `SHARE_ALLOWED`, changes
//!   nothing (no grant, no revoke) and only sets `share-status` to an error;
//! - the suite revokes only what its record (`share-granted`) or a KMS grant name proves
//!   it granted; grants made by others are never touched.

use std::collections::BTreeSet;

use crate::config::Config;
use crate::model::{
    AccountId, Grantee, Image, ImageId, ImageState, KeyGrant, KeyInfo, KeyRef, Region, SnapshotId,
};
use crate::report::Outcome;
use crate::share::record;
use crate::share_target::{org_id_of, ShareTarget};
use crate::tags::{is_managed_by, key};

/// What a target account may do with a customer managed key: launch and copy.
pub const GRANT_OPERATIONS: [&str; 6] = [
    "Decrypt",
    "DescribeKey",
    "CreateGrant",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
];

/// The share-with value that governs an image, and whose tag it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Governing {
    /// The share-with value; `None` when the governing image has no such tag.
    pub value: Option<String>,
    /// For a replica governed by its source: the source image and region.
    pub source: Option<(ImageId, Region)>,
    /// Why no value governs (a replica with `SHARE_REPLICAS=false`, or whose source is
    /// gone): said next to every revocation.
    pub note: Option<String>,
}

impl Governing {
    /// The image's own tag governs it.
    pub fn own(image: &Image) -> Self {
        Self {
            value: image.tag(key::SHARE_WITH).map(str::to_owned),
            source: None,
            note: None,
        }
    }

    fn nothing(note: String) -> Self {
        Self {
            value: None,
            source: None,
            note: Some(note),
        }
    }

    fn origin(&self) -> String {
        match (&self.source, &self.note) {
            (Some((id, region)), _) => format!(" (share-with of source {id} in {region})"),
            (None, Some(note)) => format!(" ({note})"),
            (None, None) => String::new(),
        }
    }
}

/// The source an image was replicated from, by its lineage tags (or EC2's SourceImageId).
pub fn source_of(image: &Image) -> Option<(ImageId, Region)> {
    match (image.tag(key::SOURCE_IMAGE), image.tag(key::SOURCE_REGION)) {
        (Some(id), Some(region)) => Some((ImageId::new(id), Region::new(region))),
        (Some(id), None) => Some((ImageId::new(id), image.region.clone())),
        _ => image.source.clone(),
    }
}

/// Whether `image` is a replica of one of the suite's images (an adopted image, copied
/// from another account, is the root of its own lineage and governs itself).
pub fn is_replica(image: &Image) -> bool {
    image.tag(key::SOURCE_IMAGE).is_some() && image.tag(key::SOURCE_ACCOUNT).is_none()
}

/// What governs `image`. A replica never governs itself: with `SHARE_REPLICAS` it follows
/// its source's current share-with (`source`, read from the source region and sealed);
/// without, or when the source is gone, nothing is wanted and whatever the suite granted
/// on it is revoked. Any other image: its own tag.
pub fn governing_for(image: &Image, source: Option<&Image>, config: &Config) -> Governing {
    if !is_replica(image) {
        return Governing::own(image);
    }
    if !config.share_replicas {
        return Governing::nothing(
            "a replica, and SHARE_REPLICAS=false: replicas are never shared".to_owned(),
        );
    }
    match source {
        Some(src) if is_managed_by(&src.tags, &config.deployment) && src.id != image.id => {
            Governing {
                value: src.tag(key::SHARE_WITH).map(str::to_owned),
                source: Some((src.id.clone(), src.region.clone())),
                note: None,
            }
        }
        _ => Governing::nothing(
            "a replica whose source no longer exists (or is not the suite's): nothing is shared"
                .to_owned(),
        ),
    }
}

/// Of all managed images (every region), those a reconcile must look at: governed by a
/// share-with value, or carrying a record of grants (sealed or not: a look is harmless).
pub fn select(images: &[Image], config: &Config) -> Vec<(usize, Governing)> {
    let find =
        |id: &ImageId, region: &Region| images.iter().find(|i| &i.id == id && &i.region == region);
    images
        .iter()
        .enumerate()
        .filter(|(_, img)| is_managed_by(&img.tags, &config.deployment))
        .filter_map(|(n, img)| {
            let source = source_of(img).and_then(|(id, region)| find(&id, &region));
            let governing = governing_for(img, source, config);
            (governing.value.is_some() || record::names_anyone(&img.tags)).then_some((n, governing))
        })
        .collect()
}

/// One snapshot of the image, as read before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFacts {
    pub id: SnapshotId,
    pub encrypted: bool,
    /// The key as the snapshot names it (matches [`KeyFacts::key`]).
    pub key: Option<KeyRef>,
    /// Current create-volume permissions.
    pub permissions: Vec<Grantee>,
}

/// One KMS key used by the image's snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    pub key: KeyRef,
    pub info: KeyInfo,
    /// The grants on the key named for this image (see [`grant_name`]).
    pub grants: Vec<KeyGrant>,
}

/// Everything the planner needs about one image besides the image itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// Current launch permissions.
    pub launch: Vec<Grantee>,
    pub snapshots: Vec<SnapshotFacts>,
    pub keys: Vec<KeyFacts>,
    /// The region's image block public access state; read only when `all` is wanted.
    pub public_blocked: Option<bool>,
    /// The grant record as trusted ([`record::verified`]): what the suite may revoke.
    pub record: record::Verified,
    /// Whether the grantees about to lose their grants use the image
    /// ([`crate::cleanup::usage`]); `None`: not asked yet.
    pub usage: Option<crate::cleanup::usage::Usage>,
}

/// A KMS grant to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSpec {
    pub key_arn: String,
    pub account: AccountId,
    pub principal: String,
    pub name: String,
}

/// One line of the plan's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    pub subject: String,
    pub outcome: Outcome,
    pub reason: String,
}

/// The changes that reconcile one image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub desired: Vec<Grantee>,
    pub launch_add: Vec<Grantee>,
    pub launch_remove: Vec<Grantee>,
    pub snapshot_add: Vec<(SnapshotId, Vec<AccountId>)>,
    pub snapshot_remove: Vec<(SnapshotId, Vec<AccountId>)>,
    pub grants_create: Vec<GrantSpec>,
    pub grants_revoke: Vec<KeyGrant>,
    /// Written BEFORE any grant: the old record plus everything desired (write-ahead).
    pub record_before: Vec<Grantee>,
    /// Written once every change succeeded: exactly the desired grantees.
    pub record_after: Vec<Grantee>,
    /// Targets the value names that are not allowed (`SHARE_ALLOWED`, `ALLOW_PUBLIC`):
    /// never granted, and revoked if the suite had granted them.
    pub refused: Vec<(Grantee, String)>,
    /// Revocations held because the grantee uses the image, or its use is not known yet
    /// ([`super::hold`]): nothing of theirs is revoked, the record keeps them.
    pub held: Vec<(Grantee, crate::cleanup::usage::Blocked)>,
    /// `ok N targets` (with what was refused), or the value's error.
    pub status: String,
    pub items: Vec<PlanItem>,
}

impl Changes {
    /// No permission or grant changes (tags may still need writing).
    pub fn is_noop(&self) -> bool {
        self.launch_add.is_empty()
            && self.launch_remove.is_empty()
            && self.snapshot_add.is_empty()
            && self.snapshot_remove.is_empty()
            && self.grants_create.is_empty()
            && self.grants_revoke.is_empty()
    }
}

/// What to do with one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Leave the image alone (not ours, not available); no tag is written.
    Skip {
        outcome: Outcome,
        reason: String,
    },
    /// Change nothing but `share-status` (bad value, refused target, unshareable key).
    Reject {
        outcome: Outcome,
        reason: String,
        status: String,
    },
    Apply(Box<Changes>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlan {
    pub image: ImageId,
    pub region: Region,
    pub action: Action,
}

/// The deterministic name of the suite's grant for `account` on `image`'s key.
pub fn grant_name(image: &ImageId, account: &AccountId) -> String {
    format!("ami-lifecycle-{image}-{account}")
}

/// The account of a grant the suite made for `image`, read back from its name.
pub fn grant_account(image: &ImageId, name: &str) -> Option<AccountId> {
    name.strip_prefix(&format!("ami-lifecycle-{image}-"))
        .and_then(AccountId::parse)
}

/// `arn:PARTITION:iam::ACCOUNT:root`, in the key's partition.
pub fn account_principal(key_arn: &str, account: &AccountId) -> String {
    let partition = key_arn
        .split(':')
        .nth(1)
        .filter(|p| p.starts_with("aws"))
        .unwrap_or("aws");
    format!("arn:{partition}:iam::{account}:root")
}

/// A tag value of at most 256 characters.
pub fn status_value(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= record::TAG_VALUE_MAX {
        clean
    } else {
        let mut s: String = clean.chars().take(record::TAG_VALUE_MAX - 1).collect();
        s.push('…');
        s
    }
}

fn skip(image: &Image, outcome: Outcome, reason: String) -> ImagePlan {
    ImagePlan {
        image: image.id.clone(),
        region: image.region.clone(),
        action: Action::Skip { outcome, reason },
    }
}

fn reject(image: &Image, outcome: Outcome, reason: String, status: &str) -> ImagePlan {
    ImagePlan {
        image: image.id.clone(),
        region: image.region.clone(),
        action: Action::Reject {
            outcome,
            reason,
            status: status_value(&format!("error {status}")),
        },
    }
}

/// What a share-with value asks for, once read against the allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The allowed targets (sorted).
    pub desired: Vec<Grantee>,
    /// Named but not allowed, with why (granted never; revoked if granted before).
    pub refused: Vec<(Grantee, String)>,
    /// The value does not parse: `(reason for the report, problem for share-status)`.
    /// Nothing it names is granted or revoked, but what the suite granted to targets no
    /// longer allowed is still revoked.
    pub invalid: Option<(String, String)>,
}

/// Whether the configuration allows sharing with `target` at all.
pub fn allowed(target: &Grantee, config: &Config) -> bool {
    match target {
        Grantee::Public => config.allow_public,
        other => config.share_allowed.permits(other),
    }
}

fn refusal(target: &Grantee, config: &Config) -> String {
    match target {
        Grantee::Public => "all (public) refused: ALLOW_PUBLIC is false".to_owned(),
        _ if config.share_allowed.is_empty() => {
            "sharing is disabled (SHARE_ALLOWED is empty)".to_owned()
        }
        _ => "not in SHARE_ALLOWED".to_owned(),
    }
}

/// Why `image` is never shared when it is not tagged `managed-by` this deployment.
pub fn not_managed(image: &Image, config: &Config) -> Option<String> {
    if is_managed_by(&image.tags, &config.deployment) {
        return None;
    }
    let tag = image
        .tag(key::MANAGED_BY)
        .map_or("absent".to_owned(), |v| format!("{v:?}"));
    Some(format!(
        "not managed by deployment {} ({} is {tag}): never shared",
        config.deployment,
        key::MANAGED_BY
    ))
}

/// The checks that need no facts: ownership, state, the value's syntax, the allow-list.
/// `Ok` is what the value wants; `Err` is the whole plan for this image.
pub fn screen(image: &Image, governing: &Governing, config: &Config) -> Result<Wanted, ImagePlan> {
    if let Some(why) = not_managed(image, config) {
        return Err(skip(image, Outcome::Skipped, why));
    }
    match image.state {
        ImageState::Available => {}
        ImageState::Pending => {
            return Err(skip(
                image,
                Outcome::Deferred,
                "image is pending: shared once available, by the next reconcile".to_owned(),
            ))
        }
        other => {
            return Err(skip(
                image,
                Outcome::Skipped,
                format!("image is {}: nothing to share", other.as_str()),
            ))
        }
    }
    let origin = governing.origin();
    let mut wanted = Wanted::default();
    // SHARE_ALLOWED=org not read this run: grantees only the organization could admit.
    let mut undecided: Vec<(Grantee, String)> = Vec::new();
    if let Some(v) = &governing.value {
        match ShareTarget::parse_list(v, &config.share_groups) {
            Ok(mut targets) => {
                targets.sort();
                targets.dedup();
                for t in targets {
                    if let Some(why) = config.share_allowed.undecided(&t) {
                        undecided.push((t, why));
                    } else if allowed(&t, config) {
                        wanted.desired.push(t);
                    } else {
                        let why = refusal(&t, config);
                        wanted.refused.push((t, why));
                    }
                }
            }
            Err(e) => {
                wanted.invalid = Some((format!("{e}{origin}"), e.problem.clone()));
            }
        }
    }

    let mut before: Vec<Grantee> = record::chunks(&image.tags)
        .iter()
        .flat_map(record::Chunk::grantees)
        .collect();
    // Granted before (as the record says, sealed or not: nothing is revoked in doubt).
    for g in &before {
        if let Some(why) = config.share_allowed.undecided(g) {
            if !undecided.iter().any(|(u, _)| u == g) {
                undecided.push((g.clone(), why));
            }
        }
    }
    if let Some((_, why)) = undecided.first() {
        let names: Vec<String> = undecided.iter().map(|(g, _)| g.to_string()).collect();
        return Err(skip(
            image,
            Outcome::Deferred,
            format!(
                "{why}: whether {} may have it is not known this run, so nothing is granted or revoked for this image{origin}; the next run that reads the organization does it",
                names.join(", ")
            ),
        ));
    }
    before.extend(wanted.desired.iter().cloned());
    if record::encode(&before).is_none() {
        return Err(reject(
            image,
            Outcome::Failed,
            format!(
                "{} targets are too many to record in {} tags; nothing changed",
                before.len(),
                record::MAX_CHUNKS
            ),
            "too many targets to record",
        ));
    }
    Ok(wanted)
}

fn accounts(grantees: &[Grantee]) -> BTreeSet<AccountId> {
    grantees
        .iter()
        .filter_map(|g| match g {
            Grantee::Account(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

/// The key-policy statement that lets an organization or OU use a key.
pub fn key_policy_statement(target: &Grantee) -> Option<String> {
    let actions = r#"["kms:Decrypt","kms:DescribeKey","kms:CreateGrant","kms:GenerateDataKeyWithoutPlaintext","kms:ReEncrypt*"]"#;
    let condition = match target {
        Grantee::Organization(arn) => format!(
            r#"{{"StringEquals":{{"aws:PrincipalOrgID":"{}"}}}}"#,
            org_id_of(arn)?
        ),
        Grantee::OrganizationalUnit(arn) => {
            let ou = arn.rsplit('/').next()?;
            format!(
                r#"{{"ForAnyValue:StringLike":{{"aws:PrincipalOrgPaths":"{}/*/{ou}/*"}}}}"#,
                org_id_of(arn)?
            )
        }
        _ => return None,
    };
    Some(format!(
        r#"{{"Sid":"AmiLifecycleShare","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":{actions},"Resource":"*","Condition":{condition}}}"#
    ))
}

/// Plans one image from its facts.
pub fn plan_image(
    image: &Image,
    governing: &Governing,
    facts: &ImageFacts,
    config: &Config,
) -> ImagePlan {
    let asked = match screen(image, governing, config) {
        Ok(w) => w,
        Err(plan) => return plan,
    };
    let origin = governing.origin();
    let record = facts.record.grantees.clone();
    let mut desired = asked.desired.clone();
    if let Some((reason, problem)) = &asked.invalid {
        // A bad value changes nothing it names; but what the suite granted to targets the
        // allow-list no longer admits goes, so a broken tag cannot freeze such a grant.
        let keep: Vec<Grantee> = record
            .iter()
            .filter(|g| allowed(g, config))
            .cloned()
            .collect();
        if keep.len() == record.len() {
            return reject(
                image,
                Outcome::Failed,
                format!("{reason}; nothing changed"),
                problem,
            );
        }
        desired = keep;
    }
    let encrypted = facts.snapshots.iter().any(|s| s.encrypted);

    if desired.contains(&Grantee::Public) {
        if facts.public_blocked == Some(true) {
            return reject(
                image,
                Outcome::Refused,
                format!(
                    "all (public){origin}: image block public access is on in {}; nothing changed. Disable it (ec2 disable-image-block-public-access) or remove all",
                    image.region
                ),
                "all refused: image block public access is on",
            );
        }
        if encrypted {
            return reject(
                image,
                Outcome::Refused,
                format!("all (public){origin}: an image with encrypted snapshots cannot be made public; nothing changed"),
                "all refused: encrypted snapshots cannot be public",
            );
        }
    }

    let key_of = |r: &KeyRef| facts.keys.iter().find(|k| &k.key == r);
    if !desired.is_empty() {
        if let Some(s) = facts
            .snapshots
            .iter()
            .find(|s| s.encrypted && s.key.as_ref().and_then(key_of).is_none())
        {
            return reject(
                image,
                Outcome::Failed,
                format!(
                    "snapshot {} is encrypted but its KMS key could not be read; nothing changed",
                    s.id
                ),
                &format!("key of {} unknown", s.id),
            );
        }
        if let Some(k) = facts.keys.iter().find(|k| k.info.aws_managed) {
            return reject(
                image,
                Outcome::Refused,
                format!(
                    "snapshots are encrypted with the AWS managed key {} (aws/ebs), which cannot be shared; nothing changed. Copy the image with a customer managed key (aws ec2 copy-image --source-image-id {} --encrypted --kms-key-id KEY, or replicate it with REPLICA_KMS_KEYS) and share the copy",
                    k.info.arn, image.id
                ),
                "aws/ebs key cannot be shared: copy the image with a customer managed key (copy-image --kms-key-id, or REPLICA_KMS_KEYS) and share the copy",
            );
        }
    }

    let current: BTreeSet<&Grantee> = facts.launch.iter().collect();
    let wanted: BTreeSet<&Grantee> = desired.iter().collect();
    let ours: BTreeSet<&Grantee> = record.iter().collect();
    let desired_accounts = accounts(&desired);
    let record_accounts = accounts(&record);

    let mut ch = Changes {
        desired: desired.clone(),
        ..Changes::default()
    };
    ch.launch_add = wanted.difference(&current).map(|g| (*g).clone()).collect();
    ch.launch_remove = ours
        .difference(&wanted)
        .filter(|g| current.contains(*g))
        .map(|g| (*g).clone())
        .collect();

    for snap in &facts.snapshots {
        let have = accounts(&snap.permissions);
        let add: Vec<AccountId> = desired_accounts.difference(&have).cloned().collect();
        let remove: Vec<AccountId> = record_accounts
            .difference(&desired_accounts)
            .filter(|a| have.contains(*a))
            .cloned()
            .collect();
        if !add.is_empty() {
            ch.snapshot_add.push((snap.id.clone(), add));
        }
        if !remove.is_empty() {
            ch.snapshot_remove.push((snap.id.clone(), remove));
        }
    }

    let used_keys: Vec<&KeyFacts> = facts
        .keys
        .iter()
        .filter(|k| {
            facts
                .snapshots
                .iter()
                .any(|s| s.encrypted && s.key.as_ref() == Some(&k.key))
        })
        .collect();
    let mut seen_arns = BTreeSet::new();
    for k in used_keys
        .iter()
        .filter(|k| !k.info.aws_managed && seen_arns.insert(k.info.arn.clone()))
    {
        for account in &desired_accounts {
            let name = grant_name(&image.id, account);
            if !k
                .grants
                .iter()
                .any(|g| g.name.as_deref() == Some(name.as_str()))
            {
                ch.grants_create.push(GrantSpec {
                    key_arn: k.info.arn.clone(),
                    account: account.clone(),
                    principal: account_principal(&k.info.arn, account),
                    name,
                });
            }
        }
        ch.grants_revoke
            .extend(revocable_grants(&image.id, &k.grants, &desired_accounts));
    }

    let mut before: BTreeSet<Grantee> = record.iter().cloned().collect();
    before.extend(desired.iter().cloned());
    ch.record_before = before.into_iter().collect();
    ch.record_after = desired.clone();
    ch.refused = asked.refused.clone();
    let n = desired.len();
    ch.status = match &asked.invalid {
        Some((_, problem)) => status_value(&format!(
            "error {problem}; revoked what is no longer allowed"
        )),
        None if ch.refused.is_empty() => format!("ok {n} target{}", if n == 1 { "" } else { "s" }),
        None => {
            let refused: Vec<String> = ch
                .refused
                .iter()
                .map(|(g, why)| format!("{g} ({why})"))
                .collect();
            status_value(&format!(
                "ok {n} target{}; refused {}",
                if n == 1 { "" } else { "s" },
                refused.join(", ")
            ))
        }
    };
    // Cross-account use: no grantee loses a grant it may still use.
    let held = super::hold::hold_in_use(&image.id, &mut ch, facts.usage.as_ref(), config);
    ch.items = items(image, &ch, facts, &used_keys, &origin);
    if !held.is_empty() {
        let names: BTreeSet<String> = ch.held.iter().map(|(g, _)| g.to_string()).collect();
        ch.items
            .retain(|i| !(i.outcome == Outcome::Refused && names.contains(&i.subject)));
        ch.items.extend(held);
    }
    ImagePlan {
        image: image.id.clone(),
        region: image.region.clone(),
        action: Action::Apply(Box::new(ch)),
    }
}

/// The suite's grants for `image` on one key that must go: accounts no longer desired,
/// and duplicates of a name (concurrent runs on an emulator without CreateGrant
/// idempotency) except the one with the smallest id, so every run keeps the same one.
pub fn revocable_grants(
    image: &ImageId,
    grants: &[KeyGrant],
    desired: &BTreeSet<AccountId>,
) -> Vec<KeyGrant> {
    let mut out = Vec::new();
    let mut keep: Vec<(&str, &str)> = Vec::new();
    let mut ours: Vec<&KeyGrant> = grants
        .iter()
        .filter(|g| {
            g.name
                .as_deref()
                .and_then(|n| grant_account(image, n))
                .is_some()
        })
        .collect();
    ours.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
    for g in ours {
        let name = g.name.as_deref().unwrap_or_default();
        let account = grant_account(image, name);
        let wanted = account.as_ref().is_some_and(|a| desired.contains(a));
        if wanted && !keep.iter().any(|(n, _)| *n == name) {
            keep.push((name, &g.grant_id));
        } else {
            out.push(g.clone());
        }
    }
    out
}

fn items(
    image: &Image,
    ch: &Changes,
    facts: &ImageFacts,
    keys: &[&KeyFacts],
    origin: &str,
) -> Vec<PlanItem> {
    let mut out = Vec::new();
    let snaps = facts.snapshots.len();
    let cmk: Vec<&str> = keys
        .iter()
        .filter(|k| !k.info.aws_managed)
        .map(|k| k.info.arn.as_str())
        .collect();
    for g in &ch.desired {
        let mut done = Vec::new();
        let mut kept = Vec::new();
        if ch.launch_add.contains(g) {
            done.push("launch permission".to_owned());
        } else {
            kept.push("launch permission".to_owned());
        }
        let mut notes = Vec::new();
        match g {
            Grantee::Account(a) => {
                let added = ch
                    .snapshot_add
                    .iter()
                    .filter(|(_, accts)| accts.contains(a))
                    .count();
                if added > 0 {
                    done.push(format!("create-volume on {added} of {snaps} snapshots"));
                }
                if snaps > added {
                    kept.push(format!("create-volume on {} snapshots", snaps - added));
                }
                let created = ch.grants_create.iter().filter(|s| &s.account == a).count();
                if created > 0 {
                    done.push(format!("KMS grant on {created} key(s)"));
                }
                if cmk.len() > created {
                    kept.push(format!("KMS grant on {} key(s)", cmk.len() - created));
                }
            }
            Grantee::Organization(_) | Grantee::OrganizationalUnit(_) => {
                notes.push(
                    "snapshots cannot be shared with an organization or OU: its accounts can launch the image but copy it only when listed by account id"
                        .to_owned(),
                );
                if let Some(stmt) = key_policy_statement(g) {
                    for arn in &cmk {
                        notes.push(format!("add to the key policy of {arn}: {stmt}"));
                    }
                }
            }
            Grantee::Public => notes.push(format!(
                "public launch permission (image block public access in {}: {})",
                image.region,
                match facts.public_blocked {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "not read",
                }
            )),
        }
        let outcome = if done.is_empty() {
            Outcome::Unchanged
        } else {
            Outcome::Granted
        };
        let mut reason = if done.is_empty() {
            format!("already has {}", kept.join(", "))
        } else if kept.is_empty() {
            format!("granted {}", done.join(", "))
        } else {
            format!(
                "granted {}; already had {}",
                done.join(", "),
                kept.join(", ")
            )
        };
        for n in notes {
            reason.push_str("; ");
            reason.push_str(&n);
        }
        reason.push_str(origin);
        out.push(PlanItem {
            subject: g.to_string(),
            outcome,
            reason,
        });
    }

    let mut revoked: BTreeSet<Grantee> = ch.launch_remove.iter().cloned().collect();
    for (_, accts) in &ch.snapshot_remove {
        revoked.extend(accts.iter().cloned().map(Grantee::Account));
    }
    for g in &ch.grants_revoke {
        if let Some(a) = g.name.as_deref().and_then(|n| grant_account(&image.id, n)) {
            if !ch.desired.contains(&Grantee::Account(a.clone())) {
                revoked.insert(Grantee::Account(a));
            }
        }
    }
    for g in &revoked {
        let mut what = Vec::new();
        if ch.launch_remove.contains(g) {
            what.push("launch permission".to_owned());
        }
        if let Grantee::Account(a) = g {
            let n = ch
                .snapshot_remove
                .iter()
                .filter(|(_, accts)| accts.contains(a))
                .count();
            if n > 0 {
                what.push(format!("create-volume on {n} snapshots"));
            }
            let k = ch
                .grants_revoke
                .iter()
                .filter(|gr| {
                    gr.name
                        .as_deref()
                        .and_then(|n| grant_account(&image.id, n))
                        .as_ref()
                        == Some(a)
                })
                .count();
            if k > 0 {
                what.push(format!("{k} KMS grant(s)"));
            }
        }
        let why = match ch.refused.iter().find(|(r, _)| r == g) {
            Some((_, why)) => why.clone(),
            None if ch.status.starts_with("error") => "no longer allowed".to_owned(),
            None => format!("no longer in {}", key::SHARE_WITH),
        };
        out.push(PlanItem {
            subject: g.to_string(),
            outcome: Outcome::Revoked,
            reason: format!("{why}{origin}: revoked {}", what.join(", ")),
        });
    }
    for (g, why) in ch.refused.iter().filter(|(g, _)| !revoked.contains(g)) {
        out.push(PlanItem {
            subject: g.to_string(),
            outcome: Outcome::Refused,
            reason: format!(
                "{} names {g}{origin}: {why}; never granted. Add it to SHARE_ALLOWED (or set ALLOW_PUBLIC) or fix the tag",
                key::SHARE_WITH
            ),
        });
    }
    for rejected in &facts.record.rejected {
        out.push(PlanItem {
            subject: image.id.to_string(),
            outcome: Outcome::Unsealed,
            reason: rejected.clone(),
        });
    }
    let duplicates = ch
        .grants_revoke
        .iter()
        .filter(|g| {
            g.name
                .as_deref()
                .and_then(|n| grant_account(&image.id, n))
                .is_some_and(|a| ch.desired.contains(&Grantee::Account(a)))
        })
        .count();
    if duplicates > 0 {
        out.push(PlanItem {
            subject: image.id.to_string(),
            outcome: Outcome::Revoked,
            reason: format!("{duplicates} duplicate KMS grant(s) of the same name revoked (one per account is kept)"),
        });
    }

    let record = &facts.record.grantees;
    for g in facts
        .launch
        .iter()
        .filter(|g| !ch.desired.contains(g) && !record.contains(g))
    {
        out.push(PlanItem {
            subject: g.to_string(),
            outcome: Outcome::Unchanged,
            reason: "granted outside the suite (not in its record): left untouched".to_owned(),
        });
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
