//! The pure planner: which instances of a slot get an image now, which wait for a later
//! reboot wave, which are already done, skipped or in error. No AWS calls, no clock reads.
//!
//! Level-triggered: the plan is recomputed from the inventory on every invocation (first
//! run, continuation, retried or duplicated event). An instance with an image for the slot
//! is done; a reboot group starts its next wave only when every member rebooted for this
//! slot is `running` again (and its image is at least [`REBOOT_SETTLE`] old, so a reboot
//! that has not visibly begun yet is not taken for a finished one).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use time::OffsetDateTime;

use super::ScheduleRun;
use crate::cleanup::plan::ours_and_unused;
use crate::config::Config;
use crate::config::QuiesceFallback;
use crate::model::{
    DeviceName, Image, ImageId, ImageState, Instance, InstanceId, InstanceState, Region, Snapshot,
    SnapshotId, Tags,
};
use crate::ports::NewImage;
use crate::tags::{self, key, Consistency, InstanceSettings, Method};
use crate::time_util::{parse_rfc3339, rfc3339, slot_compact};

/// How long after CreateImage a rebooted member still counts as "going down", whatever
/// its state says: EC2 may report `running` for a moment before the shutdown begins.
pub const REBOOT_SETTLE: Duration = Duration::from_secs(20);

/// The default of `WAVE_MAX_WAIT`: how long a reboot group may stay blocked (since the
/// slot, or since the newest image of a blocking member) before its waiting members are
/// given up for that slot and reported as failed: continuations never loop forever.
pub const MAX_WAVE_WAIT: Duration = Duration::from_secs(3 * 3600);

/// What the planner reads: a snapshot of the managed regions.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Instances carrying the schedule tag (any value, any state), in every readable region.
    pub instances: Vec<Instance>,
    /// Images of this slot (tagged `ami-lifecycle:slot` = the slot, or named after it).
    pub slot_images: Vec<Image>,
    /// Those of `slot_images` whose seal does not verify: not the suite's. One that holds
    /// an image's deterministic name is reported name-squatted; one that only carries the
    /// lineage tags is ignored (it cannot stand in for the real image).
    pub unsealed: BTreeSet<ImageId>,
    /// EC2's status checks of the reboot groups' members (`DescribeInstanceStatus`): a
    /// member rebooted for the slot holds its group's next wave back until it is running
    /// with both checks `ok`. Absent: only the instance state gates.
    pub health: BTreeMap<InstanceId, crate::model::InstanceHealth>,
    /// When each instance was last rebooted for an image, as far as its images tell
    /// (`SourceInstanceId`, consistency not crash-consistent or stopped; the time is the
    /// image's retention time, `min(slot, creation)`): see `REBOOT_MIN_INTERVAL`.
    pub last_reboot: BTreeMap<InstanceId, OffsetDateTime>,
}

/// Where an instance stands in its reboot group's waves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    pub group: String,
    /// 1 = the wave that runs next (now, unless the group is blocked).
    pub number: usize,
    /// Waves left for the group, this one included.
    pub of: usize,
}

/// What to do about one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// CreateImage now.
    Create {
        request: NewImage,
        consistency: Consistency,
        wave: Option<Wave>,
        /// Why the image is not what the instance's tags ask (a reboot refused by
        /// `REBOOT_MIN_INTERVAL`).
        note: Option<String>,
        /// `ami-lifecycle:method=quiesce`: freeze through Systems Manager first, and what
        /// to make instead when that is not possible.
        quiesce: Option<QuiescePlan>,
    },
    /// The slot's image name is taken by an image the suite did not make (not sealed):
    /// nothing is made, and the report alarms.
    NameSquatted {
        image: ImageId,
        name: String,
    },
    /// The slot already has its image.
    Exists {
        image: ImageId,
        state: ImageState,
    },
    /// The slot's image ended `failed`; the failed-image handler cleans it up.
    ImageFailed {
        image: ImageId,
    },
    /// A later reboot wave; `blocked_by` are the members that must be running again first.
    Wait {
        name: String,
        wave: Wave,
        blocked_by: Vec<InstanceId>,
    },
    Skip {
        reason: String,
    },
    Fail {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanItem {
    pub region: Region,
    pub instance: InstanceId,
    pub action: Action,
}

/// The plan of one invocation for one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub run: ScheduleRun,
    pub items: Vec<PlanItem>,
}

