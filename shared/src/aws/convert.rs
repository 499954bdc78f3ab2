//! Conversions between SDK shapes and [`crate::model`] records.
//!
//! EC2 reports some times as `DateTime` and others as ISO strings
//! (`2026-11-22T03:00:00.000Z`); tags arrive as lists of pairs. Everything is normalised
//! here so the adapters stay a list of calls.

use aws_sdk_ec2::types as ec2;
use aws_smithy_types::DateTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::model::{
    AccountId, AttachedVolume, DeviceName, Grantee, Image, ImageDisk, ImageId, ImageState,
    Instance, InstanceHealth, InstanceId, InstanceState, KeyRef, Region, Snapshot, SnapshotId,
    Tags,
};

/// The `UsageOperation` of images billed as plain Linux/UNIX: anything else carries a
/// license charge (Windows, RHEL, SUSE, SQL Server, Ubuntu Pro…).
const PLAIN_USAGE_OPERATION: &str = "RunInstances";

/// Parses EC2's ISO 8601 strings (`2026-11-22T03:00:00.000Z`).
pub fn parse_ec2_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}

pub fn from_smithy_time(t: &DateTime) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok()
}

pub fn to_smithy_time(t: OffsetDateTime) -> DateTime {
    DateTime::from_secs_and_nanos(t.unix_timestamp(), t.nanosecond())
}

