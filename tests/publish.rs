//! Emulator integration tests for issue 16 (latest-image parameters, rollback, launch
//! templates that follow): publish run through the runner contract
//! ([`ami_sim::dispatch`]) and `amictl`'s rollback/unpin against the extended moto, with
//! images made as the suite makes them (create-image's runner, replicate's for replicas,
//! so they are sealed). Every test reads the result back with the SSM and EC2 SDK clients:
//! - publish on create and on replica: one parameter per region, each its own image id,
//!   resolved by `resolve:ssm:` in a launch template and by RunInstances;
//! - monotonic under out-of-order and duplicate events;
//! - rollback (dry run, then applied), the pin holding a newer image, unpin;
//! - tracked launch templates with and without `track-default`;
//! - cleanup keeping the published history;
//! - a name collision refused;
//! - SSM's asynchronous `aws:ec2:image` validation seen through the adapter.

use ami_core::context::Context;
use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::model::Region;
use ami_core::ports::NewParameterVersion;
use ami_core::publish::rollback::{rollback, unpin, Target};
use ami_core::publish::{latest_parameter, pin_parameter, slot_label};
use ami_core::report::{Outcome, RunReport};
use ami_core::tags::key;
use ami_core::time_util::slot_of;
use ami_sim::{dispatch, Emulator};
use anyhow::{bail, ensure, Context as _};
use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateSpecification, RequestLaunchTemplateData, ResourceType, Tag,
    TagSpecification,
};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::common::now;

const HOME: &str = "us-east-1";
const REPLICA: &str = "us-west-2";
/// The deployment `emu.config` names (no `AMI_LIFECYCLE_NAME`).
const DEPLOYMENT: &str = "ami-lifecycle";
const LINEAGE: &str = "web-1";

/// The daily slot `days` days before the test binary started (in the past of the
/// emulator's clock). One fixed base: a slot is whole minutes, so computing it again later
/// in a test must not cross a minute boundary.
fn days_ago(days: i64) -> OffsetDateTime {
    static BASE: std::sync::OnceLock<OffsetDateTime> = std::sync::OnceLock::new();
    slot_of(*BASE.get_or_init(now) - Duration::days(days))
}

fn latest() -> String {
    latest_parameter(DEPLOYMENT, LINEAGE)
}

fn ssm(emu: &Emulator, region: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&emu.sdk_config(region))
}

/// A scheduled (daily, rebooted: publishable by default) instance called `name`.
async fn instance(emu: &Emulator, name: &str) -> anyhow::Result<String> {
    emu.launch_instance(HOME, &[("Name", name), (key::SCHEDULE, "daily")], &[])
        .await
}

/// create-image for the daily slot `slot`, then the images become available; returns
/// the image of `instance` (made now, or by an earlier run for the slot).
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
        .find(|i| {
            i.subject == instance && matches!(i.outcome, Outcome::Created | Outcome::AlreadyExisted)
        })
        .and_then(|i| i.image.as_ref().map(ToString::to_string))
        .with_context(|| format!("no image of {instance}: {}", report.render_table()))
}

/// replicate's reconcile, then the copies complete; returns the copies made.
async fn replicate(emu: &Emulator, ctx: &Context) -> anyhow::Result<Vec<String>> {
    let report =
        ami_core::replicate::run(ctx, ami_core::replicate::Request::Reconcile, now()).await;
    let copies: Vec<String> = report
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Copied)
        .filter_map(|i| i.image.as_ref().map(ToString::to_string))
        .collect();
    ensure!(
        !copies.is_empty(),
        "nothing copied: {}",
        report.render_table()
    );
    for copy in &copies {
        wait_available(emu, REPLICA, copy).await?;
    }
    Ok(copies)
}

async fn wait_available(emu: &Emulator, region: &str, image: &str) -> anyhow::Result<()> {
    for _ in 0..50 {
        emu.tick()?;
        let out = emu
            .ec2(region)
            .describe_images()
            .image_ids(image)
            .send()
            .await?;
        if out
            .images()
            .first()
            .and_then(|i| i.state())
            .is_some_and(|s| s.as_str() == "available")
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bail!("{image} in {region} never became available")
}

/// The `EC2 AMI State Change` event EventBridge delivers when `image` becomes available
/// in `region` (the shape of tests/fixtures/events/ami-state-change-available.json).
fn available_event(region: &str, image: &str) -> Value {
    let mut event: Value = serde_json::from_str(include_str!(
        "fixtures/events/ami-state-change-available.json"
    ))
    .unwrap_or_else(|e| panic!("fixture: {e}"));
    event["region"] = region.into();
    event["time"] = ami_core::time_util::rfc3339(now()).into();
    event["resources"] = serde_json::json!([format!("arn:aws:ec2:{region}::image/{image}")]);
    event["detail"]["ImageId"] = image.into();
    event
}

/// publish, as Lambda invokes it; returns the report's event detail.
async fn publish(ctx: &Context, payload: Value) -> anyhow::Result<Value> {
    dispatch("publish", ctx, payload, now())
        .await
        .map_err(|e| anyhow::anyhow!("publish: {e}"))
}

fn count(detail: &Value, outcome: &str) -> u64 {
    detail["counts"][outcome].as_u64().unwrap_or(0)
}

/// The parameter `name` in `region` as SSM answers `GetParameter` (`None`: not found).
async fn parameter(
    emu: &Emulator,
    region: &str,
    name: &str,
) -> anyhow::Result<Option<aws_sdk_ssm::types::Parameter>> {
    match ssm(emu, region).get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().cloned()),
        Err(e) if format!("{e:?}").contains("ParameterNotFound") => Ok(None),
        Err(e) => Err(e).context("GetParameter"),
    }
}

async fn value(emu: &Emulator, region: &str, name: &str) -> anyhow::Result<Option<String>> {
    Ok(parameter(emu, region, name)
        .await?
        .and_then(|p| p.value().map(str::to_owned)))
}

