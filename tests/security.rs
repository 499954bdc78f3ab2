//! Emulator integration tests for issue 14: ownership and sharing that tags cannot subvert.
//! One test per attack or mistake, each showing it fail against the extended moto through
//! the AWS SDK adapters (seals made and checked with the emulator's KMS `GenerateMac` /
//! `VerifyMac`):
//! - a forged `managed-by` image: nothing deleted or shared, reported `unsealed`;
//! - a slot in the future: refused at the edge, and a sealed image with a future slot tag
//!   never wins retention;
//! - a forged grant record: nothing revoked;
//! - a shrinking allow-list and `ALLOW_PUBLIC` turned off: revoked;
//! - two concurrent share runs: the record names every grant;
//! - `SHARE_REPLICAS=false`: a replica's grants are revoked.
//!
//! (A continuation sent by another principal is refused by the queue policy: a template
//! test, `infra/tests/test_policies.py`.)

use std::collections::BTreeSet;

use ami_core::context::Context;
use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::report::{Outcome, RunReport};
use ami_core::runner::{self, CreateImage};
use ami_core::share::{self, record, ShareRequest};
use ami_core::tags::key;
use ami_core::time_util::{rfc3339, slot_of};
use ami_sim::{Emulator, EmulatorClient};
use anyhow::{ensure, Context as _};
use aws_sdk_ec2::types::{LaunchPermission, LaunchPermissionModifications};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::common::{now, set};

const HOME: &str = "us-east-1";
const REPLICA: &str = "eu-west-1";
const DEPLOYMENT: &str = "ami-lifecycle";
const A: &str = "111122223333";
const B: &str = "444455556666";
const C: &str = "777788889999";

/// A slot `days` days ago (in the past of the emulator's clock, which stamps creation).
fn days_ago(days: i64) -> OffsetDateTime {
    slot_of(now() - Duration::days(days))
}

fn outcomes(report: &RunReport, image: &str) -> Vec<Outcome> {
    report
        .items
        .iter()
        .filter(|i| i.image.as_ref().map(|x| x.as_str()) == Some(image) || i.subject == image)
        .map(|i| i.outcome)
        .collect()
}

/// An instance opted in to `daily` without reboots.
async fn instance(emu: &Emulator, name: &str, share_with: Option<&str>) -> anyhow::Result<String> {
    let mut tags = vec![
        ("Name", name),
        (key::SCHEDULE, "daily"),
        (key::REBOOT, "false"),
    ];
    if let Some(s) = share_with {
        tags.push((key::SHARE_WITH, s));
    }
    emu.launch_instance(HOME, &tags, &[]).await
}

/// create-image for the daily slot `slot`, then the images become available; returns
/// the image made of `instance`.
async fn image_for(
    emu: &Emulator,
    ctx: &Context,
    instance: &str,
    slot: OffsetDateTime,
) -> anyhow::Result<String> {
    let report = create::run(
        ctx,
        CreateRequest::Schedule(ScheduleRun::new("daily".into(), slot)),
        now(),
    )
    .await;
    emu.tick()?;
    report
        .items
        .iter()
        .find(|i| i.subject == instance && i.outcome == Outcome::Created)
        .and_then(|i| i.image.as_ref().map(ToString::to_string))
        .with_context(|| format!("no image of {instance}: {}", report.render_table()))
}

async fn live(emu: &Emulator, region: &str, image: &str) -> anyhow::Result<bool> {
    let out = emu
        .ec2(region)
        .describe_images()
        .owners("self")
        .include_disabled(true)
        .send()
        .await?;
    Ok(out.images().iter().any(|i| {
        i.image_id() == Some(image) && i.state().map(|s| s.as_str()) != Some("deregistered")
    }))
}

async fn launchers(emu: &Emulator, region: &str, image: &str) -> anyhow::Result<BTreeSet<String>> {
    Ok(emu
        .launch_permission_accounts(region, image)
        .await?
        .into_iter()
        .collect())
}

