//! The tag contract: every `ami-lifecycle:` key, and the one parser for their values.
//!
//! Instance tags opt in and override ([`InstanceSettings::from_tags`]); the suite writes
//! the lineage tags on what it makes ([`key::MANAGED_BY`], [`key::SLOT`], …). Every parse
//! error is a [`TagError`] naming the resource, the key, the value and the fix, so a bad
//! tag is reported against its instance or image and the rest of a run proceeds.

use std::fmt;

use crate::model::{DeviceName, Region, ScheduleName, Tags};
use crate::retention::{RetentionError, RetentionRule};

/// The prefix of every tag key the suite reads or writes.
pub const PREFIX: &str = "ami-lifecycle:";

/// Tag keys. Instance tags (read): `SCHEDULE` … `EXCLUDE_DEVICES`; image tags (written):
/// `MANAGED_BY` … `SHARE_GRANTED`; `KEEP` is read on images.
pub mod key {
    pub const SCHEDULE: &str = "ami-lifecycle:schedule";
    pub const REBOOT: &str = "ami-lifecycle:reboot";
    pub const REBOOT_GROUP: &str = "ami-lifecycle:reboot-group";
    pub const RETAIN: &str = "ami-lifecycle:retain";
    /// Per-region retention (`eu-west-1=count=3;us-west-2=days=90`), read on the lineage's
    /// head image (copied there from the instance): [`crate::lineage`].
    pub const RETAIN_IN: &str = "ami-lifecycle:retain-in";
    pub const REPLICATE_TO: &str = "ami-lifecycle:replicate-to";
    pub const SHARE_WITH: &str = "ami-lifecycle:share-with";
    pub const EXCLUDE_DEVICES: &str = "ami-lifecycle:exclude-devices";
    pub const KEEP: &str = "ami-lifecycle:keep";
    pub const MANAGED_BY: &str = "ami-lifecycle:managed-by";
    pub const SOURCE_INSTANCE: &str = "ami-lifecycle:source-instance";
    pub const SLOT: &str = "ami-lifecycle:slot";
    pub const CONSISTENCY: &str = "ami-lifecycle:consistency";
    pub const SOURCE_IMAGE: &str = "ami-lifecycle:source-image";
    pub const SOURCE_REGION: &str = "ami-lifecycle:source-region";
    pub const SOURCE_ACCOUNT: &str = "ami-lifecycle:source-account";
    pub const SHARE_STATUS: &str = "ami-lifecycle:share-status";
    pub const SHARE_GRANTED: &str = "ami-lifecycle:share-granted";
    pub const REPLICATE_STATUS: &str = "ami-lifecycle:replicate-status";
    /// The seal ([`crate::seal`]): proof the suite made the image (or snapshot).
    pub const SEAL: &str = "ami-lifecycle:seal";
    /// On snapshots: the name of the image they were made for (what their seal covers).
    pub const IMAGE_NAME: &str = "ami-lifecycle:image-name";
    /// On an instance: the readable name of its lineage in the latest-image parameter's
    /// path (`/ami-lifecycle/<deployment>/<lineage-name>/latest`); else its `Name` tag.
    pub const LINEAGE_NAME: &str = "ami-lifecycle:lineage-name";
    /// On a launch template: the lineage whose latest image it follows (new versions).
    pub const TRACK: &str = "ami-lifecycle:track";
    /// On a launch template: `true` makes each version the publisher adds the default.
    pub const TRACK_DEFAULT: &str = "ami-lifecycle:track-default";
    /// On an instance: how its images are made consistent: `reboot` (default), `quiesce`
    /// (freeze through Systems Manager, no reboot) or `no-reboot`.
    pub const METHOD: &str = "ami-lifecycle:method";
    /// On an instance: the mount points the quiesce document freezes (never `/`).
    pub const FREEZE_MOUNTS: &str = "ami-lifecycle:freeze-mounts";
}

/// The suite's state tags: what one image says about itself (its seal, its grant record,
/// its share and replicate status). A copy never carries them: they describe the image
/// they are on, and a copied seal or record would only fail verification or mislead.
pub fn is_state_key(tag_key: &str) -> bool {
    tag_key == key::SEAL
        || tag_key == key::SHARE_STATUS
        || tag_key == key::REPLICATE_STATUS
        || tag_key == key::SHARE_GRANTED
        || tag_key
            .strip_prefix(key::SHARE_GRANTED)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A tag value that does not follow the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TagError {
    pub key: String,
    pub value: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tag {}={:?}: {}; {}",
            self.key, self.value, self.problem, self.fix
        )
    }
}

