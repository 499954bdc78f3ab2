//! Emulator integration tests for issue 20: `amictl migrate`, through the core it runs
//! ([`ami_core::migrate`]: the planner, the apply step, the AWS adapter of its `Fleet`
//! port) against the extended moto, which refuses what EC2 refuses for these calls
//! (RunInstances' client token, subnet/zone/group/key checks, status checks that start
//! `initializing`). Each test builds a VPC named `prod` with an `app` subnet per zone,
//! security groups named `web` and `db`, a key pair `ops`, and a running source instance
//! with an Elastic IP; region moves build the same names (other ids) in eu-west-1.

use std::collections::BTreeMap;
use std::time::Duration;

use ami_core::context::Context;
use ami_core::migrate::fleet::Fleets;
use ami_core::migrate::plan::{plan, Inputs, MigrationPlan};
use ami_core::migrate::run::{apply, Waits};
use ami_core::migrate::{PlanError, Target, MIGRATED_FROM, MIGRATION};
use ami_core::model::{InstanceId, Region};
use ami_core::report::{Outcome, RunReport};
use ami_core::tags::key;
use ami_sim::Emulator;
use anyhow::{ensure, Context as _};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, ResourceType, Tag, TagSpecification, VolumeType,
};
use serde_json::json;
use time::OffsetDateTime;

const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";
const WAITS: Waits = Waits {
    poll: Duration::from_millis(50),
    max: Duration::from_secs(20),
};

/// A region's network, built with the same names in every region.
struct Network {
    subnets: BTreeMap<String, String>,
    groups: BTreeMap<String, String>,
}

fn name_tag(resource: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Tag::builder().key("Name").value(name).build())
        .build()
}

impl Network {
    /// The ids of its `web` and `db` groups, sorted.
    fn web_and_db(&self) -> Vec<&str> {
        let mut ids = vec![self.groups["web"].as_str(), self.groups["db"].as_str()];
        ids.sort_unstable();
        ids
    }
}

/// The security group ids of `instance`, sorted.
fn group_ids(instance: &aws_sdk_ec2::types::Instance) -> Vec<&str> {
    let mut ids: Vec<&str> = instance
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id())
        .collect();
    ids.sort_unstable();
    ids
}

/// VPC `prod`, subnet `app` in each of `zones`, groups named `groups`, key pair `ops`.
async fn network(
    emu: &Emulator,
    region: &str,
    zones: &[&str],
    groups: &[&str],
) -> anyhow::Result<Network> {
    let ec2 = emu.ec2(region);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .tag_specifications(name_tag(ResourceType::Vpc, "prod"))
        .send()
        .await
        .context("CreateVpc")?;
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .context("no VPC id")?
        .to_owned();
    let mut subnets = BTreeMap::new();
    for (n, zone) in zones.iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .availability_zone(*zone)
            .cidr_block(format!("10.0.{n}.0/24"))
            .tag_specifications(name_tag(ResourceType::Subnet, "app"))
            .send()
            .await
            .context("CreateSubnet")?;
        let id = s
            .subnet()
            .and_then(|s| s.subnet_id())
            .context("no subnet id")?;
        subnets.insert((*zone).to_owned(), id.to_owned());
    }
    let mut ids = BTreeMap::new();
    for g in groups {
        let out = ec2
            .create_security_group()
            .group_name(format!("{g}-group"))
            .description(format!("{g} tier"))
            .vpc_id(&vpc)
            .tag_specifications(name_tag(ResourceType::SecurityGroup, g))
            .send()
            .await
            .context("CreateSecurityGroup")?;
        ids.insert(
            (*g).to_owned(),
            out.group_id().context("no group id")?.to_owned(),
        );
    }
    ec2.create_key_pair()
        .key_name("ops")
        .send()
        .await
        .context("CreateKeyPair")?;
    Ok(Network {
        subnets,
        groups: ids,
    })
}

/// A running source instance in `zone` of `net` (web and db groups, key ops, a gp3 root
/// volume with IOPS and throughput, the daily schedule) with an Elastic IP.
async fn source(emu: &Emulator, net: &Network, zone: &str) -> anyhow::Result<(InstanceId, String)> {
    let ec2 = emu.ec2(EAST);
    let base = emu.base_image(EAST).await?;
    let out = ec2
        .run_instances()
        .image_id(base)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(&net.subnets[zone])
        .security_group_ids(&net.groups["web"])
        .security_group_ids(&net.groups["db"])
        .key_name("ops")
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(20)
                        .volume_type(VolumeType::Gp3)
                        .iops(4000)
                        .throughput(250)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("web-1").build())
                .tags(Tag::builder().key(key::SCHEDULE).value("daily").build())
                .build(),
        )
        .send()
        .await
        .context("RunInstances")?;
    let id = out
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .context("no instance")?
        .to_owned();
    let eip = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await?;
    let allocation = eip.allocation_id().context("no allocation")?.to_owned();
    ec2.associate_address()
        .allocation_id(&allocation)
        .instance_id(&id)
        .send()
        .await?;
    Ok((InstanceId::new(id), allocation))
}

