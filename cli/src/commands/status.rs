//! `amictl status`: each lineage's images per region, the rule that retains them, replicas
//! and shares.
//!
//! What a lineage is, which image is its newest and which rule applies are cleanup's own
//! decisions ([`ami_core::lineage`]): status prints them, so the row an operator reads is
//! the lineage cleanup counts (an adopted image is a row of its own, never one bucket).

use std::process::ExitCode;

use ami_core::config::Config;
use ami_core::context::Context;
use ami_core::lineage::{self, Lineages};
use ami_core::model::{Image, ImageState, Region};
use ami_core::ports::{for_each_image, ImageQuery};
use ami_core::report::render_rows;
use ami_core::tags::key;
use ami_core::time_util::rfc3339;
use serde::Serialize;
use time::OffsetDateTime;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// One lineage in one region.
#[derive(Debug, Default, PartialEq, Serialize)]
struct LineageStatus {
    region: String,
    /// `i-…/daily`, `adopted ACCOUNT/ami-…` or `untracked ami-…`.
    lineage: String,
    images: usize,
    available: usize,
    pending: usize,
    /// Images the rule no longer keeps: cleanup retires them unless a guard keeps them.
    past_retention: usize,
    replicas: usize,
    shared: usize,
    /// The rule that applies, and where it comes from (or why the lineage is kept whole).
    rule: String,
    /// The lineage's newest image (the one whose `retain` tag rules it) and its slot.
    newest_slot: Option<String>,
    newest_image: Option<String>,
}

#[derive(Debug, Serialize)]
struct Status {
    /// The account, when amictl reads several (`--account`, `--all-accounts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    deployment: String,
    regions: Vec<String>,
    lineages: Vec<LineageStatus>,
    managed_images: usize,
}

/// Per-lineage counts that are status's own (lineage membership and retention are not).
#[derive(Debug, Default)]
struct Tally {
    images: usize,
    available: usize,
    pending: usize,
    replicas: usize,
    shared: usize,
}

/// The images read so far, grouped as cleanup groups them.
#[derive(Debug, Default)]
struct Summary {
    lineages: Lineages,
    tallies: Vec<Tally>,
    managed: usize,
}

impl Summary {
    fn add(&mut self, img: &Image, deployment: &str) {
        let Some(at) = self.lineages.add(img, deployment) else {
            return;
        };
        self.managed += 1;
        if self.tallies.len() <= at {
            self.tallies.resize_with(at + 1, Tally::default);
        }
        let t = &mut self.tallies[at];
        t.images += 1;
        match img.state {
            ImageState::Available => t.available += 1,
            ImageState::Pending => t.pending += 1,
            _ => {}
        }
        // A replica comes from another region; an adopted copy is made in its own.
        if img
            .tag(key::SOURCE_REGION)
            .is_some_and(|r| r != img.region.as_str())
        {
            t.replicas += 1;
        }
        if img
            .tags
            .get(key::SHARE_WITH)
            .is_some_and(|v| !v.trim().is_empty())
        {
            t.shared += 1;
        }
    }

    fn into_status(self, config: &Config, regions: Vec<String>, now: OffsetDateTime) -> Status {
        let mut rows: Vec<LineageStatus> = self
            .lineages
            .groups()
            .iter()
            .zip(&self.tallies)
            .map(|(g, t)| {
                let standings = g.judge(config, now);
                let rule = match lineage::applied_rule(&g.head, config) {
                    Ok(rule) => rule.to_string(),
                    Err(bad) => format!("kept whole: {}", bad.error),
                };
                LineageStatus {
                    region: g.region.to_string(),
                    lineage: g.lineage.to_string(),
                    images: t.images,
                    available: t.available,
                    pending: t.pending,
                    past_retention: standings.iter().filter(|s| s.is_past()).count(),
                    replicas: t.replicas,
                    shared: t.shared,
                    rule,
                    newest_slot: g.head.image().map(|(_, at)| rfc3339(lineage::to_time(at))),
                    newest_image: g.head.image().map(|(id, _)| id.to_string()),
                }
            })
            .collect();
        rows.sort_by(|a, b| (&a.region, &a.lineage).cmp(&(&b.region, &b.lineage)));
        Status {
            account: None,
            deployment: config.deployment.clone(),
            regions,
            lineages: rows,
            managed_images: self.managed,
        }
    }
}

