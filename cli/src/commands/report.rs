//! `amictl report --html FILE`: the picture of the estate as one self-contained HTML page
//! (inline CSS and SVG, no script): per region and lineage, the images, what the next
//! cleanup will retire, storage and monthly cost, and shares per account.
//!
//! Reading, building and rendering are the core's ([`ami_core::estate`]): what the next
//! cleanup does is cleanup's own dry run, never judged here. This module only writes the
//! file and prints its path.

use std::path::PathBuf;
use std::process::ExitCode;

use ami_core::context::Context;
use ami_core::estate;
use anyhow::Context as _;
use time::OffsetDateTime;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the HTML page here (overwritten if it exists).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
}

pub async fn run(ctx: &Context, args: &Args, out: &Output) -> anyhow::Result<ExitCode> {
    let estate = estate::read(ctx, OffsetDateTime::now_utc())
        .await
        .context("reading the estate")?;
    let page = estate::render_html(&estate);
    std::fs::write(&args.html, page)
        .with_context(|| format!("--html {}: cannot write the report", args.html.display()))?;
    if out.json {
        println!(
            "{}",
            serde_json::json!({ "report": args.html.display().to_string() })
        );
    } else {
        println!("report written to {}", args.html.display());
    }
    Ok(ExitCode::SUCCESS)
}