struct World {
    emu: Emulator,
    ctx: Context,
    fleets: std::sync::Arc<ami_core::aws::AwsCloud>,
}

/// The emulator with images available after 1 s, and a context managing `regions`.
async fn world(pairs: &[(&str, &str)]) -> anyhow::Result<World> {
    let emu = Emulator::start()?;
    emu.configure(json!({"pending_seconds": 1.0}))?;
    let mut all = vec![("AMI_LIFECYCLE_REGIONS", EAST)];
    all.extend_from_slice(pairs);
    let ctx = emu.context(emu.config(&all));
    let fleets = emu.cloud(&ctx.config);
    Ok(World { emu, ctx, fleets })
}

/// [`world`] with a network of two zones in us-east-1 and the source in us-east-1a: the
/// set-up of every zone move; (the world, its network, the source, its Elastic IP).
async fn zone_move_world(
    pairs: &[(&str, &str)],
) -> anyhow::Result<(World, Network, InstanceId, String)> {
    let w = world(pairs).await?;
    let net = network(&w.emu, EAST, &["us-east-1a", "us-east-1b"], &["web", "db"]).await?;
    let (src, allocation) = source(&w.emu, &net, "us-east-1a").await?;
    Ok((w, net, src, allocation))
}

async fn planned(
    w: &World,
    instance: &InstanceId,
    target: &Target,
) -> Result<MigrationPlan, PlanError> {
    let fleets: &dyn Fleets = w.fleets.as_ref();
    let source = fleets
        .fleet(&Region::new(EAST))
        .source(instance)
        .await
        .expect("the source");
    let to = target.region.clone().unwrap_or_else(|| Region::new(EAST));
    let network = fleets
        .fleet(&to)
        .network()
        .await
        .expect("the target network");
    let inputs = Inputs {
        network: &network,
        proven_images: &[],
        target_key: w.ctx.config.replica_keys.get(&to),
        deployment: &w.ctx.config.deployment,
        now: OffsetDateTime::now_utc(),
    };
    plan(&source, target, &inputs)
}

async fn migrate(w: &World, p: &MigrationPlan) -> RunReport {
    apply(
        &w.ctx,
        w.fleets.as_ref(),
        p,
        WAITS,
        OffsetDateTime::now_utc(),
    )
    .await
}

fn done(report: &RunReport) -> anyhow::Result<()> {
    ensure!(
        report.incomplete.is_none() && report.items.iter().any(|i| i.reason.starts_with("moved ")),
        "the migration did not finish: {report:#?}"
    );
    Ok(())
}

/// Instances in `region` launched with `token` (EC2's `client-token` filter).
async fn launched(
    emu: &Emulator,
    region: &str,
    token: &str,
) -> anyhow::Result<Vec<aws_sdk_ec2::types::Instance>> {
    let out = emu
        .ec2(region)
        .describe_instances()
        .filters(Filter::builder().name("client-token").values(token).build())
        .send()
        .await?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances().iter().cloned())
        .collect())
}

async fn state_of(emu: &Emulator, region: &str, id: &str) -> anyhow::Result<String> {
    let out = emu
        .ec2(region)
        .describe_instances()
        .instance_ids(id)
        .send()
        .await?;
    let i = out
        .reservations()
        .first()
        .and_then(|r| r.instances().first())
        .context("no instance")?;
    Ok(i.state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default())
}

