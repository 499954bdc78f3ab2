//! `amictl migrate --instance i-… (--to-az AZ | --to-region R [--to-az AZ]) [--subnet …]
//! [--security-groups …] [--key-name …] [--stop-source] [--move-eip] [--user-data]
//! [--max-age DURATION] [--yes]`: move an instance to another zone or region through its
//! image, in one resumable command.
//!
//! Without `--yes` (or with `--dry-run`) it reads, plans and prints the plan
//! ([`ami_core::migrate::text::render`]), and changes nothing. With `--yes` it applies the
//! plan ([`ami_core::migrate::run::apply`]); a run stopped by a bounded wait or a failure
//! is continued by running the same command again — it never makes a second image or
//! launches a second instance (the migration's client token).

use std::time::Duration;

use ami_core::context::Context;
use ami_core::migrate::fleet::Fleets;
use ami_core::migrate::plan::{plan, Inputs};
use ami_core::migrate::run::{apply, Waits};
use ami_core::migrate::{SourceInstance, Target};
use ami_core::model::{Image, ImageState, InstanceId, Region};
use ami_core::ports::{all_images, ImageQuery};
use ami_core::report::RunReport;
use anyhow::{bail, Context as _};
use time::OffsetDateTime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The instance to move (i-…). The global --region says where it is (else every
    /// region the deployment manages is searched).
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: String,
    /// The Availability Zone to move to (in the target region).
    #[arg(long, value_name = "AZ")]
    pub to_az: Option<String>,
    /// The region to move to: the image is copied there, and the subnet, security groups
    /// and key pair are found by name.
    #[arg(long, value_name = "REGION")]
    pub to_region: Option<String>,
    /// The subnet to launch in (instead of the one matched by Name tag).
    #[arg(long, value_name = "SUBNET_ID")]
    pub subnet: Option<String>,
    /// The security groups (comma-separated), instead of the ones matched by Name tag.
    #[arg(long, value_name = "SG_IDS", value_delimiter = ',')]
    pub security_groups: Option<Vec<String>>,
    /// The key pair to use where the source's does not exist.
    #[arg(long, value_name = "NAME")]
    pub key_name: Option<String>,
    /// Stop (never terminate) the source once the new instance passes both status checks.
    #[arg(long)]
    pub stop_source: bool,
    /// Move the source's Elastic IP to the new instance once it is healthy (same region).
    #[arg(long)]
    pub move_eip: bool,
    /// Replay the source's user data on the new instance (it already ran once).
    #[arg(long)]
    pub user_data: bool,
    /// Reuse the source's newest consistent image when younger than this (e.g. 6h, 30m,
    /// 2d; default 0: always a new image, with a reboot).
    #[arg(long, value_parser = parse_age, default_value = "0")]
    pub max_age: time::Duration,
    /// Apply the plan (without it: print the plan, change nothing).
    #[arg(long)]
    pub yes: bool,
    /// Print the plan, change nothing (the default without --yes).
    #[arg(long)]
    pub dry_run: bool,
    /// Give up each wait (image, copy, status checks) after this many seconds; running
    /// the same command again continues.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=43200))]
    pub wait: u64,
    /// Seconds between looks while waiting.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub poll: u64,
}

/// `90`, `90s`, `30m`, `6h`, `2d`.
fn parse_age(s: &str) -> Result<time::Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => s.split_at(at),
        None => (s, "s"),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 6h, 30m, 2d or 90 (seconds)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d (e.g. 6h)")),
    };
    Ok(time::Duration::seconds(n.saturating_mul(seconds)))
}

/// What the command prints: the plan (without `--yes`) or the applied run's report.
pub enum Migrated {
    Planned(Box<ami_core::migrate::MigrationPlan>),
    Applied(Box<RunReport>),
}