impl Plan {
    /// Some instance of the slot still waits for a later wave: a continuation is needed.
    pub fn waves_remain(&self) -> bool {
        self.items
            .iter()
            .any(|i| matches!(i.action, Action::Wait { .. }))
    }

    pub fn creates(&self) -> impl Iterator<Item = &PlanItem> {
        self.items
            .iter()
            .filter(|i| matches!(i.action, Action::Create { .. }))
    }
}

/// How a quiesced instance is imaged: the mounts to freeze, and the image made instead
/// when it cannot be quiesced (`QUIESCE_FALLBACK`; `None` = skip it this slot).
#[derive(Debug, Clone, PartialEq)]
pub struct QuiescePlan {
    pub mounts: Vec<String>,
    pub fallback: Option<Box<Fallback>>,
}

/// The image a quiesced instance gets when it cannot be quiesced.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    pub request: NewImage,
    pub consistency: Consistency,
    pub note: String,
}

/// The AMI name of an instance's image for a slot: deterministic, so a retry finds it.
pub fn image_name(deployment: &str, instance: &InstanceId, run: &ScheduleRun) -> String {
    format!(
        "{deployment}/{instance}/{}/{}",
        run.schedule,
        slot_compact(run.slot)
    )
}

/// Whether `schedule` is one create-image knows (`SCHEDULES`).
pub fn check_schedule(run: &ScheduleRun, config: &Config) -> Result<(), String> {
    if config.schedules.contains(&run.schedule) {
        return Ok(());
    }
    let known: Vec<&str> = config.schedules.iter().map(|s| s.as_str()).collect();
    Err(format!(
        "schedule {:?} is not one of SCHEDULES={}; add it to SCHEDULES (and give it a rule named {}-schedule-{}) or fix the caller; nothing was imaged",
        run.schedule.as_str(),
        known.join(","),
        config.deployment,
        run.schedule
    ))
}

fn device_key(d: &DeviceName) -> &str {
    d.as_str().strip_prefix("/dev/").unwrap_or(d.as_str())
}

/// Maps `exclude-devices` onto the instance's own device names; the root and unknown
/// devices are errors.
fn excluded_devices(instance: &Instance, wanted: &[DeviceName]) -> Result<Vec<DeviceName>, String> {
    let mut out = Vec::new();
    for want in wanted {
        if instance
            .root_device
            .as_ref()
            .is_some_and(|r| device_key(r) == device_key(want))
        {
            return Err(format!(
                "tag {}: {want} is the root device of {}; the root volume is always imaged — remove {want} from the tag",
                key::EXCLUDE_DEVICES,
                instance.id
            ));
        }
        match instance
            .volumes
            .iter()
            .find(|v| device_key(&v.device) == device_key(want))
        {
            Some(v) => out.push(v.device.clone()),
            None => {
                let attached: Vec<&str> =
                    instance.volumes.iter().map(|v| v.device.as_str()).collect();
                return Err(format!(
                    "tag {}: {want} is not attached to {} (attached: {}); fix the tag",
                    key::EXCLUDE_DEVICES,
                    instance.id,
                    if attached.is_empty() {
                        "none".to_owned()
                    } else {
                        attached.join(", ")
                    }
                ));
            }
        }
    }
    Ok(out)
}

