//! `amictl seal --adopt [--dry-run]`: seal the images of a release before the seal, after
//! review. The dry run lists what would be sealed and what is refused (a lineage EC2
//! contradicts); run it again without `--dry-run`, as a role the seal key admits (the
//! stack's `OperatorRoleArn`). The decision is the core's: [`ami_core::seal::adopt`].

use ami_core::context::Context;
use ami_core::report::RunReport;
use ami_core::seal::adopt;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seal the managed images that carry no valid seal and whose lineage EC2 confirms.
    #[arg(long)]
    pub adopt: bool,
    /// List what would be sealed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<RunReport> {
    anyhow::ensure!(
        args.adopt,
        "nothing to do: `amictl seal --adopt --dry-run` lists the images a release before the seal made, `amictl seal --adopt` seals them"
    );
    let report = adopt::adopt(ctx, time::OffsetDateTime::now_utc()).await;
    Ok(ctx.finish(report).await)
}