/// Every version of `name` (oldest first; empty when there is none).
async fn history(
    emu: &Emulator,
    region: &str,
    name: &str,
) -> anyhow::Result<Vec<aws_sdk_ssm::types::ParameterHistory>> {
    match ssm(emu, region)
        .get_parameter_history()
        .name(name)
        .max_results(50)
        .send()
        .await
    {
        Ok(out) => Ok(out.parameters().to_vec()),
        Err(e) if format!("{e:?}").contains("ParameterNotFound") => Ok(Vec::new()),
        Err(e) => Err(e).context("GetParameterHistory"),
    }
}

/// A launch template named `name` in `region` (t3.small, `image`), with `tags`.
async fn template(
    emu: &Emulator,
    region: &str,
    name: &str,
    image: &str,
    tags: &[(&str, &str)],
) -> anyhow::Result<String> {
    let mut req = emu
        .ec2(region)
        .create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(image)
                .instance_type(InstanceType::T3Small)
                .build(),
        );
    if !tags.is_empty() {
        req = req.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                        .collect(),
                ))
                .build(),
        );
    }
    let out = req.send().await.context("CreateLaunchTemplate")?;
    out.launch_template()
        .and_then(|t| t.launch_template_id())
        .map(str::to_owned)
        .context("no launch template id")
}

/// A template's versions as EC2 stores them: (number, image, instance type,
/// description, default), oldest first.
type Version = (i64, Option<String>, Option<String>, Option<String>, bool);

async fn versions(
    emu: &Emulator,
    region: &str,
    template: &str,
    resolve: bool,
) -> anyhow::Result<Vec<Version>> {
    let out = emu
        .ec2(region)
        .describe_launch_template_versions()
        .launch_template_id(template)
        .resolve_alias(resolve)
        .send()
        .await
        .context("DescribeLaunchTemplateVersions")?;
    let mut all: Vec<Version> = out
        .launch_template_versions()
        .iter()
        .map(|v| {
            let data = v.launch_template_data();
            (
                v.version_number().unwrap_or_default(),
                data.and_then(|d| d.image_id()).map(str::to_owned),
                data.and_then(|d| d.instance_type())
                    .map(|t| t.as_str().to_owned()),
                v.version_description().map(str::to_owned),
                v.default_version().unwrap_or(false),
            )
        })
        .collect();
    all.sort_by_key(|v| v.0);
    Ok(all)
}

/// The image of the instance RunInstances launches from `template`'s default version.
async fn launch_from(emu: &Emulator, region: &str, template: &str) -> anyhow::Result<String> {
    let out = emu
        .ec2(region)
        .run_instances()
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(template)
                .build(),
        )
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .context("RunInstances")?;
    out.instances()
        .first()
        .and_then(|i| i.image_id())
        .map(str::to_owned)
        .context("RunInstances launched nothing")
}

/// The Scheduled Event of publish's hourly reconcile rule (tests/fixtures/events/scheduled-event.json's shape).
fn reconcile_event() -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("fixtures/events/scheduled-event.json"))
            .unwrap_or_else(|e| panic!("fixture: {e}"));
    event["time"] = ami_core::time_util::rfc3339(now()).into();
    event["resources"] = serde_json::json!([format!(
        "arn:aws:events:{HOME}:123456789012:rule/{DEPLOYMENT}-publish-reconcile"
    )]);
    event
}

/// The replica of `source` in `region` (the image whose source-image tag names it).
async fn replica_of(emu: &Emulator, region: &str, source: &str) -> anyhow::Result<String> {
    let out = emu
        .ec2(region)
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", key::SOURCE_IMAGE))
                .values(source)
                .build(),
        )
        .send()
        .await
        .context("DescribeImages")?;
    let ids: Vec<&str> = out.images().iter().filter_map(|i| i.image_id()).collect();
    match ids.as_slice() {
        [one] => Ok((*one).to_owned()),
        other => bail!("replicas of {source} in {region}: {other:?}"),
    }
}

fn table(report: &RunReport) -> String {
    report.render_table()
}