/// The tags written on the image and its snapshots at creation.
pub fn image_tags(
    instance: &Instance,
    run: &ScheduleRun,
    consistency: Consistency,
    config: &Config,
) -> Tags {
    let mut t = Tags::new();
    for k in &config.copy_instance_tags {
        if let Some(v) = instance.tags.get(k) {
            t.insert(k.clone(), v.clone());
        }
    }
    for k in [
        "Name",
        key::RETAIN,
        key::RETAIN_IN,
        key::REPLICATE_TO,
        key::SHARE_WITH,
    ] {
        if let Some(v) = instance.tags.get(k) {
            t.insert(k.to_owned(), v.clone());
        }
    }
    t.insert(key::MANAGED_BY.to_owned(), config.deployment.clone());
    t.insert(key::SOURCE_INSTANCE.to_owned(), instance.id.to_string());
    t.insert(key::SCHEDULE.to_owned(), run.schedule.to_string());
    t.insert(key::SLOT.to_owned(), rfc3339(run.slot));
    t.insert(key::CONSISTENCY.to_owned(), consistency.as_str().to_owned());
    t
}

fn description(
    instance: &Instance,
    run: &ScheduleRun,
    consistency: Consistency,
    config: &Config,
) -> String {
    let name = instance
        .name()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let text = format!(
        "ami-lifecycle {} create-image: {} image of {}{name}, schedule {}, slot {}",
        config.deployment,
        consistency.as_str(),
        instance.id,
        run.schedule,
        rfc3339(run.slot)
    );
    // EC2 allows 255 characters.
    text.chars().take(255).collect()
}

/// The slot's image of an instance, if one exists: by lineage tags, else by name.
fn slot_image<'a>(
    inventory: &'a Inventory,
    instance: &Instance,
    run: &ScheduleRun,
    config: &Config,
) -> Option<&'a Image> {
    let name = image_name(&config.deployment, &instance.id, run);
    let slot = rfc3339(run.slot);
    let mut found: Vec<&Image> = inventory
        .slot_images
        .iter()
        .filter(|i| i.region == instance.region)
        .filter(|i| {
            i.name == name
                || (tags::is_managed_by(&i.tags, &config.deployment)
                    && i.tag(key::SOURCE_INSTANCE) == Some(instance.id.as_str())
                    && i.tag(key::SCHEDULE) == Some(run.schedule.as_str())
                    && i.tag(key::SLOT) == Some(slot.as_str()))
        })
        .filter(|i| i.state != ImageState::Deregistered)
        // An unsealed image counts only when it holds the name (then it is squatting).
        .filter(|i| i.name == name || !inventory.unsealed.contains(&i.id))
        .collect();
    // Prefer a live image over a failed one.
    found.sort_by_key(|i| (i.state == ImageState::Failed, i.id.clone()));
    found.into_iter().next()
}

/// When `instance` was rebooted for an image less than `REBOOT_MIN_INTERVAL` before this
/// slot, if it was: then whatever asks (a second schedule, an operator, a forged
/// invocation), it is not rebooted again.
fn recent_reboot(
    inventory: &Inventory,
    instance: &InstanceId,
    run: &ScheduleRun,
    config: &Config,
) -> Option<OffsetDateTime> {
    let interval = time::Duration::minutes(i64::from(config.reboot_min_interval_minutes));
    inventory
        .last_reboot
        .get(instance)
        .copied()
        .filter(|at| *at > run.slot - interval && *at <= run.slot + interval)
}

/// Whether `instance` is one this slot would reboot (running, tagged for the schedule,
/// reboot not turned off): the run reads its recent images only for these.
pub fn may_reboot(instance: &Instance, run: &ScheduleRun) -> bool {
    instance.state == InstanceState::Running
        && InstanceSettings::from_tags(&instance.tags)
            .is_ok_and(|s| s.reboot && s.schedules.contains(&run.schedule))
}

