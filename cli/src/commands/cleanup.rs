//! `amictl cleanup` (being written by the cleanup owner).

use ami_core::context::Context;
use ami_core::report::RunReport;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan and print, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(_ctx: &Context, _args: &Args) -> anyhow::Result<RunReport> {
    anyhow::bail!("not built yet")
}