#[tokio::test]
async fn an_image_and_its_replica_are_published_each_in_its_region_and_resolve_at_launch(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", REPLICA)]));
    let web = instance(&emu, LINEAGE).await?;
    let slot = days_ago(1);
    let image = image_for(&emu, &ctx, &web, slot).await?;
    let copies = replicate(&emu, &ctx).await?;
    ensure!(copies.len() == 1, "one replica: {copies:?}");
    let replica = copies[0].clone();
    ensure!(replica != image, "a replica has its own id");

    let created = publish(&ctx, available_event(HOME, &image)).await?;
    ensure!(count(&created, "published") == 1, "{created}");
    ensure!(
        parameter(&emu, REPLICA, &latest()).await?.is_none(),
        "the home event publishes the home region only"
    );
    let replicated = publish(&ctx, available_event(REPLICA, &replica)).await?;
    ensure!(count(&replicated, "published") == 1, "{replicated}");

    for (region, want) in [(HOME, &image), (REPLICA, &replica)] {
        let p = parameter(&emu, region, &latest())
            .await?
            .with_context(|| format!("no {} in {region}", latest()))?;
        ensure!(p.value() == Some(want.as_str()), "{region}: {p:?}");
        ensure!(p.data_type() == Some("aws:ec2:image"), "{region}: {p:?}");
        ensure!(
            p.r#type().map(|t| t.as_str()) == Some("String"),
            "{region}: {p:?}"
        );
        let versions = history(&emu, region, &latest()).await?;
        ensure!(versions.len() == 1, "{region}: {versions:?}");
        let v = &versions[0];
        ensure!(
            v.labels() == [slot_label(slot)],
            "{region}: labels {:?}, slot {slot}",
            v.labels()
        );
        let description = v.description().unwrap_or_default();
        ensure!(
            description.contains(want.as_str())
                && description.contains(region)
                && description.contains(LINEAGE)
                && description.contains(&web),
            "{region}: {description}"
        );
    }

    // The same launch template in both regions: one alias, two images.
    let alias = format!("resolve:ssm:{}", latest());
    for (region, want) in [(HOME, &image), (REPLICA, &replica)] {
        let lt = template(&emu, region, "web", &alias, &[]).await?;
        let stored = versions(&emu, region, &lt, false).await?;
        ensure!(
            stored.len() == 1 && stored[0].1.as_deref() == Some(alias.as_str()),
            "{region}: stored as the alias: {stored:?}"
        );
        let resolved = versions(&emu, region, &lt, true).await?;
        ensure!(
            resolved.len() == 1 && resolved[0].1.as_deref() == Some(want.as_str()),
            "{region}: resolves to {want}: {resolved:?}"
        );
        let launched = launch_from(&emu, region, &lt).await?;
        ensure!(
            &launched == want,
            "{region}: launched from {launched}, not {want}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn late_and_duplicate_events_never_move_the_parameter_back() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let older = image_for(&emu, &ctx, &web, days_ago(2)).await?;
    let newer = image_for(&emu, &ctx, &web, days_ago(1)).await?;

    let first = publish(&ctx, available_event(HOME, &newer)).await?;
    ensure!(count(&first, "published") == 1, "{first}");
    let late = publish(&ctx, available_event(HOME, &older)).await?;
    ensure!(count(&late, "unchanged") == 1, "{late}");
    ensure!(count(&late, "published") == 0, "{late}");
    let again = publish(&ctx, available_event(HOME, &newer)).await?;
    ensure!(count(&again, "unchanged") == 1, "{again}");
    ensure!(count(&again, "published") == 0, "{again}");

    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(newer.as_str()));
    let versions = history(&emu, HOME, &latest()).await?;
    ensure!(
        versions.len() == 1,
        "one version whatever the events: {versions:?}"
    );
    ensure!(
        versions[0].labels() == [slot_label(days_ago(1))],
        "{versions:?}"
    );
    Ok(())
}

#[tokio::test]
async fn rollback_pins_the_previous_image_holds_a_new_one_and_unpin_publishes_it(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let day5 = image_for(&emu, &ctx, &web, days_ago(3)).await?;
    let day6 = image_for(&emu, &ctx, &web, days_ago(2)).await?;
    let first = publish(&ctx, serde_json::json!({})).await?;
    ensure!(count(&first, "published") == 1, "{first}");
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(day6.as_str()));
    let pin = pin_parameter(DEPLOYMENT, LINEAGE);
    let regions = [Region::new(HOME)];

    // Dry run: says what it would do, changes nothing.
    let dry = emu.context(emu.config(&[("DRY_RUN", "true")]));
    let plan = rollback(&dry, LINEAGE, Target::Previous, &regions, now()).await;
    ensure!(
        plan.items.iter().any(|i| i.outcome == Outcome::Planned
            && i.reason.contains(&format!("would pin {LINEAGE} to {day5}"))),
        "{}",
        table(&plan)
    );
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(day6.as_str()));
    ensure!(history(&emu, HOME, &latest()).await?.len() == 1);
    ensure!(
        parameter(&emu, HOME, &pin).await?.is_none(),
        "no pin written by a dry run"
    );

    let done = rollback(&ctx, LINEAGE, Target::Previous, &regions, now()).await;
    ensure!(
        done.counts().get("rolled-back") == Some(&1),
        "{}",
        table(&done)
    );
    ensure!(
        value(&emu, HOME, &latest()).await?.as_deref() == Some(day5.as_str()),
        "{}",
        table(&done)
    );
    let versions = history(&emu, HOME, &latest()).await?;
    ensure!(versions.len() == 2, "{versions:?}");
    ensure!(
        versions[1].labels() == [slot_label(days_ago(3))],
        "the rolled-back-to version carries its own slot: {versions:?}"
    );
    let pinned = parameter(&emu, HOME, &pin)
        .await?
        .context("the pin parameter")?;
    ensure!(pinned.value() == Some(day5.as_str()), "{pinned:?}");
    ensure!(pinned.data_type() == Some("text"), "{pinned:?}");

    // A new image while pinned: held, whatever the trigger.
    let day7 = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    let held = publish(&ctx, available_event(HOME, &day7)).await?;
    ensure!(count(&held, "held") == 1, "{held}");
    let reconciled = publish(&ctx, serde_json::json!({})).await?;
    ensure!(count(&reconciled, "held") == 1, "{reconciled}");
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(day5.as_str()));
    ensure!(history(&emu, HOME, &latest()).await?.len() == 2);

    let dry_unpin = unpin(&dry, LINEAGE, &regions, now()).await;
    ensure!(
        dry_unpin.counts().contains_key("planned"),
        "{}",
        table(&dry_unpin)
    );
    ensure!(parameter(&emu, HOME, &pin).await?.is_some());
    let lifted = unpin(&ctx, LINEAGE, &regions, now()).await;
    ensure!(
        lifted.counts().get("unpinned") == Some(&1),
        "{}",
        table(&lifted)
    );
    ensure!(
        value(&emu, HOME, &latest()).await?.as_deref() == Some(day7.as_str()),
        "{}",
        table(&lifted)
    );
    ensure!(parameter(&emu, HOME, &pin).await?.is_none(), "pin deleted");

    // Back to a named slot: day 6's image, pinned again.
    let to_slot = rollback(&ctx, LINEAGE, Target::Slot(days_ago(2)), &regions, now()).await;
    ensure!(
        to_slot.counts().get("rolled-back") == Some(&1),
        "{}",
        table(&to_slot)
    );
    ensure!(to_slot.failed() == 0, "{}", table(&to_slot));
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(day6.as_str()));
    ensure!(value(&emu, HOME, &pin).await?.as_deref() == Some(day6.as_str()));
    // day6 → day5 → day7 → day6: four versions; a label is on one version at a time, so
    // day 6's slot label moved from version 1 to version 4.
    let versions = history(&emu, HOME, &latest()).await?;
    let labels: Vec<(i64, Vec<String>)> = versions
        .iter()
        .map(|v| (v.version(), v.labels().to_vec()))
        .collect();
    ensure!(
        labels
            == [
                (1, vec![]),
                (2, vec![slot_label(days_ago(3))]),
                (3, vec![slot_label(days_ago(1))]),
                (4, vec![slot_label(days_ago(2))]),
            ],
        "{labels:?}"
    );
    Ok(())
}

