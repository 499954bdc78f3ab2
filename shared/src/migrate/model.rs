//! What the migration planner reads: the source instance's configuration
//! ([`SourceInstance`]), the target region's network ([`TargetNetwork`]) and what the
//! operator asked for ([`Target`]). Plain data, copied out of EC2 at one moment.

use serde::Serialize;

use crate::model::{DeviceName, InstanceId, InstanceState, KeyRef, Region, Tags};

/// A subnet with the names the planner matches it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub id: String,
    pub zone: String,
    pub vpc_id: String,
    /// The subnet's `Name` tag.
    pub name: Option<String>,
    /// The `Name` tag of its VPC.
    pub vpc_name: Option<String>,
}

/// A security group with the names the planner matches it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityGroup {
    pub id: String,
    pub vpc_id: String,
    /// `GroupName` (unique within its VPC).
    pub group_name: String,
    /// The group's `Name` tag.
    pub name: Option<String>,
}

/// The instance metadata service options, carried over as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataOptions {
    /// `required` (IMDSv2 only) or `optional`.
    pub http_tokens: String,
    pub hop_limit: i32,
    pub endpoint_enabled: bool,
    pub tags_in_metadata: bool,
}

/// One EBS volume of the source, as the new instance should have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    pub device: DeviceName,
    /// `gp3`, `io2`, …
    pub volume_type: String,
    pub size_gib: u64,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub encrypted: bool,
    /// The volume's key in the source region.
    pub kms_key: Option<KeyRef>,
    pub delete_on_termination: bool,
}

/// An Elastic IP associated with the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElasticIp {
    pub allocation_id: String,
    pub public_ip: String,
}

/// The source instance and everything about it the new one must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInstance {
    pub id: InstanceId,
    pub region: Region,
    pub zone: String,
    pub state: InstanceState,
    pub instance_type: String,
    pub subnet: Subnet,
    pub security_groups: Vec<SecurityGroup>,
    /// The IAM instance profile's ARN (IAM is global: the same profile serves every region).
    pub instance_profile: Option<String>,
    pub key_name: Option<String>,
    pub tags: Tags,
    pub metadata: MetadataOptions,
    /// Detailed monitoring.
    pub monitoring: bool,
    pub volumes: Vec<VolumeSpec>,
    pub placement_group: Option<String>,
    pub private_ip: Option<String>,
    pub elastic_ip: Option<ElasticIp>,
    /// It was launched with user data (which already ran; not replayed unless asked).
    pub has_user_data: bool,
}

/// The target region's network, as far as the planner matches against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetNetwork {
    pub region: Region,
    pub subnets: Vec<Subnet>,
    pub security_groups: Vec<SecurityGroup>,
    pub key_pairs: Vec<String>,
    pub placement_groups: Vec<PlacementGroup>,
}

/// A placement group of the target region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacementGroup {
    pub name: String,
    /// `cluster`, `spread` or `partition`: a cluster group lives in one zone.
    pub strategy: String,
}

/// What the operator asked for (`amictl migrate` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `--to-region`; `None`: the source's region (a zone move).
    pub region: Option<Region>,
    /// `--to-az`.
    pub zone: Option<String>,
    /// `--subnet`.
    pub subnet: Option<String>,
    /// `--security-groups`.
    pub security_groups: Option<Vec<String>>,
    /// `--key-name`: the key pair to use where the source's is not in the target region.
    pub key_name: Option<String>,
    /// `--stop-source`.
    pub stop_source: bool,
    /// `--move-eip`.
    pub move_eip: bool,
    /// `--user-data`: replay the source's user data.
    pub user_data: bool,
    /// `--max-age`: the newest consistent image of the source is reused when younger.
    pub max_age: time::Duration,
}

impl Target {
    /// A zone move to `zone` with every other choice left to the planner.
    pub fn zone(zone: &str) -> Self {
        Self {
            region: None,
            zone: Some(zone.to_owned()),
            subnet: None,
            security_groups: None,
            key_name: None,
            stop_source: false,
            move_eip: false,
            user_data: false,
            max_age: time::Duration::ZERO,
        }
    }

    /// A region move to `region` with every other choice left to the planner.
    pub fn region(region: &str) -> Self {
        Self {
            region: Some(Region::new(region)),
            zone: None,
            ..Self::zone("")
        }
    }
}
