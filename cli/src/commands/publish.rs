//! `amictl publish`, `amictl rollback` and `amictl unpin`: the latest-image parameters
//! (`/ami-lifecycle/<deployment>/<lineage>/latest`) and the launch templates that follow
//! them. `publish` runs the publish function's reconcile (every lineage, or `--lineage`);
//! `rollback` pins a lineage to an earlier image and publishes it; `unpin` lifts the pin.
//! `rollback` and `unpin` print their plan unless `--apply`. The decisions are the core's:
//! [`ami_core::publish`].
//!
//! These commands need every managed region's instances to name lineages, so the global
//! `--region` says where to act, not which instances to read.

use ami_core::context::Context;
use ami_core::model::Region;
use ami_core::publish::rollback::{rollback, unpin, Target};
use ami_core::publish::{names, Publish, Request};
use ami_core::report::RunReport;
use ami_core::runner::run_request;
use time::OffsetDateTime;

#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// Only this lineage (its readable name, e.g. web-1).
    #[arg(long, value_name = "NAME", value_parser = parse_lineage)]
    pub lineage: Option<String>,
    /// Plan and print, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "previous"])))]
pub struct RollbackArgs {
    /// The lineage (its readable name, e.g. web-1).
    #[arg(long, value_name = "NAME", value_parser = parse_lineage)]
    pub lineage: String,
    /// Roll back to the image of this slot (2026-11-26T03:00:00Z or 20261126T0300Z).
    #[arg(long, value_name = "SLOT", value_parser = parse_slot)]
    pub to: Option<OffsetDateTime>,
    /// Roll back to the publishable image before the one published now.
    #[arg(long)]
    pub previous: bool,
    /// Every region the deployment publishes in (else the global --region).
    #[arg(long)]
    pub all_regions: bool,
    /// Change things; without it the plan is printed and nothing changes.
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, clap::Args)]
pub struct UnpinArgs {
    /// The lineage (its readable name, e.g. web-1).
    #[arg(long, value_name = "NAME", value_parser = parse_lineage)]
    pub lineage: String,
    /// Every region the deployment publishes in (else the global --region).
    #[arg(long)]
    pub all_regions: bool,
    /// Change things; without it the plan is printed and nothing changes.
    #[arg(long)]
    pub apply: bool,
}

fn parse_lineage(s: &str) -> Result<String, String> {
    let s = s.trim();
    if names::is_valid(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a lineage name: 1-{} letters, digits, '_', '.' or '-'",
            names::MAX_NAME
        ))
    }
}

fn parse_slot(s: &str) -> Result<OffsetDateTime, String> {
    ami_core::lineage::parse_slot(s).ok_or_else(|| {
        format!("{s:?} is not a slot such as 2026-11-26T03:00:00Z or 20261126T0300Z")
    })
}

/// Where to act: `--all-regions`, else the global `--region`; one is required.
pub fn regions(ctx: &Context, region: Option<&str>, all: bool) -> anyhow::Result<Vec<Region>> {
    match (region, all) {
        (_, true) => Ok(ctx.config.all_regions()),
        (Some(r), false) => {
            anyhow::ensure!(
                ami_core::tags::is_region_name(r),
                "--region {r:?} is not a region name (e.g. us-east-1)"
            );
            Ok(vec![Region::new(r)])
        }
        (None, false) => anyhow::bail!("say where: --region R, or --all-regions"),
    }
}

pub async fn run_publish(ctx: &Context, args: &PublishArgs) -> anyhow::Result<RunReport> {
    let request = Request::Reconcile {
        lineage: args.lineage.clone(),
    };
    Ok(run_request::<Publish>(ctx, request, OffsetDateTime::now_utc()).await)
}

pub async fn run_rollback(
    ctx: &Context,
    args: &RollbackArgs,
    region: Option<&str>,
) -> anyhow::Result<RunReport> {
    let regions = regions(ctx, region, args.all_regions)?;
    let target = args.to.map_or(Target::Previous, Target::Slot);
    let report = rollback(
        ctx,
        &args.lineage,
        target,
        &regions,
        OffsetDateTime::now_utc(),
    )
    .await;
    Ok(ctx.finish(report).await)
}

pub async fn run_unpin(
    ctx: &Context,
    args: &UnpinArgs,
    region: Option<&str>,
) -> anyhow::Result<RunReport> {
    let regions = regions(ctx, region, args.all_regions)?;
    let report = unpin(ctx, &args.lineage, &regions, OffsetDateTime::now_utc()).await;
    Ok(ctx.finish(report).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked_before_anything_runs() {
        assert!(parse_lineage("web-1").is_ok());
        assert!(parse_lineage("web 1").is_err_and(|e| e.contains("not a lineage name")));
        assert!(parse_slot("20261126T0300Z").is_ok());
        assert!(parse_slot("2026-11-26T03:00:00Z").is_ok());
        assert!(parse_slot("yesterday").is_err_and(|e| e.contains("not a slot")));
    }
}
