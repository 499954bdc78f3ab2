//! `amictl cleanup`: apply retention now, or with `--dry-run` print the plan — per image,
//! keep or delete and why (which rule, which reference). Same runner as the Lambda function.
//!
//! With `--json` every item is written as the run decides it ([`crate::output::JsonStream`]):
//! the run holds only the first items of each outcome, however many images there are.

use ami_core::cleanup::CleanupRequest;
use ami_core::context::Context;
use ami_core::model::Region;
use std::process::ExitCode;
use std::sync::Arc;

use ami_core::report::{sink, Outcome, ReportItem};
use ami_core::runner::{run_request, Cleanup};
use time::OffsetDateTime;

use crate::output::Output;

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

/// Whether `--changes-only` prints `item`: retention's keeps are hidden, orphans are not.
fn is_change(item: &ReportItem) -> bool {
    item.outcome != Outcome::Kept || item.reason.contains("orphan")
}

fn any(_: &ReportItem) -> bool {
    true
}

pub async fn run(ctx: &Context, args: &Args, out: &Output) -> anyhow::Result<ExitCode> {
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
    let keep = if args.changes_only { is_change } else { any };
    let work = run_request::<Cleanup>(ctx, request, OffsetDateTime::now_utc());
    let Some(stream) = out.stream(keep) else {
        let mut report = work.await;
        report.items.retain(keep);
        return Ok(out.report(&report));
    };
    let report = sink::streaming(Arc::clone(&stream) as Arc<dyn sink::ReportSink>, work).await;
    Ok(stream.finish(&report))
}