pub fn tags_from_ec2(tags: &[ec2::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub fn tags_to_ec2(tags: &Tags) -> Vec<ec2::Tag> {
    tags.iter()
        .map(|(k, v)| ec2::Tag::builder().key(k).value(v).build())
        .collect()
}

/// A `TagSpecification` for `resource` at creation, or none when there is nothing to tag
/// (EC2 rejects an empty specification).
pub fn tag_spec(resource: ec2::ResourceType, tags: &Tags) -> Option<ec2::TagSpecification> {
    (!tags.is_empty()).then(|| {
        ec2::TagSpecification::builder()
            .resource_type(resource)
            .set_tags(Some(tags_to_ec2(tags)))
            .build()
    })
}

pub fn instance_from_ec2(i: &ec2::Instance, region: &Region) -> Option<Instance> {
    let volumes = i
        .block_device_mappings()
        .iter()
        .filter_map(|m| {
            Some(AttachedVolume {
                device: DeviceName::new(m.device_name()?),
                volume_id: m.ebs()?.volume_id()?.to_owned(),
            })
        })
        .collect();
    Some(Instance {
        id: InstanceId::new(i.instance_id()?),
        region: region.clone(),
        state: i
            .state()
            .and_then(|s| s.name())
            .map_or(InstanceState::Unknown, |n| {
                InstanceState::from_aws(n.as_str())
            }),
        tags: tags_from_ec2(i.tags()),
        root_device: i.root_device_name().map(DeviceName::new),
        volumes,
        image_id: i.image_id().map(ImageId::new),
        instance_store: i.root_device_type() == Some(&ec2::DeviceType::InstanceStore),
        launched: i.launch_time().and_then(from_smithy_time),
    })
}

/// One `InstanceStatus` of DescribeInstanceStatus: healthy when running with both checks ok.
pub fn health_from_ec2(s: &ec2::InstanceStatus) -> Option<InstanceHealth> {
    let check = |v: Option<&ec2::InstanceStatusSummary>| {
        v.and_then(|x| x.status())
            .map_or("unknown", |st| st.as_str())
            .to_owned()
    };
    let (system, instance) = (check(s.system_status()), check(s.instance_status()));
    let state = s
        .instance_state()
        .and_then(|x| x.name())
        .map_or(InstanceState::Unknown, |n| {
            InstanceState::from_aws(n.as_str())
        });
    Some(InstanceHealth {
        id: InstanceId::new(s.instance_id()?),
        state,
        healthy: state == InstanceState::Running && system == "ok" && instance == "ok",
        summary: format!("{}, system {system}, instance {instance}", state.as_str()),
    })
}

/// Billing codes that stop an image from being copied across accounts: every product
/// code (Marketplace, DevPay) and a licensed `UsageOperation` such as `RunInstances:0002`
/// (Windows).
pub fn billing_products(i: &ec2::Image) -> Vec<String> {
    let mut out: Vec<String> = i
        .product_codes()
        .iter()
        .filter_map(|p| {
            let id = p.product_code_id()?;
            let kind = p.product_code_type().map_or("product", |t| t.as_str());
            Some(format!("{kind}:{id}"))
        })
        .collect();
    if let Some(op) = i
        .usage_operation()
        .filter(|op| !op.is_empty() && *op != PLAIN_USAGE_OPERATION)
    {
        let platform = i.platform_details().unwrap_or("licensed");
        out.push(format!("{op} ({platform})"));
    }
    out
}

pub fn image_from_ec2(i: &ec2::Image, region: &Region) -> Option<Image> {
    let disks = i
        .block_device_mappings()
        .iter()
        .filter_map(|m| {
            let ebs = m.ebs()?;
            Some(ImageDisk {
                device: DeviceName::new(m.device_name()?),
                snapshot_id: SnapshotId::new(ebs.snapshot_id()?),
                size_gib: ebs
                    .volume_size()
                    .map_or(0, |s| u64::try_from(s).unwrap_or(0)),
                encrypted: ebs.encrypted().unwrap_or(false),
                kms_key: ebs.kms_key_id().map(KeyRef::new),
            })
        })
        .collect();
    let source = match (i.source_image_id(), i.source_image_region()) {
        (Some(id), Some(r)) => Some((ImageId::new(id), Region::new(r))),
        _ => None,
    };
    Some(Image {
        id: ImageId::new(i.image_id()?),
        region: region.clone(),
        name: i.name().unwrap_or_default().to_owned(),
        state: i
            .state()
            .map_or(ImageState::Unknown, |s| ImageState::from_aws(s.as_str())),
        owner: i.owner_id().and_then(AccountId::parse),
        // A missing date sorts the image as oldest, which retention treats conservatively
        // only together with the other guards; EC2 always reports it in practice.
        created: i
            .creation_date()
            .and_then(parse_ec2_time)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        tags: tags_from_ec2(i.tags()),
        disks,
        public: i.public().unwrap_or(false),
        deprecation_time: i.deprecation_time().and_then(parse_ec2_time),
        last_launched: i.last_launched_time().and_then(parse_ec2_time),
        deregistration_protected: i
            .deregistration_protection()
            .is_some_and(|p| p.starts_with("enabled")),
        source,
        billing_products: billing_products(i),
        source_instance: i.source_instance_id().map(crate::model::InstanceId::new),
    })
}

pub fn snapshot_from_ec2(s: &ec2::Snapshot, region: &Region) -> Option<Snapshot> {
    Some(Snapshot {
        id: SnapshotId::new(s.snapshot_id()?),
        region: region.clone(),
        tags: tags_from_ec2(s.tags()),
        size_gib: s.volume_size().map_or(0, |v| u64::try_from(v).unwrap_or(0)),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key: s.kms_key_id().map(KeyRef::new),
        started: s
            .start_time()
            .and_then(from_smithy_time)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        full_size_bytes: s
            .full_snapshot_size_in_bytes()
            .and_then(|b| u64::try_from(b).ok()),
    })
}

pub fn grantee_from_launch_permission(p: &ec2::LaunchPermission) -> Option<Grantee> {
    if let Some(user) = p.user_id() {
        return AccountId::parse(user).map(Grantee::Account);
    }
    if let Some(arn) = p.organization_arn() {
        return Some(Grantee::Organization(arn.to_owned()));
    }
    if let Some(arn) = p.organizational_unit_arn() {
        return Some(Grantee::OrganizationalUnit(arn.to_owned()));
    }
    matches!(p.group(), Some(ec2::PermissionGroup::All)).then_some(Grantee::Public)
}

pub fn launch_permission(g: &Grantee) -> ec2::LaunchPermission {
    let b = ec2::LaunchPermission::builder();
    match g {
        Grantee::Account(a) => b.user_id(a.as_str()),
        Grantee::Organization(arn) => b.organization_arn(arn),
        Grantee::OrganizationalUnit(arn) => b.organizational_unit_arn(arn),
        Grantee::Public => b.group(ec2::PermissionGroup::All),
    }
    .build()
}

pub fn grantee_from_volume_permission(p: &ec2::CreateVolumePermission) -> Option<Grantee> {
    match (p.user_id(), p.group()) {
        (Some(user), _) => AccountId::parse(user).map(Grantee::Account),
        (None, Some(ec2::PermissionGroup::All)) => Some(Grantee::Public),
        _ => None,
    }
}

/// The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition(region: &Region) -> &'static str {
    crate::accounts::partition(region)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ec2_time_strings_and_smithy_times_round_trip() {
        assert_eq!(
            parse_ec2_time("2026-11-22T03:00:00.000Z"),
            Some(datetime!(2026-11-22 03:00 UTC))
        );
        assert_eq!(
            parse_ec2_time("2026-11-22T03:00:00Z"),
            Some(datetime!(2026-11-22 03:00 UTC))
        );
        assert_eq!(parse_ec2_time("soon"), None);
        let t = datetime!(2026-11-22 03:00:01.5 UTC);
        assert_eq!(from_smithy_time(&to_smithy_time(t)), Some(t));
    }

    #[test]
    fn tags_round_trip_and_empty_specs_are_dropped() {
        let tags: Tags = [
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), String::new()),
        ]
        .into_iter()
        .collect();
        assert_eq!(tags_from_ec2(&tags_to_ec2(&tags)), tags);
        assert!(tag_spec(ec2::ResourceType::Image, &Tags::new()).is_none());
    }

    #[test]
    fn every_image_field_is_mapped() {
        let ebs = |snap: &str, size, enc, key: Option<&str>| {
            ec2::EbsBlockDevice::builder()
                .snapshot_id(snap)
                .volume_size(size)
                .encrypted(enc)
                .set_kms_key_id(key.map(str::to_owned))
                .build()
        };
        let sdk = ec2::Image::builder()
            .image_id("ami-1")
            .name("prod/i-1/daily/20261122T0300Z")
            .state(ec2::ImageState::Available)
            .owner_id("111122223333")
            .creation_date("2026-11-22T03:00:05.000Z")
            .tags(
                ec2::Tag::builder()
                    .key("ami-lifecycle:slot")
                    .value("2026-11-22T03:00:00Z")
                    .build(),
            )
            .block_device_mappings(
                ec2::BlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(ebs(
                        "snap-1",
                        8,
                        true,
                        Some("arn:aws:kms:us-east-1:111122223333:key/k"),
                    ))
                    .build(),
            )
            .block_device_mappings(
                ec2::BlockDeviceMapping::builder()
                    .device_name("/dev/sdf")
                    .ebs(ebs("snap-2", 100, false, None))
                    .build(),
            )
            .block_device_mappings(
                ec2::BlockDeviceMapping::builder()
                    .device_name("/dev/sdb")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .public(true)
            .deprecation_time("2026-12-22T03:00:00.000Z")
            .last_launched_time("2026-11-23T10:00:00Z")
            .deregistration_protection("enabled-with-cooldown")
            .source_image_id("ami-0")
            .source_image_region("eu-west-1")
            .source_instance_id("i-1")
            .product_codes(
                ec2::ProductCode::builder()
                    .product_code_id("abc123")
                    .product_code_type(ec2::ProductCodeValues::Marketplace)
                    .build(),
            )
            .usage_operation("RunInstances:0002")
            .platform_details("Windows")
            .build();
        let region = Region::new("us-east-1");
        let image = image_from_ec2(&sdk, &region).expect("has an id");
        let expected = Image {
            id: ImageId::new("ami-1"),
            region,
            name: "prod/i-1/daily/20261122T0300Z".to_owned(),
            state: ImageState::Available,
            owner: AccountId::parse("111122223333"),
            created: datetime!(2026-11-22 03:00:05 UTC),
            tags: [(
                "ami-lifecycle:slot".to_owned(),
                "2026-11-22T03:00:00Z".to_owned(),
            )]
            .into_iter()
            .collect(),
            disks: vec![
                ImageDisk {
                    device: DeviceName::new("/dev/xvda"),
                    snapshot_id: SnapshotId::new("snap-1"),
                    size_gib: 8,
                    encrypted: true,
                    kms_key: Some(KeyRef::new("arn:aws:kms:us-east-1:111122223333:key/k")),
                },
                ImageDisk {
                    device: DeviceName::new("/dev/sdf"),
                    snapshot_id: SnapshotId::new("snap-2"),
                    size_gib: 100,
                    encrypted: false,
                    kms_key: None,
                },
            ],
            public: true,
            deprecation_time: Some(datetime!(2026-12-22 03:00 UTC)),
            last_launched: Some(datetime!(2026-11-23 10:00 UTC)),
            deregistration_protected: true,
            source: Some((ImageId::new("ami-0"), Region::new("eu-west-1"))),
            billing_products: vec![
                "marketplace:abc123".to_owned(),
                "RunInstances:0002 (Windows)".to_owned(),
            ],
            source_instance: Some(crate::model::InstanceId::new("i-1")),
        };
        assert_eq!(image, expected);
    }

    #[test]
    fn plain_linux_images_carry_no_billing_code_and_disabled_protection_is_false() {
        let sdk = ec2::Image::builder()
            .image_id("ami-2")
            .usage_operation("RunInstances")
            .platform_details("Linux/UNIX")
            .deregistration_protection("disabled")
            .build();
        let image = image_from_ec2(&sdk, &Region::new("us-east-1")).expect("has an id");
        assert!(image.billing_products.is_empty());
        assert!(!image.deregistration_protected);
        assert_eq!(image.source, None);
        assert_eq!(image.state, ImageState::Unknown);
    }
}