#[tokio::test]
async fn tracked_templates_get_a_version_with_only_the_image_changed_and_the_default_moves_only_when_asked(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let base = emu.base_image(HOME).await?;
    let follow = template(&emu, HOME, "web-follow", &base, &[(key::TRACK, LINEAGE)]).await?;
    let default = template(
        &emu,
        HOME,
        "web-default",
        &base,
        &[(key::TRACK, LINEAGE), (key::TRACK_DEFAULT, "true")],
    )
    .await?;
    let untracked = template(&emu, HOME, "web-untracked", &base, &[]).await?;
    let image = image_for(&emu, &ctx, &web, days_ago(1)).await?;

    let first = publish(&ctx, available_event(HOME, &image)).await?;
    ensure!(
        count(&first, "published") == 3,
        "parameter and two templates: {first}"
    );

    for (lt, default_moves) in [(&follow, false), (&default, true)] {
        let all = versions(&emu, HOME, lt, false).await?;
        ensure!(all.len() == 2, "{lt}: {all:?}");
        let (n, ref img, ref kind, ref description, is_default) = all[1];
        ensure!(n == 2 && img.as_deref() == Some(image.as_str()), "{all:?}");
        ensure!(
            kind.as_deref() == Some("t3.small"),
            "instance type kept: {all:?}"
        );
        ensure!(
            description
                .as_deref()
                .is_some_and(|d| d.starts_with(&format!("ami-lifecycle {DEPLOYMENT}:"))),
            "{all:?}"
        );
        ensure!(is_default == default_moves, "{lt}: {all:?}");
        ensure!(
            all[0].1.as_deref() == Some(base.as_str()) && all[0].4 != default_moves,
            "version 1 untouched: {all:?}"
        );
    }
    ensure!(
        versions(&emu, HOME, &untracked, false).await?.len() == 1,
        "an untracked template is left alone"
    );

    // A tracked template that resolves the parameter at launch follows it by itself.
    let alias = format!("resolve:ssm:{}", latest());
    let resolving = template(
        &emu,
        HOME,
        "web-resolving",
        &alias,
        &[(key::TRACK, LINEAGE), (key::TRACK_DEFAULT, "true")],
    )
    .await?;

    // Again: nothing new anywhere.
    let again = publish(&ctx, serde_json::json!({})).await?;
    ensure!(count(&again, "published") == 0, "{again}");
    for lt in [&follow, &default] {
        ensure!(versions(&emu, HOME, lt, false).await?.len() == 2, "{again}");
    }
    let kept = versions(&emu, HOME, &resolving, false).await?;
    ensure!(
        kept.len() == 1 && kept[0].1.as_deref() == Some(alias.as_str()),
        "{kept:?}\n{again}"
    );

    // Someone adds a version of their own to the followed template: the publisher asks
    // for its version again with the same ClientToken, and EC2 answers the one it made.
    emu.ec2(HOME)
        .create_launch_template_version()
        .launch_template_id(&follow)
        .source_version("1")
        .version_description("hand-made")
        .launch_template_data(RequestLaunchTemplateData::builder().image_id(&base).build())
        .send()
        .await
        .context("CreateLaunchTemplateVersion")?;
    let token = publish(&ctx, serde_json::json!({})).await?;
    ensure!(
        token["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["outcome"] == "published"
                && i["subject"].as_str().is_some_and(|s| s.contains(&follow))
                && i["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("version 2 from version 1"))),
        "the request was made again and answered version 2: {token}"
    );
    let all = versions(&emu, HOME, &follow, false).await?;
    ensure!(
        all.len() == 3,
        "the ClientToken made no second copy: {all:?}\n{token}"
    );
    ensure!(all[0].4, "the default is still version 1: {all:?}");
    Ok(())
}

#[tokio::test]
async fn cleanup_keeps_the_current_and_last_published_values_and_says_why() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    // PUBLISHED_KEEP counts the current value: the current and 2 earlier values.
    let settings = [("RETAIN", "count=1"), ("PUBLISHED_KEEP", "3")];
    let ctx = emu.context(emu.config(&settings));
    let web = instance(&emu, LINEAGE).await?;
    let mut images = Vec::new();
    for days in (1..=5).rev() {
        let image = image_for(&emu, &ctx, &web, days_ago(days)).await?;
        let detail = publish(&ctx, available_event(HOME, &image)).await?;
        ensure!(count(&detail, "published") == 1, "{detail}");
        images.push(image);
    }
    ensure!(history(&emu, HOME, &latest()).await?.len() == 5);

    let cleanup = dispatch("cleanup", &ctx, serde_json::json!({}), now())
        .await
        .map_err(|e| anyhow::anyhow!("cleanup: {e}"))?;
    let live = emu
        .ec2(HOME)
        .describe_images()
        .owners("self")
        .include_disabled(true)
        .send()
        .await?;
    let alive = |id: &str| {
        live.images().iter().any(|i| {
            i.image_id() == Some(id) && i.state().map(|s| s.as_str()) != Some("deregistered")
        })
    };
    // Newest (retention's one, and the current value), then the 2 earlier values: the
    // last 3 values of the parameter.
    for kept in &images[2..] {
        ensure!(alive(kept), "{kept} is published history: {cleanup}");
    }
    for gone in &images[..2] {
        ensure!(
            !alive(gone),
            "{gone} is past retention and PUBLISHED_KEEP: {cleanup}"
        );
    }
    let why = |id: &str| -> Vec<String> {
        cleanup["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["image"] == id || i["subject"] == id)
            .filter_map(|i| i["reason"].as_str().map(str::to_owned))
            .collect()
    };
    for kept in &images[2..4] {
        ensure!(
            why(kept)
                .iter()
                .any(|r| r.contains("published") && r.contains("PUBLISHED_KEEP")),
            "{kept}: {:?}\n{cleanup}",
            why(kept)
        );
    }
    ensure!(
        value(&emu, HOME, &latest()).await?.as_deref() == Some(images[4].as_str()),
        "the parameter still names a live image"
    );
    Ok(())
}

#[tokio::test]
async fn two_instances_with_one_name_are_both_refused_and_nothing_is_written() -> anyhow::Result<()>
{
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let a = instance(&emu, LINEAGE).await?;
    let b = instance(&emu, LINEAGE).await?;
    let slot = days_ago(1);
    let image_a = image_for(&emu, &ctx, &a, slot).await?;

    let detail = publish(&ctx, serde_json::json!({})).await?;
    ensure!(count(&detail, "name-collision") == 2, "{detail}");
    ensure!(count(&detail, "published") == 0, "{detail}");
    let text = detail.to_string();
    ensure!(
        text.contains(&a) && text.contains(&b) && text.contains(key::LINEAGE_NAME),
        "names both instances and the fix: {text}"
    );
    let event = publish(&ctx, available_event(HOME, &image_a)).await?;
    ensure!(count(&event, "published") == 0, "{event}");
    let written = ssm(&emu, HOME)
        .get_parameters_by_path()
        .path(format!("/ami-lifecycle/{DEPLOYMENT}"))
        .recursive(true)
        .send()
        .await
        .context("GetParametersByPath")?;
    ensure!(
        written.parameters().is_empty(),
        "{:?}",
        written.parameters()
    );
    Ok(())
}

#[tokio::test]
async fn an_image_ssm_cannot_validate_is_answered_with_a_version_but_never_stored(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let params = ctx.cloud.parameters(&Region::new(HOME));
    let name = latest();
    let put = |value: &str| NewParameterVersion {
        name: name.clone(),
        value: value.to_owned(),
        description: "test".to_owned(),
        data_type: "aws:ec2:image",
    };
    let ghost = "ami-0123456789abcdef0";
    let version = params
        .put(&put(ghost))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        version == 1,
        "SSM answers the version it would make: {version}"
    );
    let got = params
        .get(&name)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(got.is_none(), "nothing stored: {got:?}");
    ensure!(params
        .history(&name)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_empty());

    // A real image is stored; a ghost after it leaves it in place.
    let web = instance(&emu, LINEAGE).await?;
    let image = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    let stored = params
        .put(&put(&image))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = params
        .get(&name)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        got.as_ref()
            .is_some_and(|p| p.value == image && p.version == stored),
        "{got:?}"
    );
    let answered = params
        .put(&put(ghost))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(answered == stored + 1, "{answered} after {stored}");
    let got = params
        .get(&name)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(
        got.as_ref()
            .is_some_and(|p| p.value == image && p.version == stored),
        "{got:?}"
    );
    // Both ghosts were refused after the answer, as SSM's asynchronous check does.
    let counters = emu.counters()?;
    ensure!(
        counters["async_failed"][HOME]["ssm:PutParameter"] == 2,
        "{counters}"
    );
    Ok(())
}

