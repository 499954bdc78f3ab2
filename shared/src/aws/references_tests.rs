//! Reference checks against `aws-smithy-mocks`: the DescribeImageReferences request
//! shape (at most 10 ids, every resource type named, the scoping options), its pagination,
//! and the scan used where the operation is missing (instances, every launch template
//! version, SSM parameters read 10 names at a time).

use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::describe_image_references::{
    DescribeImageReferencesInput, DescribeImageReferencesOutput,
};
use aws_sdk_ec2::operation::describe_instances::{DescribeInstancesInput, DescribeInstancesOutput};
use aws_sdk_ec2::operation::describe_launch_template_versions::DescribeLaunchTemplateVersionsOutput;
use aws_sdk_ec2::operation::describe_launch_templates::DescribeLaunchTemplatesOutput;
use aws_sdk_ec2::types as ec2;
use aws_sdk_ssm::operation::describe_parameters::DescribeParametersOutput;
use aws_sdk_ssm::operation::get_parameters::{GetParametersInput, GetParametersOutput};
use aws_sdk_ssm::types as ssm;
use aws_smithy_mocks::mock;

use super::{ec2 as ec2_port, ec2_and_ssm, ec2_error, parameters, TestResult};
use crate::aws::references::{IDS_PER_REFERENCE_CALL, INSTANCE_STATES};
use crate::aws::ssm::ImageParameters;
use crate::model::{ImageId, ImageReference};
use crate::ports::References;

fn ids(n: usize) -> Vec<ImageId> {
    (0..n)
        .map(|i| ImageId::new(format!("ami-{i:02}")))
        .collect()
}

fn reference(image: &str, resource_type: &str, arn: &str) -> ImageReference {
    ImageReference {
        image_id: ImageId::new(image),
        resource_type: resource_type.to_owned(),
        arn: arn.to_owned(),
    }
}

fn sdk_reference(image: &str, resource_type: &str, arn: &str) -> ec2::ImageReference {
    ec2::ImageReference::builder()
        .image_id(image)
        .resource_type(ec2::ImageReferenceResourceType::from(resource_type))
        .arn(arn)
        .build()
}

/// A resource type with its `(option, values)` pairs.
type AskedType = (String, Vec<(String, Vec<String>)>);

