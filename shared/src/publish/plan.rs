//! The pure publish decision for one region: [`plan`] over an [`Inventory`] gives a
//! [`RegionPlan`]: per named lineage a [`ParameterAction`] on its latest-image parameter,
//! per tracked launch template a [`TemplateAction`].
//!
//! What a lineage's parameter should hold (level-triggered: the same answer whatever event
//! or run asks, so a lost, late or duplicated event changes nothing):
//! - **pinned** (`/…/<lineage>/pinned` exists, written by `amictl rollback`): the pinned
//!   image, while it is an available sealed image of the lineage in the region; a newer
//!   image is `held`. A pin naming anything else is refused and the parameter left alone.
//! - else **the newest publishable image**: sealed, of the lineage (EC2's
//!   `SourceInstanceId`, or the sealed claim of a replica), `available`, with an
//!   `ami-lifecycle:consistency` in `PUBLISH_CONSISTENCY`, newest by retention time (the
//!   slot, never later than creation; ties: the smaller id, as [`crate::lineage`] ranks).
//! - **Monotonic**: a value that is still an available image of the lineage and at least as
//!   new is never replaced by an older one (a late replica of an older slot, a level that
//!   left `PUBLISH_CONSISTENCY`). Only a pin moves a parameter back.
//!
//! A tracked template (`ami-lifecycle:track=<lineage>`) follows what its lineage's
//! parameter will hold: a new version from its default version with only the image
//! changed, made the default with `ami-lifecycle:track-default=true`.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::names::LineageNames;
use super::{latest_parameter, pin_parameter, slot_label, VERSION_DESCRIPTION_PREFIX};
use crate::config::Config;
use crate::lineage::{retention_time, Lineage};
use crate::model::{Image, ImageId, ImageState, InstanceId, Region};
use crate::ports::{ParameterValue, TrackedTemplate};
use crate::retention::newest_first;
use crate::tags::key;
use crate::time_util::rfc3339;

/// What the planner sees of one region.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub region: Region,
    /// The deployment's sealed images in the region (any state; only instance lineages count).
    pub images: Vec<Image>,
    /// The deployment's parameters in the region (`latest` and `pinned`), by name.
    pub parameters: BTreeMap<String, ParameterValue>,
    /// Launch templates tagged `ami-lifecycle:track`.
    pub templates: Vec<TrackedTemplate>,
}

/// Which lineages a run is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// One lineage, by readable name.
    Lineage(String),
}

impl Scope {
    fn covers(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Lineage(n) => n == name,
        }
    }
}

/// A publishable image and what the parameter says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub image: ImageId,
    /// `slot-YYYYMMDDTHHMMZ`, the label of the version.
    pub label: String,
    /// The parameter's description.
    pub description: String,
}

/// What to do with one lineage's latest-image parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterAction {
    /// Write a new version. `previous`: the value it replaces.
    Publish {
        publication: Publication,
        previous: Option<String>,
        why: String,
    },
    /// The parameter already holds what it should. `label`: written recently (within
    /// [`LABEL_CHECK_WINDOW`]), so its version may lack its slot label (SSM validated the
    /// value after the run that wrote it, or the run stopped before labelling): check it.
    Unchanged {
        image: ImageId,
        why: String,
        label: Option<(i64, String)>,
    },
    /// The parameter exists with another data type than `aws:ec2:image` (made by hand or
    /// another tool): SSM cannot change a data type, so nothing is written.
    WrongType { data_type: String, why: String },
    /// Pinned: the parameter holds the pinned image; `newest` is not published.
    Held { pinned: ImageId, newest: ImageId },
    /// No image of the lineage in the region can be published (reported only when the
    /// lineage has images there).
    Nothing { why: String },
    /// The pin names no available sealed image of the lineage: nothing written.
    BadPin { pinned: String, why: String },
}

