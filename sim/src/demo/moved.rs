//! The demo's instance move (issue 20): on [`super::scenario::MIGRATE_DAY`] a person runs
//! `amictl migrate --instance app-eu-1 --to-az <another zone> --yes` — the planner and the
//! apply step `amictl` runs, through the same AWS adapters, against the emulator: a
//! rebooted image of app-eu-1 in its lineage, the same configuration launched in the other
//! zone, both status checks waited for. Then the same command once more, as after an
//! interrupted run: it finds the image and the instance by the migration's token and makes
//! nothing new. The timeline shows both runs.

use std::time::Duration;

use ami_core::migrate::fleet::Fleets;
use ami_core::migrate::plan::{plan, Inputs};
use ami_core::migrate::run::{apply, Waits};
use ami_core::migrate::Target;
use ami_core::model::{InstanceId, Region};
use anyhow::Context as _;
use time::OffsetDateTime;

use super::bus::Invocation;
use crate::EmulatorClient;

/// The instance the demo moves and what came of it.
pub struct Moved {
    pub name: &'static str,
    pub source: String,
    /// The instance launched in the other zone, once the move finished.
    pub successor: Option<String>,
}

/// Plans and applies the move of `id` (`name`) in `region` to another zone of its VPC:
/// the timeline's invocations and the new instance, if the move finished.
pub async fn migrate(
    emu: &EmulatorClient,
    ctx: &ami_core::context::Context,
    name: &'static str,
    id: &str,
    region: &str,
    now: OffsetDateTime,
) -> anyhow::Result<(Vec<Invocation>, Moved)> {
    // The person acts at `now`: what they make is stamped then (the clock may still be at
    // the last event delivered, hours earlier).
    emu.set_clock(now)?;
    let fleets = emu.cloud(&ctx.config);
    let fleet = fleets.fleet(&Region::new(region));
    let source = fleet
        .source(&InstanceId::new(id))
        .await
        .context("reading the instance to move")?;
    let network = fleet
        .network()
        .await
        .context("reading its region's network")?;
    let to_az = network
        .subnets
        .iter()
        .filter(|s| s.vpc_id == source.subnet.vpc_id && s.zone != source.zone)
        .map(|s| s.zone.clone())
        .min()
        .with_context(|| format!("{id}'s VPC has no subnet in another zone"))?;
    let inputs = Inputs {
        network: &network,
        proven_images: &[],
        target_key: None,
        deployment: &ctx.config.deployment,
        now,
    };
    let planned = plan(&source, &Target::zone(&to_az), &inputs)?;
    let command = format!("migrate --instance {name} --to-az {to_az} --yes");
    let mut out = Vec::new();
    // First run: the image is made and still pending; the bounded wait gives up.
    let quick = Waits {
        poll: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    let first = apply(ctx, fleets.as_ref(), &planned, quick, now).await;
    out.push(Invocation::amictl(now, &command, first.event_detail()));
    emu.tick()?;
    // The same command again: it continues where it stopped.
    let waits = Waits {
        poll: Duration::from_millis(100),
        max: Duration::from_secs(30),
    };
    let second = apply(ctx, fleets.as_ref(), &planned, waits, now).await;
    out.push(Invocation::amictl(now, &command, second.event_detail()));
    let successor = fleets
        .fleet(&Region::new(region))
        .launched(&planned.launch.client_token)
        .await?
        .map(|i| i.to_string());
    Ok((
        out,
        Moved {
            name,
            source: id.to_owned(),
            successor,
        },
    ))
}
