//! The migration adapter against `aws-smithy-mocks`, through the real SDK serializers:
//! RunInstances' request (token, subnet, groups, volumes with IOPS/throughput only where
//! the type takes them, tags on the instance and its volumes), the source read from
//! DescribeInstances and what it refers to, the network, `launched` skipping terminated
//! instances, and failures keeping AWS's code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::operation::associate_address::{AssociateAddressInput, AssociateAddressOutput};
use aws_sdk_ec2::operation::describe_addresses::{DescribeAddressesInput, DescribeAddressesOutput};
use aws_sdk_ec2::operation::describe_instance_attribute::DescribeInstanceAttributeOutput;
use aws_sdk_ec2::operation::describe_instance_status::DescribeInstanceStatusOutput;
use aws_sdk_ec2::operation::describe_instances::{DescribeInstancesInput, DescribeInstancesOutput};
use aws_sdk_ec2::operation::describe_key_pairs::DescribeKeyPairsOutput;
use aws_sdk_ec2::operation::describe_placement_groups::DescribePlacementGroupsOutput;
use aws_sdk_ec2::operation::describe_security_groups::{
    DescribeSecurityGroupsInput, DescribeSecurityGroupsOutput,
};
use aws_sdk_ec2::operation::describe_subnets::{DescribeSubnetsInput, DescribeSubnetsOutput};
use aws_sdk_ec2::operation::describe_volumes::{DescribeVolumesInput, DescribeVolumesOutput};
use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput;
use aws_sdk_ec2::operation::run_instances::{RunInstancesInput, RunInstancesOutput};
use aws_sdk_ec2::operation::stop_instances::{StopInstancesInput, StopInstancesOutput};
use aws_sdk_ec2::types as ec2;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_types::retry::RetryConfig;

use super::MAX_TAGS;
use crate::aws::AwsEc2;
use crate::error::{CloudError, ErrorKind};
use crate::migrate::fleet::{Fleet, Launch};
use crate::migrate::model::{
    ElasticIp, MetadataOptions, PlacementGroup, SecurityGroup, Subnet, VolumeSpec,
};
use crate::migrate::plan::LaunchSpec;
use crate::model::{DeviceName, ImageId, InstanceId, InstanceState, KeyRef, Region, Tags};
use crate::pacing::Pacer;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOKEN: &str = "mig-0123456789abcdef";

/// The EC2 adapter of us-east-1 answering `rules` (one attempt, static credentials).
fn fleet(rules: &[&Rule]) -> AwsEc2 {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for rule in rules {
        interceptor = interceptor.with_rule(rule);
    }
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(aws_sdk_ec2::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(1)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .http_client(create_mock_http_client())
            .build(),
    );
    AwsEc2::new(
        aws_sdk_ec2::Client::from_conf(conf),
        Region::new("us-east-1"),
        Arc::new(Pacer::unlimited()),
        Arc::new(crate::aws::AwsParameters::new(
            ssm,
            Region::new("us-east-1"),
        )),
    )
}

/// An EC2 query-protocol error body.
fn ec2_error(code: &str, message: &str) -> Option<String> {
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>req-1</RequestID></Response>"
    ))
}

type Slot<T> = Arc<Mutex<Option<T>>>;

/// Keeps the last request a rule saw.
fn captured<T: Clone + Send + 'static>() -> (Slot<T>, impl Fn(&T) + Send + Sync + 'static) {
    let slot = Arc::new(Mutex::new(None));
    let writer = slot.clone();
    (slot, move |req: &T| {
        *writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(req.clone())
    })
}

