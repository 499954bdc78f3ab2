//! [`read`]: what the estate report shows, read through the ports. Nothing is changed:
//! images are listed (`DescribeImages`), launch permissions read, and cleanup runs as a
//! dry run (its report is neither logged nor published: the caller renders it).

use time::OffsetDateTime;

use super::{build, Estate, Inputs};
use crate::cleanup::{self, CleanupRequest};
use crate::context::Context;
use crate::error::CloudResult;
use crate::lineage;
use crate::model::ImageState;
use crate::ports::{for_each_image, ImageQuery};

/// Reads every region of `ctx` (its `all_regions`) and builds the [`Estate`] at `now`.
/// A listing that fails is an error (the picture would be wrong); a launch permission that
/// cannot be read is a note, and the image shows no shares.
pub async fn read(ctx: &Context, now: OffsetDateTime) -> CloudResult<Estate> {
    let config = &ctx.config;
    let regions = config.all_regions();
    let mut images = Vec::new();
    let mut notes = vec![
        "Deleted images are no longer in EC2: this page shows the images the inventory holds \
         now (their state, deprecation and why each is kept) and what the next cleanup will \
         delete; past deletions are in the cleanup run reports."
            .to_owned(),
    ];
    for region in &regions {
        ctx.progress(&format!("reading images in {region}"));
        let ec2 = ctx.cloud.ec2(region);
        let mut found = Vec::new();
        let query = ImageQuery::managed_by(&config.deployment);
        for_each_image(ec2.as_ref(), &query, |img| {
            if lineage::is_member(&img, &config.deployment) {
                found.push(img);
            }
        })
        .await?;
        for img in found {
            // Pending and failed images have no launch permissions worth asking for.
            let grantees = if matches!(img.state, ImageState::Available | ImageState::Disabled) {
                match ec2.launch_permissions(&img.id).await {
                    Ok(g) => g,
                    Err(e) => {
                        notes.push(format!(
                            "launch permissions of {} in {region} could not be read: {e}",
                            img.id
                        ));
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            images.push((img, grantees));
        }
    }
    ctx.progress("planning the next cleanup (dry run)");
    let plan = cleanup::run(
        ctx,
        CleanupRequest {
            regions: regions.clone(),
            dry_run: true,
        },
        now,
    )
    .await;
    if let Some(why) = &plan.incomplete {
        notes.push(format!("the cleanup dry run stopped early: {why}"));
    }
    Ok(build(Inputs {
        config,
        regions: regions.iter().map(ToString::to_string).collect(),
        images,
        plan: &plan,
        notes,
        now,
    }))
}
