//! `amictl status`: lineages (instance × schedule), their images per region, replicas, shares.

use std::collections::BTreeMap;
use std::process::ExitCode;

use ami_core::context::Context;
use ami_core::model::{Image, ImageState};
use ami_core::ports::{for_each_image, ImageQuery};
use ami_core::report::render_rows;
use ami_core::tags::key;
use serde::Serialize;

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// One lineage in one region.
#[derive(Debug, Default, Serialize)]
struct LineageStatus {
    region: String,
    instance: String,
    schedule: String,
    images: usize,
    available: usize,
    pending: usize,
    replicas: usize,
    shared: usize,
    newest_slot: Option<String>,
    newest_image: Option<String>,
}

#[derive(Debug, Serialize)]
struct Status {
    deployment: String,
    regions: Vec<String>,
    lineages: Vec<LineageStatus>,
    managed_images: usize,
}

fn lineage_key(img: &Image) -> (String, String) {
    (
        img.tag(key::SOURCE_INSTANCE).unwrap_or("-").to_owned(),
        img.tag(key::SCHEDULE).unwrap_or("-").to_owned(),
    )
}

pub async fn run(ctx: &Context, _args: &Args, out: &Output) -> anyhow::Result<ExitCode> {
    let config = &ctx.config;
    let mut lineages: BTreeMap<(String, String, String), LineageStatus> = BTreeMap::new();
    let mut managed = 0;
    let regions = config.all_regions();
    for region in &regions {
        ctx.progress(&format!("reading images in {region}"));
        let ec2 = ctx.cloud.ec2(region);
        let query = ImageQuery {
            owned_by_self: true,
            tag: Some((key::MANAGED_BY.to_owned(), config.deployment.clone())),
            include_disabled: true,
            ..ImageQuery::default()
        };
        for_each_image(ec2.as_ref(), &query, |img| {
            managed += 1;
            let (instance, schedule) = lineage_key(&img);
            let entry = lineages
                .entry((region.to_string(), instance.clone(), schedule.clone()))
                .or_insert_with(|| LineageStatus {
                    region: region.to_string(),
                    instance,
                    schedule,
                    ..LineageStatus::default()
                });
            entry.images += 1;
            match img.state {
                ImageState::Available => entry.available += 1,
                ImageState::Pending => entry.pending += 1,
                _ => {}
            }
            if img.tags.contains_key(key::SOURCE_IMAGE) {
                entry.replicas += 1;
            }
            if img
                .tags
                .get(key::SHARE_WITH)
                .is_some_and(|v| !v.trim().is_empty())
            {
                entry.shared += 1;
            }
            let slot = img.tag(key::SLOT).map(str::to_owned);
            if slot > entry.newest_slot {
                entry.newest_slot = slot;
                entry.newest_image = Some(img.id.to_string());
            }
        })
        .await?;
    }
    let status = Status {
        deployment: config.deployment.clone(),
        regions: regions.iter().map(ToString::to_string).collect(),
        lineages: lineages.into_values().collect(),
        managed_images: managed,
    };
    if out.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "deployment {} — regions {}",
        status.deployment,
        status.regions.join(", ")
    );
    if status.lineages.is_empty() {
        println!(
            "no managed images (nothing tagged {}={})",
            key::MANAGED_BY,
            status.deployment
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 8]> = status
        .lineages
        .iter()
        .map(|l| {
            [
                l.region.clone(),
                l.instance.clone(),
                l.schedule.clone(),
                format!("{} ({} pending)", l.available, l.pending),
                l.replicas.to_string(),
                l.shared.to_string(),
                l.newest_slot.clone().unwrap_or_default(),
                l.newest_image.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        render_rows(
            &[
                "REGION",
                "INSTANCE",
                "SCHEDULE",
                "AVAILABLE",
                "REPLICAS",
                "SHARED",
                "NEWEST SLOT",
                "NEWEST IMAGE"
            ],
            &rows
        )
    );
    println!(
        "{} managed images in {} lineages",
        status.managed_images,
        status.lineages.len()
    );
    Ok(ExitCode::SUCCESS)
}