pub async fn run(ctx: &Context, _args: &Args, out: &Output) -> anyhow::Result<ExitCode> {
    if !ctx.config.accounts.is_empty() {
        return run_in_accounts(ctx, out).await;
    }
    let status = read(ctx).await?;
    if out.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render(&status));
    Ok(ExitCode::SUCCESS)
}

/// `--account` / `--all-accounts`: one status per account (read through the account's
/// cleanup spoke role, which may describe images), then the accounts that could not be
/// read; JSON: one array. Exit code 1 when an account could not be read.
async fn run_in_accounts(ctx: &Context, out: &Output) -> anyhow::Result<ExitCode> {
    use ami_core::runner::accounts::{open_accounts, Scope};
    let now = OffsetDateTime::now_utc();
    let opened = open_accounts(ctx, ami_core::cleanup::FUNCTION, now, Scope::Selected).await;
    let mut all = Vec::new();
    let mut problems = opened.report;
    for (account, actx) in &opened.contexts {
        match read(actx).await {
            Ok(mut status) => {
                status.account = Some(account.to_string());
                all.push(status);
            }
            Err(e) => {
                problems.push(
                    &Region::new(
                        ctx.config
                            .regions
                            .first()
                            .map_or("us-east-1", Region::as_str),
                    ),
                    account.as_str(),
                    None,
                    ami_core::report::Outcome::Failed,
                    format!("{e:#}"),
                );
                if let Some(i) = problems.items.last_mut() {
                    i.account = Some(account.clone());
                }
            }
        }
    }
    if out.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for status in &all {
            println!("account {}", status.account.as_deref().unwrap_or_default());
            print!("{}", render(status));
            println!();
        }
        if !problems.items.is_empty() {
            print!("{}", problems.render_table());
        }
    }
    Ok(if problems.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads this context's managed images in every region and summarises them.
async fn read(ctx: &Context) -> anyhow::Result<Status> {
    let config = &ctx.config;
    let mut summary = Summary::default();
    let regions = config.all_regions();
    for region in &regions {
        ctx.progress(&format!("reading images in {region}"));
        let ec2 = ctx.cloud.ec2(region);
        let query = ImageQuery::managed_by(&config.deployment);
        for_each_image(ec2.as_ref(), &query, |img| {
            summary.add(&img, &config.deployment);
        })
        .await?;
    }
    Ok(summary.into_status(
        config,
        regions.iter().map(ToString::to_string).collect(),
        OffsetDateTime::now_utc(),
    ))
}

fn render(status: &Status) -> String {
    let mut text = format!(
        "deployment {} — regions {}\n",
        status.deployment,
        status.regions.join(", ")
    );
    if status.lineages.is_empty() {
        text.push_str(&format!(
            "no managed images (nothing tagged {}={})\n",
            key::MANAGED_BY,
            status.deployment
        ));
        return text;
    }
    let rows: Vec<[String; 8]> = status
        .lineages
        .iter()
        .map(|l| {
            [
                l.region.clone(),
                l.lineage.clone(),
                format!("{} ({} pending)", l.available, l.pending),
                l.past_retention.to_string(),
                format!("{}/{}", l.replicas, l.shared),
                l.rule.clone(),
                l.newest_slot.clone().unwrap_or_default(),
                l.newest_image.clone().unwrap_or_default(),
            ]
        })
        .collect();
    text.push_str(&render_rows(
        &[
            "REGION",
            "LINEAGE",
            "AVAILABLE",
            "PAST RETENTION",
            "REPLICAS/SHARED",
            "RULE",
            "NEWEST SLOT",
            "NEWEST IMAGE",
        ],
        &rows,
    ));
    text.push_str(&format!(
        "{} managed images in {} lineages\n",
        status.managed_images,
        status.lineages.len()
    ));
    text
}

#[cfg(test)]
mod tests;
