//! Emulator integration test of issue 18's cross-account use checks: before cleanup
//! (`CLEANUP_SHARED=true`) deletes a shared image, or share revokes a grant, the accounts
//! it is shared with are asked whether they use it.
//!
//! An organization of a hub (123456789012, running as a function role under
//! `/ami-lifecycle/<deployment>/`) and two spokes A and B with the spoke roles of
//! `infra/spoke-role.yaml` (trust enforced by the emulator's STS), plus an account C the
//! hub cannot reach (not selected, no role). The hub's images are shared with A (which
//! runs an instance of one), B (which uses nothing) and C (which runs one too):
//! - A is asked with DescribeImageReferences through its cleanup spoke role: the image is
//!   kept with its grant, the line naming A, the instance and the region;
//! - B's image goes (cleanup) and B's grant is revoked (share), as before;
//! - C goes through an EC2 image usage report: the first run requests it and keeps the
//!   image ("usage being checked: report amiur-…"), the next run reads it and keeps the
//!   image, naming C and what uses it.

use ami_core::config::Config;
use ami_core::context::Context;
use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::report::{Outcome, RunReport};
use ami_core::runner::{self, Cleanup, CreateImage, Runner, Share};
use ami_core::share::ShareRequest;
use ami_core::tags::key;
use ami_core::time_util::slot_of;
use ami_sim::{Emulator, EmulatorClient};
use anyhow::{ensure, Context as _};
use aws_sdk_ec2::types::{LaunchPermission, LaunchPermissionModifications, Tag, TagSpecification};
use serde_json::json;
use std::sync::Arc;
use time::Duration;

use crate::common::now;

const HOME: &str = "us-east-1";
const DEPLOYMENT: &str = "ami-lifecycle";
const HUB: &str = "123456789012";
const A: &str = "111122223333";
const B: &str = "222233334444";
const C: &str = "444455556666";
const EXTERNAL_ID: &str = "0123456789abcdef-external-id";
/// moto's own image, launchable by every account.
const PUBLIC_AMI: &str = "ami-12c6146b";

fn iam(emu: &EmulatorClient, account: &str) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&emu.sdk_config_as(HOME, account))
}

/// The spoke roles of `functions` in `account`, with infra/spoke-role.yaml's trust.
async fn spoke_roles(
    emu: &EmulatorClient,
    account: &str,
    functions: &[&str],
) -> anyhow::Result<()> {
    let template = std::fs::read_to_string(ami_sim::repo_root().join("infra/spoke-role.yaml"))?;
    ensure!(
        template.contains("sts:ExternalId: !Ref ExternalId")
            && template.contains("role/ami-lifecycle/${DeploymentName}/*"),
        "infra/spoke-role.yaml's trust changed: update this test"
    );
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{HUB}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:ExternalId": EXTERNAL_ID},
                "ArnLike": {"aws:PrincipalArn": format!("arn:aws:iam::{HUB}:role/ami-lifecycle/{DEPLOYMENT}/*")},
            },
        }],
    })
    .to_string();
    for f in functions {
        iam(emu, account)
            .create_role()
            .role_name(format!("{DEPLOYMENT}-spoke-{f}"))
            .path("/ami-lifecycle/")
            .assume_role_policy_document(&trust)
            .send()
            .await
            .with_context(|| format!("CreateRole {f} in {account}"))?;
    }
    Ok(())
}

/// A context acting as a hub function role (the spoke roles trust nothing else).
async fn hub_context(emu: &EmulatorClient, config: Config) -> anyhow::Result<Context> {
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": HUB}, "Action": "sts:AssumeRole"}],
    })
    .to_string();
    let role = iam(emu, HUB)
        .create_role()
        .role_name(format!("{DEPLOYMENT}-functions"))
        .path(format!("/ami-lifecycle/{DEPLOYMENT}/"))
        .assume_role_policy_document(trust)
        .send()
        .await?
        .role
        .map(|r| r.arn)
        .context("CreateRole answered no role")?;
    let c = aws_sdk_sts::Client::new(&emu.sdk_config_as(HOME, HUB))
        .assume_role()
        .role_arn(role)
        .role_session_name("hub-function")
        .send()
        .await?
        .credentials
        .context("AssumeRole answered no credentials")?;
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "hub-function-role",
    );
    let mut config = config;
    config.seal_key = Some(emu.seal_key(HOME, DEPLOYMENT)?);
    let cloud = ami_core::aws::AwsCloud::new(emu.sdk_config_with(HOME, creds), &config, 0.0);
    Ok(Context::new(Arc::new(cloud), config))
}

