//! The migration planner over hand-made snapshots: a zone move, a region move matched by
//! `Name` tags, every refusal naming its flag, image reuse, and the token.

use time::macros::datetime;
use time::Duration;

use super::plan::{plan, Inputs};
use super::token::{client_token, MAX_CLIENT_TOKEN};
use super::*;
use crate::model::{
    DeviceName, Image, ImageId, ImageState, InstanceId, InstanceState, KeyRef, Region,
};

const NOW: time::OffsetDateTime = datetime!(2026-12-02 03:00 UTC);

fn subnet(id: &str, zone: &str, vpc: &str, name: &str, vpc_name: &str) -> Subnet {
    Subnet {
        id: id.into(),
        zone: zone.into(),
        vpc_id: vpc.into(),
        name: Some(name.into()),
        vpc_name: Some(vpc_name.into()),
    }
}

fn group(id: &str, vpc: &str, name: &str) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        vpc_id: vpc.into(),
        group_name: format!("{name}-group"),
        name: Some(name.into()),
    }
}

pub(super) fn source() -> SourceInstance {
    SourceInstance {
        id: InstanceId::new("i-0source"),
        region: Region::new("us-east-1"),
        zone: "us-east-1a".into(),
        state: InstanceState::Running,
        instance_type: "m7i.large".into(),
        subnet: subnet("subnet-a", "us-east-1a", "vpc-1", "app", "prod"),
        security_groups: vec![
            group("sg-web", "vpc-1", "web"),
            group("sg-db", "vpc-1", "db"),
        ],
        instance_profile: Some("arn:aws:iam::111111111111:instance-profile/web".into()),
        key_name: Some("ops".into()),
        tags: [
            ("Name", "web-1"),
            ("ami-lifecycle:schedule", "daily"),
            ("aws:cloudformation:stack-name", "s"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        metadata: MetadataOptions {
            http_tokens: "required".into(),
            hop_limit: 2,
            endpoint_enabled: true,
            tags_in_metadata: false,
        },
        monitoring: true,
        volumes: vec![VolumeSpec {
            device: DeviceName::new("/dev/xvda"),
            volume_type: "gp3".into(),
            size_gib: 20,
            iops: Some(4000),
            throughput: Some(250),
            encrypted: true,
            kms_key: Some(KeyRef::new("arn:aws:kms:us-east-1:111111111111:key/src")),
            delete_on_termination: true,
        }],
        placement_group: Some("web-spread".into()),
        private_ip: Some("10.0.1.10".into()),
        elastic_ip: Some(ElasticIp {
            allocation_id: "eipalloc-1".into(),
            public_ip: "203.0.113.7".into(),
        }),
        has_user_data: true,
    }
}

pub(super) fn home_network() -> TargetNetwork {
    TargetNetwork {
        region: Region::new("us-east-1"),
        subnets: vec![
            subnet("subnet-a", "us-east-1a", "vpc-1", "app", "prod"),
            subnet("subnet-b", "us-east-1b", "vpc-1", "app", "prod"),
            subnet("subnet-b-data", "us-east-1b", "vpc-1", "data", "prod"),
            subnet("subnet-c-other", "us-east-1c", "vpc-2", "app", "staging"),
        ],
        security_groups: vec![
            group("sg-web", "vpc-1", "web"),
            group("sg-db", "vpc-1", "db"),
        ],
        key_pairs: vec!["ops".into()],
        placement_groups: vec![PlacementGroup {
            name: "web-spread".into(),
            strategy: "spread".into(),
        }],
    }
}

fn eu_network() -> TargetNetwork {
    TargetNetwork {
        region: Region::new("eu-west-1"),
        subnets: vec![
            subnet("subnet-eu-a", "eu-west-1a", "vpc-eu", "app", "prod"),
            subnet("subnet-eu-data", "eu-west-1b", "vpc-eu", "data", "prod"),
            subnet("subnet-eu-other", "eu-west-1a", "vpc-eu2", "app", "staging"),
        ],
        security_groups: vec![
            group("sg-eu-web", "vpc-eu", "web"),
            group("sg-eu-db", "vpc-eu", "db"),
            group("sg-eu2-web", "vpc-eu2", "web"),
        ],
        key_pairs: vec!["ops".into()],
        placement_groups: vec![],
    }
}

fn inputs(net: &TargetNetwork) -> Inputs<'_> {
    Inputs {
        network: net,
        proven_images: &[],
        target_key: None,
        deployment: "ami-lifecycle",
        now: NOW,
    }
}

#[test]
fn a_zone_move_keeps_the_vpc_the_groups_and_the_configuration() {
    let net = home_network();
    let p = plan(&source(), &Target::zone("us-east-1b"), &inputs(&net)).unwrap();
    assert_eq!(
        p.launch.subnet.id, "subnet-b",
        "the same Name in the same VPC, not the data subnet"
    );
    assert_eq!(p.launch.zone, "us-east-1b");
    let groups: Vec<_> = p
        .launch
        .security_groups
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(groups, ["sg-web", "sg-db"]);
    assert_eq!(p.copy, None, "no copy within a region");
    assert_eq!(
        p.image,
        ImageStep::Create {
            name: "ami-lifecycle/i-0source/daily/20261202T0300Z".into(),
            reboot: true
        }
    );
    assert_eq!(p.launch.instance_type, "m7i.large");
    assert_eq!(p.launch.key_name.as_deref(), Some("ops"));
    assert_eq!(p.launch.placement_group.as_deref(), Some("web-spread"));
    assert_eq!(
        p.launch.volumes,
        source().volumes,
        "same type, size, IOPS, throughput and key"
    );
    assert_eq!(
        p.launch.tags.get(MIGRATED_FROM).map(String::as_str),
        Some("i-0source")
    );
    assert_eq!(p.launch.tags.get(MIGRATION), Some(&p.token));
    assert!(
        !p.launch.tags.contains_key("aws:cloudformation:stack-name"),
        "aws: tags cannot be written"
    );
    assert_eq!(p.launch.client_token, p.token);
    assert!(!p.launch.user_data);
    assert!(
        p.notes.iter().any(|n| n.contains("--user-data")),
        "{:?}",
        p.notes
    );
    assert_eq!(p.source_after, SourceAfter::Keep);
    assert!(matches!(p.address, AddressStep::Report(ref e) if e.public_ip == "203.0.113.7"));
    assert_eq!(p.private_ip.as_deref(), Some("10.0.1.10"));
}

#[test]
fn stop_source_and_move_eip_are_planned_for_after_the_new_instance_is_healthy() {
    let net = home_network();
    let t = Target {
        stop_source: true,
        move_eip: true,
        ..Target::zone("us-east-1b")
    };
    let p = plan(&source(), &t, &inputs(&net)).unwrap();
    assert_eq!(p.source_after, SourceAfter::StopWhenHealthy);
    assert!(matches!(p.address, AddressStep::Move(ref e) if e.allocation_id == "eipalloc-1"));
}

#[test]
fn a_region_move_matches_subnet_and_groups_by_name_and_reencrypts() {
    let net = eu_network();
    let key = KeyRef::new("arn:aws:kms:eu-west-1:111111111111:key/eu");
    let i = Inputs {
        target_key: Some(&key),
        ..inputs(&net)
    };
    let p = plan(&source(), &Target::region("eu-west-1"), &i).unwrap();
    assert_eq!(p.launch.region.as_str(), "eu-west-1");
    assert_eq!(
        p.launch.subnet.id, "subnet-eu-a",
        "Name app in the VPC named prod"
    );
    assert_eq!(p.launch.zone, "eu-west-1a");
    let groups: Vec<_> = p
        .launch
        .security_groups
        .iter()
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(
        groups,
        ["sg-eu-web", "sg-eu-db"],
        "matched in the subnet's VPC only"
    );
    let copy = p.copy.clone().expect("a copy to eu-west-1");
    assert_eq!(copy.kms_key.as_ref(), Some(&key));
    assert!(copy.encrypted);
    assert!(p
        .launch
        .volumes
        .iter()
        .all(|v| v.kms_key.as_ref() == Some(&key) && v.encrypted));
    assert_eq!(p.launch.placement_group, None);
    assert!(
        p.notes.iter().any(|n| n.contains("web-spread")),
        "{:?}",
        p.notes
    );
}

#[test]
fn an_unmatched_security_group_stops_the_plan_naming_the_group_and_the_flag() {
    let mut net = eu_network();
    net.security_groups.retain(|g| g.id != "sg-eu-db");
    let e = plan(&source(), &Target::region("eu-west-1"), &inputs(&net)).unwrap_err();
    assert!(matches!(e, PlanError::UnmatchedSecurityGroup { ref group, .. } if group == "sg-db"));
    let text = e.to_string();
    assert!(
        text.contains("sg-db") && text.contains("db") && text.contains("--security-groups"),
        "{text}"
    );
    // Given explicitly, the plan goes through.
    let t = Target {
        security_groups: Some(vec!["sg-eu-web".into()]),
        ..Target::region("eu-west-1")
    };
    let p = plan(&source(), &t, &inputs(&net)).unwrap();
    assert_eq!(p.launch.security_groups.len(), 1);
}

#[test]
fn explicit_groups_must_exist_and_belong_to_the_subnets_vpc() {
    let net = eu_network();
    let t = Target {
        security_groups: Some(vec!["sg-eu2-web".into()]),
        ..Target::region("eu-west-1")
    };
    let e = plan(&source(), &t, &inputs(&net)).unwrap_err();
    assert!(matches!(e, PlanError::SecurityGroupNotInVpc { .. }), "{e}");
    let t = Target {
        security_groups: Some(vec!["sg-nope".into()]),
        ..Target::region("eu-west-1")
    };
    let e = plan(&source(), &t, &inputs(&net)).unwrap_err();
    assert!(e.to_string().contains("sg-nope"), "{e}");
}

#[test]
fn two_subnets_of_one_name_are_ambiguous_and_none_is_missing() {
    let mut net = eu_network();
    net.subnets
        .push(subnet("subnet-eu-b", "eu-west-1b", "vpc-eu", "app", "prod"));
    let e = plan(&source(), &Target::region("eu-west-1"), &inputs(&net)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("subnet-eu-a") && text.contains("subnet-eu-b") && text.contains("--subnet"),
        "{text}"
    );
    // A zone narrows it to one.
    let t = Target {
        zone: Some("eu-west-1b".into()),
        ..Target::region("eu-west-1")
    };
    assert_eq!(
        plan(&source(), &t, &inputs(&net)).unwrap().launch.subnet.id,
        "subnet-eu-b"
    );
    // No subnet of that name in the zone.
    let t = Target {
        zone: Some("eu-west-1c".into()),
        ..Target::region("eu-west-1")
    };
    let e = plan(&source(), &t, &inputs(&net)).unwrap_err();
    assert!(matches!(e, PlanError::NoSubnet { .. }), "{e}");
}

#[test]
fn an_explicit_subnet_must_exist_in_the_target_and_agree_with_the_zone() {
    let net = home_network();
    let t = Target {
        subnet: Some("subnet-zzz".into()),
        ..Target::zone("us-east-1b")
    };
    assert!(matches!(
        plan(&source(), &t, &inputs(&net)),
        Err(PlanError::SubnetNotFound { .. })
    ));
    let t = Target {
        subnet: Some("subnet-b-data".into()),
        ..Target::zone("us-east-1c")
    };
    let e = plan(&source(), &t, &inputs(&net)).unwrap_err();
    assert!(
        matches!(e, PlanError::SubnetZone { .. }) && e.to_string().contains("--to-az"),
        "{e}"
    );
    let t = Target {
        subnet: Some("subnet-b-data".into()),
        zone: None,
        ..Target::zone("")
    };
    let p = plan(&source(), &t, &inputs(&net)).unwrap();
    assert_eq!(
        (p.launch.subnet.id.as_str(), p.launch.zone.as_str()),
        ("subnet-b-data", "us-east-1b")
    );
}

#[test]
fn a_missing_key_pair_names_the_key_the_region_and_the_flag() {
    let mut net = eu_network();
    net.key_pairs.clear();
    let e = plan(&source(), &Target::region("eu-west-1"), &inputs(&net)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("ops") && text.contains("eu-west-1") && text.contains("--key-name"),
        "{text}"
    );
}

#[test]
fn refusals_before_anything_is_matched() {
    let net = home_network();
    let e = plan(&source(), &Target::zone("us-east-1a"), &inputs(&net)).unwrap_err();
    assert!(matches!(e, PlanError::SameZone { .. }), "{e}");
    let e = plan(&source(), &Target::region("us-east-1"), &inputs(&net)).unwrap_err();
    assert!(
        matches!(e, PlanError::SameRegion { .. }) && e.to_string().contains("--to-az"),
        "{e}"
    );
    let none = Target {
        zone: None,
        ..Target::zone("")
    };
    assert!(matches!(
        plan(&source(), &none, &inputs(&net)),
        Err(PlanError::NoTarget { .. })
    ));
    let mut s = source();
    s.state = InstanceState::Pending;
    assert!(matches!(
        plan(&s, &Target::zone("us-east-1b"), &inputs(&net)),
        Err(PlanError::NotMovable { .. })
    ));
    let eu = eu_network();
    let t = Target {
        move_eip: true,
        ..Target::region("eu-west-1")
    };
    let e = plan(&source(), &t, &inputs(&eu)).unwrap_err();
    assert!(
        matches!(e, PlanError::EipAcrossRegions { .. }) && e.to_string().contains("203.0.113.7"),
        "{e}"
    );
}

fn image(id: &str, from: &str, consistency: &str, age_hours: i64) -> Image {
    Image {
        id: ImageId::new(id),
        region: Region::new("us-east-1"),
        name: id.into(),
        state: ImageState::Available,
        owner: None,
        created: NOW - Duration::hours(age_hours),
        tags: [(
            "ami-lifecycle:consistency".to_owned(),
            consistency.to_owned(),
        )]
        .into_iter()
        .collect(),
        disks: vec![],
        public: false,
        deprecation_time: None,
        last_launched: None,
        deregistration_protected: false,
        source: None,
        billing_products: vec![],
        source_instance: Some(InstanceId::new(from)),
    }
}

#[test]
fn the_newest_consistent_image_of_the_source_is_reused_when_young_enough() {
    let net = home_network();
    let images = [
        image("ami-old", "i-0source", "rebooted", 30),
        image("ami-crash", "i-0source", "crash-consistent", 1),
        image("ami-other", "i-0other", "rebooted", 1),
        image("ami-quiesced", "i-0source", "application-consistent", 5),
    ];
    let i = Inputs {
        proven_images: &images,
        ..inputs(&net)
    };
    let t = Target {
        max_age: Duration::hours(24),
        ..Target::zone("us-east-1b")
    };
    let p = plan(&source(), &t, &i).unwrap();
    assert_eq!(
        p.image,
        ImageStep::Reuse {
            image: ImageId::new("ami-quiesced"),
            age_seconds: 5 * 3600,
            consistency: "application-consistent".into()
        }
    );
    let t = Target {
        max_age: Duration::hours(2),
        ..Target::zone("us-east-1b")
    };
    assert!(matches!(
        plan(&source(), &t, &i).unwrap().image,
        ImageStep::Create { .. }
    ));
}

#[test]
fn a_stopped_source_is_imaged_without_a_reboot_and_not_stopped_again() {
    let net = home_network();
    let mut s = source();
    s.state = InstanceState::Stopped;
    let t = Target {
        stop_source: true,
        ..Target::zone("us-east-1b")
    };
    let p = plan(&s, &t, &inputs(&net)).unwrap();
    assert!(matches!(p.image, ImageStep::Create { reboot: false, .. }));
    assert_eq!(p.source_after, SourceAfter::Keep);
}

#[test]
fn a_cluster_group_does_not_follow_to_another_zone() {
    let mut net = home_network();
    net.placement_groups = vec![PlacementGroup {
        name: "web-spread".into(),
        strategy: "cluster".into(),
    }];
    let p = plan(&source(), &Target::zone("us-east-1b"), &inputs(&net)).unwrap();
    assert_eq!(p.launch.placement_group, None);
    assert!(
        p.notes.iter().any(|n| n.contains("cluster")),
        "{:?}",
        p.notes
    );
}

#[test]
fn the_token_is_the_same_for_the_same_move_and_fits_ec2() {
    let (i, a, b) = (
        InstanceId::new("i-0source"),
        Region::new("us-east-1"),
        Region::new("eu-west-1"),
    );
    let t1 = client_token(&i, &a, &b, Some("eu-west-1a"));
    assert_eq!(t1, client_token(&i, &a, &b, Some("eu-west-1a")));
    assert_ne!(t1, client_token(&i, &a, &b, Some("eu-west-1b")));
    assert_ne!(
        t1,
        client_token(&InstanceId::new("i-0other"), &a, &b, Some("eu-west-1a"))
    );
    assert!(t1.len() <= MAX_CLIENT_TOKEN && t1.is_ascii());
    let net = home_network();
    let p1 = plan(&source(), &Target::zone("us-east-1b"), &inputs(&net)).unwrap();
    let p2 = plan(&source(), &Target::zone("us-east-1b"), &inputs(&net)).unwrap();
    assert_eq!(p1, p2, "the plan is a function of its inputs");
}

#[test]
fn the_printed_plan_names_every_step_and_what_stays() {
    let net = home_network();
    let t = Target {
        stop_source: true,
        ..Target::zone("us-east-1b")
    };
    let text = super::text::render(&plan(&source(), &t, &inputs(&net)).unwrap());
    for want in [
        "Move i-0source (us-east-1a) to us-east-1b",
        "rebooting i-0source",
        "copy      none",
        "subnet subnet-b",
        "sg-web (web)",
        "volume /dev/xvda gp3 20 GiB 4000 IOPS, 250 MiB/s",
        "is stopped after step 4 (never terminated)",
        "Elastic IP 203.0.113.7 (eipalloc-1) stays with i-0source",
        "private IP 10.0.1.10 is not kept",
        "note: user data is not replayed",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn a_source_with_too_many_tags_is_refused_before_anything_happens() {
    let net = home_network();
    let mut s = source();
    for n in 0..48 {
        s.tags.insert(format!("t{n}"), "v".into());
    }
    // 51 tags, one of them aws:…: 50 of the source's and 2 of the migration's = 52.
    let e = plan(&s, &Target::zone("us-east-1b"), &inputs(&net)).unwrap_err();
    assert!(matches!(e, PlanError::TooManyTags { excess: 2, .. }), "{e}");
    assert!(e.to_string().contains("remove 2 tag(s)"), "{e}");
}
