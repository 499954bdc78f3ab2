//! Adapter tests against `aws-smithy-mocks`: request shapes, pagination, error codes and
//! retries, through the real SDK serializers and deserializers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ec2::operation::copy_image::{CopyImageInput, CopyImageOutput};
use aws_sdk_ec2::operation::create_image::{CreateImageInput, CreateImageOutput};
use aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput;
use aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput;
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::modify_snapshot_attribute::{
    ModifySnapshotAttributeInput, ModifySnapshotAttributeOutput,
};
use aws_sdk_ec2::types as ec2;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_types::retry::RetryConfig;

use super::{AwsEc2, AwsParameters};
use crate::error::{CloudError, ErrorKind};
use crate::model::{
    AccountId, DeviceName, Grantee, ImageId, InstanceId, KeyRef, Region, SnapshotId, Tags,
};
use crate::pacing::Pacer;
use crate::ports::{
    all_images, Deregistered, ImageCopy, ImageFactory, ImageQuery, ImageRetirement, NewImage,
    Sharing,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Builds a service config with the mock rules, static credentials and a fast retry
/// policy of `attempts` attempts (no real back-off), without the SDK's `test-util`.
macro_rules! mock_conf {
    ($sdk:ident, $rules:expr, $attempts:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts($attempts)
                    .with_initial_backoff(Duration::from_millis(1))
                    .with_max_backoff(Duration::from_millis(1)),
            )
            .build()
    }};
}

fn ec2_with(rules: &[&Rule], attempts: u32) -> AwsEc2 {
    ec2_and_ssm(rules, &[], attempts)
}

/// The EC2 adapter with its SSM parameters answering `ssm_rules`.
fn ec2_and_ssm(ec2_rules: &[&Rule], ssm_rules: &[&Rule], attempts: u32) -> AwsEc2 {
    let client = aws_sdk_ec2::Client::from_conf(mock_conf!(aws_sdk_ec2, ec2_rules, attempts));
    AwsEc2::new(
        client,
        Region::new("us-east-1"),
        Arc::new(Pacer::unlimited()),
        Arc::new(parameters(ssm_rules)),
    )
}

fn parameters(rules: &[&Rule]) -> AwsParameters {
    AwsParameters::new(
        aws_sdk_ssm::Client::from_conf(mock_conf!(aws_sdk_ssm, rules, 1)),
        Region::new("us-east-1"),
    )
}

fn ec2(rules: &[&Rule]) -> AwsEc2 {
    ec2_with(rules, 1)
}

/// An EC2 query-protocol error body.
fn ec2_error(code: &str, message: &str) -> Option<String> {
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>req-1</RequestID></Response>"
    ))
}

/// Keeps the last request a rule saw.
fn captured<T: Clone + Send + 'static>(
) -> (Arc<Mutex<Option<T>>>, impl Fn(&T) + Send + Sync + 'static) {
    let slot = Arc::new(Mutex::new(None));
    let writer = slot.clone();
    (slot, move |req: &T| {
        *writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(req.clone())
    })
}

fn take<T: Clone>(slot: &Arc<Mutex<Option<T>>>) -> Result<T, Box<dyn std::error::Error>> {
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

fn sdk_image(id: &str) -> ec2::Image {
    ec2::Image::builder()
        .image_id(id)
        .name(id)
        .state(ec2::ImageState::Available)
        .creation_date("2026-11-22T03:00:00.000Z")
        .build()
}

fn create_request() -> NewImage {
    NewImage {
        instance: InstanceId::new("i-1"),
        name: "prod/i-1/daily/20261122T0300Z".to_owned(),
        description: "daily image of i-1".to_owned(),
        no_reboot: true,
        exclude_devices: vec![DeviceName::new("/dev/sdf"), DeviceName::new("/dev/sdg")],
        image_tags: tags(&[("ami-lifecycle:managed-by", "prod"), ("Name", "web")]),
        snapshot_tags: tags(&[("ami-lifecycle:managed-by", "prod")]),
    }
}

fn spec_tags(specs: &[ec2::TagSpecification], resource: ec2::ResourceType) -> Option<Tags> {
    specs
        .iter()
        .find(|s| s.resource_type() == Some(&resource))
        .map(|s| super::convert::tags_from_ec2(s.tags()))
}

#[tokio::test]
async fn describe_images_follows_next_token_across_pages() -> TestResult {
    let first = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            DescribeImagesOutput::builder()
                .images(sdk_image("ami-1"))
                .images(sdk_image("ami-2"))
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            DescribeImagesOutput::builder()
                .images(sdk_image("ami-3"))
                .build()
        });
    let ec2 = ec2(&[&first, &second]);
    let query = ImageQuery {
        owned_by_self: true,
        tag_key: Some("ami-lifecycle:managed-by".to_owned()),
        ..Default::default()
    };
    let images = all_images(&ec2, &query).await?;
    let ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["ami-1", "ami-2", "ami-3"]);
    assert_eq!(
        (first.num_calls(), second.num_calls()),
        (1, 1),
        "the second request carried the token"
    );
    Ok(())
}