#[tokio::test]
async fn a_parameter_at_100_versions_takes_a_new_one_once_its_labelled_oldest_is_unlabelled(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let older = image_for(&emu, &ctx, &web, days_ago(2)).await?;
    let newer = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    // 100 versions of the older image, the first labelled: SSM keeps 100 and refuses a
    // 101st while the oldest has a label (ParameterMaxVersionLimitExceeded).
    let client = ssm(&emu, HOME);
    for _ in 0..100 {
        client
            .put_parameter()
            .name(latest())
            .value(&older)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .data_type("aws:ec2:image")
            .overwrite(true)
            .send()
            .await
            .context("PutParameter")?;
    }
    client
        .label_parameter_version()
        .name(latest())
        .parameter_version(1)
        .labels(slot_label(days_ago(2)))
        .send()
        .await
        .context("LabelParameterVersion")?;

    let detail = publish(&ctx, available_event(HOME, &newer)).await?;
    ensure!(count(&detail, "published") == 1, "{detail}");
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(newer.as_str()));
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .get_parameter_history()
            .name(latest())
            .max_results(50)
            .set_next_token(token.take())
            .send()
            .await
            .context("GetParameterHistory")?;
        all.extend(page.parameters().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    ensure!(all.len() == 100, "{} versions", all.len());
    let first = all.iter().map(|v| v.version()).min();
    let last = all
        .iter()
        .max_by_key(|v| v.version())
        .context("a version")?;
    ensure!(first == Some(2), "version 1 made way: {first:?}");
    ensure!(
        last.version() == 101 && last.value() == Some(newer.as_str()),
        "{last:?}"
    );
    ensure!(last.labels() == [slot_label(days_ago(1))], "{last:?}");
    Ok(())
}

