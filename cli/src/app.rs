//! Command-line definition and dispatch: parse, build the [`Context`], run, print, exit.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use ami_core::aws::AwsCloud;
use ami_core::config::Config;
use ami_core::context::Context;
use ami_core::model::Region;
use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::commands;
use crate::output::Output;

/// Operate ami-lifecycle: plans, dry runs, status. Settings come from the same environment
/// variables as the Lambda functions (AMI_LIFECYCLE_NAME, AMI_LIFECYCLE_REGIONS, …).
#[derive(Debug, Parser)]
#[command(name = "amictl", version, about)]
pub struct Cli {
    /// Work on this region only (instead of AMI_LIFECYCLE_REGIONS).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Act in this account (12 digits), through its spoke role unless it is this one
    /// (instead of this account only). Needs SPOKE_EXTERNAL_ID for another account.
    #[arg(long, global = true, conflicts_with = "all_accounts")]
    pub account: Option<String>,
    /// Act in every account AMI_LIFECYCLE_ACCOUNTS selects, as the functions do (without
    /// it, or --account, amictl acts in this account only).
    #[arg(long, global = true)]
    pub all_accounts: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Image every instance opted in to a schedule (with a reboot unless opted out).
    CreateImages(commands::create_images::Args),
    /// Copy managed images to their destination regions (one image, or a full reconcile).
    Replicate(commands::replicate::Args),
    /// Apply retention: deprecate and deregister what the rules no longer keep.
    Cleanup(commands::cleanup::Args),
    /// Reconcile launch, snapshot and KMS grants with `ami-lifecycle:share-with` tags.
    Share(commands::share::Args),
    /// Lineages, their images per region, replicas and shares.
    Status(commands::status::Args),
    /// The estate as one self-contained HTML page: lineages, timelines, cost, the next
    /// cleanup and shares (`--html FILE`).
    Report(commands::report::Args),
    /// Seal the images of a release before the seal (`--adopt`, after `--adopt --dry-run`).
    Seal(commands::seal::Args),
    /// Bring back an image cleanup deprecated or disabled (EnableImage, keep=true).
    Restore(commands::restore::Args),
    /// Publish each lineage's latest image as /ami-lifecycle/<deployment>/<lineage>/latest.
    Publish(commands::publish::PublishArgs),
    /// Move a lineage's latest-image parameter (and tracked templates) back, and pin it.
    Rollback(commands::publish::RollbackArgs),
    /// Lift a rollback's pin: the lineage publishes its newest image again.
    Unpin(commands::publish::UnpinArgs),
    /// Move an instance to another zone or region through its image (plan; --yes applies).
    Migrate(commands::migrate::Args),
}

pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("amictl: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `--account` / `--all-accounts`: which accounts the command acts in. Without either,
/// this account only, whatever AMI_LIFECYCLE_ACCOUNTS says.
fn select_accounts(cli: &Cli, config: &mut Config) -> anyhow::Result<()> {
    use ami_core::accounts::AccountSelector;
    let through_runner = matches!(
        cli.command,
        Command::Replicate(_)
            | Command::Cleanup(_)
            | Command::Share(_)
            | Command::Publish(_)
            | Command::Status(_)
    );
    if let Some(a) = &cli.account {
        let id = ami_core::model::AccountId::parse(a)
            .with_context(|| format!("--account {a:?} is not a 12-digit account id"))?;
        config.accounts = vec![AccountSelector::Account(id)];
    } else if cli.all_accounts {
        anyhow::ensure!(
            !config.accounts.is_empty(),
            "--all-accounts: AMI_LIFECYCLE_ACCOUNTS is not set (account ids, ou:ou-… or org)"
        );
    } else {
        config.accounts.clear();
    }
    anyhow::ensure!(
        config.accounts.is_empty() || through_runner,
        "--account and --all-accounts work with status, replicate, cleanup, share and publish so far (create-images, seal, restore, rollback and unpin act in this account only)"
    );
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AMICTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::from_env().or_else(|e| match &cli.region {
        // A region on the command line stands in for a missing AWS_REGION.
        Some(r) if e.variable == "AMI_LIFECYCLE_REGIONS" => Config::from_lookup(|k| match k {
            "AWS_REGION" => Some(r.clone()),
            _ => std::env::var(k).ok(),
        }),
        _ => Err(e),
    })?;
    // publish, rollback and unpin name lineages from every managed region's instances: for
    // them --region says where to act, not which instances to read.
    let acts_where = matches!(
        cli.command,
        Command::Publish(_) | Command::Rollback(_) | Command::Unpin(_)
    );
    if let Some(r) = cli.region.as_ref().filter(|_| !acts_where) {
        anyhow::ensure!(
            ami_core::tags::is_region_name(r),
            "--region {r:?} is not a region name (e.g. us-east-1)"
        );
        config.regions = vec![Region::new(r.as_str())];
    }
    let dry_run = match &cli.command {
        Command::CreateImages(a) => a.dry_run,
        Command::Replicate(a) => a.dry_run,
        Command::Cleanup(a) => a.dry_run,
        Command::Share(a) => a.dry_run,
        Command::Seal(a) => a.dry_run,
        Command::Restore(a) => a.dry_run,
        Command::Publish(a) => a.dry_run,
        Command::Rollback(a) => !a.apply,
        Command::Unpin(a) => !a.apply,
        Command::Migrate(a) => !a.yes || a.dry_run,
        Command::Status(_) => false,
        // The report reads; its cleanup plan is a dry run whatever DRY_RUN says.
        Command::Report(_) => true,
    };
    config.dry_run |= dry_run;
    select_accounts(&cli, &mut config)?;
    let cloud = Arc::new(AwsCloud::from_env(&config).await);
    let mut ctx = Context::new(cloud.clone(), config);
    // Progress goes to a terminal; AMI_LIFECYCLE_PROGRESS=1 sends it to a pipe or a log
    // too (the benchmarks time a run's phases from it), also with --json (stdout).
    let forced = std::env::var("AMI_LIFECYCLE_PROGRESS").is_ok_and(|v| v == "1");
    if forced || (std::io::stderr().is_terminal() && !cli.json) {
        ctx = ctx.with_progress(Arc::new(|line: &str| eprintln!("… {line}")));
    }
    let out = Output { json: cli.json };
    let report = match &cli.command {
        Command::CreateImages(a) => commands::create_images::run(&ctx, a).await,
        Command::Replicate(a) => commands::replicate::run(&ctx, a).await,
        Command::Cleanup(a) => {
            return commands::cleanup::run(&ctx, a, &out)
                .await
                .context("cleanup")
        }
        Command::Share(a) => commands::share::run(&ctx, a).await,
        Command::Seal(a) => commands::seal::run(&ctx, a).await,
        Command::Restore(a) => commands::restore::run(&ctx, a).await,
        Command::Publish(a) => commands::publish::run_publish(&ctx, a).await,
        Command::Rollback(a) => {
            commands::publish::run_rollback(&ctx, a, cli.region.as_deref()).await
        }
        Command::Unpin(a) => commands::publish::run_unpin(&ctx, a, cli.region.as_deref()).await,
        Command::Status(a) => return commands::status::run(&ctx, a, &out).await.context("status"),
        Command::Report(a) => return commands::report::run(&ctx, a, &out).await.context("report"),
        Command::Migrate(a) => {
            return match commands::migrate::run(&ctx, cloud.as_ref(), a).await? {
                commands::migrate::Migrated::Planned(plan) => Ok(out.plan(&plan)),
                commands::migrate::Migrated::Applied(report) => Ok(out.report(&report)),
            }
        }
    }?;
    Ok(out.report(&report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_core::accounts::AccountSelector;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "AWS_REGION" => Some("us-east-1".to_owned()),
            "AMI_LIFECYCLE_ACCOUNTS" => Some("org".to_owned()),
            "SPOKE_EXTERNAL_ID" => Some("0123456789abcdef-id".to_owned()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn select(args: &[&str]) -> anyhow::Result<Config> {
        let cli = Cli::try_parse_from(args)?;
        let mut c = config();
        select_accounts(&cli, &mut c)?;
        Ok(c)
    }

    #[test]
    fn amictl_acts_in_its_own_account_unless_told_otherwise() -> anyhow::Result<()> {
        assert!(select(&["amictl", "cleanup", "--dry-run"])?
            .accounts
            .is_empty());
        assert_eq!(
            select(&["amictl", "--all-accounts", "cleanup"])?.accounts,
            [AccountSelector::Org]
        );
        let one = select(&["amictl", "status", "--account", "111122223333"])?;
        assert_eq!(one.accounts.len(), 1);
        assert!(select(&["amictl", "--account", "1111", "status"]).is_err());
        assert!(select(&[
            "amictl",
            "--account",
            "111122223333",
            "--all-accounts",
            "status"
        ])
        .is_err());
        let refused = select(&[
            "amictl",
            "--all-accounts",
            "restore",
            "--image",
            "ami-12345678",
        ]);
        assert!(refused.is_err_and(|e| e.to_string().contains("this account only")));
        Ok(())
    }
}
