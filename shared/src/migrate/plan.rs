//! [`plan`]: the migration of one instance, decided over a snapshot. The apply step
//! follows the returned [`MigrationPlan`] in its order — image, copy, launch, wait for
//! both status checks, then (only then) the source and the address — and the dry run
//! prints it.

use serde::Serialize;
use time::OffsetDateTime;

use super::error::PlanError;
use super::model::{
    ElasticIp, MetadataOptions, SecurityGroup, SourceInstance, Subnet, Target, TargetNetwork,
    VolumeSpec,
};
use super::network::{choose_key_pair, choose_security_groups, choose_subnet};
use super::token::client_token;
use super::{MIGRATED_FROM, MIGRATION};
use crate::model::{
    Image, ImageId, ImageState, InstanceId, InstanceState, KeyRef, Region, ScheduleName, Tags,
};
use crate::tags::{key, Consistency};

/// Where the image the new instance starts from comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum ImageStep {
    /// The source's newest consistent image, younger than `--max-age`.
    Reuse {
        image: ImageId,
        age_seconds: i64,
        consistency: String,
    },
    /// A new image of the source: rebooted when it runs (a stopped instance is already
    /// consistent). The name is deterministic, so a re-run finds it.
    Create { name: String, reboot: bool },
}

/// The copy to the target region (the replicate code path), with that region's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyStep {
    pub to: Region,
    /// The target region's key (`REPLICA_KMS_KEYS`); `None`: that region's default EBS key.
    pub kms_key: Option<KeyRef>,
    pub encrypted: bool,
}

/// What RunInstances is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchSpec {
    pub region: Region,
    pub zone: String,
    pub subnet: Subnet,
    pub subnet_why: String,
    pub security_groups: Vec<SecurityGroup>,
    pub security_groups_why: String,
    pub instance_type: String,
    pub instance_profile: Option<String>,
    pub key_name: Option<String>,
    pub tags: Tags,
    pub metadata: MetadataOptions,
    pub monitoring: bool,
    /// The source's volumes as the new instance gets them (keys of the target region).
    pub volumes: Vec<VolumeSpec>,
    pub placement_group: Option<String>,
    /// The source's user data is replayed (`--user-data`).
    pub user_data: bool,
    /// RunInstances `ClientToken`: a re-run answers the same instance.
    pub client_token: String,
}

/// What happens to the source once the new instance is `running` with both status
/// checks `ok`. It is never terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceAfter {
    Keep,
    StopWhenHealthy,
}

/// The source's Elastic IP, never silently lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum AddressStep {
    None,
    /// It stays with the source; reported.
    Report(ElasticIp),
    /// Moved to the new instance once it is healthy (`--move-eip`).
    Move(ElasticIp),
}

/// The whole migration, in the order it is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationPlan {
    pub source: InstanceId,
    pub from_region: Region,
    pub from_zone: String,
    pub token: String,
    pub image: ImageStep,
    pub copy: Option<CopyStep>,
    pub launch: LaunchSpec,
    pub source_after: SourceAfter,
    pub address: AddressStep,
    /// The source's private IP: the new instance gets another (another subnet).
    pub private_ip: Option<String>,
    /// What the plan leaves out, and why (placement group, user data, …).
    pub notes: Vec<String>,
}

/// EC2's limit on the tags of one resource (RunInstances' tag specifications included).
pub const MAX_TAGS: usize = 50;

/// What the planner reads besides the source and the target.
pub struct Inputs<'a> {
    /// The target region's network.
    pub network: &'a TargetNetwork,
    /// Images of the source's region whose seal the caller verified: the candidates for
    /// reuse (only those EC2 says were made from the source, `SourceInstanceId`, count).
    pub proven_images: &'a [Image],
    /// The target region's key for the copy (`REPLICA_KMS_KEYS`), when one is configured.
    pub target_key: Option<&'a KeyRef>,
    /// The deployment (image names begin with it).
    pub deployment: &'a str,
    pub now: OffsetDateTime,
}

/// The schedule a migration image is filed under: the source's first schedule, so the
/// image joins the source's lineage and follows its retention; `migrate` for an instance
/// the suite does not image.
pub fn lineage_schedule(source_tags: &Tags) -> ScheduleName {
    crate::tags::InstanceSettings::from_tags(source_tags)
        .ok()
        .and_then(|s| s.schedules.first().cloned())
        .unwrap_or_else(|| ScheduleName::new(super::run::MIGRATE_SCHEDULE))
}

