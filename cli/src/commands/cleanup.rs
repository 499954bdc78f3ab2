//! `amictl cleanup`: apply retention now, or with `--dry-run` print the plan — per image,
//! keep or delete and why (which rule, which reference). Same runner as the Lambda function.

use ami_core::cleanup::CleanupRequest;
use ami_core::context::Context;
use ami_core::model::Region;
use ami_core::report::{Outcome, RunReport};
use ami_core::runner::{run_request, Cleanup};
use time::OffsetDateTime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan and print, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Clean only these regions (comma-separated; default: every managed and replica region).
    #[arg(long = "only", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Print only the images that change (or would), hiding the ones kept by retention.
    #[arg(long)]
    pub changes_only: bool,
}

pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<RunReport> {
    let known = ctx.config.all_regions();
    let mut request = CleanupRequest::default();
    for name in &args.only {
        let region = Region::new(name.trim());
        anyhow::ensure!(
            known.contains(&region),
            "--only {name:?}: not a region this deployment manages ({})",
            known
                .iter()
                .map(Region::as_str)
                .collect::<Vec<_>>()
                .join(",")
        );
        request.regions.push(region);
    }
    let mut report = run_request::<Cleanup>(ctx, request, OffsetDateTime::now_utc()).await;
    if args.changes_only {
        report
            .items
            .retain(|i| i.outcome != Outcome::Kept || i.reason.contains("orphan"));
    }
    Ok(report)
}