/// Whether create-image can image `instance` at all (running or stopped, EBS-backed): an
/// instance it cannot is reported by the planner, not counted stale.
pub fn is_imageable(instance: &Instance) -> bool {
    matches!(
        instance.state,
        InstanceState::Running | InstanceState::Stopped
    ) && !instance.instance_store
}

/// The image's reboot time for [`Inventory::last_reboot`]: `Some` unless its consistency
/// says it was made without a reboot.
pub fn reboot_time(image: &Image) -> Option<OffsetDateTime> {
    let no_reboot = [
        Consistency::CrashConsistent.as_str(),
        Consistency::Stopped.as_str(),
        Consistency::ApplicationConsistent.as_str(),
    ];
    let made_without = image
        .tag(key::CONSISTENCY)
        .is_some_and(|c| no_reboot.contains(&c.trim()));
    (!made_without).then(|| crate::lineage::to_time(crate::lineage::retention_time(image)))
}

/// One instance that qualifies for an image in this slot.
struct Candidate<'a> {
    instance: &'a Instance,
    group: Option<String>,
    /// CreateImage reboots it (running and not opted out).
    reboots: bool,
    request: NewImage,
    consistency: Consistency,
    note: Option<String>,
    quiesce: Option<QuiescePlan>,
}

/// Plans one invocation for `run`. `now` only ages the images of the previous wave.
pub fn plan(
    run: &ScheduleRun,
    inventory: &Inventory,
    config: &Config,
    now: OffsetDateTime,
) -> Plan {
    let mut items: Vec<PlanItem> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    // Members of each reboot group (any schedule) and whether each is done for this slot.
    let mut group_members: BTreeMap<String, Vec<&Instance>> = BTreeMap::new();

    let mut instances: Vec<&Instance> = inventory.instances.iter().collect();
    instances.sort_by(|a, b| (&a.region, &a.id).cmp(&(&b.region, &b.id)));
    instances.dedup_by(|a, b| a.id == b.id);

    for instance in instances {
        let push = |items: &mut Vec<PlanItem>, action| {
            items.push(PlanItem {
                region: instance.region.clone(),
                instance: instance.id.clone(),
                action,
            })
        };
        let settings = match InstanceSettings::from_tags(&instance.tags) {
            Ok(s) => s,
            Err(e) => {
                // Only this schedule's instances are reported; a bad schedule tag that
                // still names this schedule counts as ours.
                let named = instance
                    .tags
                    .get(key::SCHEDULE)
                    .is_some_and(|v| tags::split_list(v).any(|s| s == run.schedule.as_str()));
                if named {
                    push(
                        &mut items,
                        Action::Fail {
                            reason: format!("{e}; nothing imaged until the tag is fixed"),
                        },
                    );
                }
                continue;
            }
        };
        if let Some(g) = &settings.reboot_group {
            group_members.entry(g.clone()).or_default().push(instance);
        }
        if !settings.schedules.contains(&run.schedule) {
            continue;
        }
        if let Some(image) = slot_image(inventory, instance, run, config) {
            let action = if inventory.unsealed.contains(&image.id) {
                Action::NameSquatted {
                    image: image.id.clone(),
                    name: image.name.clone(),
                }
            } else if image.state == ImageState::Failed {
                Action::ImageFailed {
                    image: image.id.clone(),
                }
            } else {
                Action::Exists {
                    image: image.id.clone(),
                    state: image.state,
                }
            };
            push(&mut items, action);
            continue;
        }
        if instance.instance_store {
            push(
                &mut items,
                Action::Skip {
                    reason: "instance-store-backed (its root device is an instance store): CreateImage images EBS-backed instances only; move it to an EBS root volume, or remove its ami-lifecycle:schedule tag".to_owned(),
                },
            );
            continue;
        }
        let mut note = None;
        let consistency = match instance.state {
            InstanceState::Running if settings.method == Method::Quiesce => {
                Consistency::ApplicationConsistent
            }
            InstanceState::Running if settings.reboot => {
                match recent_reboot(inventory, &instance.id, run, config) {
                    Some(at) => {
                        note = Some(format!(
                            "not rebooted: it was rebooted for an image at {}, less than REBOOT_MIN_INTERVAL={} min before this slot; imaged without a reboot",
                            rfc3339(at),
                            config.reboot_min_interval_minutes
                        ));
                        Consistency::CrashConsistent
                    }
                    None => Consistency::Rebooted,
                }
            }
            InstanceState::Running => Consistency::CrashConsistent,
            InstanceState::Stopped => Consistency::Stopped,
            other => {
                push(
                    &mut items,
                    Action::Skip {
                        reason: format!(
                            "instance is {}: only running and stopped instances are imaged",
                            other.as_str()
                        ),
                    },
                );
                continue;
            }
        };
        let exclude_devices = match excluded_devices(instance, &settings.exclude_devices) {
            Ok(d) => d,
            Err(reason) => {
                push(
                    &mut items,
                    Action::Fail {
                        reason: format!("{reason}; nothing imaged"),
                    },
                );
                continue;
            }
        };
        let request_for = |consistency: Consistency| {
            let tags = image_tags(instance, run, consistency, config);
            NewImage {
                instance: instance.id.clone(),
                name: image_name(&config.deployment, &instance.id, run),
                description: description(instance, run, consistency, config),
                no_reboot: consistency != Consistency::Rebooted,
                exclude_devices: exclude_devices.clone(),
                image_tags: tags.clone(),
                snapshot_tags: tags,
            }
        };
        let request = request_for(consistency);
        let quiesce = (consistency == Consistency::ApplicationConsistent).then(|| {
            let fallback = |consistency: Consistency, note: String| {
                Some(Box::new(Fallback {
                    request: request_for(consistency),
                    consistency,
                    note,
                }))
            };
            let fallback = match config.quiesce_fallback {
                QuiesceFallback::Skip => None,
                QuiesceFallback::NoReboot => fallback(
                    Consistency::CrashConsistent,
                    "imaged without a reboot (QUIESCE_FALLBACK=no-reboot)".to_owned(),
                ),
                QuiesceFallback::Reboot => match recent_reboot(inventory, &instance.id, run, config) {
                    Some(at) => fallback(
                        Consistency::CrashConsistent,
                        format!(
                            "QUIESCE_FALLBACK=reboot, but it was rebooted for an image at {}, less than REBOOT_MIN_INTERVAL={} min before this slot: imaged without a reboot",
                            rfc3339(at),
                            config.reboot_min_interval_minutes
                        ),
                    ),
                    None => fallback(
                        Consistency::Rebooted,
                        "imaged with a reboot (QUIESCE_FALLBACK=reboot)".to_owned(),
                    ),
                },
            };
            QuiescePlan {
                mounts: settings.freeze_mounts.clone(),
                fallback,
            }
        });
        // A member that may be rebooted (its fallback) takes its place in its group's waves.
        let reboots = consistency == Consistency::Rebooted
            || quiesce
                .as_ref()
                .and_then(|q| q.fallback.as_ref())
                .is_some_and(|f| f.consistency == Consistency::Rebooted);
        candidates.push(Candidate {
            instance,
            group: settings.reboot_group.clone(),
            reboots,
            request,
            consistency,
            note,
            quiesce,
        });
    }

    // Reboot groups: which members hold the next wave back.
    let concurrency = config.reboot_concurrency.max(1) as usize;
    let done: BTreeSet<&InstanceId> = items.iter().map(|i| &i.instance).collect();
    // Per group: the blocking members and since when the group is blocked.
    let mut blockers: BTreeMap<String, (Vec<InstanceId>, OffsetDateTime)> = BTreeMap::new();
    for (group, members) in &group_members {
        let mut blocking = Vec::new();
        let mut since = run.slot;
        for m in members {
            let transitional = matches!(m.state, InstanceState::Pending | InstanceState::Stopping);
            let rebooted = done
                .contains(&m.id)
                .then(|| slot_image(inventory, m, run, config))
                .flatten()
                .filter(|img| img.tag(key::CONSISTENCY) == Some(Consistency::Rebooted.as_str()))
                .filter(|img| {
                    // Health-gated: back only when running with both status checks ok
                    // (when they were read), and not in the first moments of the reboot.
                    let unhealthy = inventory.health.get(&m.id).is_some_and(|h| !h.healthy);
                    m.state != InstanceState::Running
                        || unhealthy
                        || now - img.created < REBOOT_SETTLE
                });
            if let Some(img) = rebooted {
                since = since.max(img.created);
            }
            if transitional || rebooted.is_some() {
                blocking.push(m.id.clone());
            }
        }
        blockers.insert(group.clone(), (blocking, since));
    }

    // Each group's rebooting candidates, in a stable order, chunked into waves.
    let mut waves: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (n, c) in candidates.iter().enumerate() {
        if let (Some(g), true) = (&c.group, c.reboots) {
            waves.entry(g.as_str()).or_default().push(n);
        }
    }
    let mut decided: BTreeMap<usize, Action> = BTreeMap::new();
    for (group, members) in &waves {
        let (blocking, since) = blockers
            .get(*group)
            .cloned()
            .unwrap_or((Vec::new(), run.slot));
        let max_wait = time::Duration::minutes(i64::from(config.wave_max_wait_minutes));
        let given_up = !blocking.is_empty() && now - since > max_wait;
        let of = members.len().div_ceil(concurrency);
        for (pos, &n) in members.iter().enumerate() {
            let wave = Wave {
                group: (*group).to_owned(),
                number: pos / concurrency + 1,
                of,
            };
            let c = &candidates[n];
            let action = if wave.number == 1 && blocking.is_empty() {
                Action::Create {
                    request: c.request.clone(),
                    consistency: c.consistency,
                    wave: Some(wave),
                    note: c.note.clone(),
                    quiesce: c.quiesce.clone(),
                }
            } else if given_up {
                let ids: Vec<String> = blocking
                    .iter()
                    .map(|id| match inventory.health.get(id) {
                        Some(h) => format!("{id} ({})", h.summary),
                        None => id.to_string(),
                    })
                    .collect();
                Action::Fail {
                    reason: format!(
                        "reboot group {group} stopped: {} not back (running with both status checks ok) {} min after its reboot (WAVE_MAX_WAIT); the rest of the group is not rebooted for this slot — check those instances, then run amictl create-images --schedule {} --slot {}",
                        ids.join(", "),
                        config.wave_max_wait_minutes,
                        run.schedule,
                        rfc3339(run.slot)
                    ),
                }
            } else {
                Action::Wait {
                    name: c.request.name.clone(),
                    wave,
                    blocked_by: blocking.clone(),
                }
            };
            decided.insert(n, action);
        }
    }
    for (n, c) in candidates.iter().enumerate() {
        let action = decided.remove(&n).unwrap_or_else(|| Action::Create {
            request: c.request.clone(),
            consistency: c.consistency,
            wave: None,
            note: c.note.clone(),
            quiesce: c.quiesce.clone(),
        });
        items.push(PlanItem {
            region: c.instance.region.clone(),
            instance: c.instance.id.clone(),
            action,
        });
    }
    items.sort_by(|a, b| (&a.region, &a.instance).cmp(&(&b.region, &b.instance)));
    Plan {
        run: run.clone(),
        items,
    }
}