#[tokio::test]
async fn the_adapter_reads_every_page_of_the_deployment_path() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let client = ssm(&emu, HOME);
    // More than one GetParametersByPath page (10), nested one level, plus one outside.
    let mut want = Vec::new();
    for n in 0..13 {
        let name = format!("/ami-lifecycle/{DEPLOYMENT}/lineage-{n:02}/latest");
        client
            .put_parameter()
            .name(&name)
            .value(format!("value-{n}"))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .context("PutParameter")?;
        want.push(name);
    }
    client
        .put_parameter()
        .name("/ami-lifecycle/other/web-1/latest")
        .value("other")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .context("PutParameter")?;
    let found = ctx
        .cloud
        .parameters(&Region::new(HOME))
        .under_path(&format!("/ami-lifecycle/{DEPLOYMENT}"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut names: Vec<String> = found.iter().map(|p| p.name.clone()).collect();
    names.sort();
    ensure!(names == want, "{names:?}");
    ensure!(found
        .iter()
        .all(|p| p.version == 1 && p.value.starts_with("value-")));
    Ok(())
}

#[tokio::test]
async fn rollback_in_every_region_moves_each_to_its_own_previous_image_and_its_templates(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", REPLICA)]));
    let web = instance(&emu, LINEAGE).await?;
    let day5 = image_for(&emu, &ctx, &web, days_ago(2)).await?;
    replicate(&emu, &ctx).await?;
    let day6 = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    replicate(&emu, &ctx).await?;
    let day5_west = replica_of(&emu, REPLICA, &day5).await?;
    let day6_west = replica_of(&emu, REPLICA, &day6).await?;
    let base_west = emu.base_image(REPLICA).await?;
    let lt = template(
        &emu,
        REPLICA,
        "web",
        &base_west,
        &[(key::TRACK, LINEAGE), (key::TRACK_DEFAULT, "true")],
    )
    .await?;

    // The hourly reconcile publishes in every region, each its own newest image.
    let hourly = publish(&ctx, reconcile_event()).await?;
    ensure!(
        count(&hourly, "published") == 3,
        "two parameters, one template: {hourly}"
    );
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(day6.as_str()));
    ensure!(value(&emu, REPLICA, &latest()).await?.as_deref() == Some(day6_west.as_str()));
    ensure!(launch_from(&emu, REPLICA, &lt).await? == day6_west);

    let regions = [Region::new(HOME), Region::new(REPLICA)];
    let done = rollback(&ctx, LINEAGE, Target::Previous, &regions, now()).await;
    ensure!(
        done.counts().get("rolled-back") == Some(&2),
        "{}",
        table(&done)
    );
    let pin = pin_parameter(DEPLOYMENT, LINEAGE);
    for (region, want) in [(HOME, &day5), (REPLICA, &day5_west)] {
        ensure!(
            value(&emu, region, &latest()).await?.as_deref() == Some(want.as_str()),
            "{region}: {}",
            table(&done)
        );
        ensure!(value(&emu, region, &pin).await?.as_deref() == Some(want.as_str()));
    }
    let all = versions(&emu, REPLICA, &lt, false).await?;
    ensure!(all.len() == 3, "a version per move, none deleted: {all:?}");
    ensure!(
        all[2].1.as_deref() == Some(day5_west.as_str()) && all[2].4,
        "the rolled-back version is the default: {all:?}"
    );
    ensure!(launch_from(&emu, REPLICA, &lt).await? == day5_west);
    Ok(())
}

#[tokio::test]
async fn a_name_claimed_in_two_regions_is_refused_and_other_lineages_still_publish(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("AMI_LIFECYCLE_REGIONS", "us-east-1,us-west-2")]));
    let a = instance(&emu, LINEAGE).await?;
    // Called "db" but claiming web-1 with the explicit tag, in the other region.
    let b = emu
        .launch_instance(
            REPLICA,
            &[
                ("Name", "db"),
                (key::LINEAGE_NAME, LINEAGE),
                (key::SCHEDULE, "daily"),
            ],
            &[],
        )
        .await?;
    let api = instance(&emu, "api (prod)").await?;
    let slot = days_ago(1);
    image_for(&emu, &ctx, &a, slot).await?;
    let image_api = image_for(&emu, &ctx, &api, slot).await?;

    let detail = publish(&ctx, serde_json::json!({})).await?;
    ensure!(count(&detail, "name-collision") == 2, "{detail}");
    let text = detail.to_string();
    ensure!(
        text.contains(&format!("{a} ({HOME})")) && text.contains(&format!("{b} ({REPLICA})")),
        "{text}"
    );
    for region in [HOME, REPLICA] {
        ensure!(
            parameter(&emu, region, &latest()).await?.is_none(),
            "{region}: {detail}"
        );
    }
    // The Name tag made a path segment: "api (prod)" publishes as api-prod.
    let other = latest_parameter(DEPLOYMENT, "api-prod");
    ensure!(
        value(&emu, HOME, &other).await?.as_deref() == Some(image_api.as_str()),
        "{detail}"
    );
    Ok(())
}

#[tokio::test]
async fn crash_consistent_images_are_published_only_when_asked() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = emu
        .launch_instance(
            HOME,
            &[
                ("Name", LINEAGE),
                (key::SCHEDULE, "daily"),
                (key::REBOOT, "false"),
            ],
            &[],
        )
        .await?;
    let image = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    let default = publish(&ctx, available_event(HOME, &image)).await?;
    ensure!(count(&default, "published") == 0, "{default}");
    ensure!(
        parameter(&emu, HOME, &latest()).await?.is_none(),
        "{default}"
    );
    let opted = emu.context(emu.config(&[(
        "PUBLISH_CONSISTENCY",
        "rebooted,stopped,application-consistent,crash-consistent",
    )]));
    let asked = publish(&opted, available_event(HOME, &image)).await?;
    ensure!(count(&asked, "published") == 1, "{asked}");
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(image.as_str()));
    Ok(())
}

#[tokio::test]
async fn a_deregistered_current_image_is_replaced_by_the_newest_left() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let older = image_for(&emu, &ctx, &web, days_ago(2)).await?;
    let newer = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    publish(&ctx, serde_json::json!({})).await?;
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(newer.as_str()));
    emu.ec2(HOME)
        .deregister_image()
        .image_id(&newer)
        .send()
        .await
        .context("DeregisterImage")?;
    let detail = publish(&ctx, serde_json::json!({"lineage": LINEAGE})).await?;
    ensure!(count(&detail, "published") == 1, "{detail}");
    ensure!(
        value(&emu, HOME, &latest()).await?.as_deref() == Some(older.as_str()),
        "a parameter naming a gone image breaks every launch: {detail}"
    );
    Ok(())
}

