//! Emulator integration test for issue 18's first slice: one deployment acting on the
//! accounts of its organization, one after the other, through the spoke roles.
//!
//! An organization of three accounts (the hub, its management account; two spokes) is
//! seeded through the control API. The hub runs as a *function role* (a role under
//! `/ami-lifecycle/<deployment>/`, as template.yaml's `RolePath` makes it), because the spoke
//! roles trust nothing else. Spoke 1 has the spoke roles of create-image and cleanup with
//! the trust of `infra/spoke-role.yaml` (enforced by the emulator's STS); spoke 2 has none.
//! With `AMI_LIFECYCLE_ACCOUNTS=org`, create-image and cleanup act in the hub and in
//! spoke 1, each on its own images; spoke 2 is reported (account, role, fix) and untouched.
//! An `ou:` selector finds accounts in nested OUs, leaves out a suspended account (reported)
//! and not the hub, which is not under it.

use ami_core::config::Config;
use ami_core::context::Context;
use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::report::{Outcome, RunReport};
use ami_core::runner::{self, Cleanup, CreateImage};
use ami_core::tags::key;
use ami_core::time_util::slot_of;
use ami_sim::{Emulator, EmulatorClient};
use anyhow::{ensure, Context as _};
use serde_json::json;
use std::sync::Arc;
use time::Duration;

use crate::common::now;

const HOME: &str = "us-east-1";
const DEPLOYMENT: &str = "ami-lifecycle";
/// The emulator's default account: the hub, and the organization's management account.
const HUB: &str = "123456789012";
const SPOKE: &str = "111122223333";
const NO_ROLE: &str = "444455556666";
const EXTERNAL_ID: &str = "0123456789abcdef-external-id";
/// An image every account of the emulator may launch (moto's own).
const PUBLIC_AMI: &str = "ami-12c6146b";

fn iam(emu: &EmulatorClient, account: &str) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&emu.sdk_config_as(HOME, account))
}

/// The trust of every spoke role in `infra/spoke-role.yaml`, for this hub and deployment.
fn spoke_trust() -> anyhow::Result<String> {
    let template = std::fs::read_to_string(ami_sim::repo_root().join("infra/spoke-role.yaml"))?;
    // The statement built here is the template's: fail when the template's trust changes.
    for line in [
        "AWS: !Sub arn:${AWS::Partition}:iam::${HubAccountId}:root",
        "sts:ExternalId: !Ref ExternalId",
        "aws:PrincipalArn: !Sub arn:${AWS::Partition}:iam::${HubAccountId}:role/ami-lifecycle/${DeploymentName}/*",
    ] {
        ensure!(template.contains(line), "infra/spoke-role.yaml no longer says {line:?}");
    }
    Ok(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "HubFunctionRolesWithExternalId",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{HUB}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"sts:ExternalId": EXTERNAL_ID},
                "ArnLike": {"aws:PrincipalArn": format!("arn:aws:iam::{HUB}:role/ami-lifecycle/{DEPLOYMENT}/*")},
            },
        }],
    })
    .to_string())
}

/// The spoke roles of `functions` in `account` (what the StackSet deploys).
async fn spoke_roles(
    emu: &EmulatorClient,
    account: &str,
    functions: &[&str],
) -> anyhow::Result<()> {
    let trust = spoke_trust()?;
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

/// A context whose cloud acts as a hub function role (as the Lambda functions do).
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
    let sts = aws_sdk_sts::Client::new(&emu.sdk_config_as(HOME, HUB));
    let c = sts
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

/// An instance opted in to `daily` without reboots, in `account`.
async fn instance(emu: &EmulatorClient, account: &str) -> anyhow::Result<String> {
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let out = emu
        .ec2_as(HOME, account)
        .run_instances()
        .image_id(PUBLIC_AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(tag("Name", &format!("web-{account}")))
                .tags(tag(key::SCHEDULE, "daily"))
                .tags(tag(key::REBOOT, "false"))
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("RunInstances in {account}"))?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .context("no instance")
}

/// The images `account` owns that are not deregistered.
async fn images(emu: &EmulatorClient, account: &str) -> anyhow::Result<Vec<String>> {
    let out = emu
        .ec2_as(HOME, account)
        .describe_images()
        .owners("self")
        .include_disabled(true)
        .send()
        .await?;
    Ok(out
        .images()
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
        .filter_map(|i| i.image_id().map(str::to_owned))
        .collect())
}

fn in_account<'a>(
    report: &'a RunReport,
    account: &str,
    outcome: Outcome,
) -> Vec<&'a ami_core::report::ReportItem> {
    report
        .items
        .iter()
        .filter(|i| i.outcome == outcome && i.account.as_ref().map(|a| a.as_str()) == Some(account))
        .collect()
}

