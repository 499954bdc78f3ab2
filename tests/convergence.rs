//! Emulator integration tests for issue 15 (every function converges, every wait is
//! bounded), through the runners and the AWS SDK adapters against the extended moto.

use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::report::Outcome;
use ami_core::tags::key;
use ami_core::time_util::slot_of;
use ami_sim::Emulator;
use anyhow::{ensure, Context as _};
use time::{Duration, OffsetDateTime};

const HOME: &str = "us-east-1";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

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