fn take<T: Clone>(slot: &Slot<T>) -> Result<T, Box<dyn std::error::Error>> {
    slot.lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or_else(|| "the rule saw no request".into())
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tag(k: &str, v: &str) -> ec2::Tag {
    ec2::Tag::builder().key(k).value(v).build()
}

fn volume(device: &str, kind: &str, iops: Option<i32>, throughput: Option<i32>) -> VolumeSpec {
    VolumeSpec {
        device: DeviceName::new(device),
        volume_type: kind.to_owned(),
        size_gib: 20,
        iops,
        throughput,
        encrypted: false,
        kms_key: None,
        delete_on_termination: true,
    }
}

fn spec() -> LaunchSpec {
    let mut encrypted = volume("/dev/sdf", "io2", Some(4000), Some(500));
    encrypted.encrypted = true;
    encrypted.kms_key = Some(KeyRef::new("arn:aws:kms:us-east-1:111111111111:key/k"));
    encrypted.delete_on_termination = false;
    LaunchSpec {
        region: Region::new("us-east-1"),
        zone: "us-east-1b".to_owned(),
        subnet: Subnet {
            id: "subnet-b".to_owned(),
            zone: "us-east-1b".to_owned(),
            vpc_id: "vpc-1".to_owned(),
            name: Some("app-b".to_owned()),
            vpc_name: Some("main".to_owned()),
        },
        subnet_why: "given".to_owned(),
        security_groups: vec![
            SecurityGroup {
                id: "sg-1".to_owned(),
                vpc_id: "vpc-1".to_owned(),
                group_name: "web".to_owned(),
                name: None,
            },
            SecurityGroup {
                id: "sg-2".to_owned(),
                vpc_id: "vpc-1".to_owned(),
                group_name: "ssh".to_owned(),
                name: None,
            },
        ],
        security_groups_why: "the source's".to_owned(),
        instance_type: "m5.large".to_owned(),
        instance_profile: Some("arn:aws:iam::111111111111:instance-profile/web".to_owned()),
        key_name: Some("ops".to_owned()),
        tags: tags(&[("Name", "web"), ("ami-lifecycle:migration", TOKEN)]),
        metadata: MetadataOptions {
            http_tokens: "required".to_owned(),
            hop_limit: 2,
            endpoint_enabled: true,
            tags_in_metadata: false,
        },
        monitoring: true,
        volumes: vec![
            volume("/dev/xvda", "gp3", Some(3000), Some(250)),
            encrypted,
            volume("/dev/sdg", "gp2", Some(100), None),
        ],
        placement_group: None,
        user_data: true,
        client_token: TOKEN.to_owned(),
    }
}

fn launch_request(spec: LaunchSpec) -> Launch {
    Launch {
        spec,
        image: ImageId::new("ami-0abc"),
        user_data: Some("IyEvYmluL3NoCg==".to_owned()),
    }
}

fn sdk_state(name: ec2::InstanceStateName) -> ec2::InstanceState {
    ec2::InstanceState::builder().name(name).build()
}

fn launched_instance(id: &str, state: ec2::InstanceStateName) -> RunInstancesOutput {
    RunInstancesOutput::builder()
        .instances(
            ec2::Instance::builder()
                .instance_id(id)
                .state(sdk_state(state))
                .build(),
        )
        .build()
}

fn ebs_of<'a>(req: &'a RunInstancesInput, device: &str) -> Option<&'a ec2::EbsBlockDevice> {
    req.block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(device))
        .and_then(|m| m.ebs())
}

fn spec_tags(req: &RunInstancesInput, resource: ec2::ResourceType) -> Option<Tags> {
    req.tag_specifications()
        .iter()
        .find(|s| s.resource_type() == Some(&resource))
        .map(|s| super::tags_from_ec2(s.tags()))
}