#[tokio::test]
async fn describe_images_sends_filters_and_omits_max_results_with_ids() -> TestResult {
    let (seen, record) = captured::<aws_sdk_ec2::operation::describe_images::DescribeImagesInput>();
    let rule = mock!(aws_sdk_ec2::Client::describe_images).then_compute_output(move |r| {
        record(r);
        DescribeImagesOutput::builder().build()
    });
    let ec2 = ec2(&[&rule]);
    let query = ImageQuery {
        owned_by_self: true,
        tag: Some(("ami-lifecycle:lineage".to_owned(), "i-1/daily".to_owned())),
        include_disabled: true,
        page_size: Some(50),
        ..Default::default()
    };
    all_images(&ec2, &query).await?;
    let req = take(&seen)?;
    assert_eq!(req.owners(), ["self"]);
    assert_eq!(req.max_results(), Some(50));
    assert_eq!(req.include_disabled(), Some(true));
    assert_eq!(req.filters()[0].name(), Some("tag:ami-lifecycle:lineage"));
    assert_eq!(req.filters()[0].values(), ["i-1/daily"]);

    all_images(
        &ec2,
        &ImageQuery {
            ids: vec![ImageId::new("ami-9")],
            ..Default::default()
        },
    )
    .await?;
    let req = take(&seen)?;
    assert_eq!(req.image_ids(), ["ami-9"]);
    assert_eq!(
        req.max_results(),
        None,
        "EC2 rejects MaxResults with ImageIds"
    );
    Ok(())
}

#[tokio::test]
async fn create_image_tags_image_and_snapshots_and_leaves_out_excluded_devices() -> TestResult {
    let (seen, record) = captured::<CreateImageInput>();
    let rule = mock!(aws_sdk_ec2::Client::create_image).then_compute_output(move |r| {
        record(r);
        CreateImageOutput::builder().image_id("ami-new").build()
    });
    let request = create_request();
    let id = ec2(&[&rule]).create_image(&request).await?;
    assert_eq!(id, ImageId::new("ami-new"));
    let req = take(&seen)?;
    assert_eq!(req.instance_id(), Some("i-1"));
    assert_eq!(req.name(), Some(request.name.as_str()));
    assert_eq!(req.no_reboot(), Some(true));
    let no_device: Vec<(Option<&str>, Option<&str>)> = req
        .block_device_mappings()
        .iter()
        .map(|m| (m.device_name(), m.no_device()))
        .collect();
    assert_eq!(
        no_device,
        [(Some("/dev/sdf"), Some("")), (Some("/dev/sdg"), Some(""))]
    );
    assert_eq!(
        spec_tags(req.tag_specifications(), ec2::ResourceType::Image),
        Some(request.image_tags.clone())
    );
    assert_eq!(
        spec_tags(req.tag_specifications(), ec2::ResourceType::Snapshot),
        Some(request.snapshot_tags.clone())
    );
    Ok(())
}