impl ParameterAction {
    /// The image the parameter holds once the action is applied.
    pub fn wanted(&self) -> Option<&ImageId> {
        match self {
            Self::Publish { publication, .. } => Some(&publication.image),
            Self::Unchanged { image, .. } => Some(image),
            Self::Held { pinned, .. } => Some(pinned),
            Self::Nothing { .. } | Self::BadPin { .. } | Self::WrongType { .. } => None,
        }
    }
}

/// One lineage's decision in the region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineagePlan {
    pub lineage: String,
    pub instance: InstanceId,
    pub parameter: String,
    pub action: ParameterAction,
}

/// What to do with one tracked launch template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateAction {
    /// A new version from `source_version` with `image`; made the default when `make_default`.
    NewVersion {
        source_version: i64,
        image: ImageId,
        make_default: bool,
        description: String,
        token: String,
    },
    /// The latest version (the suite's) already has the image: make it the default.
    SetDefault {
        version: i64,
        image: ImageId,
    },
    Unchanged {
        why: String,
    },
    /// The track tag names no lineage the suite can publish.
    Refused {
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePlan {
    pub template: String,
    pub name: String,
    pub lineage: String,
    pub action: TemplateAction,
}

/// The plan of one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionPlan {
    pub lineages: Vec<LineagePlan>,
    pub templates: Vec<TemplatePlan>,
}

/// The lineage-relevant facts of one sealed image.
struct Member<'a> {
    image: &'a Image,
    time: i64,
}

/// The instance whose lineage a sealed image belongs to.
pub(super) fn instance_of(image: &Image) -> Option<InstanceId> {
    match Lineage::of(image) {
        Lineage::Instance { instance, .. } => Some(InstanceId::new(&instance)),
        _ => None,
    }
}

/// Whether an image may be published: available, and consistent enough.
pub fn publishable(image: &Image, config: &Config) -> bool {
    image.state == ImageState::Available
        && image
            .tag(key::CONSISTENCY)
            .is_some_and(|c| config.publish_consistency.iter().any(|ok| ok == c.trim()))
}

/// The slot an image stands for, as its label and for people.
pub fn slot_of(image: &Image) -> time::OffsetDateTime {
    crate::lineage::to_time(retention_time(image))
}

/// The publication of `image` for `lineage`.
pub fn publication(
    image: &Image,
    lineage: &str,
    instance: &InstanceId,
    config: &Config,
    pinned: bool,
) -> Publication {
    let slot = slot_of(image);
    let mut description = format!(
        "ami-lifecycle {}: latest image of {lineage} (instance {instance}), slot {}, {} in {}",
        config.deployment,
        rfc3339(slot),
        image.id,
        image.region
    );
    if pinned {
        description.push_str("; pinned by amictl rollback (amictl unpin to publish newer images)");
    }
    Publication {
        image: image.id.clone(),
        label: slot_label(slot),
        description,
    }
}

/// How long after a write the publisher checks that the version carries its slot label.
pub const LABEL_CHECK_WINDOW: time::Duration = time::Duration::hours(2);