impl TagError {
    pub fn new(key: &str, value: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value: truncate(value, 80),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// A `RETAIN`-language value that does not parse, reported against tag `key`.
    pub fn from_retention(key: &str, e: &RetentionError) -> Self {
        Self::new(
            key,
            &e.value,
            e.problem.clone(),
            "use count=7, days=30, count=7,days=30 or daily=7,weekly=4,monthly=12",
        )
    }
}

// The list and echo helpers are the value languages' own (`values.rs`); re-exported
// because every tag parser uses them.
pub use crate::values::{split_list, truncate};

/// `true`/`false` (any case, also yes/no).
pub fn parse_bool(key: &str, value: &str) -> Result<bool, TagError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(TagError::new(
            key,
            value,
            "expected true or false",
            "set it to true or false",
        )),
    }
}

/// Schedule names: letters, digits, `-` and `_`, 1-32 characters.
pub fn parse_schedule_name(key: &str, value: &str) -> Result<ScheduleName, TagError> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(ScheduleName::new(value))
    } else {
        Err(TagError::new(
            key,
            value,
            "a schedule name is 1-32 letters, digits, '-' or '_'",
            "list schedule names separated by commas, e.g. daily,weekly",
        ))
    }
}

/// A list of schedule names (at least one).
pub fn parse_schedules(key: &str, value: &str) -> Result<Vec<ScheduleName>, TagError> {
    let mut out = Vec::new();
    for item in split_list(value) {
        let name = parse_schedule_name(key, item).map_err(|e| TagError {
            value: truncate(value, 80),
            problem: format!("{:?}: {}", truncate(item, 80), e.problem),
            ..e
        })?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    if out.is_empty() {
        return Err(TagError::new(
            key,
            value,
            "no schedule named",
            "list at least one schedule, e.g. daily",
        ));
    }
    Ok(out)
}

/// A region name shape check (`xx-name-N`, also `us-gov-west-1`); existence is not checked here.
pub fn is_region_name(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
}

/// A list of regions (may be empty only if `allow_empty`).
pub fn parse_regions(key: &str, value: &str) -> Result<Vec<Region>, TagError> {
    let mut out: Vec<Region> = Vec::new();
    for item in split_list(value) {
        if !is_region_name(item) {
            return Err(TagError::new(
                key,
                value,
                format!("{:?} is not a region name", truncate(item, 80)),
                "list regions such as eu-west-1,us-east-2",
            ));
        }
        let r = Region::new(item);
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Device names such as `/dev/sdf` or `xvdg`.
pub fn parse_devices(key: &str, value: &str) -> Result<Vec<DeviceName>, TagError> {
    let mut out: Vec<DeviceName> = Vec::new();
    for item in split_list(value) {
        let valid = item.len() <= 64
            && item
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'_' || b == b'-');
        if !valid {
            return Err(TagError::new(
                key,
                value,
                format!("{:?} is not a device name", truncate(item, 80)),
                "list device names such as /dev/sdf,/dev/sdg",
            ));
        }
        let d = DeviceName::new(item);
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// How consistent an image's filesystem is, written as [`key::CONSISTENCY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// The instance was rebooted for the image.
    Rebooted,
    /// The instance was stopped: already consistent without a reboot.
    Stopped,
    /// Opted out of the reboot (`ami-lifecycle:reboot=false`): the filesystem may be mid-write.
    CrashConsistent,
    /// Quiesced through Systems Manager (the instance's hooks ran and its filesystems were
    /// frozen while CreateImage started), without a reboot.
    ApplicationConsistent,
}

impl Consistency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rebooted => "rebooted",
            Self::Stopped => "stopped",
            Self::CrashConsistent => "crash-consistent",
            Self::ApplicationConsistent => "application-consistent",
        }
    }
}

/// How an instance's images are made consistent (`ami-lifecycle:method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Reboot (CreateImage without `NoReboot`): the default.
    Reboot,
    /// Freeze the instance's filesystems through Systems Manager, image without a reboot,
    /// thaw.
    Quiesce,
    /// Image without a reboot: crash-consistent.
    NoReboot,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reboot => "reboot",
            Self::Quiesce => "quiesce",
            Self::NoReboot => "no-reboot",
        }
    }
}

/// The most mount points one instance may freeze.
pub const MAX_FREEZE_MOUNTS: usize = 16;