/// The one item about `NO_ROLE`: failed, naming the account, the role and the fix.
fn check_unreachable(report: &RunReport, function: &str) -> anyhow::Result<()> {
    let items: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.account.as_ref().map(|a| a.as_str()) == Some(NO_ROLE))
        .collect();
    ensure!(items.len() == 1, "{}", report.render_table());
    let item = items[0];
    ensure!(item.outcome == Outcome::Failed, "{}", report.render_table());
    let role = format!("arn:aws:iam::{NO_ROLE}:role/ami-lifecycle/{DEPLOYMENT}-spoke-{function}");
    for words in [
        NO_ROLE,
        role.as_str(),
        "AccessDenied",
        "deploy infra/spoke-role.yaml",
    ] {
        ensure!(
            item.reason.contains(words),
            "{:?} lacks {words:?}",
            item.reason
        );
    }
    Ok(())
}

#[tokio::test]
async fn one_deployment_manages_each_account_of_its_org_and_reports_a_spoke_without_the_role(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let seeded = emu.control(
        "POST",
        "/_emulator/organizations/seed",
        Some(json!({
            "management": HUB,
            "ous": ["Workloads"],
            "accounts": [
                {"id": SPOKE, "name": "spoke-1", "ou": "Workloads", "status": "ACTIVE"},
                {"id": NO_ROLE, "name": "spoke-2", "ou": "Workloads", "status": "ACTIVE"},
            ],
        })),
    )?;
    ensure!(
        seeded["accounts"].as_array().map(Vec::len) == Some(2),
        "{seeded}"
    );
    spoke_roles(&emu, SPOKE, &["create-image", "cleanup"]).await?;
    let ctx = hub_context(
        &emu,
        emu.config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", "org"),
            ("SPOKE_EXTERNAL_ID", EXTERNAL_ID),
            ("RETAIN", "count=1"),
        ]),
    )
    .await?;
    let mut web = Vec::new();
    for account in [HUB, SPOKE, NO_ROLE] {
        web.push(instance(&emu, account).await?);
    }

    // Three daily slots of create-image, through the runner contract, in every account.
    for days in [3, 2, 1] {
        let slot = slot_of(now() - Duration::days(days));
        let request = create::Request::Run(vec![CreateRequest::Schedule(ScheduleRun::new(
            "daily".into(),
            slot,
        ))]);
        let made = runner::run_request::<CreateImage>(&ctx, request, now()).await;
        emu.tick()?;
        ensure!(
            in_account(&made, HUB, Outcome::Created).len() == 1,
            "{}",
            made.render_table()
        );
        ensure!(
            in_account(&made, SPOKE, Outcome::Created).len() == 1,
            "{}",
            made.render_table()
        );
        check_unreachable(&made, "create-image")?;
    }
    ensure!(images(&emu, HUB).await?.len() == 3);
    ensure!(
        images(&emu, SPOKE).await?.len() == 3,
        "the spoke's images are its own"
    );
    ensure!(images(&emu, NO_ROLE).await?.is_empty());

    // spoke 2 has images of its own (made by hand there): never reached.
    let theirs = emu
        .ec2_as(HOME, NO_ROLE)
        .create_image()
        .instance_id(&web[2])
        .name("spoke-2-own-image")
        .no_reboot(true)
        .send()
        .await?
        .image_id
        .context("no image")?;
    emu.tick()?;

    // cleanup with RETAIN=count=1: two images go in each reachable account.
    let cleaned = runner::run_request::<Cleanup>(&ctx, Default::default(), now()).await;
    ensure!(
        in_account(&cleaned, HUB, Outcome::Deleted).len() == 2,
        "{}",
        cleaned.render_table()
    );
    ensure!(
        in_account(&cleaned, SPOKE, Outcome::Deleted).len() == 2,
        "{}",
        cleaned.render_table()
    );
    check_unreachable(&cleaned, "cleanup")?;
    ensure!(images(&emu, HUB).await?.len() == 1);
    ensure!(images(&emu, SPOKE).await?.len() == 1);
    ensure!(images(&emu, NO_ROLE).await? == vec![theirs]);
    ensure!(cleaned.render_table().starts_with("ACCOUNT"));
    ensure!(cleaned.metrics.get("accounts") == Some(&2.0));
    let detail = cleaned.event_detail();
    ensure!(detail["outcome"] == "partial", "{detail}");
    Ok(())
}