async fn is_public(emu: &Emulator, region: &str, image: &str) -> anyhow::Result<bool> {
    let out = emu
        .ec2(region)
        .describe_image_attribute()
        .image_id(image)
        .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
        .send()
        .await?;
    Ok(out
        .launch_permissions()
        .iter()
        .any(|p| p.group().map(|g| g.as_str()) == Some("all")))
}

async fn tags_of(
    emu: &Emulator,
    region: &str,
    image: &str,
) -> anyhow::Result<ami_core::model::Tags> {
    let out = emu
        .ec2(region)
        .describe_images()
        .image_ids(image)
        .send()
        .await?;
    Ok(out
        .images()
        .first()
        .map(|i| {
            i.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}

/// The grantees the image's record names (its chunks' entries, sealed or not).
async fn recorded(emu: &Emulator, region: &str, image: &str) -> anyhow::Result<BTreeSet<String>> {
    let tags = tags_of(emu, region, image).await?;
    Ok(record::chunks(&tags)
        .iter()
        .flat_map(record::Chunk::grantees)
        .map(|g| g.to_string())
        .collect())
}

async fn share(ctx: &Context, request: ShareRequest) -> RunReport {
    share::run(ctx, request, now()).await
}

#[tokio::test]
async fn a_forged_managed_by_image_is_never_deleted_or_shared_and_is_reported_unsealed(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let web = instance(&emu, "web", None).await?;
    let ctx = emu.context(emu.config(&[("RETAIN", "count=1"), ("SHARE_ALLOWED", A)]));
    let older = image_for(&emu, &ctx, &web, days_ago(2)).await?;
    let newest = image_for(&emu, &ctx, &web, days_ago(1)).await?;

    // Someone with ec2:CreateTags makes their own image of web look like the oldest
    // member of its lineage, and asks for it to be shared.
    let forged = emu
        .ec2(HOME)
        .create_image()
        .instance_id(&web)
        .name("someone-elses-golden-image")
        .no_reboot(true)
        .send()
        .await?
        .image_id()
        .context("no id")?
        .to_owned();
    emu.tick()?;
    for (k, v) in [
        (key::MANAGED_BY, DEPLOYMENT.to_owned()),
        (key::SOURCE_INSTANCE, web.clone()),
        (key::SCHEDULE, "daily".to_owned()),
        (key::SLOT, rfc3339(days_ago(30))),
        (key::SHARE_WITH, A.to_owned()),
    ] {
        emu.tag_image(HOME, &forged, k, &v).await?;
    }

    let cleaned = ami_core::cleanup::run(&ctx, Default::default(), now()).await;
    let shared = share(&ctx, ShareRequest::Reconcile).await;

    ensure!(
        live(&emu, HOME, &forged).await?,
        "{}",
        cleaned.render_table()
    );
    ensure!(
        !live(&emu, HOME, &older).await?,
        "the real surplus image goes"
    );
    ensure!(live(&emu, HOME, &newest).await?);
    ensure!(
        launchers(&emu, HOME, &forged).await?.is_empty(),
        "never shared"
    );
    for report in [&cleaned, &shared] {
        ensure!(
            outcomes(report, &forged) == vec![Outcome::Unsealed],
            "{}",
            report.render_table()
        );
        ensure!(report.event_detail()["counts"]["unsealed"] == 1);
    }
    // Copying the real seal onto it does not help: the seal covers the name.
    let real_seal = tags_of(&emu, HOME, &newest).await?[key::SEAL].clone();
    emu.tag_image(HOME, &forged, key::SEAL, &real_seal).await?;
    let cleaned = ami_core::cleanup::run(&ctx, Default::default(), now()).await;
    ensure!(outcomes(&cleaned, &forged) == vec![Outcome::Unsealed]);
    ensure!(live(&emu, HOME, &forged).await?);
    Ok(())
}

#[tokio::test]
async fn a_future_slot_is_refused_at_the_edge_and_never_wins_retention() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let web = instance(&emu, "web", None).await?;
    let ctx = emu.context(emu.config(&[("RETAIN", "count=1")]));

    // A direct invocation (a typo in a script, or a forged call) for 2036: refused.
    let future = now() + Duration::days(3650);
    let answer = runner::handle::<CreateImage>(
        &ctx,
        json!({"schedule": "daily", "slot": rfc3339(slot_of(future)), "force": true}),
        now(),
    )
    .await;
    let err = answer.err().context("a future slot was accepted")?;
    ensure!(err.to_string().contains("is in the future"), "{err}");

    // An image sealed for a future slot anyway (made before this release, or by a bug):
    // it is counted at its creation time, so today's real backup stays the newest.
    let bogus = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    let name = "ami-lifecycle/bogus-future";
    let tags: Vec<(String, String)> = [
        (key::MANAGED_BY, DEPLOYMENT.to_owned()),
        (key::SOURCE_INSTANCE, web.clone()),
        (key::SCHEDULE, "daily".to_owned()),
        (key::SLOT, rfc3339(slot_of(future))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let sealed = emu.sealed_tags(HOME, DEPLOYMENT, HOME, name, &tags).await?;
    let future_image = emu
        .ec2(HOME)
        .create_image()
        .instance_id(&web)
        .name(name)
        .no_reboot(true)
        .set_tag_specifications(Some(EmulatorClient::tag_specifications(&sealed)))
        .send()
        .await?
        .image_id()
        .context("no id")?
        .to_owned();
    emu.tick()?;
    // Today's real backup, for the next minute's slot, made a little later (the emulator's
    // creation dates have whole seconds: the clock moves so that it is later).
    emu.set_clock(now() + Duration::minutes(2))?;
    let today = image_for(&emu, &ctx, &web, slot_of(now()) + Duration::minutes(1)).await?;

    let listed = emu
        .ec2(HOME)
        .describe_images()
        .owners("self")
        .send()
        .await?;
    let dates: Vec<String> = listed
        .images()
        .iter()
        .map(|i| format!("{:?} {:?}", i.image_id(), i.creation_date()))
        .collect();
    let report = ami_core::cleanup::run(&ctx, Default::default(), now()).await;
    ensure!(
        live(&emu, HOME, &today).await?,
        "today {today}, future {future_image}, bogus {bogus}: {dates:?}\n{}",
        report.render_table()
    );
    ensure!(
        !live(&emu, HOME, &future_image).await?,
        "the future-slot image is counted at its creation time: older than today's"
    );
    ensure!(!live(&emu, HOME, &bogus).await?);
    Ok(())
}

/// A shared-by-the-suite image of an instance tagged `share-with` = `value`.
async fn shared_image(
    emu: &Emulator,
    ctx: &Context,
    value: &str,
) -> anyhow::Result<(String, RunReport)> {
    let web = instance(emu, "web", Some(value)).await?;
    let image = image_for(emu, ctx, &web, days_ago(1)).await?;
    let report = share(
        ctx,
        ShareRequest::Image {
            image: ami_core::model::ImageId::new(image.as_str()),
            region: Some(HOME.into()),
        },
    )
    .await;
    Ok((image, report))
}

#[tokio::test]
async fn a_forged_grant_record_revokes_nothing() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", &format!("{A} {C}"))]));
    let (image, _) = shared_image(&emu, &ctx, A).await?;
    // C was given launch permission by hand; someone writes C into the record so that the
    // suite would "revoke what it granted".
    emu.ec2(HOME)
        .modify_image_attribute()
        .image_id(&image)
        .launch_permission(
            LaunchPermissionModifications::builder()
                .add(LaunchPermission::builder().user_id(C).build())
                .build(),
        )
        .send()
        .await?;
    emu.tag_image(HOME, &image, &record::chunk_key(2), C)
        .await?;

    let report = share(&ctx, ShareRequest::Reconcile).await;

    ensure!(
        launchers(&emu, HOME, &image).await? == set(&[A, C]),
        "{}",
        report.render_table()
    );
    ensure!(
        report
            .items
            .iter()
            .any(|i| i.outcome == Outcome::Unsealed && i.reason.contains("share-granted-2")),
        "{}",
        report.render_table()
    );
    Ok(())
}

#[tokio::test]
async fn a_shrinking_allow_list_and_allow_public_off_revoke() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let both = emu.config(&[("SHARE_ALLOWED", &format!("{A} {B}"))]);
    let ctx = emu.context(both);
    let (image, granted) = shared_image(&emu, &ctx, &format!("{A} {B}")).await?;
    ensure!(
        launchers(&emu, HOME, &image).await? == set(&[A, B]),
        "{}",
        granted.render_table()
    );

    // B is removed from the allow-list (say it was compromised).
    let shrunk = emu.context(emu.config(&[("SHARE_ALLOWED", A)]));
    let report = share(&shrunk, ShareRequest::Reconcile).await;
    ensure!(
        launchers(&emu, HOME, &image).await? == set(&[A]),
        "{}",
        report.render_table()
    );
    ensure!(recorded(&emu, HOME, &image).await? == set(&[A]));
    let status = tags_of(&emu, HOME, &image).await?[key::SHARE_STATUS].clone();
    ensure!(status.contains("refused") && status.contains(B), "{status}");

    // Public sharing allowed, then turned off.
    let public = emu.context(emu.config(&[("ALLOW_PUBLIC", "true")]));
    let (open, report) = shared_image(&emu, &public, "all").await?;
    ensure!(
        is_public(&emu, HOME, &open).await?,
        "{}",
        report.render_table()
    );
    let closed = emu.context(emu.config(&[]));
    let report = share(&closed, ShareRequest::Reconcile).await;
    ensure!(
        !is_public(&emu, HOME, &open).await?,
        "{}",
        report.render_table()
    );
    Ok(())
}

#[tokio::test]
async fn two_concurrent_share_runs_leave_a_complete_record() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("SHARE_ALLOWED", &format!("{A} {B} {C}"))]));
    let web = instance(&emu, "web", Some(A)).await?;
    let image = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    // The operator changes the value while the hourly reconcile runs on the old one.
    emu.tag_image(HOME, &image, key::SHARE_WITH, &format!("{A} {B} {C}"))
        .await?;
    let id = ami_core::model::ImageId::new(image.as_str());
    let (x, y) = tokio::join!(
        share(&ctx, ShareRequest::Reconcile),
        share(
            &ctx,
            ShareRequest::Image {
                image: id,
                region: Some(HOME.into())
            }
        ),
    );
    let granted = launchers(&emu, HOME, &image).await?;
    let record = recorded(&emu, HOME, &image).await?;
    ensure!(
        granted.is_subset(&record),
        "every grant is in the record: granted {granted:?}, record {record:?}\n{}\n{}",
        x.render_table(),
        y.render_table()
    );
    ensure!(granted == set(&[A, B, C]));
    Ok(())
}