#[tokio::test]
async fn a_zone_move_launches_the_same_configuration_and_keeps_the_source_running(
) -> anyhow::Result<()> {
    let (w, net, src, allocation) = zone_move_world(&[]).await?;
    let p = planned(&w, &src, &Target::zone("us-east-1b")).await?;
    ensure!(
        p.launch.subnet.id == net.subnets["us-east-1b"],
        "{:?}",
        p.launch.subnet
    );
    let report = migrate(&w, &p).await;
    done(&report)?;
    let new = launched(&w.emu, EAST, &p.token).await?;
    ensure!(new.len() == 1, "one instance: {new:?}");
    let i = &new[0];
    ensure!(i.subnet_id() == Some(net.subnets["us-east-1b"].as_str()));
    ensure!(i.placement().and_then(|p| p.availability_zone()) == Some("us-east-1b"));
    let groups = group_ids(i);
    ensure!(groups == net.web_and_db(), "{groups:?}");
    ensure!(i.key_name() == Some("ops"));
    let tags: BTreeMap<&str, &str> = i
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    ensure!(tags.get(MIGRATED_FROM) == Some(&src.as_str()), "{tags:?}");
    ensure!(tags.get("Name") == Some(&"web-1"), "{tags:?}");
    // The image: the source's lineage, rebooted, tagged with the migration.
    let image = i.image_id().context("no image")?;
    let img = w
        .emu
        .ec2(EAST)
        .describe_images()
        .image_ids(image)
        .send()
        .await?;
    let img = img.images().first().context("no image")?;
    let itags: BTreeMap<&str, &str> = img
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    ensure!(itags.get(MIGRATION) == Some(&p.token.as_str()), "{itags:?}");
    ensure!(
        itags.get(key::CONSISTENCY) == Some(&"rebooted"),
        "{itags:?}"
    );
    ensure!(img.source_instance_id() == Some(src.as_str()));
    // The volume keeps type and performance.
    let vols = w
        .emu
        .ec2(EAST)
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .values(i.instance_id().unwrap_or_default())
                .build(),
        )
        .send()
        .await?;
    let v = vols.volumes().first().context("no volume")?;
    ensure!(
        v.volume_type() == Some(&VolumeType::Gp3)
            && v.iops() == Some(4000)
            && v.throughput() == Some(250),
        "{v:?}"
    );
    // The source runs on, with its Elastic IP.
    ensure!(state_of(&w.emu, EAST, src.as_str()).await? == "running");
    let addr = w
        .emu
        .ec2(EAST)
        .describe_addresses()
        .allocation_ids(&allocation)
        .send()
        .await?;
    ensure!(addr.addresses().first().and_then(|a| a.instance_id()) == Some(src.as_str()));
    ensure!(report
        .items
        .iter()
        .any(|i| i.outcome == Outcome::Kept && i.reason.contains("--move-eip")));
    Ok(())
}