#[tokio::test]
async fn a_template_tracking_a_lineage_with_no_image_in_its_region_yet_is_left_alone(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[("REPLICA_REGIONS", REPLICA)]));
    let web = instance(&emu, LINEAGE).await?;
    image_for(&emu, &ctx, &web, days_ago(1)).await?;
    let base_west = emu.base_image(REPLICA).await?;
    let lt = template(&emu, REPLICA, "web", &base_west, &[(key::TRACK, LINEAGE)]).await?;
    let detail = publish(&ctx, reconcile_event()).await?;
    ensure!(count(&detail, "published") == 1, "{detail}");
    ensure!(
        versions(&emu, REPLICA, &lt, false).await?.len() == 1,
        "{detail}"
    );
    let item = detail["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["subject"].as_str().is_some_and(|s| s.contains(&lt)))
        .with_context(|| format!("the template is reported: {detail}"))?;
    ensure!(item["outcome"] != "refused", "web-1 is a lineage: {item}");
    Ok(())
}

/// SSM validates an `aws:ec2:image` value after answering: a run that wrote the newest
/// image but could not read it back in time reports it `unconfirmed` and labels nothing;
/// SSM then stores it. The next run must still give that version its slot label.
#[tokio::test]
async fn a_write_confirmed_only_after_the_run_still_gets_its_slot_label() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let slot = days_ago(1);
    let image = image_for(&emu, &ctx, &web, slot).await?;
    // What the unconfirmed run left: the version written, no label.
    ssm(&emu, HOME)
        .put_parameter()
        .name(latest())
        .value(&image)
        .description(format!(
            "ami-lifecycle {DEPLOYMENT}: latest image of {LINEAGE}"
        ))
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .data_type("aws:ec2:image")
        .overwrite(true)
        .send()
        .await
        .context("PutParameter")?;
    let detail = publish(&ctx, reconcile_event()).await?;
    let versions = history(&emu, HOME, &latest()).await?;
    ensure!(
        versions
            .last()
            .is_some_and(|v| v.value() == Some(image.as_str())),
        "{versions:?}"
    );
    ensure!(
        versions.iter().any(|v| v.labels() == [slot_label(slot)]),
        "no version carries {}: {versions:?}\n{detail}",
        slot_label(slot)
    );
    Ok(())
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_track_default_added_later_makes_the_suites_version_the_default(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let base = emu.base_image(HOME).await?;
    let lt = template(&emu, HOME, "web", &base, &[(key::TRACK, LINEAGE)]).await?;
    let image = image_for(&emu, &ctx, &web, days_ago(1)).await?;

    let dry = emu.context(emu.config(&[("DRY_RUN", "true")]));
    let plan = publish(&dry, serde_json::json!({"lineage": LINEAGE})).await?;
    ensure!(
        count(&plan, "planned") == 2,
        "parameter and template: {plan}"
    );
    ensure!(parameter(&emu, HOME, &latest()).await?.is_none(), "{plan}");
    ensure!(versions(&emu, HOME, &lt, false).await?.len() == 1, "{plan}");

    publish(&ctx, serde_json::json!({"lineage": LINEAGE})).await?;
    let all = versions(&emu, HOME, &lt, false).await?;
    ensure!(all.len() == 2 && all[0].4 && !all[1].4, "{all:?}");

    // The owner opts in to the default later: the suite's version becomes it, no new one.
    emu.ec2(HOME)
        .create_tags()
        .resources(&lt)
        .tags(Tag::builder().key(key::TRACK_DEFAULT).value("true").build())
        .send()
        .await
        .context("CreateTags")?;
    let detail = publish(&ctx, reconcile_event()).await?;
    let all = versions(&emu, HOME, &lt, false).await?;
    ensure!(all.len() == 2, "{all:?}\n{detail}");
    ensure!(
        all[1].4 && all[1].1.as_deref() == Some(image.as_str()),
        "version 2 is the default: {all:?}\n{detail}"
    );
    ensure!(launch_from(&emu, HOME, &lt).await? == image);
    Ok(())
}

#[tokio::test]
async fn publishing_a_lineage_nobody_has_says_so() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    image_for(&emu, &ctx, &web, days_ago(1)).await?;
    let detail = publish(&ctx, serde_json::json!({"lineage": "web-2"})).await?;
    ensure!(
        parameter(&emu, HOME, &latest()).await?.is_none(),
        "{detail}"
    );
    ensure!(
        detail["items"].as_array().is_some_and(|items| items
            .iter()
            .any(|i| i["outcome"] == "refused" && i.to_string().contains("web-2"))),
        "an unknown lineage is named in the report, not an empty run: {detail}"
    );
    Ok(())
}

#[tokio::test]
async fn an_instance_with_two_schedules_publishes_its_newest_image_whichever_made_it(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = emu
        .launch_instance(
            HOME,
            &[("Name", LINEAGE), (key::SCHEDULE, "daily,weekly")],
            &[],
        )
        .await?;
    let daily = image_for(&emu, &ctx, &web, days_ago(2)).await?;
    let weekly = {
        let report = create::run(
            &ctx,
            CreateRequest::Schedule(ScheduleRun::new("weekly".into(), days_ago(1))),
            now(),
        )
        .await;
        emu.tick()?;
        report
            .items
            .iter()
            .find(|i| i.subject == web && i.outcome == Outcome::Created)
            .and_then(|i| i.image.as_ref().map(ToString::to_string))
            .with_context(|| report.render_table())?
    };
    let first = publish(&ctx, available_event(HOME, &weekly)).await?;
    ensure!(count(&first, "published") == 1, "{first}");
    ensure!(
        count(&first, "name-collision") == 0,
        "one instance, one name: {first}"
    );
    let late = publish(&ctx, available_event(HOME, &daily)).await?;
    ensure!(count(&late, "unchanged") == 1, "{late}");
    ensure!(value(&emu, HOME, &latest()).await?.as_deref() == Some(weekly.as_str()));

    let back = rollback(&ctx, LINEAGE, Target::Previous, &[Region::new(HOME)], now()).await;
    ensure!(
        value(&emu, HOME, &latest()).await?.as_deref() == Some(daily.as_str()),
        "the previous image is the daily one: {}",
        table(&back)
    );
    Ok(())
}