#[tokio::test]
async fn copy_image_is_idempotent_encrypted_and_tagged() -> TestResult {
    let (seen, record) = captured::<CopyImageInput>();
    let rule = mock!(aws_sdk_ec2::Client::copy_image).then_compute_output(move |r| {
        record(r);
        CopyImageOutput::builder().image_id("ami-copy").build()
    });
    let request = ImageCopy {
        source_image: ImageId::new("ami-src"),
        source_region: Region::new("eu-west-1"),
        name: "prod/i-1/daily/20261122T0300Z".to_owned(),
        description: "replica".to_owned(),
        client_token: "tok-123".to_owned(),
        kms_key: Some(KeyRef::new("alias/replicas")),
        copy_source_tags: true,
        tags: tags(&[("ami-lifecycle:replica-of", "ami-src")]),
        snapshot_tags: tags(&[("ami-lifecycle:image-name", "copy")]),
        completion_minutes: Some(120),
    };
    assert_eq!(
        ec2(&[&rule]).copy_image(&request).await?,
        ImageId::new("ami-copy")
    );
    let req = take(&seen)?;
    assert_eq!(req.client_token(), Some("tok-123"));
    assert_eq!(req.source_image_id(), Some("ami-src"));
    assert_eq!(req.source_region(), Some("eu-west-1"));
    assert_eq!(
        (req.encrypted(), req.kms_key_id()),
        (Some(true), Some("alias/replicas"))
    );
    assert_eq!(req.copy_image_tags(), Some(true));
    assert_eq!(req.snapshot_copy_completion_duration_minutes(), Some(120));
    assert_eq!(
        spec_tags(req.tag_specifications(), ec2::ResourceType::Image),
        Some(request.tags.clone())
    );
    assert_eq!(
        spec_tags(req.tag_specifications(), ec2::ResourceType::Snapshot),
        Some(request.snapshot_tags.clone())
    );
    Ok(())
}

#[tokio::test]
async fn copy_image_without_a_key_does_not_ask_for_encryption() -> TestResult {
    let (seen, record) = captured::<CopyImageInput>();
    let rule = mock!(aws_sdk_ec2::Client::copy_image).then_compute_output(move |r| {
        record(r);
        CopyImageOutput::builder().image_id("ami-copy").build()
    });
    let request = ImageCopy {
        source_image: ImageId::new("ami-src"),
        source_region: Region::new("eu-west-1"),
        name: "n".to_owned(),
        description: String::new(),
        client_token: "t".to_owned(),
        kms_key: None,
        copy_source_tags: false,
        tags: Tags::new(),
        snapshot_tags: Tags::new(),
        completion_minutes: None,
    };
    ec2(&[&rule]).copy_image(&request).await?;
    let req = take(&seen)?;
    assert_eq!((req.encrypted(), req.kms_key_id()), (None, None));
    assert_eq!(req.snapshot_copy_completion_duration_minutes(), None);
    assert!(req.tag_specifications().is_empty());
    Ok(())
}