/// The plan for one region at `now`.
pub fn plan(
    inv: &Inventory,
    names: &LineageNames,
    config: &Config,
    scope: &Scope,
    now: time::OffsetDateTime,
) -> RegionPlan {
    let mut members: BTreeMap<InstanceId, Vec<Member<'_>>> = BTreeMap::new();
    for image in &inv.images {
        if image.state == ImageState::Deregistered {
            continue;
        }
        if let Some(instance) = instance_of(image) {
            members.entry(instance).or_default().push(Member {
                image,
                time: retention_time(image),
            });
        }
    }
    let mut out = RegionPlan::default();
    let mut wanted: BTreeMap<String, Option<ImageId>> = BTreeMap::new();
    for (instance, lineage) in names.iter() {
        if !scope.covers(lineage) {
            continue;
        }
        let parameter = latest_parameter(&config.deployment, lineage);
        let latest = inv.parameters.get(&parameter);
        let pin = inv
            .parameters
            .get(&pin_parameter(&config.deployment, lineage));
        let mine = members.get(instance).map_or(&[][..], Vec::as_slice);
        if mine.is_empty() && latest.is_none() && pin.is_none() {
            // Known, with nothing here yet: its templates wait, they are not refused.
            wanted.insert(lineage.to_owned(), None);
            continue;
        }
        let mut action = match latest.and_then(|l| l.data_type.as_deref()) {
            Some(t) if t != "aws:ec2:image" => ParameterAction::WrongType {
                data_type: t.to_owned(),
                why: format!(
                    "{parameter} exists with data type {t}, and SSM cannot change a parameter to aws:ec2:image (launch templates cannot resolve it either): delete it (aws ssm delete-parameter --name {parameter} --region {}) and the next run creates it",
                    inv.region
                ),
            },
            _ => decide(mine, latest, pin, lineage, instance, config),
        };
        // A recent write may lack its label: the image's slot label goes on its version.
        if let (ParameterAction::Unchanged { image, label, .. }, Some(l)) = (&mut action, latest) {
            let recent = l.modified.is_some_and(|m| now - m <= LABEL_CHECK_WINDOW);
            if recent && l.value.trim() == image.as_str() {
                if let Some(m) = mine.iter().find(|m| &m.image.id == image) {
                    *label = Some((l.version, slot_label(slot_of(m.image))));
                }
            }
        }
        wanted.insert(lineage.to_owned(), action.wanted().cloned());
        out.lineages.push(LineagePlan {
            lineage: lineage.to_owned(),
            instance: instance.clone(),
            parameter,
            action,
        });
    }
    for t in &inv.templates {
        let Some(lineage) = t.tags.get(key::TRACK).map(|v| v.trim().to_owned()) else {
            continue;
        };
        if !scope.covers(&lineage) {
            continue;
        }
        let action = match wanted.get(&lineage) {
            Some(Some(image)) => follow(t, image, &lineage, config),
            Some(None) => TemplateAction::Unchanged {
                why: format!("lineage {lineage} has nothing to publish in {}", inv.region),
            },
            None => TemplateAction::Refused {
                why: unknown_lineage(&lineage, names),
            },
        };
        out.templates.push(TemplatePlan {
            template: t.id.clone(),
            name: t.name.clone(),
            lineage,
            action,
        });
    }
    out
}