pub async fn run(ctx: &Context, fleets: &dyn Fleets, args: &Args) -> anyhow::Result<Migrated> {
    let id = InstanceId::new(args.instance.trim());
    if !id.as_str().starts_with("i-") {
        bail!(
            "--instance {:?} is not an instance id (i- followed by hex digits)",
            args.instance
        );
    }
    if let Some(r) = args
        .to_region
        .as_deref()
        .filter(|r| !ami_core::tags::is_region_name(r))
    {
        bail!("--to-region {r:?} is not a region name (e.g. eu-west-1)");
    }
    let now = OffsetDateTime::now_utc();
    let source = find_source(ctx, fleets, &id).await?;
    let target = Target {
        region: args.to_region.as_deref().map(Region::new),
        zone: args.to_az.clone(),
        subnet: args.subnet.clone(),
        security_groups: args.security_groups.clone(),
        key_name: args.key_name.clone(),
        stop_source: args.stop_source,
        move_eip: args.move_eip,
        user_data: args.user_data,
        max_age: args.max_age,
    };
    let to_region = target
        .region
        .clone()
        .unwrap_or_else(|| source.region.clone());
    let network = fleets
        .fleet(&to_region)
        .network()
        .await
        .with_context(|| format!("reading the network of {to_region}"))?;
    let proven = reusable_images(ctx, &source, &to_region).await?;
    let inputs = Inputs {
        network: &network,
        proven_images: &proven,
        target_key: ctx.config.replica_keys.get(&to_region),
        deployment: &ctx.config.deployment,
        now,
    };
    let plan = plan(&source, &target, &inputs)?;
    if !args.yes || args.dry_run || ctx.config.dry_run {
        return Ok(Migrated::Planned(Box::new(plan)));
    }
    let waits = Waits {
        poll: Duration::from_secs(args.poll),
        max: Duration::from_secs(args.wait),
    };
    let report = apply(ctx, fleets, &plan, waits, now).await;
    Ok(Migrated::Applied(Box::new(ctx.finish(report).await)))
}

/// The source in the global --region, else in the first managed region that has it.
async fn find_source(
    ctx: &Context,
    fleets: &dyn Fleets,
    id: &InstanceId,
) -> anyhow::Result<SourceInstance> {
    let regions = ctx.config.all_regions();
    for region in &regions {
        match fleets.fleet(region).source(id).await {
            Ok(source) => return Ok(source),
            Err(e) if e.kind == ami_core::error::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {id} in {region}")),
        }
    }
    let names: Vec<&str> = regions.iter().map(Region::as_str).collect();
    bail!(
        "instance {id} is not in {} (the regions this deployment manages): give its region with --region",
        names.join(", ")
    )
}

/// The source's images that may be reused: sealed (ours), made of it (EC2's
/// `SourceInstanceId`), available; for a region move, only those that replicate there.
async fn reusable_images(
    ctx: &Context,
    source: &SourceInstance,
    to: &Region,
) -> anyhow::Result<Vec<Image>> {
    let query = ImageQuery {
        owned_by_self: true,
        source_instances: vec![source.id.clone()],
        ..ImageQuery::default()
    };
    let ec2 = ctx.cloud.ec2(&source.region);
    let found = all_images(ec2.as_ref(), &query)
        .await
        .with_context(|| format!("listing the images of {}", source.id))?;
    let sealed =
        ami_core::seal::sealed_only(&ctx.sealer, found, &ctx.config.deployment, None).await;
    Ok(sealed
        .into_iter()
        .filter(|i| i.state == ImageState::Available)
        .filter(|i| {
            *to == source.region
                || ami_core::replicate::plan::destinations(i, &ctx.config)
                    .is_ok_and(|d| d.contains(to))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages_take_a_unit_or_seconds() {
        assert_eq!(parse_age("90"), Ok(time::Duration::seconds(90)));
        assert_eq!(parse_age("30m"), Ok(time::Duration::minutes(30)));
        assert_eq!(parse_age("6h"), Ok(time::Duration::hours(6)));
        assert_eq!(parse_age("2d"), Ok(time::Duration::days(2)));
        assert!(parse_age("6w").unwrap_err().contains("s, m, h or d"));
        assert!(parse_age("soon").unwrap_err().contains("6h"));
    }
}