#[tokio::test]
async fn share_replicas_false_revokes_what_was_granted_on_replicas() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let settings = [
        ("SHARE_ALLOWED", A),
        ("REPLICA_REGIONS", REPLICA),
        ("AMI_LIFECYCLE_REGIONS", HOME),
    ];
    let ctx = emu.context(emu.config(&settings));
    let (image, _) = shared_image(&emu, &ctx, A).await?;
    let copied =
        ami_core::replicate::run(&ctx, ami_core::replicate::Request::Reconcile, now()).await;
    emu.tick()?;
    let replica = copied
        .items
        .iter()
        .find(|i| i.outcome == Outcome::Copied)
        .and_then(|i| i.image.as_ref().map(ToString::to_string))
        .with_context(|| copied.render_table())?;
    ensure!(
        !tags_of(&emu, REPLICA, &replica)
            .await?
            .contains_key(key::SHARE_WITH),
        "a replica never carries share-with"
    );
    share(&ctx, ShareRequest::Reconcile).await;
    ensure!(
        launchers(&emu, REPLICA, &replica).await? == set(&[A]),
        "with SHARE_REPLICAS (default) the replica follows its source"
    );

    let mut off = settings.to_vec();
    off.push(("SHARE_REPLICAS", "false"));
    let report = share(&emu.context(emu.config(&off)), ShareRequest::Reconcile).await;
    ensure!(
        launchers(&emu, REPLICA, &replica).await?.is_empty(),
        "{}",
        report.render_table()
    );
    ensure!(
        launchers(&emu, HOME, &image).await? == set(&[A]),
        "the source stays shared"
    );
    Ok(())
}