fn unknown_lineage(lineage: &str, names: &LineageNames) -> String {
    if let Some(r) = names.refusal_named(lineage) {
        return format!("{}={lineage}: {}", key::TRACK, r.problem);
    }
    let known: Vec<&str> = names.iter().map(|(_, n)| n).take(10).collect();
    format!(
        "{}={lineage:?} names no lineage with images here (lineages: {}); set it to a lineage name",
        key::TRACK,
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// One lineage's parameter action.
fn decide(
    mine: &[Member<'_>],
    latest: Option<&ParameterValue>,
    pin: Option<&ParameterValue>,
    lineage: &str,
    instance: &InstanceId,
    config: &Config,
) -> ParameterAction {
    let current = latest.map(|p| p.value.trim());
    let newest = mine
        .iter()
        .filter(|m| publishable(m.image, config))
        .min_by(|a, b| newest_first((a.time, &a.image.id), (b.time, &b.image.id)));
    if let Some(pin) = pin {
        let pinned = pin.value.trim();
        let Some(target) = mine
            .iter()
            .find(|m| m.image.id.as_str() == pinned && m.image.state == ImageState::Available)
        else {
            return ParameterAction::BadPin {
                pinned: pinned.to_owned(),
                why: format!(
                    "pinned to {pinned:?}, which is not an available image of {lineage} here: nothing published; `amictl rollback` to another slot or `amictl unpin`"
                ),
            };
        };
        if current != Some(pinned) {
            return ParameterAction::Publish {
                publication: publication(target.image, lineage, instance, config, true),
                previous: current.map(str::to_owned),
                why: "pinned by amictl rollback".to_owned(),
            };
        }
        return match newest {
            Some(n) if n.time > target.time => ParameterAction::Held {
                pinned: target.image.id.clone(),
                newest: n.image.id.clone(),
            },
            _ => ParameterAction::Unchanged {
                image: target.image.id.clone(),
                why: "pinned".to_owned(),
                label: None,
            },
        };
    }
    let Some(newest) = newest else {
        let levels = config.publish_consistency.join(",");
        return ParameterAction::Nothing {
            why: match current {
                Some(c) => format!("no available image of consistency {levels}; left at {c}"),
                None => {
                    format!("no available image of consistency {levels} (PUBLISH_CONSISTENCY) yet")
                }
            },
        };
    };
    if current == Some(newest.image.id.as_str()) {
        return ParameterAction::Unchanged {
            image: newest.image.id.clone(),
            why: "already the newest publishable image".to_owned(),
            label: None,
        };
    }
    // Never backwards: the current value stays while it is an available image of the
    // lineage at least as new (a late replica of an older slot changes nothing).
    if let Some(held) = current.and_then(|c| {
        mine.iter().find(|m| {
            m.image.id.as_str() == c
                && m.image.state == ImageState::Available
                && m.time >= newest.time
        })
    }) {
        return ParameterAction::Unchanged {
            image: held.image.id.clone(),
            why: format!("newer than {} (never moved backwards)", newest.image.id),
            label: None,
        };
    }
    let why = match current {
        None => "first image of the lineage here".to_owned(),
        Some(c) if mine.iter().any(|m| m.image.id.as_str() == c) => format!("newer than {c}"),
        Some(c) => format!("{c} is not an available image of {lineage} here"),
    };
    ParameterAction::Publish {
        publication: publication(newest.image, lineage, instance, config, false),
        previous: current.map(str::to_owned),
        why,
    }
}

/// A tracked template's action, given the image its lineage's parameter will hold.
fn follow(t: &TrackedTemplate, image: &ImageId, lineage: &str, config: &Config) -> TemplateAction {
    if t.default_image
        .as_deref()
        .is_some_and(|i| i.starts_with("resolve:ssm:"))
    {
        return TemplateAction::Unchanged {
            why: format!(
                "its default version resolves {} at launch: it follows the parameter by itself",
                t.default_image.as_deref().unwrap_or_default()
            ),
        };
    }
    let make_default = t
        .tags
        .get(key::TRACK_DEFAULT)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let is = |v: &Option<String>| v.as_deref() == Some(image.as_str());
    if is(&t.default_image) {
        return TemplateAction::Unchanged {
            why: format!("default version {} has {image}", t.default_version),
        };
    }
    let ours_latest = t
        .latest_description
        .as_deref()
        .is_some_and(|d| d.starts_with(VERSION_DESCRIPTION_PREFIX));
    if is(&t.latest_image) && t.latest_version != t.default_version {
        if !make_default {
            return TemplateAction::Unchanged {
                why: format!("latest version {} has {image}", t.latest_version),
            };
        }
        if ours_latest {
            return TemplateAction::SetDefault {
                version: t.latest_version,
                image: image.clone(),
            };
        }
    }
    let description = format!(
        "{VERSION_DESCRIPTION_PREFIX} {}: {lineage} -> {image} (from version {})",
        config.deployment, t.default_version
    );
    TemplateAction::NewVersion {
        source_version: t.default_version,
        image: image.clone(),
        make_default,
        description: description.chars().take(255).collect(),
        token: template_token(&t.id, t.default_version, image),
    }
}

/// The `ClientToken` of a new version: the same template, source version and image
/// always ask for the same version (a retried or duplicated run makes one).
pub fn template_token(template: &str, source_version: i64, image: &ImageId) -> String {
    let mut h = Sha256::new();
    h.update(format!("{template}\n{source_version}\n{image}").as_bytes());
    let hex: String = h.finalize()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("amil-{hex}")
}