#[tokio::test]
async fn a_forged_newer_image_is_never_published() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let genuine = image_for(&emu, &ctx, &web, days_ago(2)).await?;
    // Whoever can tag can write every lineage tag, for a newer slot, without the seal.
    let slot = ami_core::time_util::rfc3339(days_ago(1));
    let forged_tags = [
        (key::MANAGED_BY, DEPLOYMENT),
        (key::SOURCE_INSTANCE, web.as_str()),
        (key::SCHEDULE, "daily"),
        (key::SLOT, slot.as_str()),
        (key::CONSISTENCY, "rebooted"),
    ];
    let forged = emu
        .ec2(HOME)
        .create_image()
        .instance_id(&web)
        .name("ami-lifecycle/forged/daily")
        .no_reboot(true)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .set_tags(Some(
                    forged_tags
                        .iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                        .collect(),
                ))
                .build(),
        )
        .send()
        .await
        .context("CreateImage")?
        .image_id()
        .context("no image id")?
        .to_owned();
    wait_available(&emu, HOME, &forged).await?;

    let event = publish(&ctx, available_event(HOME, &forged)).await?;
    ensure!(count(&event, "published") == 0, "{event}");
    ensure!(parameter(&emu, HOME, &latest()).await?.is_none(), "{event}");
    let hourly = publish(&ctx, reconcile_event()).await?;
    ensure!(
        value(&emu, HOME, &latest()).await?.as_deref() == Some(genuine.as_str()),
        "{hourly}"
    );
    Ok(())
}

#[tokio::test]
async fn a_hand_made_text_parameter_already_holding_the_image_is_refused_too() -> anyhow::Result<()>
{
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let image = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    ssm(&emu, HOME)
        .put_parameter()
        .name(latest())
        .value(&image)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .context("PutParameter")?;
    let detail = publish(&ctx, reconcile_event()).await?;
    // The value is already right; the data type is not: resolve:ssm: refuses it.
    let p = parameter(&emu, HOME, &latest())
        .await?
        .context("parameter")?;
    ensure!(p.data_type() == Some("text"), "{p:?}");
    let text = detail.to_string();
    ensure!(
        count(&detail, "refused") == 1 && text.contains("aws:ec2:image") && text.contains(&latest()),
        "a text parameter cannot be resolved by launch templates: say so, naming the data type: {detail}"
    );
    Ok(())
}

#[tokio::test]
async fn a_hand_made_text_parameter_with_another_value_is_refused_naming_the_data_type_and_the_fix(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let ctx = emu.context(emu.config(&[]));
    let web = instance(&emu, LINEAGE).await?;
    let image = image_for(&emu, &ctx, &web, days_ago(1)).await?;
    ssm(&emu, HOME)
        .put_parameter()
        .name(latest())
        .value("ami-0123456789abcdef0")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .context("PutParameter")?;
    let detail = publish(&ctx, reconcile_event()).await?;
    // SSM cannot change a parameter's data type: refused before writing, with the fix.
    ensure!(count(&detail, "refused") == 1, "{detail}");
    let text = detail.to_string();
    ensure!(
        text.contains(&latest()) && text.contains("aws:ec2:image") && text.contains("delete"),
        "{detail}"
    );
    let p = parameter(&emu, HOME, &latest())
        .await?
        .context("parameter")?;
    ensure!(
        p.value() == Some("ami-0123456789abcdef0") && p.version() == 1,
        "left as it was: {p:?} (not {image})"
    );
    Ok(())
}

#[tokio::test]
async fn cleanup_keeps_the_published_history_of_each_region_with_its_own_ids() -> anyhow::Result<()>
{
    let emu = Emulator::start()?;
    let settings = [
        ("REPLICA_REGIONS", REPLICA),
        ("RETAIN", "count=1"),
        ("PUBLISHED_KEEP", "2"),
    ];
    let ctx = emu.context(emu.config(&settings));
    let web = instance(&emu, LINEAGE).await?;
    let mut replicas = Vec::new();
    for days in (1..=3).rev() {
        let image = image_for(&emu, &ctx, &web, days_ago(days)).await?;
        replicate(&emu, &ctx).await?;
        replicas.push(replica_of(&emu, REPLICA, &image).await?);
        let detail = publish(&ctx, reconcile_event()).await?;
        ensure!(count(&detail, "published") == 2, "both regions: {detail}");
    }
    ensure!(value(&emu, REPLICA, &latest()).await?.as_deref() == Some(replicas[2].as_str()));
    let cleanup = dispatch("cleanup", &ctx, serde_json::json!({}), now())
        .await
        .map_err(|e| anyhow::anyhow!("cleanup: {e}"))?;
    let west = emu
        .ec2(REPLICA)
        .describe_images()
        .owners("self")
        .include_disabled(true)
        .send()
        .await?;
    let alive = |id: &str| {
        west.images().iter().any(|i| {
            i.image_id() == Some(id) && i.state().map(|s| s.as_str()) != Some("deregistered")
        })
    };
    ensure!(
        alive(&replicas[2]) && alive(&replicas[1]),
        "current and previous replica kept: {cleanup}"
    );
    ensure!(!alive(&replicas[0]), "the oldest replica goes: {cleanup}");
    Ok(())
}