/// Runs `image` in `account`; returns the instance id.
async fn run_instance(
    emu: &EmulatorClient,
    account: &str,
    image: &str,
    name: &str,
) -> anyhow::Result<String> {
    let out = emu
        .ec2_as(HOME, account)
        .run_instances()
        .image_id(image)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(Tag::builder().key("Name").value(name).build())
                .tags(Tag::builder().key(key::SCHEDULE).value("daily").build())
                .tags(Tag::builder().key(key::REBOOT).value("false").build())
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("RunInstances {image} in {account}"))?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .context("no instance")
}

/// The hub's managed images, oldest slot first.
async fn hub_images(emu: &EmulatorClient) -> anyhow::Result<Vec<String>> {
    let out = emu
        .ec2_as(HOME, HUB)
        .describe_images()
        .owners("self")
        .send()
        .await?;
    let mut images: Vec<(String, String)> = out
        .images()
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
        .filter_map(|i| {
            let slot = i
                .tags()
                .iter()
                .find(|t| t.key() == Some(key::SLOT))?
                .value()?
                .to_owned();
            Some((slot, i.image_id()?.to_owned()))
        })
        .collect();
    images.sort();
    Ok(images.into_iter().map(|(_, id)| id).collect())
}

async fn share_with(emu: &EmulatorClient, image: &str, account: &str) -> anyhow::Result<()> {
    emu.ec2_as(HOME, HUB)
        .modify_image_attribute()
        .image_id(image)
        .launch_permission(
            LaunchPermissionModifications::builder()
                .add(LaunchPermission::builder().user_id(account).build())
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

async fn launchers(emu: &EmulatorClient, image: &str) -> anyhow::Result<Vec<String>> {
    let out = emu
        .ec2_as(HOME, HUB)
        .describe_image_attribute()
        .image_id(image)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await?;
    let mut ids: Vec<String> = out
        .launch_permissions()
        .iter()
        .filter_map(|p| p.user_id().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

fn line<'a>(
    report: &'a RunReport,
    subject: &str,
) -> anyhow::Result<&'a ami_core::report::ReportItem> {
    report
        .items
        .iter()
        .rev()
        .find(|i| i.subject == subject)
        .with_context(|| format!("no line for {subject}:\n{}", report.render_table()))
}

#[tokio::test]
async fn shared_images_in_use_elsewhere_keep_their_grants_through_cleanup_and_share(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    emu.control(
        "POST",
        "/_emulator/organizations/seed",
        Some(json!({
            "management": HUB,
            "ous": ["Workloads"],
            "accounts": [
                {"id": A, "name": "spoke-a", "ou": "Workloads", "status": "ACTIVE"},
                {"id": B, "name": "spoke-b", "ou": "Workloads", "status": "ACTIVE"},
            ],
        })),
    )?;
    for spoke in [A, B] {
        spoke_roles(&emu, spoke, &["cleanup", "share"]).await?;
    }
    let accounts = format!("{HUB},{A},{B}");
    let allowed = format!("{A},{B},{C}");
    let ctx = hub_context(
        &emu,
        emu.config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", &accounts),
            ("SPOKE_EXTERNAL_ID", EXTERNAL_ID),
            ("RETAIN", "count=1"),
            ("CLEANUP_SHARED", "true"),
            // Launches by other accounts must not be what keeps an image here.
            ("KEEP_IF_LAUNCHED_WITHIN", "0"),
            ("SHARE_ALLOWED", &allowed),
        ]),
    )
    .await?;

    // GIVEN four daily images of a hub instance, the three older ones shared with A, B, C
    run_instance(&emu, HUB, PUBLIC_AMI, "web").await?;
    for days in [4, 3, 2, 1] {
        let slot = slot_of(now() - Duration::days(days));
        let request = create::Request::Run(vec![CreateRequest::Schedule(ScheduleRun::new(
            "daily".into(),
            slot,
        ))]);
        let made = CreateImage::run(&ctx, request, now()).await;
        ensure!(made.count(Outcome::Created) == 1, "{}", made.render_table());
        emu.tick()?;
    }
    let images = hub_images(&emu).await?;
    ensure!(images.len() == 4, "{images:?}");
    let (for_a, for_b, for_c, newest) = (&images[0], &images[1], &images[2], &images[3]);
    share_with(&emu, for_a, A).await?;
    share_with(&emu, for_b, B).await?;
    share_with(&emu, for_c, C).await?;
    // A and C run instances of their images; B uses nothing.
    let in_a = run_instance(&emu, A, for_a, "app-a").await?;
    run_instance(&emu, C, for_c, "app-c").await?;

    // WHEN cleanup runs (CLEANUP_SHARED=true)
    let first = runner::run_request::<Cleanup>(&ctx, Default::default(), now()).await;

    // THEN A's image is kept with its grant, the line naming A, the instance and the region
    let kept = line(&first, for_a)?;
    ensure!(kept.outcome == Outcome::Kept, "{}", first.render_table());
    let expected = format!("in use in {A} by instance {in_a} ({HOME})");
    ensure!(
        kept.reason.contains(&expected),
        "{:?} lacks {expected:?}",
        kept.reason
    );
    ensure!(launchers(&emu, for_a).await? == vec![A.to_owned()]);
    // AND B's, unused, is deleted as before
    ensure!(
        line(&first, for_b)?.outcome == Outcome::Deleted,
        "{}",
        first.render_table()
    );
    // AND C's (outside the hub's reach) waits for its usage report, grant intact
    let waiting = line(&first, for_c)?;
    ensure!(
        waiting.outcome == Outcome::Deferred,
        "{}",
        first.render_table()
    );
    ensure!(
        waiting
            .reason
            .contains(&format!("usage being checked: {C}: report amiur-")),
        "{:?}",
        waiting.reason
    );
    ensure!(launchers(&emu, for_c).await? == vec![C.to_owned()]);

    // WHEN cleanup runs again THEN the report is read: C's image is kept, C named
    let second = runner::run_request::<Cleanup>(&ctx, Default::default(), now()).await;
    let read = line(&second, for_c)?;
    ensure!(read.outcome == Outcome::Kept, "{}", second.render_table());
    ensure!(
        read.reason.contains(&format!(
            "in use in {C} by 1 instance(s) ({HOME}, usage report amiur-"
        )),
        "{:?}",
        read.reason
    );
    let left = hub_images(&emu).await?;
    ensure!(
        left.contains(for_a) && left.contains(for_c) && !left.contains(for_b),
        "{left:?}"
    );

    // GIVEN the newest image shared by the suite with A and B (share-with), A running it
    let tag = |v: &str| Tag::builder().key(key::SHARE_WITH).value(v).build();
    emu.ec2_as(HOME, HUB)
        .create_tags()
        .resources(newest)
        .tags(tag(&format!("{A},{B}")))
        .send()
        .await?;
    let granted = runner::run_request::<Share>(&ctx, ShareRequest::Reconcile, now()).await;
    ensure!(
        launchers(&emu, newest).await? == vec![A.to_owned(), B.to_owned()],
        "{}",
        granted.render_table()
    );
    let on_newest = run_instance(&emu, A, newest, "app-a-2").await?;

    // WHEN share-with drops both
    emu.ec2_as(HOME, HUB)
        .create_tags()
        .resources(newest)
        .tags(tag(HUB))
        .send()
        .await?;
    let revoked = runner::run_request::<Share>(&ctx, ShareRequest::Reconcile, now()).await;

    // THEN A keeps its grant (in use), B loses it
    ensure!(
        launchers(&emu, newest).await? == vec![A.to_owned()],
        "{}",
        revoked.render_table()
    );
    let kept = revoked
        .items
        .iter()
        .find(|i| i.subject == A && i.image.as_ref().map(|x| x.as_str()) == Some(newest.as_str()))
        .with_context(|| revoked.render_table())?;
    ensure!(kept.outcome == Outcome::Kept, "{}", revoked.render_table());
    ensure!(
        kept.reason
            .contains(&format!("in use in {A} by instance {on_newest}")),
        "{:?}",
        kept.reason
    );
    ensure!(
        revoked
            .items
            .iter()
            .any(|i| i.subject == B && i.outcome == Outcome::Revoked),
        "{}",
        revoked.render_table()
    );
    Ok(())
}