#[tokio::test]
async fn unset_acts_in_its_own_account_only_and_reports_no_account() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("RETAIN", "count=1")]));
    instance(&emu, HUB).await?;
    instance(&emu, SPOKE).await?;
    let slot = slot_of(now() - Duration::days(1));
    let made = runner::run_request::<CreateImage>(
        &ctx,
        create::Request::Run(vec![CreateRequest::Schedule(ScheduleRun::new(
            "daily".into(),
            slot,
        ))]),
        now(),
    )
    .await;
    ensure!(made.count(Outcome::Created) == 1, "{}", made.render_table());
    ensure!(made.items.iter().all(|i| i.account.is_none()));
    ensure!(!made.render_table().contains("ACCOUNT"));
    ensure!(images(&emu, SPOKE).await?.is_empty());
    // (That no STS or Organizations call is made is the fake's test: the emulator counts
    // EC2 calls only.)
    Ok(())
}

#[tokio::test]
async fn an_ou_selects_its_active_accounts_and_a_suspended_one_is_left_out() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let seeded = emu.control(
        "POST",
        "/_emulator/organizations/seed",
        Some(json!({
            "management": HUB,
            "ous": ["Workloads", "Workloads/Prod"],
            "accounts": [
                {"id": SPOKE, "name": "spoke-1", "ou": "Workloads/Prod", "status": "ACTIVE"},
                {"id": NO_ROLE, "name": "spoke-2", "ou": "Workloads", "status": "SUSPENDED"},
            ],
        })),
    )?;
    let ou = seeded["ous"]["Workloads"]
        .as_str()
        .context("no OU id")?
        .to_owned();
    spoke_roles(&emu, SPOKE, &["create-image"]).await?;
    let ctx = hub_context(
        &emu,
        emu.config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", &format!("ou:{ou}")),
            ("SPOKE_EXTERNAL_ID", EXTERNAL_ID),
        ]),
    )
    .await?;
    for account in [HUB, SPOKE] {
        instance(&emu, account).await?;
    }
    let slot = slot_of(now() - Duration::days(1));
    let made = runner::run_request::<CreateImage>(
        &ctx,
        create::Request::Run(vec![CreateRequest::Schedule(ScheduleRun::new(
            "daily".into(),
            slot,
        ))]),
        now(),
    )
    .await;
    emu.tick()?;
    // The spoke is two OUs down: found recursively. The hub is not under the OU.
    ensure!(
        in_account(&made, SPOKE, Outcome::Created).len() == 1,
        "{}",
        made.render_table()
    );
    ensure!(
        images(&emu, HUB).await?.is_empty(),
        "{}",
        made.render_table()
    );
    let left_out = in_account(&made, NO_ROLE, Outcome::Skipped);
    ensure!(
        left_out.len() == 1 && left_out[0].reason.contains("SUSPENDED"),
        "{}",
        made.render_table()
    );
    ensure!(made.failed() == 0, "{}", made.render_table());
    Ok(())
}