/// `ami-lifecycle:freeze-mounts`: absolute mount points of safe characters, never `/`
/// (freezing the root filesystem would freeze the agent that must thaw it).
pub fn parse_freeze_mounts(key: &str, value: &str) -> Result<Vec<String>, TagError> {
    let fix = "list mount points such as /data,/var/lib/mysql (never /)";
    let mut out: Vec<String> = Vec::new();
    for item in split_list(value) {
        let item = item.trim_end_matches('/');
        if item.is_empty() {
            return Err(TagError::new(
                key,
                value,
                "/ (the root filesystem) cannot be frozen: the agent that thaws it runs there",
                fix,
            ));
        }
        let valid = item.starts_with('/')
            && item.len() <= 256
            && !item.split('/').any(|part| part == "..")
            && item
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
        if !valid {
            return Err(TagError::new(
                key,
                value,
                format!("{:?} is not an absolute mount point", truncate(item, 80)),
                fix,
            ));
        }
        if !out.iter().any(|m| m == item) {
            out.push(item.to_owned());
        }
    }
    if out.len() > MAX_FREEZE_MOUNTS {
        return Err(TagError::new(
            key,
            value,
            format!("{} mount points, more than {MAX_FREEZE_MOUNTS}", out.len()),
            fix,
        ));
    }
    Ok(out)
}

/// What an instance's tags ask of the suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettings {
    pub schedules: Vec<ScheduleName>,
    /// The method is `reboot` (kept for the callers that only ask "may it reboot?").
    pub reboot: bool,
    pub method: Method,
    /// `ami-lifecycle:freeze-mounts` (for `quiesce`).
    pub freeze_mounts: Vec<String>,
    pub reboot_group: Option<String>,
    pub retain: Option<RetentionRule>,
    pub replicate_to: Option<Vec<Region>>,
    pub share_with: Option<String>,
    pub exclude_devices: Vec<DeviceName>,
}

impl InstanceSettings {
    /// Parses every contract tag of an instance; the first bad value is the error.
    /// An instance without the schedule tag has no schedules (it is not opted in).
    pub fn from_tags(tags: &Tags) -> Result<Self, TagError> {
        let get = |k: &str| tags.get(k).map(String::as_str);
        let schedules = match get(key::SCHEDULE) {
            Some(v) => parse_schedules(key::SCHEDULE, v)?,
            None => Vec::new(),
        };
        let reboot_tag = match get(key::REBOOT) {
            Some(v) => Some(parse_bool(key::REBOOT, v)?),
            None => None,
        };
        let method = match (
            get(key::METHOD).map(|v| v.trim().to_ascii_lowercase()),
            reboot_tag,
        ) {
            (None, Some(false)) => Method::NoReboot,
            (None, _) => Method::Reboot,
            (Some(m), r) => {
                let method = match m.as_str() {
                    "reboot" => Method::Reboot,
                    "quiesce" => Method::Quiesce,
                    "no-reboot" => Method::NoReboot,
                    _ => {
                        return Err(TagError::new(
                            key::METHOD,
                            get(key::METHOD).unwrap_or_default(),
                            "not a method",
                            "set it to reboot, quiesce or no-reboot",
                        ))
                    }
                };
                // `reboot=false` said "never reboot": a method that reboots contradicts it.
                if r == Some(false) && method == Method::Reboot {
                    return Err(TagError::new(
                        key::METHOD,
                        "reboot",
                        format!("contradicts {}=false", key::REBOOT),
                        format!(
                            "remove {} or set {} to no-reboot or quiesce",
                            key::REBOOT,
                            key::METHOD
                        ),
                    ));
                }
                method
            }
        };
        let reboot = method == Method::Reboot;
        let freeze_mounts = match get(key::FREEZE_MOUNTS) {
            Some(v) => parse_freeze_mounts(key::FREEZE_MOUNTS, v)?,
            None => Vec::new(),
        };
        let reboot_group = match get(key::REBOOT_GROUP) {
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(v.trim().to_owned()),
            None => None,
        };
        let retain = match get(key::RETAIN) {
            Some(v) => Some(
                RetentionRule::parse(v).map_err(|e| TagError::from_retention(key::RETAIN, &e))?,
            ),
            None => None,
        };
        // Carried onto the images and read there (crate::lineage); checked here so a bad
        // value is reported against its instance before any image carries it.
        if let Some(v) = get(key::RETAIN_IN) {
            crate::lineage::parse_rules_by_region(v).map_err(|e| {
                TagError::new(
                    key::RETAIN_IN,
                    v,
                    e.problem,
                    crate::lineage::RULES_BY_REGION_FORM,
                )
            })?;
        }
        let replicate_to = match get(key::REPLICATE_TO) {
            Some(v) => Some(parse_regions(key::REPLICATE_TO, v)?),
            None => None,
        };
        let exclude_devices = match get(key::EXCLUDE_DEVICES) {
            Some(v) => parse_devices(key::EXCLUDE_DEVICES, v)?,
            None => Vec::new(),
        };
        Ok(Self {
            schedules,
            reboot,
            method,
            freeze_mounts,
            reboot_group,
            retain,
            replicate_to,
            share_with: get(key::SHARE_WITH).map(str::to_owned),
            exclude_devices,
        })
    }
}