#[tokio::test]
async fn with_stop_source_and_move_eip_the_source_stops_after_the_new_one_is_healthy(
) -> anyhow::Result<()> {
    let (w, _, src, allocation) = zone_move_world(&[]).await?;
    // Status checks stay `initializing` for a long while: the first run waits, gives up,
    // and leaves the source untouched.
    w.emu.configure(json!({"launch_status_seconds": 3600}))?;
    let target = Target {
        stop_source: true,
        move_eip: true,
        ..Target::zone("us-east-1b")
    };
    let p = planned(&w, &src, &target).await?;
    let short = Waits {
        poll: Duration::from_millis(50),
        max: Duration::from_secs(3),
    };
    let first = apply(
        &w.ctx,
        w.fleets.as_ref(),
        &p,
        short,
        OffsetDateTime::now_utc(),
    )
    .await;
    ensure!(
        first
            .items
            .iter()
            .any(|i| i.outcome == Outcome::Deferred && i.reason.contains("not healthy")),
        "{first:#?}"
    );
    ensure!(
        state_of(&w.emu, EAST, src.as_str()).await? == "running",
        "stopped before the new one was healthy"
    );
    // An hour later (the emulator's clock) the checks pass: the same command finishes,
    // with the one instance it launched.
    w.emu
        .set_clock(OffsetDateTime::now_utc() + time::Duration::hours(2))?;
    done(&migrate(&w, &p).await)?;
    let new = launched(&w.emu, EAST, &p.token).await?;
    ensure!(new.len() == 1, "{new:?}");
    let new_id = new[0].instance_id().context("no id")?;
    let st = state_of(&w.emu, EAST, src.as_str()).await?;
    ensure!(
        st == "stopped" || st == "stopping",
        "the source is {st}, not stopped (never terminated)"
    );
    let addr = w
        .emu
        .ec2(EAST)
        .describe_addresses()
        .allocation_ids(&allocation)
        .send()
        .await?;
    ensure!(
        addr.addresses().first().and_then(|a| a.instance_id()) == Some(new_id),
        "{addr:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_region_move_matches_names_and_reencrypts_with_the_target_key() -> anyhow::Result<()> {
    // The replica key of eu-west-1 exists before the context reads REPLICA_KMS_KEYS.
    let emu = Emulator::start()?;
    emu.configure(json!({"pending_seconds": 1.0}))?;
    let west_key = emu.create_key(WEST, Some("alias/replicas")).await?;
    let keys = format!("{WEST}={west_key}");
    let ctx = emu.context(emu.config(&[
        ("AMI_LIFECYCLE_REGIONS", EAST),
        ("REPLICA_REGIONS", WEST),
        ("REPLICA_KMS_KEYS", keys.as_str()),
    ]));
    let fleets = emu.cloud(&ctx.config);
    let w = World { emu, ctx, fleets };
    let east = network(&w.emu, EAST, &["us-east-1a"], &["web", "db"]).await?;
    let west = network(&w.emu, WEST, &["eu-west-1a", "eu-west-1b"], &["web", "db"]).await?;
    let (src, _) = source(&w.emu, &east, "us-east-1a").await?;
    let target = Target {
        zone: Some("eu-west-1b".into()),
        ..Target::region(WEST)
    };
    let p = planned(&w, &src, &target).await?;
    ensure!(
        p.launch.subnet.id == west.subnets["eu-west-1b"],
        "{:?}",
        p.launch.subnet
    );
    let key = w
        .ctx
        .config
        .replica_keys
        .get(&Region::new(WEST))
        .cloned()
        .context("no key")?;
    ensure!(p.copy.as_ref().and_then(|c| c.kms_key.clone()) == Some(key.clone()));
    done(&migrate(&w, &p).await)?;
    let new = launched(&w.emu, WEST, &p.token).await?;
    ensure!(new.len() == 1, "{new:?}");
    let groups = group_ids(&new[0]);
    ensure!(
        groups == west.web_and_db(),
        "matched by Name in eu-west-1: {groups:?}"
    );
    // The copy it launched from is ours (source-image) and encrypted with the west key.
    let image = new[0].image_id().context("no image")?;
    let img = w
        .emu
        .ec2(WEST)
        .describe_images()
        .image_ids(image)
        .send()
        .await?;
    let img = img.images().first().context("no image")?;
    ensure!(
        img.tags()
            .iter()
            .any(|t| t.key() == Some(key::SOURCE_IMAGE)),
        "{img:?}"
    );
    for m in img.block_device_mappings() {
        let ebs = m.ebs().context("no ebs")?;
        ensure!(ebs.encrypted() == Some(true), "{m:?}");
        ensure!(
            ebs.kms_key_id().is_some_and(|k| key.as_str().ends_with(k)
                || k.ends_with(key.as_str())
                || k == key.as_str()),
            "{m:?} vs {key}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_unmatched_security_group_stops_the_plan_and_changes_nothing() -> anyhow::Result<()> {
    let w = world(&[("REPLICA_REGIONS", WEST)]).await?;
    let east = network(&w.emu, EAST, &["us-east-1a"], &["web", "db"]).await?;
    network(&w.emu, WEST, &["eu-west-1a"], &["web"]).await?;
    let (src, _) = source(&w.emu, &east, "us-east-1a").await?;
    w.emu.control("POST", "/_emulator/counters/reset", None)?;
    let e = planned(&w, &src, &Target::region(WEST))
        .await
        .err()
        .context("planned anyway")?;
    let text = e.to_string();
    ensure!(
        text.contains(&east.groups["db"]) && text.contains("--security-groups"),
        "{text}"
    );
    let counters = w.emu.counters()?;
    for action in ["CreateImage", "CopyImage", "RunInstances"] {
        ensure!(
            counters["calls"].get(action).is_none(),
            "{action} called: {counters}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_rerun_after_a_failed_launch_launches_nothing_twice() -> anyhow::Result<()> {
    let (w, _, src, _) = zone_move_world(&[]).await?;
    let p = planned(&w, &src, &Target::zone("us-east-1b")).await?;
    // RunInstances launches, then the answer is lost (HTTP 500 after the change), for the
    // call and the SDK's retry of it (same client token: the same instance, answered).
    w.emu.configure(json!({"crash": [
        {"action": "RunInstances", "nth": 1, "when": "after"},
        {"action": "RunInstances", "nth": 2, "when": "after"}
    ]}))?;
    let first = migrate(&w, &p).await;
    ensure!(
        first.incomplete.is_some(),
        "the lost answer must stop the run: {first:#?}"
    );
    ensure!(
        first
            .items
            .iter()
            .any(|i| i.reason.contains("RunInstances")),
        "{first:#?}"
    );
    ensure!(
        launched(&w.emu, EAST, &p.token).await?.len() == 1,
        "launched, answer lost"
    );
    w.emu.configure(json!({"crash": []}))?;
    let second = migrate(&w, &p).await;
    done(&second)?;
    let third = migrate(&w, &p).await;
    done(&third)?;
    let new = launched(&w.emu, EAST, &p.token).await?;
    ensure!(new.len() == 1, "one instance for the token: {new:?}");
    let images = w
        .emu
        .ec2(EAST)
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name(format!("tag:{MIGRATION}"))
                .values(&p.token)
                .build(),
        )
        .send()
        .await?;
    ensure!(
        images.images().len() == 1,
        "one image: {:?}",
        images.images()
    );
    Ok(())
}

#[tokio::test]
async fn cleanup_keeps_the_migration_image_while_the_new_instance_runs_from_it(
) -> anyhow::Result<()> {
    // Without the launched-within keep, which would keep it for another reason.
    let (w, _, src, _) =
        zone_move_world(&[("RETAIN", "count=1"), ("KEEP_IF_LAUNCHED_WITHIN", "0")]).await?;
    let p = planned(&w, &src, &Target::zone("us-east-1b")).await?;
    done(&migrate(&w, &p).await)?;
    let new = launched(&w.emu, EAST, &p.token).await?;
    let new_id = new[0].instance_id().context("no id")?.to_owned();
    let image = new[0].image_id().context("no image")?.to_owned();
    // Tomorrow's daily image of the source: retention (count=1) alone would now retire the
    // migration image, the lineage's older one.
    let tomorrow =
        ami_core::time_util::slot_of(OffsetDateTime::now_utc() + time::Duration::days(1));
    w.emu.set_clock(tomorrow)?;
    let event = ami_sim::cycle::scheduled_event("ami-lifecycle-schedule-daily", tomorrow);
    let created = ami_core::runner::invoke_report("create-image", &w.ctx, event, tomorrow)
        .await
        .map_err(|e| anyhow::anyhow!("create-image: {e}"))?;
    ensure!(
        created
            .items
            .iter()
            .any(|i| i.subject == src.as_str() && i.outcome == Outcome::Created),
        "{created:#?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.emu.tick()?;
    let cleanup = ami_core::runner::invoke_report("cleanup", &w.ctx, json!({}), tomorrow)
        .await
        .map_err(|e| anyhow::anyhow!("cleanup: {e}"))?;
    let kept = cleanup.items.iter().find(|i| {
        i.image.as_ref().map(|x| x.as_str()) == Some(image.as_str()) || i.subject == image
    });
    ensure!(
        kept.is_some_and(|i| i.outcome == Outcome::Kept && i.reason.contains(&new_id)),
        "the migration image must be kept, in use by {new_id}: {kept:?}\n{cleanup:#?}"
    );
    let still = w
        .emu
        .ec2(EAST)
        .describe_images()
        .image_ids(&image)
        .send()
        .await?;
    ensure!(
        still
            .images()
            .first()
            .and_then(|i| i.state())
            .map(|s| s.as_str())
            == Some("available"),
        "{still:?}"
    );
    Ok(())
}

#[tokio::test]
async fn amictl_migrate_without_yes_prints_the_plan_and_changes_nothing() -> anyhow::Result<()> {
    let (w, net, src, _) = zone_move_world(&[]).await?;
    w.emu.control("POST", "/_emulator/counters/reset", None)?;
    let out = std::process::Command::new(ami_sim::amictl_binary()?)
        .args([
            "--region",
            EAST,
            "migrate",
            "--instance",
            src.as_str(),
            "--to-az",
            "us-east-1b",
            "--stop-source",
        ])
        .env("AWS_ENDPOINT_URL", &w.emu.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_MAX_ATTEMPTS", "2")
        .env_remove("AWS_REGION")
        .env_remove("AMI_LIFECYCLE_REGIONS")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        format!("Move {src} (us-east-1a) to us-east-1b"),
        format!("subnet {}", net.subnets["us-east-1b"]),
        "is stopped after step 4 (never terminated)".to_owned(),
        "Nothing changed. Run the same command with --yes to apply.".to_owned(),
    ] {
        ensure!(stdout.contains(&want), "{want:?} missing from:\n{stdout}");
    }
    let counters = w.emu.counters()?;
    for action in [
        "CreateImage",
        "CopyImage",
        "RunInstances",
        "StopInstances",
        "CreateTags",
    ] {
        ensure!(
            counters["calls"].get(action).is_none(),
            "{action} called by the dry run: {counters}"
        );
    }
    ensure!(state_of(&w.emu, EAST, src.as_str()).await? == "running");
    Ok(())
}
