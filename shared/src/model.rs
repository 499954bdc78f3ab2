//! Domain types: identifiers and the inventory records planners reason about.
//!
//! Identifiers are newtypes so a snapshot id can never be passed where an image id is
//! expected. Records ([`Instance`], [`Image`], [`Snapshot`]) are plain data copied out of
//! the cloud at one moment: planners take them by reference and never call AWS.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

id_type!(
    /// An AWS region name such as `us-east-1`.
    Region
);
id_type!(
    /// An AMI id, `ami-…`.
    ImageId
);
id_type!(
    /// An EC2 instance id, `i-…`.
    InstanceId
);
id_type!(
    /// An EBS snapshot id, `snap-…`.
    SnapshotId
);
id_type!(
    /// A schedule name such as `daily`: which EventBridge schedule images an instance.
    ScheduleName
);
id_type!(
    /// A device name such as `/dev/sdf` or `/dev/xvda`.
    DeviceName
);
id_type!(
    /// A KMS key id, ARN or alias, as AWS reported or the operator configured it.
    KeyRef
);

/// A value that is not an AMI id, worded as EC2 words `InvalidAMIID.Malformed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image id {value:?} (expecting \"ami-...\": ami- and hex digits)")]
pub struct BadImageId {
    /// The value, cut to 80 characters.
    pub value: String,
}

impl ImageId {
    /// The longest id accepted (EC2's are 12 or 21 characters; 64 leaves room for growth).
    pub const MAX_LEN: usize = 64;

    /// Accepts `ami-` followed by hexadecimal digits, at most [`ImageId::MAX_LEN`]
    /// characters in all: the one check for ids that come from outside (events, direct
    /// invocations, the command line).
    pub fn parse(value: &str) -> Result<Self, BadImageId> {
        let ok = value.len() <= Self::MAX_LEN
            && value
                .strip_prefix("ami-")
                .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(BadImageId {
                value: crate::values::truncate(value, 80),
            })
        }
    }
}

/// A 12-digit AWS account id. Only constructed through [`AccountId::parse`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// Accepts exactly twelve ASCII digits.
    pub fn parse(value: &str) -> Option<Self> {
        let v = value.trim();
        (v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())).then(|| Self(v.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Tags of a resource, ordered so reports and plans print deterministically.
pub type Tags = BTreeMap<String, String>;

/// EC2 instance state, as the scheduler cares about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
    Unknown,
}

impl InstanceState {
    pub fn from_aws(name: &str) -> Self {
        match name {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            _ => Self::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Unknown => "unknown",
        }
    }
}

/// One EBS volume attached to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedVolume {
    pub device: DeviceName,
    pub volume_id: String,
}

/// An EC2 instance with what the suite needs to image it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: InstanceId,
    pub region: Region,
    pub state: InstanceState,
    pub tags: Tags,
    /// The root device, which can never be left out of an image.
    pub root_device: Option<DeviceName>,
    pub volumes: Vec<AttachedVolume>,
    /// The image the instance was launched from (a reference that keeps that image alive).
    pub image_id: Option<ImageId>,
    /// Its root device is an instance store (`RootDeviceType=instance-store`): CreateImage
    /// cannot image it.
    #[serde(default)]
    pub instance_store: bool,
    /// When it was launched (`LaunchTime`): a slot before it cannot have been missed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub launched: Option<OffsetDateTime>,
}

/// What EC2's status checks say of an instance (`DescribeInstanceStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceHealth {
    pub id: InstanceId,
    pub state: InstanceState,
    /// Running, with both the system and the instance status check `ok`.
    pub healthy: bool,
    /// `system ok, instance initializing`, as EC2 words it, for the report.
    pub summary: String,
}

impl Instance {
    pub fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }
}

/// AMI state as EC2 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageState {
    Pending,
    Available,
    Failed,
    Deregistered,
    Disabled,
    Invalid,
    Transient,
    Error,
    Unknown,
}