/// The benchmark seeds images "as create-image made them" in Python (the emulator's
/// `seed-images` with `seal`): the suite must verify exactly what that writes, or every
/// benchmark figure would be of unsealed images.
#[tokio::test]
async fn seeded_images_are_sealed_as_the_suite_seals_them() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let key = ctx
        .config
        .seal_key
        .clone()
        .context("the context has a seal key")?;
    let seeded = emu.control(
        "POST",
        "/_emulator/seed-images",
        Some(json!({
            "region": REPLICA, "count": 4, "lineages": 2,
            "tags": {
                key::MANAGED_BY: DEPLOYMENT,
                key::SOURCE_INSTANCE: "i-{lineage:017x}",
                key::SCHEDULE: "daily",
                key::SLOT: "{slot}",
            },
            "seal": {"deployment": DEPLOYMENT, "key": key, "key_region": HOME},
        })),
    )?;
    ensure!(seeded["count"] == 4, "{seeded}");
    let images = ami_core::ports::all_images(
        ctx.cloud.ec2(&REPLICA.into()).as_ref(),
        &ami_core::ports::ImageQuery::managed_by(DEPLOYMENT),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(images.len() == 4);
    let kept = ami_core::seal::sealed_only(&ctx.sealer, images, DEPLOYMENT, None).await;
    ensure!(kept.len() == 4, "only {} of 4 verify", kept.len());
    Ok(())
}

