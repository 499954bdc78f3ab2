//! Emulator integration tests for issue 15 (every function converges, every wait is
//! bounded), through the runners and the AWS SDK adapters against the extended moto.

use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::report::Outcome;
use ami_core::tags::key;
use ami_core::time_util::slot_of;
use ami_sim::Emulator;
use anyhow::{ensure, Context as _};
use time::Duration;

use crate::common::now;

const HOME: &str = "us-east-1";

#[tokio::test]
async fn a_replicate_to_region_the_deployment_does_not_manage_is_refused_on_the_image(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", "eu-west-1")]));
    let web = emu
        .launch_instance(
            HOME,
            &[
                (key::SCHEDULE, "daily"),
                (key::REBOOT, "false"),
                (key::REPLICATE_TO, "eu-west-1,ap-south-1"),
            ],
            &[],
        )
        .await?;
    let slot = slot_of(now() - Duration::days(1));
    let made = create::run(
        &ctx,
        CreateRequest::Schedule(ScheduleRun::new("daily".into(), slot)),
        now(),
    )
    .await;
    emu.tick()?;
    let image = made
        .items
        .iter()
        .find(|i| i.subject == web && i.outcome == Outcome::Created)
        .and_then(|i| i.image.clone())
        .with_context(|| made.render_table())?;

    let report =
        ami_core::replicate::run(&ctx, ami_core::replicate::Request::Reconcile, now()).await;

    ensure!(
        report.items.iter().any(|i| i.outcome == Outcome::Copied),
        "{}",
        report.render_table()
    );
    ensure!(report.items.iter().any(|i| i.outcome == Outcome::Refused
        && i.reason.contains("ap-south-1")
        && i.reason.contains("REPLICA_REGIONS")));
    let copies_there = emu
        .ec2("ap-south-1")
        .describe_images()
        .owners("self")
        .send()
        .await?;
    ensure!(
        copies_there.images().is_empty(),
        "nothing copied to ap-south-1"
    );
    let tags = emu
        .ec2(HOME)
        .describe_images()
        .image_ids(image.as_str())
        .send()
        .await?;
    let status = tags
        .images()
        .first()
        .and_then(|i| {
            i.tags()
                .iter()
                .find(|t| t.key() == Some(key::REPLICATE_STATUS))
                .and_then(|t| t.value().map(str::to_owned))
        })
        .unwrap_or_default();
    ensure!(
        status == "error not managed: ap-south-1; add to REPLICA_REGIONS",
        "{status:?}"
    );
    Ok(())
}

/// A daily cron that last fired `minutes_ago` minutes ago.
fn daily_fired(minutes_ago: i64) -> String {
    let t = now() - Duration::minutes(minutes_ago);
    format!("daily=cron({} {} * * ? *)", t.minute(), t.hour())
}

/// The Scheduled Event of create-image's reconcile rule.
fn reconcile_event() -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "reconcile", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": ami_core::time_util::rfc3339(now()),
        "region": HOME,
        "resources": [format!("arn:aws:events:{HOME}:123456789012:rule/ami-lifecycle-create-image-reconcile")],
        "detail": {}
    })
}