/// Tags that say an image belongs to this deployment.
pub fn is_managed_by(tags: &Tags, deployment: &str) -> bool {
    tags.get(key::MANAGED_BY).is_some_and(|v| v == deployment)
}

/// `ami-lifecycle:keep=true` protects an image from cleanup. An unparsable value also keeps:
/// when in doubt, do not delete.
pub fn is_kept(tags: &Tags) -> bool {
    tags.get(key::KEEP)
        .is_some_and(|v| parse_bool(key::KEEP, v).unwrap_or(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn untagged_instance_is_not_opted_in_and_reboots_by_default() -> Result<(), TagError> {
        let s = InstanceSettings::from_tags(&tags(&[("Name", "web")]))?;
        assert!(s.schedules.is_empty());
        assert!(s.reboot);
        assert_eq!(s.reboot_group, None);
        Ok(())
    }

    #[test]
    fn full_contract_parses() -> Result<(), TagError> {
        let s = InstanceSettings::from_tags(&tags(&[
            (key::SCHEDULE, "daily, weekly daily"),
            (key::REBOOT, "False"),
            (key::REBOOT_GROUP, "db-cluster"),
            (key::RETAIN, "count=3"),
            (key::REPLICATE_TO, "eu-west-1,us-west-2"),
            (key::SHARE_WITH, "111122223333"),
            (key::EXCLUDE_DEVICES, "/dev/sdf /dev/sdg"),
        ]))?;
        assert_eq!(
            s.schedules,
            vec![ScheduleName::new("daily"), ScheduleName::new("weekly")]
        );
        assert!(!s.reboot);
        assert_eq!(s.reboot_group.as_deref(), Some("db-cluster"));
        assert_eq!(
            s.retain,
            Some(RetentionRule::parse("count=3").map_err(|e| TagError::from_retention("x", &e))?)
        );
        assert_eq!(
            s.replicate_to,
            Some(vec![Region::new("eu-west-1"), Region::new("us-west-2")])
        );
        assert_eq!(
            s.exclude_devices,
            vec![DeviceName::new("/dev/sdf"), DeviceName::new("/dev/sdg")]
        );
        Ok(())
    }

    fn check_error(pairs: &[(&str, &str)], expected_key: &str, expected_words: &str) {
        match InstanceSettings::from_tags(&tags(pairs)) {
            Ok(s) => panic!("expected an error for {pairs:?}, got {s:?}"),
            Err(e) => {
                assert_eq!(e.key, expected_key);
                let text = e.to_string();
                assert!(
                    text.contains(expected_words),
                    "{text:?} should contain {expected_words:?}"
                );
            }
        }
    }

    #[test]
    fn bad_values_name_key_value_and_fix() {
        check_error(
            &[(key::REBOOT, "maybe")],
            key::REBOOT,
            "expected true or false",
        );
        check_error(
            &[(key::SCHEDULE, "daily ly!")],
            key::SCHEDULE,
            "\"ly!\": a schedule name",
        );
        check_error(
            &[(key::SCHEDULE, " , ")],
            key::SCHEDULE,
            "list at least one schedule",
        );
        check_error(
            &[(key::REPLICATE_TO, "eu-west-1,mars")],
            key::REPLICATE_TO,
            "\"mars\" is not a region name",
        );
        check_error(
            &[(key::EXCLUDE_DEVICES, "/dev/sd f;")],
            key::EXCLUDE_DEVICES,
            "is not a device name",
        );
        check_error(&[(key::RETAIN, "forever")], key::RETAIN, "count=7");
        check_error(
            &[(key::RETAIN_IN, "eu-west-1=often")],
            key::RETAIN_IN,
            "eu-west-1=count=3;us-west-2=days=90",
        );
        assert!(InstanceSettings::from_tags(&tags(&[(
            key::RETAIN_IN,
            "eu-west-1=count=3;us-west-2=days=90"
        )]))
        .is_ok());
    }

    #[test]
    fn region_shapes() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in ["", "us", "us-east", "US-EAST-1", "us-east-x", "us--1"] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn keep_tag_errs_on_the_side_of_keeping() {
        assert!(is_kept(&tags(&[(key::KEEP, "true")])));
        assert!(is_kept(&tags(&[(key::KEEP, "perhaps")])));
        assert!(!is_kept(&tags(&[(key::KEEP, "false")])));
        assert!(!is_kept(&tags(&[])));
    }

    #[test]
    fn long_values_are_truncated_in_errors() {
        let long = "x".repeat(500);
        let e = TagError::new(key::SHARE_WITH, &long, "bad", "fix");
        assert!(e.value.chars().count() <= 81);
    }
}