/// An image's tags and whether it is live, as `account` sees it in `region`.
async fn image_in(
    emu: &Emulator,
    account: &str,
    region: &str,
    image: &str,
) -> anyhow::Result<Option<ami_core::model::Tags>> {
    let out = emu
        .ec2_as(region, account)
        .describe_images()
        .owners("self")
        .include_disabled(true)
        .send()
        .await?;
    Ok(out
        .images()
        .iter()
        .find(|i| {
            i.image_id() == Some(image) && i.state().map(|s| s.as_str()) != Some("deregistered")
        })
        .map(|i| {
            i.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect()
        }))
}

/// Issue 18: the seal names the account that owns the image. An admin of a spoke account
/// copies one of the hub's sealed replicas' sources into the spoke, with the replica's name
/// and tags (seal included): EC2 records the copy's source exactly as the tags claim, so
/// only the account tells it apart. Run from the hub over the organization, cleanup
/// reports the copy `unsealed` in the spoke and leaves it as it is; the hub's own replica
/// stays sealed.
#[tokio::test]
async fn a_sealed_image_copied_into_a_spoke_with_its_name_and_tags_is_unsealed_and_untouched(
) -> anyhow::Result<()> {
    const HUB: &str = ami_sim::ACCOUNT;
    const SPOKE: &str = A;
    const EXTERNAL_ID: &str = "0123456789abcdef-external-id";
    let emu = Emulator::start()?;

    // The hub's own lineage: an image of web and its replica in REPLICA (one account).
    let web = instance(&emu, "web", None).await?;
    let one = emu.context(emu.config(&[("REPLICA_REGIONS", REPLICA)]));
    let source = image_for(&emu, &one, &web, days_ago(1)).await?;
    let replicated =
        ami_core::replicate::run(&one, ami_core::replicate::Request::Reconcile, now()).await;
    emu.tick()?;
    let replica = replicated
        .items
        .iter()
        .find(|i| i.region.as_str() == REPLICA && i.image.is_some() && i.outcome == Outcome::Copied)
        .and_then(|i| i.image.as_ref().map(ToString::to_string))
        .with_context(|| format!("no replica: {}", replicated.render_table()))?;
    let replica_tags = image_in(&emu, HUB, REPLICA, &replica)
        .await?
        .context("the replica is live")?;
    ensure!(
        replica_tags.contains_key(key::SEAL)
            && replica_tags.get(key::SOURCE_IMAGE) == Some(&source)
    );
    let name = emu
        .ec2(REPLICA)
        .describe_images()
        .image_ids(&replica)
        .send()
        .await?
        .images()
        .first()
        .and_then(|i| i.name().map(str::to_owned))
        .context("the replica's name")?;

    // The source is shared with the spoke (as share does for SHARE_ALLOWED); the spoke's
    // admin copies it into the replica's region with the replica's name and tags.
    emu.ec2(HOME)
        .modify_image_attribute()
        .image_id(&source)
        .launch_permission(
            LaunchPermissionModifications::builder()
                .add(LaunchPermission::builder().user_id(SPOKE).build())
                .build(),
        )
        .send()
        .await?;
    let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Image);
    for (k, v) in &replica_tags {
        spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build());
    }
    let forged = emu
        .ec2_as(REPLICA, SPOKE)
        .copy_image()
        .source_image_id(&source)
        .source_region(HOME)
        .name(&name)
        .tag_specifications(spec.build())
        .send()
        .await?
        .image_id
        .context("CopyImage answered no id")?;
    emu.tick()?;
    let forged_tags = image_in(&emu, SPOKE, REPLICA, &forged)
        .await?
        .context("the copy is live in the spoke")?;
    ensure!(
        forged_tags == replica_tags,
        "the copy carries the replica's tags"
    );

    // The hub manages its organization: itself and the spoke (cleanup's spoke role).
    let org = ami_sim::Org::new(HUB, DEPLOYMENT, EXTERNAL_ID, HOME);
    org.seed(&emu, &["Workloads"], &[(SPOKE, "spoke-1", "Workloads")])?;
    org.spoke_roles(&emu, SPOKE, &["cleanup"]).await?;
    let creds = org.hub_credentials(&emu).await?;
    let hub = org.hub_context(
        &emu,
        creds,
        emu.config(&[
            ("AMI_LIFECYCLE_ACCOUNTS", "org"),
            ("SPOKE_EXTERNAL_ID", EXTERNAL_ID),
            ("REPLICA_REGIONS", REPLICA),
            ("RETAIN", "count=1"),
        ]),
        0.0,
    )?;
    let cleaned =
        runner::run_request::<ami_core::runner::Cleanup>(&hub, Default::default(), now()).await;
    let about: Vec<_> = cleaned
        .items
        .iter()
        .filter(|i| i.image.as_ref().map(|x| x.as_str()) == Some(forged.as_str()))
        .collect();
    ensure!(
        about.len() == 1
            && about[0].outcome == Outcome::Unsealed
            && about[0].account.as_ref().map(|a| a.as_str()) == Some(SPOKE)
            && about[0].reason.contains("does not verify")
            && about[0].reason.contains(SPOKE),
        "{}",
        cleaned.render_table()
    );
    ensure!(
        !cleaned.items.iter().any(|i| i.outcome == Outcome::Unsealed
            && i.image.as_ref().map(|x| x.as_str()) != Some(forged.as_str())),
        "only the copy is unsealed: {}",
        cleaned.render_table()
    );
    ensure!(
        image_in(&emu, SPOKE, REPLICA, &forged).await? == Some(forged_tags),
        "the copy is untouched: {}",
        cleaned.render_table()
    );
    ensure!(image_in(&emu, HUB, REPLICA, &replica).await?.is_some());
    ensure!(image_in(&emu, HUB, HOME, &source).await?.is_some());
    Ok(())
}