#[tokio::test]
async fn run_instances_carries_the_token_subnet_groups_volumes_and_tags() -> TestResult {
    let (seen, keep) = captured::<RunInstancesInput>();
    let rule = mock!(aws_sdk_ec2::Client::run_instances).then_compute_output(move |r| {
        keep(r);
        launched_instance("i-new", ec2::InstanceStateName::Pending)
    });
    let id = fleet(&[&rule]).launch(&launch_request(spec())).await?;
    assert_eq!(id, InstanceId::new("i-new"));
    let req = take(&seen)?;
    assert_eq!((req.min_count(), req.max_count()), (Some(1), Some(1)));
    assert_eq!(req.client_token(), Some(TOKEN));
    assert_eq!(req.image_id(), Some("ami-0abc"));
    assert_eq!(req.instance_type().map(|t| t.as_str()), Some("m5.large"));
    assert_eq!(req.subnet_id(), Some("subnet-b"));
    assert_eq!(req.security_group_ids(), ["sg-1", "sg-2"]);
    assert!(req.security_groups().is_empty(), "ids, never names");
    // The subnet places it: no zone, and no placement group here.
    assert!(req.placement().is_none(), "{:?}", req.placement());
    assert_eq!(
        req.iam_instance_profile().and_then(|p| p.arn()),
        Some("arn:aws:iam::111111111111:instance-profile/web")
    );
    assert_eq!(req.iam_instance_profile().and_then(|p| p.name()), None);
    assert_eq!(req.key_name(), Some("ops"));
    assert_eq!(req.monitoring().and_then(|m| m.enabled()), Some(true));
    let md = req.metadata_options().ok_or("no metadata options")?;
    assert_eq!(md.http_tokens(), Some(&ec2::HttpTokensState::Required));
    assert_eq!(md.http_put_response_hop_limit(), Some(2));
    assert_eq!(
        md.http_endpoint(),
        Some(&ec2::InstanceMetadataEndpointState::Enabled)
    );
    assert_eq!(
        md.instance_metadata_tags(),
        Some(&ec2::InstanceMetadataTagsState::Disabled)
    );
    assert_eq!(req.user_data(), Some("IyEvYmluL3NoCg=="));

    assert_eq!(req.block_device_mappings().len(), 3);
    let gp3 = ebs_of(&req, "/dev/xvda").ok_or("no /dev/xvda")?;
    assert_eq!(gp3.volume_type(), Some(&ec2::VolumeType::Gp3));
    assert_eq!(gp3.volume_size(), Some(20));
    assert_eq!((gp3.iops(), gp3.throughput()), (Some(3000), Some(250)));
    assert_eq!(
        gp3.encrypted(),
        None,
        "unencrypted: EC2's default, not sent"
    );
    assert_eq!(gp3.kms_key_id(), None);
    assert_eq!(gp3.delete_on_termination(), Some(true));
    let io2 = ebs_of(&req, "/dev/sdf").ok_or("no /dev/sdf")?;
    assert_eq!(io2.iops(), Some(4000));
    assert_eq!(io2.throughput(), None, "throughput is gp3's only");
    assert_eq!(io2.encrypted(), Some(true));
    assert_eq!(
        io2.kms_key_id(),
        Some("arn:aws:kms:us-east-1:111111111111:key/k")
    );
    assert_eq!(io2.delete_on_termination(), Some(false));
    let gp2 = ebs_of(&req, "/dev/sdg").ok_or("no /dev/sdg")?;
    assert_eq!(gp2.iops(), None, "gp2's IOPS follow its size");
    assert_eq!(gp2.throughput(), None);

    let want = tags(&[("Name", "web"), ("ami-lifecycle:migration", TOKEN)]);
    assert_eq!(
        spec_tags(&req, ec2::ResourceType::Instance),
        Some(want.clone())
    );
    assert_eq!(spec_tags(&req, ec2::ResourceType::Volume), Some(want));
    assert_eq!(req.tag_specifications().len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_placement_group_is_named_without_a_zone() -> TestResult {
    let (seen, keep) = captured::<RunInstancesInput>();
    let rule = mock!(aws_sdk_ec2::Client::run_instances).then_compute_output(move |r| {
        keep(r);
        launched_instance("i-new", ec2::InstanceStateName::Pending)
    });
    let mut s = spec();
    s.placement_group = Some("spread-1".to_owned());
    s.instance_profile = None;
    s.key_name = None;
    let mut request = launch_request(s);
    request.user_data = None;
    fleet(&[&rule]).launch(&request).await?;
    let req = take(&seen)?;
    let placement = req.placement().ok_or("no placement")?;
    assert_eq!(placement.group_name(), Some("spread-1"));
    assert_eq!(placement.availability_zone(), None);
    assert!(req.iam_instance_profile().is_none());
    assert_eq!(req.key_name(), None);
    assert_eq!(req.user_data(), None);
    Ok(())
}

#[tokio::test]
async fn more_than_fifty_tags_are_refused_before_any_call() {
    let rule = mock!(aws_sdk_ec2::Client::run_instances)
        .then_output(|| launched_instance("i-new", ec2::InstanceStateName::Pending));
    let mut s = spec();
    for n in 0..MAX_TAGS {
        s.tags.insert(format!("team:{n}"), "x".to_owned());
    }
    let n = s.tags.len();
    assert_eq!(n, MAX_TAGS + 2);
    let e = match fleet(&[&rule]).launch(&launch_request(s)).await {
        Ok(id) => panic!("launched {id} with {n} tags"),
        Err(e) => e,
    };
    assert_eq!(e.code, "TagLimitExceeded");
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("52 tags"), "{}", e.message);
    assert!(e.message.contains("remove 2 tag(s)"), "{}", e.message);
    assert_eq!(rule.num_calls(), 0, "nothing may be launched");

    // Exactly fifty is EC2's limit, and allowed.
    let mut s = spec();
    while s.tags.len() < MAX_TAGS {
        s.tags
            .insert(format!("team:{}", s.tags.len()), "x".to_owned());
    }
    assert!(fleet(&[&rule]).launch(&launch_request(s)).await.is_ok());
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_token_that_answers_a_terminated_instance_is_an_error() {
    let rule = mock!(aws_sdk_ec2::Client::run_instances)
        .then_output(|| launched_instance("i-old", ec2::InstanceStateName::Terminated));
    let e = match fleet(&[&rule]).launch(&launch_request(spec())).await {
        Ok(id) => panic!("answered {id}"),
        Err(e) => e,
    };
    assert_eq!(e.operation, "RunInstances");
    assert!(
        e.message.contains("i-old") && e.message.contains("terminated"),
        "{}",
        e.message
    );
    assert!(e.message.contains(TOKEN), "{}", e.message);
}

#[tokio::test]
async fn run_instances_errors_keep_their_code() {
    let rule = mock!(aws_sdk_ec2::Client::run_instances)
        .sequence()
        .http_status(
            400,
            ec2_error(
                "IdempotentParameterMismatch",
                "client token used with other parameters",
            ),
        )
        .build();
    let e = match fleet(&[&rule]).launch(&launch_request(spec())).await {
        Ok(id) => panic!("answered {id}"),
        Err(e) => e,
    };
    assert_eq!(e.code, "IdempotentParameterMismatch");
    assert_eq!(e.operation, "RunInstances");
    assert_eq!(e.message, "client token used with other parameters");
    assert_eq!(e.region, Some(Region::new("us-east-1")));
    assert_eq!(e.kind, ErrorKind::from_code("IdempotentParameterMismatch"));
}

fn source_instance() -> ec2::Instance {
    let mapping = |device: &str, volume: &str, delete: bool| {
        ec2::InstanceBlockDeviceMapping::builder()
            .device_name(device)
            .ebs(
                ec2::EbsInstanceBlockDevice::builder()
                    .volume_id(volume)
                    .delete_on_termination(delete)
                    .build(),
            )
            .build()
    };
    ec2::Instance::builder()
        .instance_id("i-src")
        .instance_type(ec2::InstanceType::M5Large)
        .placement(
            ec2::Placement::builder()
                .availability_zone("us-east-1a")
                .group_name("spread-1")
                .build(),
        )
        .subnet_id("subnet-a")
        .vpc_id("vpc-1")
        .security_groups(
            ec2::GroupIdentifier::builder()
                .group_id("sg-2")
                .group_name("ssh")
                .build(),
        )
        .security_groups(
            ec2::GroupIdentifier::builder()
                .group_id("sg-1")
                .group_name("web")
                .build(),
        )
        .iam_instance_profile(
            ec2::IamInstanceProfile::builder()
                .arn("arn:aws:iam::111111111111:instance-profile/web")
                .id("AIPA1")
                .build(),
        )
        .key_name("ops")
        .tags(tag("Name", "web"))
        .tags(tag("aws:cloudformation:stack-name", "s"))
        .metadata_options(
            ec2::InstanceMetadataOptionsResponse::builder()
                .http_tokens(ec2::HttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .http_endpoint(ec2::InstanceMetadataEndpointState::Enabled)
                .instance_metadata_tags(ec2::InstanceMetadataTagsState::Enabled)
                .build(),
        )
        .monitoring(
            ec2::Monitoring::builder()
                .state(ec2::MonitoringState::Disabled)
                .build(),
        )
        .private_ip_address("10.0.1.5")
        .state(sdk_state(ec2::InstanceStateName::Running))
        .block_device_mappings(mapping("/dev/xvda", "vol-root", true))
        .block_device_mappings(mapping("/dev/sdf", "vol-data", false))
        .build()
}

/// Every answer `source` reads, with the requests of the calls whose shape matters.
struct SourceRules {
    rules: Vec<Rule>,
    volumes: Slot<DescribeVolumesInput>,
    addresses: Slot<DescribeAddressesInput>,
    groups: Slot<DescribeSecurityGroupsInput>,
    subnets: Slot<DescribeSubnetsInput>,
}

fn source_rules(user_data: Option<&'static str>) -> SourceRules {
    let instances = mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(|r| r.instance_ids() == ["i-src"] && r.max_results().is_none())
        .then_output(|| {
            DescribeInstancesOutput::builder()
                .reservations(
                    ec2::Reservation::builder()
                        .instances(source_instance())
                        .build(),
                )
                .build()
        });
    let (volumes, keep_volumes) = captured::<DescribeVolumesInput>();
    let vols = mock!(aws_sdk_ec2::Client::describe_volumes).then_compute_output(move |r| {
        keep_volumes(r);
        DescribeVolumesOutput::builder()
            // EC2 does not promise the request's order.
            .volumes(
                ec2::Volume::builder()
                    .volume_id("vol-data")
                    .volume_type(ec2::VolumeType::Io2)
                    .size(100)
                    .iops(4000)
                    .encrypted(true)
                    .kms_key_id("arn:aws:kms:us-east-1:111111111111:key/k")
                    .build(),
            )
            .volumes(
                ec2::Volume::builder()
                    .volume_id("vol-root")
                    .volume_type(ec2::VolumeType::Gp3)
                    .size(20)
                    .iops(3000)
                    .throughput(125)
                    .encrypted(false)
                    .build(),
            )
            .build()
    });
    let (subnets, keep_subnets) = captured::<DescribeSubnetsInput>();
    let subnet = mock!(aws_sdk_ec2::Client::describe_subnets).then_compute_output(move |r| {
        keep_subnets(r);
        DescribeSubnetsOutput::builder()
            .subnets(
                ec2::Subnet::builder()
                    .subnet_id("subnet-a")
                    .availability_zone("us-east-1a")
                    .vpc_id("vpc-1")
                    .tags(tag("Name", "app-a"))
                    .build(),
            )
            .build()
    });
    let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs)
        .match_requests(|r| r.vpc_ids() == ["vpc-1"])
        .then_output(|| {
            DescribeVpcsOutput::builder()
                .vpcs(
                    ec2::Vpc::builder()
                        .vpc_id("vpc-1")
                        .tags(tag("Name", "main"))
                        .build(),
                )
                .build()
        });
    let (groups, keep_groups) = captured::<DescribeSecurityGroupsInput>();
    let sgs = mock!(aws_sdk_ec2::Client::describe_security_groups).then_compute_output(move |r| {
        keep_groups(r);
        DescribeSecurityGroupsOutput::builder()
            .security_groups(
                ec2::SecurityGroup::builder()
                    .group_id("sg-1")
                    .group_name("web")
                    .vpc_id("vpc-1")
                    .tags(tag("Name", "web-sg"))
                    .build(),
            )
            .security_groups(
                ec2::SecurityGroup::builder()
                    .group_id("sg-2")
                    .group_name("ssh")
                    .vpc_id("vpc-1")
                    .build(),
            )
            .build()
    });
    let (addresses, keep_addresses) = captured::<DescribeAddressesInput>();
    let eips = mock!(aws_sdk_ec2::Client::describe_addresses).then_compute_output(move |r| {
        keep_addresses(r);
        DescribeAddressesOutput::builder()
            // A secondary address's EIP first: the primary address's one is the source's.
            .addresses(
                ec2::Address::builder()
                    .allocation_id("eipalloc-2")
                    .public_ip("198.51.100.9")
                    .instance_id("i-src")
                    .private_ip_address("10.0.1.6")
                    .build(),
            )
            .addresses(
                ec2::Address::builder()
                    .allocation_id("eipalloc-1")
                    .public_ip("198.51.100.7")
                    .instance_id("i-src")
                    .private_ip_address("10.0.1.5")
                    .build(),
            )
            .build()
    });
    let attribute = mock!(aws_sdk_ec2::Client::describe_instance_attribute)
        .match_requests(|r| {
            r.instance_id() == Some("i-src")
                && r.attribute() == Some(&ec2::InstanceAttributeName::UserData)
        })
        .then_output(move || {
            let mut out = DescribeInstanceAttributeOutput::builder().instance_id("i-src");
            if let Some(data) = user_data {
                out = out.user_data(ec2::AttributeValue::builder().value(data).build());
            }
            out.build()
        });
    SourceRules {
        rules: vec![instances, vols, subnet, vpcs, sgs, eips, attribute],
        volumes,
        addresses,
        groups,
        subnets,
    }
}

#[tokio::test]
async fn source_reads_the_instance_and_everything_it_refers_to() -> TestResult {
    let r = source_rules(Some("IyEvYmluL3NoCg=="));
    let rules: Vec<&Rule> = r.rules.iter().collect();
    let src = fleet(&rules).source(&InstanceId::new("i-src")).await?;

    assert_eq!(src.id, InstanceId::new("i-src"));
    assert_eq!(src.region, Region::new("us-east-1"));
    assert_eq!(src.zone, "us-east-1a");
    assert_eq!(src.state, InstanceState::Running);
    assert_eq!(src.instance_type, "m5.large");
    assert_eq!(
        src.subnet,
        Subnet {
            id: "subnet-a".to_owned(),
            zone: "us-east-1a".to_owned(),
            vpc_id: "vpc-1".to_owned(),
            name: Some("app-a".to_owned()),
            vpc_name: Some("main".to_owned()),
        }
    );
    // The instance's order of groups, with their names and Name tags.
    assert_eq!(
        src.security_groups,
        [
            SecurityGroup {
                id: "sg-2".to_owned(),
                vpc_id: "vpc-1".to_owned(),
                group_name: "ssh".to_owned(),
                name: None,
            },
            SecurityGroup {
                id: "sg-1".to_owned(),
                vpc_id: "vpc-1".to_owned(),
                group_name: "web".to_owned(),
                name: Some("web-sg".to_owned()),
            },
        ]
    );
    assert_eq!(
        src.instance_profile.as_deref(),
        Some("arn:aws:iam::111111111111:instance-profile/web")
    );
    assert_eq!(src.key_name.as_deref(), Some("ops"));
    assert_eq!(
        src.tags,
        tags(&[("Name", "web"), ("aws:cloudformation:stack-name", "s")]),
        "every tag as EC2 has it (the planner drops aws: ones)"
    );
    assert_eq!(
        src.metadata,
        MetadataOptions {
            http_tokens: "required".to_owned(),
            hop_limit: 2,
            endpoint_enabled: true,
            tags_in_metadata: true,
        }
    );
    assert!(!src.monitoring);
    assert_eq!(
        src.volumes,
        [
            VolumeSpec {
                device: DeviceName::new("/dev/xvda"),
                volume_type: "gp3".to_owned(),
                size_gib: 20,
                iops: Some(3000),
                throughput: Some(125),
                encrypted: false,
                kms_key: None,
                delete_on_termination: true,
            },
            VolumeSpec {
                device: DeviceName::new("/dev/sdf"),
                volume_type: "io2".to_owned(),
                size_gib: 100,
                iops: Some(4000),
                throughput: None,
                encrypted: true,
                kms_key: Some(KeyRef::new("arn:aws:kms:us-east-1:111111111111:key/k")),
                delete_on_termination: false,
            },
        ]
    );
    assert_eq!(src.placement_group.as_deref(), Some("spread-1"));
    assert_eq!(src.private_ip.as_deref(), Some("10.0.1.5"));
    assert_eq!(
        src.elastic_ip,
        Some(ElasticIp {
            allocation_id: "eipalloc-1".to_owned(),
            public_ip: "198.51.100.7".to_owned(),
        })
    );
    assert!(src.has_user_data);

    let vols = take(&r.volumes)?;
    assert_eq!(vols.volume_ids(), ["vol-root", "vol-data"]);
    assert_eq!(vols.max_results(), None, "ids, not pages");
    let addr = take(&r.addresses)?;
    assert!(
        addr.filters()
            .iter()
            .any(|f| f.name() == Some("instance-id") && f.values() == ["i-src"]),
        "{:?}",
        addr.filters()
    );
    assert_eq!(take(&r.groups)?.group_ids(), ["sg-2", "sg-1"]);
    assert_eq!(take(&r.subnets)?.subnet_ids(), ["subnet-a"]);
    Ok(())
}

#[tokio::test]
async fn no_user_data_attribute_means_none() -> TestResult {
    let r = source_rules(None);
    let rules: Vec<&Rule> = r.rules.iter().collect();
    let f = fleet(&rules);
    assert!(!f.source(&InstanceId::new("i-src")).await?.has_user_data);
    assert_eq!(f.user_data(&InstanceId::new("i-src")).await?, None);
    Ok(())
}

async fn source_error(rules: &[&Rule]) -> CloudError {
    match fleet(rules).source(&InstanceId::new("i-gone")).await {
        Ok(s) => panic!("found {:?}", s.id),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_missing_source_is_not_found_naming_instance_and_region() {
    let rule = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .http_status(
            400,
            ec2_error(
                "InvalidInstanceID.NotFound",
                "The instance ID 'i-gone' does not exist",
            ),
        )
        .build();
    let e = source_error(&[&rule]).await;
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.code, "InvalidInstanceID.NotFound", "AWS's code is kept");
    assert_eq!(e.operation, "DescribeInstances");
    assert!(
        e.message.contains("i-gone") && e.message.contains("us-east-1"),
        "{}",
        e.message
    );
    assert!(e.source.is_some(), "AWS's error is kept as the source");

    // An answer without the instance (gone from the listing) is the same error.
    let empty = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let e = source_error(&[&empty]).await;
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(
        e.message.contains("i-gone") && e.message.contains("us-east-1"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn other_source_failures_keep_their_code() {
    let rule = mock!(aws_sdk_ec2::Client::describe_instances)
        .sequence()
        .http_status(403, ec2_error("UnauthorizedOperation", "not allowed"))
        .build();
    let e = source_error(&[&rule]).await;
    assert_eq!(e.code, "UnauthorizedOperation");
    assert_eq!(e.kind, ErrorKind::Denied);
    assert_eq!(e.message, "not allowed");
}

fn with_token(id: &str, state: ec2::InstanceStateName) -> ec2::Instance {
    ec2::Instance::builder()
        .instance_id(id)
        .client_token(TOKEN)
        .state(sdk_state(state))
        .build()
}

fn token_filtered(r: &DescribeInstancesInput) -> bool {
    r.instance_ids().is_empty()
        && r.filters()
            .iter()
            .any(|f| f.name() == Some("client-token") && f.values() == [TOKEN])
}

#[tokio::test]
async fn launched_finds_the_token_s_instance_and_ignores_terminated_ones() -> TestResult {
    let both = mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(token_filtered)
        .then_output(|| {
            DescribeInstancesOutput::builder()
                .reservations(
                    ec2::Reservation::builder()
                        .instances(with_token("i-dead", ec2::InstanceStateName::Terminated))
                        .instances(with_token("i-going", ec2::InstanceStateName::ShuttingDown))
                        .instances(with_token("i-live", ec2::InstanceStateName::Pending))
                        .build(),
                )
                .build()
        });
    assert_eq!(
        fleet(&[&both]).launched(TOKEN).await?,
        Some(InstanceId::new("i-live"))
    );
    let dead = mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(token_filtered)
        .then_output(|| {
            DescribeInstancesOutput::builder()
                .reservations(
                    ec2::Reservation::builder()
                        .instances(with_token("i-dead", ec2::InstanceStateName::Terminated))
                        .build(),
                )
                .build()
        });
    assert_eq!(fleet(&[&dead]).launched(TOKEN).await?, None);
    Ok(())
}

#[tokio::test]
async fn network_pages_subnets_and_names_vpcs_groups_keys_and_placement_groups() -> TestResult {
    let subnet = |id: &str, zone: &str, name: Option<&str>| {
        let mut b = ec2::Subnet::builder()
            .subnet_id(id)
            .availability_zone(zone)
            .vpc_id("vpc-1");
        if let Some(n) = name {
            b = b.tags(tag("Name", n));
        }
        b.build()
    };
    let first = mock!(aws_sdk_ec2::Client::describe_subnets)
        .match_requests(|r| {
            r.max_results() == Some(1000) && r.subnet_ids().is_empty() && r.next_token().is_none()
        })
        .then_output(move || {
            DescribeSubnetsOutput::builder()
                .subnets(subnet("subnet-a", "eu-west-1a", Some("app-a")))
                .next_token("p2")
                .build()
        });
    let second = mock!(aws_sdk_ec2::Client::describe_subnets)
        .match_requests(|r| r.next_token() == Some("p2"))
        .then_output(move || {
            DescribeSubnetsOutput::builder()
                .subnets(subnet("subnet-b", "eu-west-1b", None))
                .build()
        });
    let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs)
        .match_requests(|r| r.vpc_ids().is_empty() && r.max_results() == Some(1000))
        .then_output(|| {
            DescribeVpcsOutput::builder()
                .vpcs(
                    ec2::Vpc::builder()
                        .vpc_id("vpc-1")
                        .tags(tag("Name", "main"))
                        .build(),
                )
                .build()
        });
    let sgs = mock!(aws_sdk_ec2::Client::describe_security_groups)
        .match_requests(|r| r.group_ids().is_empty() && r.max_results() == Some(1000))
        .then_output(|| {
            DescribeSecurityGroupsOutput::builder()
                .security_groups(
                    ec2::SecurityGroup::builder()
                        .group_id("sg-9")
                        .group_name("web")
                        .vpc_id("vpc-1")
                        .tags(tag("Name", "web-sg"))
                        .build(),
                )
                .build()
        });
    let keys = mock!(aws_sdk_ec2::Client::describe_key_pairs).then_output(|| {
        DescribeKeyPairsOutput::builder()
            .key_pairs(ec2::KeyPairInfo::builder().key_name("ops").build())
            .build()
    });
    let pgs = mock!(aws_sdk_ec2::Client::describe_placement_groups).then_output(|| {
        DescribePlacementGroupsOutput::builder()
            .placement_groups(
                ec2::PlacementGroup::builder()
                    .group_name("spread-1")
                    .strategy(ec2::PlacementStrategy::Spread)
                    .state(ec2::PlacementGroupState::Available)
                    .build(),
            )
            .placement_groups(
                ec2::PlacementGroup::builder()
                    .group_name("old")
                    .strategy(ec2::PlacementStrategy::Cluster)
                    .state(ec2::PlacementGroupState::Deleted)
                    .build(),
            )
            .build()
    });
    let net = fleet(&[&first, &second, &vpcs, &sgs, &keys, &pgs])
        .network()
        .await?;
    assert_eq!(net.region, Region::new("us-east-1"));
    assert_eq!(
        net.subnets,
        [
            Subnet {
                id: "subnet-a".to_owned(),
                zone: "eu-west-1a".to_owned(),
                vpc_id: "vpc-1".to_owned(),
                name: Some("app-a".to_owned()),
                vpc_name: Some("main".to_owned()),
            },
            Subnet {
                id: "subnet-b".to_owned(),
                zone: "eu-west-1b".to_owned(),
                vpc_id: "vpc-1".to_owned(),
                name: None,
                vpc_name: Some("main".to_owned()),
            },
        ]
    );
    assert_eq!(
        net.security_groups,
        [SecurityGroup {
            id: "sg-9".to_owned(),
            vpc_id: "vpc-1".to_owned(),
            group_name: "web".to_owned(),
            name: Some("web-sg".to_owned()),
        }]
    );
    assert_eq!(net.key_pairs, ["ops"]);
    assert_eq!(
        net.placement_groups,
        [PlacementGroup {
            name: "spread-1".to_owned(),
            strategy: "spread".to_owned(),
        }],
        "a deleted group cannot take an instance"
    );
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    Ok(())
}

#[tokio::test]
async fn health_is_the_status_checks_of_that_instance() -> TestResult {
    let rule = mock!(aws_sdk_ec2::Client::describe_instance_status)
        .match_requests(|r| {
            r.instance_ids() == ["i-new"] && r.include_all_instances() == Some(true)
        })
        .then_output(|| {
            let ok = || {
                ec2::InstanceStatusSummary::builder()
                    .status(ec2::SummaryStatus::Ok)
                    .build()
            };
            DescribeInstanceStatusOutput::builder()
                .instance_statuses(
                    ec2::InstanceStatus::builder()
                        .instance_id("i-new")
                        .instance_state(sdk_state(ec2::InstanceStateName::Running))
                        .system_status(ok())
                        .instance_status(
                            ec2::InstanceStatusSummary::builder()
                                .status(ec2::SummaryStatus::Initializing)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let h = fleet(&[&rule])
        .health(&InstanceId::new("i-new"))
        .await?
        .ok_or("no health")?;
    assert_eq!(h.state, InstanceState::Running);
    assert!(!h.healthy, "the instance check is still initializing");
    assert_eq!(h.summary, "running, system ok, instance initializing");

    let none = mock!(aws_sdk_ec2::Client::describe_instance_status)
        .then_output(|| DescribeInstanceStatusOutput::builder().build());
    assert_eq!(
        fleet(&[&none]).health(&InstanceId::new("i-new")).await?,
        None
    );
    Ok(())
}

#[tokio::test]
async fn stop_only_stops() -> TestResult {
    let (seen, keep) = captured::<StopInstancesInput>();
    let rule = mock!(aws_sdk_ec2::Client::stop_instances).then_compute_output(move |r| {
        keep(r);
        StopInstancesOutput::builder().build()
    });
    fleet(&[&rule]).stop(&InstanceId::new("i-src")).await?;
    let req = take(&seen)?;
    assert_eq!(req.instance_ids(), ["i-src"]);
    assert_eq!(req.force(), None, "never forced");
    assert_eq!(req.hibernate(), None);
    assert_eq!(req.skip_os_shutdown(), None, "the OS shuts down cleanly");
    Ok(())
}

#[tokio::test]
async fn move_address_reassociates_and_keeps_aws_codes() -> TestResult {
    let (seen, keep) = captured::<AssociateAddressInput>();
    let rule = mock!(aws_sdk_ec2::Client::associate_address).then_compute_output(move |r| {
        keep(r);
        AssociateAddressOutput::builder()
            .association_id("eipassoc-1")
            .build()
    });
    fleet(&[&rule])
        .move_address("eipalloc-1", &InstanceId::new("i-new"))
        .await?;
    let req = take(&seen)?;
    assert_eq!(req.allocation_id(), Some("eipalloc-1"));
    assert_eq!(req.instance_id(), Some("i-new"));
    assert_eq!(req.allow_reassociation(), Some(true));
    assert_eq!(req.public_ip(), None);

    let gone = mock!(aws_sdk_ec2::Client::associate_address)
        .sequence()
        .http_status(
            400,
            ec2_error(
                "InvalidAllocationID.NotFound",
                "The allocation ID 'eipalloc-1' does not exist",
            ),
        )
        .build();
    let e = match fleet(&[&gone])
        .move_address("eipalloc-1", &InstanceId::new("i-new"))
        .await
    {
        Ok(()) => panic!("moved a missing address"),
        Err(e) => e,
    };
    assert_eq!(e.code, "InvalidAllocationID.NotFound");
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(e.operation, "AssociateAddress");
    Ok(())
}
