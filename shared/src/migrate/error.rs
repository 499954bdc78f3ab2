//! Why a migration cannot be planned: each [`PlanError`] names the resource, the value
//! that did not match and the flag (or the action) that resolves it. A plan that fails
//! changes nothing.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("instance {instance}: give --to-az (another zone of {region}) or --to-region")]
    NoTarget { instance: String, region: String },
    #[error("instance {instance} is already in {zone}: give another zone with --to-az")]
    SameZone { instance: String, zone: String },
    #[error(
        "instance {instance} is in {region}: --to-region {region} is its own region; \
         to move within it, give --to-az"
    )]
    SameRegion { instance: String, region: String },
    #[error("instance {instance} is {state}: only a running or stopped instance can be moved")]
    NotMovable { instance: String, state: String },
    #[error("subnet {subnet} does not exist in {region}: give a subnet of {region} with --subnet")]
    SubnetNotFound { subnet: String, region: String },
    #[error(
        "subnet {subnet} is in {subnet_zone}, not in {zone} (--to-az): give a subnet of {zone} \
         with --subnet, or leave out --to-az"
    )]
    SubnetZone {
        subnet: String,
        subnet_zone: String,
        zone: String,
    },
    #[error("no subnet {within} in {region}: create it, or give the subnet with --subnet")]
    NoSubnet { within: String, region: String },
    #[error(
        "{count} subnets {within} in {region} ({candidates}): give the one to use with --subnet"
    )]
    AmbiguousSubnet {
        within: String,
        region: String,
        count: usize,
        candidates: String,
    },
    #[error(
        "the VPC of subnet {subnet} has no Name tag, so no VPC of {region} can be matched to it: \
         give the target subnet with --subnet"
    )]
    UnnamedVpc { subnet: String, region: String },
    #[error(
        "subnet {subnet} has no Name tag, so no subnet of {region} can be matched to it: give the \
         target subnet with --subnet"
    )]
    UnnamedSubnet { subnet: String, region: String },
    #[error(
        "security group {group} ({name}) has no match in VPC {vpc} of {region}: create a group \
         with Name tag {name} there, or give the groups with --security-groups"
    )]
    UnmatchedSecurityGroup {
        group: String,
        name: String,
        vpc: String,
        region: String,
    },
    #[error(
        "security group {group} has no Name tag, so no group of {region} can be matched to it: \
         give the groups with --security-groups"
    )]
    UnnamedSecurityGroup { group: String, region: String },
    #[error(
        "{count} security groups of VPC {vpc} in {region} have Name tag {name} ({candidates}): \
         give the groups with --security-groups"
    )]
    AmbiguousSecurityGroup {
        name: String,
        vpc: String,
        region: String,
        count: usize,
        candidates: String,
    },
    #[error(
        "security group {group} (--security-groups) is not in VPC {vpc} of the target subnet \
         in {region}: give groups of that VPC"
    )]
    SecurityGroupNotInVpc {
        group: String,
        vpc: String,
        region: String,
    },
    #[error(
        "key pair {key} of instance {instance} does not exist in {region}: import it there \
         (ec2 import-key-pair) or give another with --key-name"
    )]
    KeyPairNotFound {
        key: String,
        instance: String,
        region: String,
    },
    #[error(
        "security group {group} (--security-groups) does not exist in {region}: give groups of \
         {region}"
    )]
    SecurityGroupNotFound { group: String, region: String },
    #[error(
        "Elastic IP {public_ip} ({allocation}) of instance {instance} cannot follow it to \
         {region}: Elastic IPs are regional; leave out --move-eip and allocate one there"
    )]
    EipAcrossRegions {
        public_ip: String,
        allocation: String,
        instance: String,
        region: String,
    },
    #[error(
        "instance {instance} has {count} tags; with the migration's two the new instance would \
         have more than EC2's 50: remove {excess} tag(s) from {instance} first"
    )]
    TooManyTags {
        instance: String,
        count: usize,
        excess: usize,
    },
}