impl ImageState {
    pub fn from_aws(name: &str) -> Self {
        match name {
            "pending" => Self::Pending,
            "available" => Self::Available,
            "failed" => Self::Failed,
            "deregistered" => Self::Deregistered,
            "disabled" => Self::Disabled,
            "invalid" => Self::Invalid,
            "transient" => Self::Transient,
            "error" => Self::Error,
            _ => Self::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Available => "available",
            Self::Failed => "failed",
            Self::Deregistered => "deregistered",
            Self::Disabled => "disabled",
            Self::Invalid => "invalid",
            Self::Transient => "transient",
            Self::Error => "error",
            Self::Unknown => "unknown",
        }
    }
}

/// One block device mapping of an image that is backed by a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDisk {
    pub device: DeviceName,
    pub snapshot_id: SnapshotId,
    pub size_gib: u64,
    pub encrypted: bool,
    /// Key of the snapshot, when AWS reports it on the mapping.
    pub kms_key: Option<KeyRef>,
}

/// An AMI and the facts the planners need about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: ImageId,
    pub region: Region,
    pub name: String,
    pub state: ImageState,
    pub owner: Option<AccountId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    pub tags: Tags,
    pub disks: Vec<ImageDisk>,
    pub public: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deprecation_time: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_launched: Option<OffsetDateTime>,
    pub deregistration_protected: bool,
    /// For copies: the image and region they were copied from.
    pub source: Option<(ImageId, Region)>,
    /// Billing product codes (Marketplace, Windows): such images cannot be copied across accounts.
    pub billing_products: Vec<String>,
    /// EC2's `SourceInstanceId`: the instance CreateImage imaged (set by AWS, immutable;
    /// absent on copies and registered images).
    #[serde(default)]
    pub source_instance: Option<InstanceId>,
}

impl Image {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
    pub fn snapshot_ids(&self) -> impl Iterator<Item = &SnapshotId> {
        self.disks.iter().map(|d| &d.snapshot_id)
    }
    pub fn size_gib(&self) -> u64 {
        self.disks.iter().map(|d| d.size_gib).sum()
    }
}

/// An EBS snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub region: Region,
    pub tags: Tags,
    pub size_gib: u64,
    pub encrypted: bool,
    pub kms_key: Option<KeyRef>,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// `FullSnapshotSizeInBytes`: the size of every block written to the volume when the
    /// snapshot was taken, where EC2 reports it (what cleanup's savings count; the volume
    /// size otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_size_bytes: Option<u64>,
}

/// Who may launch an image or create volumes from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Grantee {
    Account(AccountId),
    Organization(String),
    OrganizationalUnit(String),
    Public,
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(a) => write!(f, "{a}"),
            Self::Organization(arn) | Self::OrganizationalUnit(arn) => f.write_str(arn),
            Self::Public => f.write_str("all"),
        }
    }
}

/// A KMS key as seen from its region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub arn: String,
    pub enabled: bool,
    /// `true` for AWS managed keys such as `aws/ebs`, which cannot be shared.
    pub aws_managed: bool,
}

/// A KMS grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGrant {
    pub grant_id: String,
    pub key_arn: String,
    pub grantee: String,
    pub name: Option<String>,
    pub operations: Vec<String>,
}

/// What references an image (so it must not be deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReference {
    pub image_id: ImageId,
    /// `ec2:Instance`, `ec2:LaunchTemplate`, `ssm:Parameter`, `imagebuilder:…`.
    pub resource_type: String,
    pub arn: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_parse_only_in_the_ami_shape_and_errors_say_what_is_expected() {
        for ok in ["ami-0123456789abcdef0", "ami-12345678", "ami-ABCDEF12"] {
            assert_eq!(ImageId::parse(ok).map(|i| i.to_string()), Ok(ok.to_owned()));
        }
        let long = format!("ami-{}", "0".repeat(61));
        for bad in [
            "",
            "ami-",
            "ami-xyz",
            "snap-0123",
            " ami-1234",
            "AMI-1234",
            &long,
        ] {
            match ImageId::parse(bad) {
                Ok(id) => panic!("{bad:?} parsed as {id}"),
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.contains("(expecting \"ami-...\""), "{text}");
                    assert!(text.chars().count() < 200, "{text}");
                }
            }
        }
    }
}