/// Plans the move of `source` to `target`.
pub fn plan(
    source: &SourceInstance,
    target: &Target,
    inputs: &Inputs<'_>,
) -> Result<MigrationPlan, PlanError> {
    let net = inputs.network;
    let instance = source.id.to_string();
    let to_region = target
        .region
        .clone()
        .unwrap_or_else(|| source.region.clone());
    if target.region.is_none() && target.zone.is_none() && target.subnet.is_none() {
        return Err(PlanError::NoTarget {
            instance,
            region: source.region.to_string(),
        });
    }
    let same_region = to_region == source.region;
    if target.region.as_ref() == Some(&source.region) {
        return Err(PlanError::SameRegion {
            instance,
            region: source.region.to_string(),
        });
    }
    if same_region && target.zone.as_deref() == Some(source.zone.as_str()) {
        return Err(PlanError::SameZone {
            instance,
            zone: source.zone.clone(),
        });
    }
    if !matches!(
        source.state,
        InstanceState::Running | InstanceState::Stopped
    ) {
        return Err(PlanError::NotMovable {
            instance,
            state: source.state.as_str().to_owned(),
        });
    }
    if let (false, true, Some(eip)) = (same_region, target.move_eip, &source.elastic_ip) {
        return Err(PlanError::EipAcrossRegions {
            public_ip: eip.public_ip.clone(),
            allocation: eip.allocation_id.clone(),
            instance,
            region: to_region.to_string(),
        });
    }
    let chosen = choose_subnet(source, target, net)?;
    let (security_groups, security_groups_why) =
        choose_security_groups(source, target, net, &chosen.subnet)?;
    let key_name = choose_key_pair(source, target, net)?;
    let zone = chosen.subnet.zone.clone();
    let token = client_token(&source.id, &source.region, &to_region, Some(&zone));
    let mut notes = Vec::new();

    let image = choose_image(source, target, inputs);
    let copy = (!same_region).then(|| CopyStep {
        to: to_region.clone(),
        kms_key: inputs.target_key.cloned(),
        encrypted: inputs.target_key.is_some() || source.volumes.iter().any(|v| v.encrypted),
    });
    let volumes = source
        .volumes
        .iter()
        .map(|v| {
            let mut v = v.clone();
            if !same_region {
                // The copy is encrypted with the target region's key (or its default).
                v.encrypted = copy.as_ref().is_some_and(|c| c.encrypted);
                v.kms_key = inputs.target_key.cloned();
            }
            v
        })
        .collect();

    let placement_group = source.placement_group.as_ref().and_then(|name| {
        match net.placement_groups.iter().find(|g| &g.name == name) {
            Some(g) if g.strategy == "cluster" && same_region => {
                notes.push(format!(
                    "placement group {name} is a cluster group: it lives in {} and cannot hold an instance in {zone}; the new instance has none",
                    source.zone
                ));
                None
            }
            Some(_) => Some(name.clone()),
            None => {
                notes.push(format!(
                    "placement group {name} does not exist in {to_region}; the new instance has none"
                ));
                None
            }
        }
    });
    let user_data = source.has_user_data && target.user_data;
    if source.has_user_data && !target.user_data {
        notes.push("user data is not replayed (it already ran); --user-data replays it".to_owned());
    }
    let mut tags: Tags = source
        .tags
        .iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.insert(MIGRATED_FROM.to_owned(), source.id.to_string());
    tags.insert(MIGRATION.to_owned(), token.clone());
    if tags.len() > MAX_TAGS {
        return Err(PlanError::TooManyTags {
            instance: source.id.to_string(),
            count: source.tags.len(),
            excess: tags.len() - MAX_TAGS,
        });
    }

    let source_after = match (target.stop_source, source.state) {
        (true, InstanceState::Running) => SourceAfter::StopWhenHealthy,
        (true, _) => {
            notes.push(format!("{} is already stopped", source.id));
            SourceAfter::Keep
        }
        (false, _) => SourceAfter::Keep,
    };
    let address = match (&source.elastic_ip, target.move_eip) {
        (None, _) => AddressStep::None,
        (Some(e), true) => AddressStep::Move(e.clone()),
        (Some(e), false) => AddressStep::Report(e.clone()),
    };
    Ok(MigrationPlan {
        source: source.id.clone(),
        from_region: source.region.clone(),
        from_zone: source.zone.clone(),
        token: token.clone(),
        image,
        copy,
        launch: LaunchSpec {
            region: to_region,
            zone,
            subnet: chosen.subnet,
            subnet_why: chosen.why,
            security_groups,
            security_groups_why,
            instance_type: source.instance_type.clone(),
            instance_profile: source.instance_profile.clone(),
            key_name,
            tags,
            metadata: source.metadata.clone(),
            monitoring: source.monitoring,
            volumes,
            placement_group,
            user_data,
            client_token: token,
        },
        source_after,
        address,
        private_ip: source.private_ip.clone(),
        notes,
    })
}

/// The source's newest consistent image younger than `--max-age`, else a new one.
/// Reused only if EC2 says the source made it (`SourceInstanceId`, immutable) and the
/// caller verified its seal; a crash-consistent image is never reused.
fn choose_image(source: &SourceInstance, target: &Target, inputs: &Inputs<'_>) -> ImageStep {
    const CONSISTENT: [Consistency; 3] = [
        Consistency::Rebooted,
        Consistency::Stopped,
        Consistency::ApplicationConsistent,
    ];
    let consistent = |i: &Image| {
        i.tag(key::CONSISTENCY)
            .is_some_and(|c| CONSISTENT.iter().any(|k| k.as_str() == c))
    };
    let newest = inputs
        .proven_images
        .iter()
        .filter(|i| i.source_instance.as_ref() == Some(&source.id))
        .filter(|i| i.state == ImageState::Available && consistent(i))
        .filter(|i| inputs.now - i.created <= target.max_age)
        .max_by_key(|i| i.created);
    match newest {
        Some(i) => ImageStep::Reuse {
            image: i.id.clone(),
            age_seconds: (inputs.now - i.created).whole_seconds(),
            consistency: i.tag(key::CONSISTENCY).unwrap_or_default().to_owned(),
        },
        None => ImageStep::Create {
            // The source's lineage, this minute's slot: a re-run finds the image by its
            // migration token (tagged at creation), whatever the minute.
            name: crate::create::image_name(
                inputs.deployment,
                &source.id,
                &crate::create::ScheduleRun::new(lineage_schedule(&source.tags), inputs.now),
            ),
            reboot: source.state == InstanceState::Running,
        },
    }
}
