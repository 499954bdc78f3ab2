//! Emulator integration test: the cleanup report says which Recycle Bin retention rule
//! keeps each deleted image and snapshot restorable, and until when, from the rules the
//! region really has (CreateRule through the SDK; the suite reads them with ListRules and
//! GetRule).

use ami_core::cleanup::{run, CleanupRequest};
use ami_core::report::{Outcome, RunReport};
use ami_core::tags::key;
use ami_core::time_util::{rfc3339, slot_compact, slot_of};
use ami_sim::{Emulator, EmulatorClient};
use anyhow::Context as _;
use aws_sdk_rbin::types::{ResourceTag, ResourceType, RetentionPeriod, RetentionPeriodUnit};
use time::{Duration, OffsetDateTime};

const HOME: &str = "us-east-1";
const DEPLOYMENT: &str = "ami-lifecycle";

/// A sealed daily image of `instance` for the slot `days_ago` days before `base`, its image
/// and snapshot tagged with the lineage tags and `extra`.
async fn create(
    emu: &Emulator,
    instance: &str,
    base: OffsetDateTime,
    days_ago: i64,
    extra: &[(&str, &str)],
) -> anyhow::Result<String> {
    let slot = slot_of(base - Duration::days(days_ago));
    let mut tags = vec![
        (key::SOURCE_INSTANCE.to_owned(), instance.to_owned()),
        (key::SCHEDULE.to_owned(), "daily".to_owned()),
        (key::SLOT.to_owned(), rfc3339(slot)),
        (key::MANAGED_BY.to_owned(), DEPLOYMENT.to_owned()),
    ];
    tags.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let name = format!("ami-lifecycle/web/daily/{}", slot_compact(slot));
    let sealed = emu
        .sealed_tags(HOME, DEPLOYMENT, HOME, &name, &tags)
        .await?;
    let out = emu
        .ec2(HOME)
        .create_image()
        .instance_id(instance)
        .name(name)
        .no_reboot(true)
        .set_tag_specifications(Some(EmulatorClient::tag_specifications(&sealed)))
        .send()
        .await
        .context("CreateImage")?;
    out.image_id().map(str::to_owned).context("no image id")
}

fn tag(key: &str, value: &str) -> anyhow::Result<ResourceTag> {
    ResourceTag::builder()
        .resource_tag_key(key)
        .resource_tag_value(value)
        .build()
        .context("ResourceTag")
}

fn days(n: i32) -> anyhow::Result<RetentionPeriod> {
    RetentionPeriod::builder()
        .retention_period_value(n)
        .retention_period_unit(RetentionPeriodUnit::Days)
        .build()
        .context("RetentionPeriod")
}

fn reason(report: &RunReport, id: &str) -> anyhow::Result<(Outcome, String)> {
    report
        .items
        .iter()
        .find(|i| i.subject == id)
        .map(|i| (i.outcome, i.reason.clone()))
        .with_context(|| format!("{id} not in the report:\n{}", report.render_table()))
}

#[tokio::test]
async fn the_cleanup_report_names_the_rule_and_the_end_of_each_restore_window() -> anyhow::Result<()>
{
    let emu = Emulator::start()?;
    let base = OffsetDateTime::now_utc();
    let web = emu.launch_instance(HOME, &[("Name", "web")], &[]).await?;

    // GIVEN a lineage of three: the newest (kept by count=1), one tagged tier=gold, one
    // tagged env=dev …
    create(&emu, &web, base, 0, &[]).await?;
    let gold = create(&emu, &web, base, 1, &[("tier", "gold")]).await?;
    let dev = create(&emu, &web, base, 2, &[("env", "dev")]).await?;
    emu.tick()?;
    // … a region-level image rule of 7 days that excludes env=dev (locked), a tag-level
    // snapshot rule of 30 days for tier=gold, and a 90-day image rule in another region.
    let rbin = aws_sdk_rbin::Client::new(&emu.sdk_config(HOME));
    let unlock_delay = aws_sdk_rbin::types::UnlockDelay::builder()
        .unlock_delay_value(7)
        .unlock_delay_unit(aws_sdk_rbin::types::UnlockDelayUnit::Days)
        .build()
        .context("UnlockDelay")?;
    let images_rule = rbin
        .create_rule()
        .resource_type(ResourceType::Ec2Image)
        .retention_period(days(7)?)
        .exclude_resource_tags(tag("env", "dev")?)
        .lock_configuration(
            aws_sdk_rbin::types::LockConfiguration::builder()
                .unlock_delay(unlock_delay)
                .build(),
        )
        .send()
        .await
        .context("CreateRule images")?
        .identifier()
        .context("rule id")?
        .to_owned();
    let snapshots_rule = rbin
        .create_rule()
        .resource_type(ResourceType::EbsSnapshot)
        .retention_period(days(30)?)
        .resource_tags(tag("tier", "gold")?)
        .send()
        .await
        .context("CreateRule snapshots")?
        .identifier()
        .context("rule id")?
        .to_owned();
    aws_sdk_rbin::Client::new(&emu.sdk_config("eu-west-1"))
        .create_rule()
        .resource_type(ResourceType::Ec2Image)
        .retention_period(days(90)?)
        .send()
        .await
        .context("CreateRule elsewhere")?;

    // WHEN cleanup runs with RETAIN=count=1
    let config = emu.config(&[("AMI_LIFECYCLE_REGIONS", HOME), ("RETAIN", "count=1")]);
    let report = run(&emu.context(config), CleanupRequest::default(), base).await;

    // THEN both older images are deregistered with their snapshots, and the report says:
    // the gold image for a week under the image rule, its snapshot for 30 days …
    let (outcome, said) = reason(&report, &gold)?;
    assert_eq!(outcome, Outcome::Deleted, "{said}");
    let week = rfc3339(base + Duration::days(7));
    let month = rfc3339(base + Duration::days(30));
    assert!(
        said.ends_with(&format!(
            "; image: restorable from the Recycle Bin until {week} (rule {images_rule}, locked); 1 snapshot(s): restorable from the Recycle Bin until {month} (rule {snapshots_rule})"
        )),
        "{said}"
    );
    // … the excluded dev image and its untagged-for-gold snapshot are gone for good.
    let (outcome, said) = reason(&report, &dev)?;
    assert_eq!(outcome, Outcome::Deleted, "{said}");
    assert!(
        said.ends_with("; image: no Recycle Bin rule covers it: deletion is final; 1 snapshot(s): no Recycle Bin rule covers it: deletion is final"),
        "{said}"
    );
    assert_eq!(report.metrics.get("recycle_bin_images"), Some(&1.0));
    assert_eq!(report.metrics.get("recycle_bin_snapshots"), Some(&1.0));
    // AND the rules were read once for the region: one ListRules per resource type, one
    // GetRule per rule; nothing anywhere the run deleted nothing.
    let calls = &emu.counters()?["calls"];
    assert_eq!(calls[HOME]["rbin:ListRules"], 2, "{calls}");
    assert_eq!(calls[HOME]["rbin:GetRule"], 2, "{calls}");
    assert_eq!(calls[HOME]["rbin:CreateRule"], 2, "{calls}");
    assert!(
        calls["eu-west-1"].get("rbin:ListRules").is_none(),
        "{calls}"
    );
    assert!(
        emu.counters()?["refused"]
            .as_object()
            .is_none_or(|r| r.is_empty()),
        "nothing refused"
    );
    Ok(())
}
