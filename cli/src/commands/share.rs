//! `amictl share`: reconcile launch, create-volume and KMS grants with the
//! `ami-lifecycle:share-with` tags — every managed image, or one with `--image` (searched in
//! every region, or in the global `--region`). Same code path as the Lambda function:
//! build the request, run, finish the report.

use ami_core::context::Context;
use ami_core::report::RunReport;
use ami_core::runner::{run_request, Share};
use ami_core::share::ShareRequest;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reconcile this image only (ami-…), with its source and replicas; the global
    /// --region says where it is.
    #[arg(long, value_name = "AMI_ID")]
    pub image: Option<String>,
    /// Plan and print, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The request `args` stand for (the global `--region` has already narrowed the config).
pub fn request(ctx: &Context, args: &Args) -> anyhow::Result<ShareRequest> {
    let Some(id) = &args.image else {
        return Ok(ShareRequest::Reconcile);
    };
    let image = super::image_flag(id)?;
    // With several managed regions and no --region, the runner searches them all.
    let region = match ctx.config.regions.as_slice() {
        [only] if ctx.config.replica_regions.is_empty() => Some(only.clone()),
        _ => None,
    };
    Ok(ShareRequest::Image { image, region })
}

pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<RunReport> {
    let request = request(ctx, args)?;
    Ok(run_request::<Share>(ctx, request, time::OffsetDateTime::now_utc()).await)
}