/// An image create-image made for this deployment: the lineage and slot it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeImage {
    pub instance: String,
    pub schedule: String,
    /// The `ami-lifecycle:slot` value, as written.
    pub slot: String,
}

/// Why the failed-image clean-up leaves an image alone (reported `skipped`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveAlone {
    pub subject: String,
    pub reason: String,
}

/// Step 1 of the failed-image clean-up: whether `image` (as described; `None` if it does
/// not exist) is one create-image made for this deployment that ended `failed`. Only such
/// an image is cleaned up: never what is not provably ours.
pub fn failed_image_check(
    id: &ImageId,
    image: Option<&Image>,
    config: &Config,
) -> Result<MadeImage, LeaveAlone> {
    let Some(image) = image else {
        return Err(LeaveAlone {
            subject: id.to_string(),
            reason: "the image no longer exists (already cleaned up, or not ours)".to_owned(),
        });
    };
    let ours = tags::is_managed_by(&image.tags, &config.deployment);
    let (Some(instance), Some(schedule), Some(slot), true, None) = (
        image.tag(key::SOURCE_INSTANCE),
        image.tag(key::SCHEDULE),
        image.tag(key::SLOT),
        ours,
        image.tag(key::SOURCE_IMAGE),
    ) else {
        return Err(LeaveAlone {
            subject: id.to_string(),
            reason: format!(
                "not an image create-image made for {} (no {} lineage); left alone",
                config.deployment,
                key::SOURCE_INSTANCE
            ),
        });
    };
    if image.state != ImageState::Failed {
        return Err(LeaveAlone {
            subject: instance.to_owned(),
            reason: format!(
                "the image is {}, not failed; nothing to clean up",
                image.state.as_str()
            ),
        });
    }
    Ok(MadeImage {
        instance: instance.to_owned(),
        schedule: schedule.to_owned(),
        slot: slot.to_owned(),
    })
}