#[tokio::test]
async fn a_lost_schedule_event_is_caught_up_and_an_old_miss_is_reported_with_a_stale_lineage(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let web = emu
        .launch_instance(
            HOME,
            &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
            &[],
        )
        .await?;
    // The daily rule fired 10 minutes ago; its event never reached create-image.
    let expressions = daily_fired(10);
    let ctx = emu.context(emu.config(&[("SCHEDULE_EXPRESSIONS", &expressions)]));
    let detail =
        ami_core::runner::handle::<ami_core::runner::CreateImage>(&ctx, reconcile_event(), now())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(detail["counts"]["created"] == 1, "{detail}");
    let item = &detail["items"][0];
    ensure!(item["subject"] == web.as_str(), "{detail}");
    ensure!(
        item["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("caught up"),
        "{detail}"
    );
    emu.tick()?;
    // Delivered again (or the hourly run after): nothing more.
    let again =
        ami_core::runner::handle::<ami_core::runner::CreateImage>(&ctx, reconcile_event(), now())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(again["counts"]["already-existed"] == 1, "{again}");

    // A second instance joins; the reconcile runs only after the (1 min) catch-up window,
    // and its lineage's newest image is 3 days old: missed and stale, nothing made.
    let db = emu
        .launch_instance(
            HOME,
            &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
            &[],
        )
        .await?;
    let old = ami_core::time_util::slot_of(now() - Duration::days(3));
    create::run(
        &emu.context(emu.config(&[])),
        CreateRequest::Schedule(ScheduleRun::new("daily".into(), old)),
        now(),
    )
    .await;
    emu.tick()?;
    // The reconcile runs two hours from now; the daily rule fired an hour before it (after
    // db was launched: an instance cannot miss a slot from before it existed).
    let later = now() + Duration::hours(2);
    let fired = later - Duration::hours(1);
    let expressions_later = format!("daily=cron({} {} * * ? *)", fired.minute(), fired.hour());
    let strict = emu.context(emu.config(&[
        ("SCHEDULE_EXPRESSIONS", &expressions_later),
        ("CATCH_UP_WINDOW", "1"),
    ]));
    let images_before = emu
        .ec2(HOME)
        .describe_images()
        .owners("self")
        .send()
        .await?
        .images()
        .len();
    let late = ami_core::runner::handle::<ami_core::runner::CreateImage>(
        &strict,
        reconcile_event(),
        later,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let of_db: Vec<&str> = late["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["subject"] == db.as_str())
        .filter_map(|i| i["outcome"].as_str())
        .collect();
    ensure!(
        of_db.contains(&"missed") && of_db.contains(&"stale"),
        "{late}"
    );
    // Both miss the later slot; only db's lineage is stale (web's image is today's).
    ensure!(late["counts"]["missed"] == 2, "{late}");
    ensure!(late["counts"]["stale"] == 1, "{late}");
    let images_after = emu
        .ec2(HOME)
        .describe_images()
        .owners("self")
        .send()
        .await?
        .images()
        .len();
    ensure!(
        images_before == images_after,
        "nothing made outside the window"
    );
    Ok(())
}

#[tokio::test]
async fn an_impaired_member_holds_its_reboot_group_back_then_the_group_stops() -> anyhow::Result<()>
{
    let emu = Emulator::start()?;
    let group = [(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")];
    let a = emu.launch_instance(HOME, &group, &[]).await?;
    let b = emu.launch_instance(HOME, &group, &[]).await?;
    let ctx = emu.context(emu.config(&[("WAVE_MAX_WAIT", "5")]));
    let slot = slot_of(now());
    let run = ScheduleRun::new("daily".into(), slot);
    let first = create::run(&ctx, CreateRequest::Schedule(run.clone()), now()).await;
    emu.tick()?;
    let created: Vec<String> = first
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Created)
        .map(|i| i.subject.clone())
        .collect();
    ensure!(
        created.len() == 1,
        "one at a time: {}",
        first.render_table()
    );
    let (rebooted, waiting) = if created[0] == a { (&a, &b) } else { (&b, &a) };
    // Its instance status check fails after the reboot.
    emu.control(
        "POST",
        &format!("/_emulator/instances/{rebooted}/health"),
        Some(serde_json::json!({"impaired": true})),
    )?;

    let held = create::run(
        &ctx,
        CreateRequest::Continue(run.clone(), 1),
        now() + Duration::minutes(1),
    )
    .await;
    let item = held
        .items
        .iter()
        .find(|i| &i.subject == waiting)
        .with_context(|| held.render_table())?;
    ensure!(item.outcome == Outcome::Deferred, "{}", held.render_table());
    ensure!(
        item.reason.contains("both status checks ok"),
        "{}",
        item.reason
    );

    // Past WAVE_MAX_WAIT the group stops: the waiting member is failed, not rebooted.
    let stopped = create::run(
        &ctx,
        CreateRequest::Continue(run, 2),
        now() + Duration::minutes(10),
    )
    .await;
    let item = stopped
        .items
        .iter()
        .find(|i| &i.subject == waiting)
        .with_context(|| stopped.render_table())?;
    ensure!(
        item.outcome == Outcome::Failed,
        "{}",
        stopped.render_table()
    );
    ensure!(
        item.reason.contains("impaired") && item.reason.contains("WAVE_MAX_WAIT"),
        "{}",
        item.reason
    );
    let reboots = emu.reboots()?;
    ensure!(
        reboots.get(waiting.as_str()).is_none(),
        "the waiting member was never rebooted: {reboots}"
    );
    Ok(())
}

#[tokio::test]
async fn an_instance_store_instance_is_skipped_and_a_full_ami_quota_is_not_retried_for_ever(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    // An instance-store-backed instance: launched from an image registered from an S3
    // manifest, as on EC2.
    let ec2 = emu.ec2(HOME);
    let store_image = ec2
        .register_image()
        .name("from-manifest")
        .image_location("amzn-s3-demo-bucket/image.manifest.xml")
        .send()
        .await?
        .image_id()
        .context("no id")?
        .to_owned();
    let tags = ami_core::model::Tags::from([
        (key::SCHEDULE.to_owned(), "daily".to_owned()),
        (key::REBOOT.to_owned(), "false".to_owned()),
    ]);
    let store = ec2
        .run_instances()
        .image_id(&store_image)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
                        .collect(),
                ))
                .build(),
        )
        .send()
        .await?
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .context("no instance")?
        .to_owned();
    let plain = [(key::SCHEDULE, "daily"), (key::REBOOT, "false")];
    let a = emu.launch_instance(HOME, &plain, &[]).await?;
    let b = emu.launch_instance(HOME, &plain, &[]).await?;
    // The region may hold two more AMIs (the registered one counts).
    emu.configure(serde_json::json!({"ami_quota": 3}))?;
    let ctx = emu.context(emu.config(&[]));
    let run = create::run_wave(
        &ctx,
        CreateRequest::Schedule(ScheduleRun::new("daily".into(), slot_of(now()))),
        now(),
    )
    .await;
    let outcome = |id: &str| {
        run.report
            .items
            .iter()
            .find(|i| i.subject == id)
            .map(|i| (i.outcome, i.reason.clone()))
    };
    let (o, why) = outcome(&store).context("instance-store instance reported")?;
    ensure!(
        o == Outcome::Skipped && why.contains("instance-store"),
        "{}",
        run.report.render_table()
    );
    let results = [outcome(&a), outcome(&b)];
    let created = results
        .iter()
        .filter(|r| r.as_ref().is_some_and(|(o, _)| *o == Outcome::Created))
        .count();
    let full: Vec<&String> = results
        .iter()
        .flatten()
        .filter(|(o, _)| *o == Outcome::Failed)
        .map(|(_, w)| w)
        .collect();
    ensure!(
        created == 1 && full.len() == 1,
        "{}",
        run.report.render_table()
    );
    ensure!(
        full[0].contains("quota is full") && full[0].contains("Service Quotas"),
        "{}",
        full[0]
    );
    ensure!(
        !run.more,
        "a full quota sends no continuation: {}",
        run.report.render_table()
    );
    Ok(())
}

#[tokio::test]
async fn a_lost_continuation_is_recovered_by_the_reconcile() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    // A reboot group of two, one at a time; the schedule fired 10 minutes ago.
    let group = [(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")];
    let a = emu.launch_instance(HOME, &group, &[]).await?;
    let b = emu.launch_instance(HOME, &group, &[]).await?;
    let expressions = daily_fired(10);
    let ctx = emu.context(emu.config(&[("SCHEDULE_EXPRESSIONS", &expressions)]));
    let slot = slot_of(now() - Duration::minutes(10));
    let first = create::run_wave(
        &ctx,
        CreateRequest::Schedule(ScheduleRun::new("daily".into(), slot)),
        now(),
    )
    .await;
    emu.tick()?;
    ensure!(
        first.more,
        "a second wave remains: {}",
        first.report.render_table()
    );
    // Its continuation message is lost (no queue here): the hourly reconcile, a minute
    // later, finds the slot incomplete and runs the next wave.
    let detail = ami_core::runner::handle::<ami_core::runner::CreateImage>(
        &ctx,
        reconcile_event(),
        now() + Duration::minutes(1),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    emu.tick()?;
    ensure!(detail["counts"]["created"] == 1, "{detail}");
    let images = emu
        .ec2(HOME)
        .describe_images()
        .owners("self")
        .send()
        .await?;
    let sources: Vec<Option<&str>> = images
        .images()
        .iter()
        .map(|i| i.source_instance_id())
        .collect();
    ensure!(
        sources.contains(&Some(a.as_str())) && sources.contains(&Some(b.as_str())),
        "both members imaged: {sources:?}"
    );
    Ok(())
}