async fn create_failing_with(code: &str, message: &str) -> CloudError {
    let rule = mock!(aws_sdk_ec2::Client::create_image)
        .sequence()
        .http_status(400, ec2_error(code, message))
        .build();
    match ec2(&[&rule]).create_image(&create_request()).await {
        Ok(id) => panic!("{code} answered with {id}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn error_codes_are_kept_and_classified() {
    for (code, kind) in [
        ("InvalidAMIName.Duplicate", ErrorKind::Duplicate),
        ("ResourceLimitExceeded", ErrorKind::ResourceLimit),
        ("SomethingNobodyDocumented", ErrorKind::Other),
    ] {
        let e = create_failing_with(code, "AMI name prod/x is already in use").await;
        assert_eq!(e.code, code);
        assert_eq!(e.kind, ErrorKind::from_code(code));
        assert_eq!(e.kind, kind, "{code}");
        assert_eq!(e.message, "AMI name prod/x is already in use");
        assert_eq!(e.operation, "CreateImage");
        assert_eq!(e.region, Some(Region::new("us-east-1")));
        assert!(e.source.is_some(), "the SdkError is kept as the source");
    }
}

#[tokio::test]
async fn a_bare_5xx_is_transient() {
    let rule = mock!(aws_sdk_ec2::Client::create_image)
        .sequence()
        .http_status(503, None)
        .build();
    match ec2(&[&rule]).create_image(&create_request()).await {
        Ok(id) => panic!("answered with {id}"),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Transient, "{e}");
            assert!(e.is_retryable());
        }
    }
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_until_it_succeeds() -> TestResult {
    let rule = mock!(aws_sdk_ec2::Client::describe_images)
        .sequence()
        .http_status(
            503,
            ec2_error("RequestLimitExceeded", "Request limit exceeded."),
        )
        .times(2)
        .output(|| {
            DescribeImagesOutput::builder()
                .images(sdk_image("ami-1"))
                .build()
        })
        .build();
    let ec2 = ec2_with(&[&rule], 3);
    let images = all_images(
        &ec2,
        &ImageQuery {
            owned_by_self: true,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(images.len(), 1);
    assert_eq!(rule.num_calls(), 3);
    Ok(())
}

#[tokio::test]
async fn exhausted_throttling_retries_are_throttled() {
    let rule = mock!(aws_sdk_ec2::Client::describe_images)
        .sequence()
        .http_status(
            503,
            ec2_error("RequestLimitExceeded", "Request limit exceeded."),
        )
        .repeatedly()
        .build();
    let ec2 = ec2_with(&[&rule], 3);
    match all_images(
        &ec2,
        &ImageQuery {
            owned_by_self: true,
            ..Default::default()
        },
    )
    .await
    {
        Ok(images) => panic!("answered with {images:?}"),
        Err(e) => {
            assert_eq!(
                (e.kind, e.code.as_str()),
                (ErrorKind::Throttled, "RequestLimitExceeded")
            );
            assert_eq!(rule.num_calls(), 3, "three attempts, then the error");
        }
    }
}

#[tokio::test]
async fn deregister_sorts_snapshots_into_deleted_and_kept() -> TestResult {
    let rule = mock!(aws_sdk_ec2::Client::deregister_image)
        .match_requests(|r| {
            r.image_id() == Some("ami-1") && r.delete_associated_snapshots() == Some(true)
        })
        .then_output(|| {
            DeregisterImageOutput::builder()
                .r#return(true)
                .delete_snapshot_results(
                    ec2::DeleteSnapshotReturnCode::builder()
                        .snapshot_id("snap-1")
                        .return_code(ec2::SnapshotReturnCodes::Success)
                        .build(),
                )
                .delete_snapshot_results(
                    ec2::DeleteSnapshotReturnCode::builder()
                        .snapshot_id("snap-2")
                        .return_code(ec2::SnapshotReturnCodes::WarnSkipped)
                        .build(),
                )
                .build()
        });
    let result = ec2(&[&rule])
        .deregister(&ImageId::new("ami-1"), true)
        .await?;
    assert_eq!(
        result,
        Deregistered {
            snapshots_deleted: vec![SnapshotId::new("snap-1")],
            snapshots_kept: vec![(SnapshotId::new("snap-2"), "skipped".to_owned())]
        }
    );
    Ok(())
}

#[tokio::test]
async fn snapshot_permissions_use_the_structured_form() -> TestResult {
    let (seen, record) = captured::<ModifySnapshotAttributeInput>();
    let rule =
        mock!(aws_sdk_ec2::Client::modify_snapshot_attribute).then_compute_output(move |r| {
            record(r);
            ModifySnapshotAttributeOutput::builder().build()
        });
    let add = [
        AccountId::parse("111122223333").ok_or("account")?,
        AccountId::parse("444455556666").ok_or("account")?,
    ];
    let remove = [AccountId::parse("777788889999").ok_or("account")?];
    ec2(&[&rule])
        .modify_snapshot_permissions(&SnapshotId::new("snap-1"), &add, &remove)
        .await?;
    let req = take(&seen)?;
    let changes = req
        .create_volume_permission()
        .ok_or("no CreateVolumePermission")?;
    let users = |p: &[ec2::CreateVolumePermission]| {
        p.iter()
            .filter_map(|p| p.user_id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert_eq!(users(changes.add()), ["111122223333", "444455556666"]);
    assert_eq!(users(changes.remove()), ["777788889999"]);
    assert_eq!(
        (req.operation_type(), req.user_ids().len()),
        (None, 0),
        "not the flat form"
    );
    assert_eq!(req.snapshot_id(), Some("snap-1"));
    Ok(())
}

#[tokio::test]
async fn launch_permissions_map_to_grantees() -> TestResult {
    let rule = mock!(aws_sdk_ec2::Client::describe_image_attribute)
        .match_requests(|r| r.attribute() == Some(&ec2::ImageAttributeName::LaunchPermission))
        .then_output(|| {
            DescribeImageAttributeOutput::builder()
                .launch_permissions(
                    ec2::LaunchPermission::builder()
                        .user_id("111122223333")
                        .build(),
                )
                .launch_permissions(
                    ec2::LaunchPermission::builder()
                        .group(ec2::PermissionGroup::All)
                        .build(),
                )
                .launch_permissions(
                    ec2::LaunchPermission::builder()
                        .organization_arn("arn:aws:organizations::111122223333:organization/o-abc")
                        .build(),
                )
                .launch_permissions(
                    ec2::LaunchPermission::builder()
                        .organizational_unit_arn(
                            "arn:aws:organizations::111122223333:ou/o-abc/ou-1",
                        )
                        .build(),
                )
                .build()
        });
    let grantees = ec2(&[&rule])
        .launch_permissions(&ImageId::new("ami-1"))
        .await?;
    assert_eq!(
        grantees,
        [
            Grantee::Account(AccountId::parse("111122223333").ok_or("account")?),
            Grantee::Public,
            Grantee::Organization(
                "arn:aws:organizations::111122223333:organization/o-abc".to_owned()
            ),
            Grantee::OrganizationalUnit(
                "arn:aws:organizations::111122223333:ou/o-abc/ou-1".to_owned()
            ),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn put_events_failures_are_errors_with_the_entry_code() {
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;

    use crate::ports::Reports;
    use crate::report::RunReport;

    let rule = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| {
            r.entries().first().is_some_and(|e| {
                e.source() == Some(super::reports::SOURCE)
                    && e.detail_type() == Some(super::reports::DETAIL_TYPE)
                    && e.event_bus_name() == Some("ops")
                    && e.detail()
                        .is_some_and(|d| d.contains("\"function\":\"cleanup\""))
            })
        })
        .then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("InternalFailure")
                        .error_message("try again")
                        .build(),
                )
                .build()
        });
    let client =
        aws_sdk_eventbridge::Client::from_conf(mock_conf!(aws_sdk_eventbridge, [&rule], 1));
    let reports = super::EventBridgeReports::new(client, Region::new("us-east-1"), "ops");
    let report = RunReport::new(
        "cleanup",
        false,
        time::macros::datetime!(2026-11-22 03:00 UTC),
    );
    match reports.publish(&report).await {
        Ok(()) => panic!("a failed entry was taken for success"),
        Err(e) => assert_eq!(
            (e.code.as_str(), e.kind),
            ("InternalFailure", ErrorKind::Transient)
        ),
    }
}

#[tokio::test]
async fn scheduled_instances_filter_on_the_tag_key_page_by_page_and_map_devices() -> TestResult {
    let instance = |id: &str| {
        ec2::Instance::builder()
            .instance_id(id)
            .image_id("ami-base")
            .root_device_name("/dev/xvda")
            .state(
                ec2::InstanceState::builder()
                    .name(ec2::InstanceStateName::Stopped)
                    .build(),
            )
            .tags(
                ec2::Tag::builder()
                    .key("ami-lifecycle:schedule")
                    .value("daily")
                    .build(),
            )
            .block_device_mappings(
                ec2::InstanceBlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        ec2::EbsInstanceBlockDevice::builder()
                            .volume_id(format!("vol-{id}"))
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let tagged = |r: &aws_sdk_ec2::operation::describe_instances::DescribeInstancesInput| {
        r.max_results() == Some(1000)
            && r.filters()
                .iter()
                .any(|f| f.name() == Some("tag-key") && f.values() == ["ami-lifecycle:schedule"])
    };
    let first = mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(move |r| tagged(r) && r.next_token().is_none())
        .then_output(move || {
            DescribeInstancesOutput::builder()
                .reservations(
                    ec2::Reservation::builder()
                        .instances(instance("i-1"))
                        .build(),
                )
                .next_token("p2")
                .build()
        });
    let second = mock!(aws_sdk_ec2::Client::describe_instances)
        .match_requests(move |r| tagged(r) && r.next_token() == Some("p2"))
        .then_output(move || {
            DescribeInstancesOutput::builder()
                .reservations(
                    ec2::Reservation::builder()
                        .instances(instance("i-2"))
                        .build(),
                )
                .build()
        });
    let found = crate::ports::Instances::scheduled_instances(&ec2(&[&first, &second])).await?;
    assert_eq!(found.len(), 2);
    let i = &found[1];
    assert_eq!(i.id, InstanceId::new("i-2"));
    assert_eq!(i.state, crate::model::InstanceState::Stopped);
    assert_eq!(i.root_device, Some(DeviceName::new("/dev/xvda")));
    assert_eq!(
        i.volumes,
        [crate::model::AttachedVolume {
            device: DeviceName::new("/dev/xvda"),
            volume_id: "vol-i-2".to_owned()
        }]
    );
    assert_eq!(i.image_id, Some(ImageId::new("ami-base")));
    assert_eq!(
        i.tags.get("ami-lifecycle:schedule").map(String::as_str),
        Some("daily")
    );
    Ok(())
}

#[tokio::test]
async fn no_instance_ids_means_no_call() -> TestResult {
    // An empty InstanceIds list would describe every instance in the region.
    assert!(crate::ports::Instances::instances(&ec2(&[]), &[])
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn describe_key_reports_manager_and_state() -> TestResult {
    use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
    use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeyState};

    use crate::ports::Keys;

    let meta = KeyMetadata::builder()
        .key_id("k-1")
        .arn("arn:aws:kms:us-east-1:111122223333:key/k-1")
        .key_manager(KeyManagerType::Aws)
        .key_state(KeyState::Enabled)
        .build()?;
    let rule = mock!(aws_sdk_kms::Client::describe_key)
        .match_requests(|r| r.key_id() == Some("alias/aws/ebs"))
        .then_output(move || {
            DescribeKeyOutput::builder()
                .key_metadata(meta.clone())
                .build()
        });
    let client = aws_sdk_kms::Client::from_conf(mock_conf!(aws_sdk_kms, [&rule], 1));
    let info = super::AwsKeys::new(client, Region::new("us-east-1"))
        .describe_key(&KeyRef::new("alias/aws/ebs"))
        .await?;
    assert_eq!(
        info,
        crate::model::KeyInfo {
            arn: "arn:aws:kms:us-east-1:111122223333:key/k-1".to_owned(),
            enabled: true,
            aws_managed: true
        }
    );
    Ok(())
}

#[test]
fn pace_scale_defaults_to_one_and_zero_disables() {
    use super::parse_pace_scale;
    assert_eq!(parse_pace_scale(None), 1.0);
    assert_eq!(parse_pace_scale(Some(" ")), 1.0);
    assert_eq!(parse_pace_scale(Some("0")), 0.0);
    assert_eq!(parse_pace_scale(Some("2.5")), 2.5);
    assert_eq!(parse_pace_scale(Some("-1")), 1.0);
    assert_eq!(parse_pace_scale(Some("fast")), 1.0);
    // Bounded: 1e-20 made pacing intervals overflow (a panic); huge scales are no pacing.
    assert_eq!(parse_pace_scale(Some("1e-20")), 1.0);
    assert_eq!(parse_pace_scale(Some("1e9")), 1.0);
    assert_eq!(parse_pace_scale(Some("0.01")), 0.01);
}

#[test]
fn the_cloud_caches_one_port_per_region_and_continues_only_with_a_queue() -> TestResult {
    use crate::config::Config;
    use crate::ports::Cloud;

    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("eu-west-1"))
        .build();
    let config = Config::from_lookup(|k| (k == "AWS_REGION").then(|| "eu-west-1".to_owned()))?;
    let cloud = super::AwsCloud::new(sdk.clone(), &config, 0.0);
    let (a, b) = (Region::new("us-east-1"), Region::new("us-west-2"));
    assert!(
        Arc::ptr_eq(&cloud.aws_ec2(&a), &cloud.aws_ec2(&a)),
        "one port (and pacer) per region"
    );
    assert!(!Arc::ptr_eq(&cloud.aws_ec2(&a), &cloud.aws_ec2(&b)));
    assert_eq!(cloud.ec2(&b).region(), &b);
    assert!(cloud.continuations().is_none());

    let with_queue = Config {
        continuation_queue: Some("https://sqs.eu-west-1.amazonaws.com/111122223333/q".to_owned()),
        ..config
    };
    assert!(super::AwsCloud::new(sdk, &with_queue, 1.0)
        .continuations()
        .is_some());
    Ok(())
}

#[path = "references_tests.rs"]
mod references_tests;