/// What each resource type a request asks for, with its options.
fn asked_types(req: &DescribeImageReferencesInput) -> Vec<AskedType> {
    req.resource_types()
        .iter()
        .map(|t| {
            (
                t.resource_type().map_or("", |r| r.as_str()).to_owned(),
                t.resource_type_options()
                    .iter()
                    .map(|o| {
                        (
                            o.option_name().map_or("", |n| n.as_str()).to_owned(),
                            o.option_values().to_vec(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn references_are_asked_ten_ids_at_a_time_for_every_type_and_every_page() -> TestResult {
    let seen: Arc<Mutex<Vec<DescribeImageReferencesInput>>> = Arc::default();
    let log = seen.clone();
    let rule =
        mock!(aws_sdk_ec2::Client::describe_image_references).then_compute_output(move |req| {
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(req.clone());
            let first = req.image_ids().first().map_or("", String::as_str);
            match (first, req.next_token()) {
                // The first batch has two pages.
                ("ami-00", None) => DescribeImageReferencesOutput::builder()
                    .image_references(sdk_reference(
                        "ami-03",
                        "ec2:LaunchTemplate",
                        "arn:aws:ec2:us-east-1:111122223333:launch-template/lt-1",
                    ))
                    .next_token("p2")
                    .build(),
                ("ami-00", Some("p2")) => DescribeImageReferencesOutput::builder()
                    .image_references(sdk_reference(
                        "ami-07",
                        "ssm:Parameter",
                        "arn:aws:ssm:us-east-1:111122223333:parameter/app/ami",
                    ))
                    .build(),
                ("ami-20", None) => DescribeImageReferencesOutput::builder()
                    .image_references(sdk_reference(
                        "ami-22",
                        "ec2:Instance",
                        "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
                    ))
                    .build(),
                _ => DescribeImageReferencesOutput::builder().build(),
            }
        });
    let refs = ec2_port(&[&rule]).references(&ids(23)).await?;

    assert_eq!(
        refs,
        [
            reference(
                "ami-03",
                "ec2:LaunchTemplate",
                "arn:aws:ec2:us-east-1:111122223333:launch-template/lt-1"
            ),
            reference(
                "ami-07",
                "ssm:Parameter",
                "arn:aws:ssm:us-east-1:111122223333:parameter/app/ami"
            ),
            reference(
                "ami-22",
                "ec2:Instance",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-1"
            ),
        ]
    );
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let shape: Vec<(usize, Option<&str>)> = seen
        .iter()
        .map(|r| (r.image_ids().len(), r.next_token()))
        .collect();
    assert_eq!(
        shape,
        [(10, None), (10, Some("p2")), (10, None), (3, None)],
        "batches of at most {IDS_PER_REFERENCE_CALL} ids, every page followed"
    );
    let all_ids: Vec<&String> = seen
        .iter()
        .filter(|r| r.next_token().is_none())
        .flat_map(|r| r.image_ids())
        .collect();
    assert_eq!(all_ids.len(), 23, "every id asked exactly once");

    let states: Vec<String> = INSTANCE_STATES.iter().map(|s| (*s).to_owned()).collect();
    let expected = vec![
        (
            "ec2:Instance".to_owned(),
            vec![("state-name".to_owned(), states)],
        ),
        (
            "ec2:LaunchTemplate".to_owned(),
            vec![("version-depth".to_owned(), vec!["10000".to_owned()])],
        ),
        ("ssm:Parameter".to_owned(), vec![]),
        ("imagebuilder:ImageRecipe".to_owned(), vec![]),
        ("imagebuilder:ContainerRecipe".to_owned(), vec![]),
    ];
    for req in &seen {
        assert_eq!(asked_types(req), expected);
        assert_eq!(
            req.include_all_resource_types(),
            None,
            "types are named, not defaulted"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_failed_reference_call_is_an_error_not_a_scan() {
    // A validation error is not "unsupported": nothing may be taken for unused.
    let invalid = mock!(aws_sdk_ec2::Client::describe_image_references)
        .sequence()
        .http_status(
            400,
            ec2_error("InvalidParameterValue", "too many image ids"),
        )
        .build();
    let scanned = mock!(aws_sdk_ec2::Client::describe_launch_templates)
        .then_output(|| DescribeLaunchTemplatesOutput::builder().build());
    match ec2_port(&[&invalid, &scanned]).references(&ids(3)).await {
        Ok(refs) => panic!("a refused check answered {refs:?}"),
        Err(e) => {
            assert_eq!(e.code, "InvalidParameterValue");
            assert_eq!(
                scanned.num_calls(),
                0,
                "no fallback scan on a refused request"
            );
        }
    }
}

fn ssm_parameter(name: &str, kind: ssm::ParameterType) -> ssm::ParameterMetadata {
    ssm::ParameterMetadata::builder()
        .name(name)
        .r#type(kind)
        .build()
}

#[tokio::test]
async fn references_fall_back_to_instances_every_launch_template_version_and_ssm() -> TestResult {
    let unsupported = mock!(aws_sdk_ec2::Client::describe_image_references)
        .sequence()
        .http_status(
            400,
            ec2_error(
                "InvalidAction",
                "The action DescribeImageReferences is not valid for this web service.",
            ),
        )
        .build();
    let instance_filters: Arc<Mutex<Vec<DescribeInstancesInput>>> = Arc::default();
    let log = instance_filters.clone();
    let instances =
        mock!(aws_sdk_ec2::Client::describe_instances).then_compute_output(move |req| {
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(req.clone());
            DescribeInstancesOutput::builder()
                .reservations(
                    ec2::Reservation::builder()
                        .owner_id("111122223333")
                        .instances(
                            ec2::Instance::builder()
                                .instance_id("i-1")
                                .image_id("ami-1")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let templates = mock!(aws_sdk_ec2::Client::describe_launch_templates)
        .match_requests(|r| r.include_managed_resources() == Some(true))
        .then_output(|| {
            DescribeLaunchTemplatesOutput::builder()
                .launch_templates(
                    ec2::LaunchTemplate::builder()
                        .launch_template_id("lt-1")
                        .build(),
                )
                .build()
        });
    let version = |n: i64, image: &str| {
        ec2::LaunchTemplateVersion::builder()
            .launch_template_id("lt-1")
            .version_number(n)
            .created_by("arn:aws:iam::111122223333:user/ops")
            .launch_template_data(
                ec2::ResponseLaunchTemplateData::builder()
                    .image_id(image)
                    .build(),
            )
            .build()
    };
    let versions = mock!(aws_sdk_ec2::Client::describe_launch_template_versions)
        .match_requests(|r| r.launch_template_id() == Some("lt-1") && r.versions().is_empty())
        .then_output(move || {
            DescribeLaunchTemplateVersionsOutput::builder()
                .launch_template_versions(version(3, "ami-9"))
                .launch_template_versions(version(2, "ami-2"))
                .launch_template_versions(version(1, "ami-2"))
                .build()
        });
    let described = mock!(aws_sdk_ssm::Client::describe_parameters).then_output(|| {
        DescribeParametersOutput::builder()
            .parameters(ssm_parameter("/app/ami", ssm::ParameterType::String))
            .parameters(ssm_parameter(
                "/app/secret",
                ssm::ParameterType::SecureString,
            ))
            .build()
    });
    let got = mock!(aws_sdk_ssm::Client::get_parameters)
        .match_requests(|r| r.names() == ["/app/ami"])
        .then_output(|| {
            GetParametersOutput::builder()
                .parameters(
                    ssm::Parameter::builder()
                        .name("/app/ami")
                        .arn("arn:aws:ssm:us-east-1:111122223333:parameter/app/ami")
                        .value("ami-2")
                        .build(),
                )
                .build()
        });

    let refs = ec2_and_ssm(
        &[&unsupported, &instances, &templates, &versions],
        &[&described, &got],
        1,
    )
    .references(&[ImageId::new("ami-1"), ImageId::new("ami-2")])
    .await?;

    assert_eq!(
        refs,
        [
            reference(
                "ami-1",
                "ec2:Instance",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-1"
            ),
            reference(
                "ami-2",
                "ec2:LaunchTemplate",
                "arn:aws:ec2:us-east-1:111122223333:launch-template/lt-1"
            ),
            reference(
                "ami-2",
                "ssm:Parameter",
                "arn:aws:ssm:us-east-1:111122223333:parameter/app/ami"
            ),
        ]
    );
    let filters = instance_filters.lock().unwrap_or_else(|p| p.into_inner());
    let first = filters.first().ok_or("DescribeInstances was not called")?;
    let values = |name: &str| -> Vec<String> {
        first
            .filters()
            .iter()
            .find(|f| f.name() == Some(name))
            .map(|f| f.values().to_vec())
            .unwrap_or_default()
    };
    assert_eq!(values("image-id"), ["ami-1", "ami-2"]);
    assert_eq!(
        values("instance-state-name"),
        INSTANCE_STATES,
        "the same states DescribeImageReferences is asked for"
    );
    Ok(())
}

#[tokio::test]
async fn ssm_values_are_read_ten_names_at_a_time_across_pages_and_lists_count() -> TestResult {
    let names = |range: std::ops::Range<usize>| -> Vec<ssm::ParameterMetadata> {
        range
            .map(|i| ssm_parameter(&format!("/p/{i}"), ssm::ParameterType::String))
            .collect()
    };
    let described = mock!(aws_sdk_ssm::Client::describe_parameters)
        .match_requests(|r| r.max_results() == Some(50))
        .sequence()
        .output(move || {
            DescribeParametersOutput::builder()
                .set_parameters(Some(names(0..12)))
                .next_token("more")
                .build()
        })
        .output(move || {
            DescribeParametersOutput::builder()
                .set_parameters(Some({
                    let mut v = vec![ssm_parameter("/p/secret", ssm::ParameterType::SecureString)];
                    v.extend(names(12..22));
                    v.push(ssm_parameter("/p/list", ssm::ParameterType::StringList));
                    v
                }))
                .build()
        })
        .build();
    let asked: Arc<Mutex<Vec<GetParametersInput>>> = Arc::default();
    let log = asked.clone();
    let got = mock!(aws_sdk_ssm::Client::get_parameters).then_compute_output(move |req| {
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(req.clone());
        let mut out = GetParametersOutput::builder();
        for name in req.names() {
            let value = match name.as_str() {
                "/p/3" => "ami-a",
                "/p/list" => "ami-x, ami-b",
                "/p/15" => "ami-zz",
                _ => "hello",
            };
            out = out.parameters(ssm::Parameter::builder().name(name).value(value).build());
        }
        out.build()
    });

    let refs = parameters(&[&described, &got])
        .parameters_naming(&[ImageId::new("ami-a"), ImageId::new("ami-b")])
        .await?;

    assert_eq!(
        refs,
        [
            reference("ami-a", "ssm:Parameter", "/p/3"),
            reference("ami-b", "ssm:Parameter", "/p/list"),
        ]
    );
    let asked = asked.lock().unwrap_or_else(|p| p.into_inner());
    let sizes: Vec<usize> = asked.iter().map(|r| r.names().len()).collect();
    assert_eq!(sizes, [10, 10, 3], "23 readable names, at most 10 per call");
    assert!(
        asked
            .iter()
            .all(|r| !r.names().iter().any(|n| n == "/p/secret")),
        "SecureString values are not read"
    );
    Ok(())
}
