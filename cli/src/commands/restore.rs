//! `amictl restore --image ami-… [--region R] [--dry-run]`: bring back an image cleanup
//! deprecated or disabled (staged retirement, `DISABLE_GRACE`) before it is deregistered:
//! EnableImage, DisableImageDeprecation, and `ami-lifecycle:keep=true` so the next cleanup
//! keeps it. Only this deployment's sealed images. Run it as the operator (the cleanup role
//! may disable, never enable). The decision is the core's: [`ami_core::cleanup::restore`].

use ami_core::context::Context;
use ami_core::report::RunReport;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image to restore (ami-…); the global --region says where it is (else every
    /// region the deployment manages is searched).
    #[arg(long, value_name = "AMI_ID")]
    pub image: String,
    /// Say what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<RunReport> {
    let image = super::image_flag(&args.image)?;
    let regions = ctx.config.all_regions();
    let report =
        ami_core::cleanup::restore::restore(ctx, &image, &regions, time::OffsetDateTime::now_utc())
            .await
            .map_err(anyhow::Error::msg)?;
    Ok(ctx.finish(report).await)
}