/// What the failed-image clean-up does about one failed image (a dry run prints it).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedImagePlan {
    pub image: ImageId,
    /// The instance the image was made of: the subject of the `failed` report item.
    pub instance: String,
    /// The image's name, the error, and the command that runs the slot again.
    pub reason: String,
    /// Leftover snapshots to delete once the image is deregistered: of its lineage and
    /// slot, ours and unused ([`crate::cleanup::plan::ours_and_unused`], the decision
    /// cleanup's orphans make).
    pub snapshots: Vec<SnapshotId>,
}

/// Step 2: the clean-up of a failed image, over the slot's snapshots and images (read in
/// the image's region). A snapshot goes when it is the image's own or of the same lineage,
/// ours by tag, and used by no other image of the slot that is still alive.
pub fn failed_image_plan(
    image: &Image,
    made: &MadeImage,
    error: Option<&str>,
    slot_snapshots: &[Snapshot],
    slot_images: &[Image],
    config: &Config,
) -> FailedImagePlan {
    let retry = match parse_rfc3339(&made.slot) {
        Some(t) => format!(
            "amictl create-images --schedule {} --slot {}",
            made.schedule,
            rfc3339(t)
        ),
        None => format!("amictl create-images --schedule {}", made.schedule),
    };
    let users = |snapshot: &SnapshotId| -> u32 {
        let n = slot_images
            .iter()
            .filter(|i| {
                i.id != image.id
                    && !matches!(i.state, ImageState::Failed | ImageState::Deregistered)
            })
            .filter(|i| i.snapshot_ids().any(|s| s == snapshot))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let own: BTreeSet<&SnapshotId> = image.snapshot_ids().collect();
    let snapshots = slot_snapshots
        .iter()
        .filter(|s| {
            own.contains(&s.id)
                || (s.tags.get(key::SOURCE_INSTANCE) == Some(&made.instance)
                    && s.tags.get(key::SCHEDULE) == Some(&made.schedule))
        })
        .filter(|s| ours_and_unused(s, &config.deployment, users(&s.id)))
        .map(|s| s.id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    FailedImagePlan {
        image: image.id.clone(),
        instance: made.instance.clone(),
        reason: format!(
            "{} ended failed: {}; its snapshots are cleaned up and the slot can be retried with {retry}",
            image.name,
            error.unwrap_or("no error message")
        ),
        snapshots,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
