//! `amictl restore --image ami-…`: undo cleanup's staged retirement of one image before it
//! is deregistered.
//!
//! A disabled image (`DISABLE_GRACE`) is re-enabled (`EnableImage`), a deprecation is
//! cancelled (`DisableImageDeprecation`), and the image is tagged `ami-lifecycle:keep=true`
//! so the next cleanup run does not retire it again (removing the tag hands it back to
//! retention). Only a sealed image of this deployment is touched. DisableImage removed its
//! launch permissions and EnableImage does not bring them back: the share reconcile grants
//! again what its `ami-lifecycle:share-with` tag asks (the report says so).
//!
//! [`steps`] is the pure decision; [`restore`] reads, checks and applies it. Runs as the
//! operator (the cleanup role may disable, never enable).

use time::OffsetDateTime;

use super::FUNCTION;
use crate::context::Context;
use crate::error::CloudError;
use crate::model::{Image, ImageId, ImageState, Region, Tags};
use crate::ports::{Ec2, ImageQuery};
use crate::report::{Outcome, RunReport};
use crate::seal;
use crate::tags::{self, key};

/// What restoring one image takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// `EnableImage` (it is disabled).
    pub enable: bool,
    /// `DisableImageDeprecation` (it has a deprecation time).
    pub cancel_deprecation: bool,
    /// Tag `ami-lifecycle:keep=true` (not tagged yet).
    pub keep: bool,
}

impl Steps {
    /// Whether there is anything to undo: a retirement stage (disabled or deprecated).
    pub fn retired(&self) -> bool {
        self.enable || self.cancel_deprecation
    }
}

/// Why an image cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRestorable {
    NotManaged,
    State(ImageState),
}

/// The steps that restore `image` (pure). Only images tagged `managed-by=deployment` in
/// state `available` or `disabled` can be restored; the seal is checked by the caller.
pub fn steps(image: &Image, deployment: &str) -> Result<Steps, NotRestorable> {
    if !tags::is_managed_by(&image.tags, deployment) {
        return Err(NotRestorable::NotManaged);
    }
    if !matches!(image.state, ImageState::Available | ImageState::Disabled) {
        return Err(NotRestorable::State(image.state));
    }
    Ok(Steps {
        enable: image.state == ImageState::Disabled,
        cancel_deprecation: image.deprecation_time.is_some(),
        keep: !tags::is_kept(&image.tags),
    })
}

/// Finds `image` among `regions` (own images, disabled ones included), restores it and
/// reports what was done. `Err` when it is in none of them.
pub async fn restore(
    ctx: &Context,
    image: &ImageId,
    regions: &[Region],
    now: OffsetDateTime,
) -> Result<RunReport, String> {
    let mut report = RunReport::new(FUNCTION, ctx.dry_run(), now);
    let mut found = None;
    for region in regions {
        let ec2 = ctx.cloud.ec2(region);
        match find(ec2.as_ref(), image).await {
            Ok(Some(img)) => {
                found = Some((ec2, img));
                break;
            }
            Ok(None) => {}
            Err(e) => report.push(
                region,
                image.as_str(),
                None,
                Outcome::for_error(&e),
                format!("could not look for it in {region} ({e})"),
            ),
        }
    }
    let Some((ec2, img)) = found else {
        if report.items.is_empty() {
            let names: Vec<&str> = regions.iter().map(Region::as_str).collect();
            return Err(format!(
                "image {image} is not an image of this account in {} (a deregistered image cannot be restored); pass --region if it is in another region this deployment manages",
                names.join(", ")
            ));
        }
        return Ok(report);
    };
    let deployment = &ctx.config.deployment;
    let sealed = seal::sealed_one(&ctx.sealer, img.clone(), deployment, Some(&mut report)).await;
    match steps(&img, deployment) {
        Err(NotRestorable::NotManaged) => {
            report.push(
                &img.region,
                image.as_str(),
                None,
                Outcome::Refused,
                format!(
                    "not tagged {}={deployment}: not this deployment's to restore (EnableImage / DisableImageDeprecation it by hand if it is yours)",
                    key::MANAGED_BY
                ),
            );
        }
        Err(NotRestorable::State(state)) => report.push(
            &img.region,
            image.as_str(),
            None,
            Outcome::Refused,
            format!(
                "state {}: only an available (deprecated) or disabled image can be restored",
                state.as_str()
            ),
        ),
        // Unsealed or not checkable: sealed_only has reported it.
        Ok(_) if sealed.is_none() => {}
        Ok(steps) => apply(ctx, ec2.as_ref(), &img, steps, &mut report).await,
    }
    Ok(report)
}

async fn find(ec2: &dyn Ec2, image: &ImageId) -> Result<Option<Image>, CloudError> {
    let query = ImageQuery {
        owned_by_self: true,
        ids: vec![image.clone()],
        include_disabled: true,
        ..ImageQuery::default()
    };
    match ec2.images_page(&query, None).await {
        Ok(page) => Ok(page
            .items
            .into_iter()
            .find(|i| &i.id == image && i.state != ImageState::Deregistered)),
        Err(e) if e.kind == crate::error::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn apply(ctx: &Context, ec2: &dyn Ec2, img: &Image, steps: Steps, report: &mut RunReport) {
    let id = &img.id;
    let region = &img.region;
    if !steps.retired() {
        let kept = if steps.keep {
            String::new()
        } else {
            format!(" (tagged {}=true)", key::KEEP)
        };
        report.push(
            region,
            id.as_str(),
            None,
            Outcome::Unchanged,
            format!("neither disabled nor deprecated: nothing to restore{kept}"),
        );
        return;
    }
    let mut done = Vec::new();
    if steps.enable {
        done.push("re-enabled (EnableImage)");
    }
    if steps.cancel_deprecation {
        done.push("deprecation cancelled (DisableImageDeprecation)");
    }
    let keep_note = format!(
        "tagged {}=true so cleanup keeps it (remove the tag to hand it back to retention)",
        key::KEEP
    );
    if steps.keep {
        done.push(&keep_note);
    }
    let share_note = if steps.enable {
        format!(
            "; disabling removed its launch permissions: the share reconcile grants again what its {} tag asks (next scheduled run, or `amictl share --image {id}` now)",
            key::SHARE_WITH
        )
    } else {
        String::new()
    };
    if ctx.dry_run() {
        report.push(
            region,
            id.as_str(),
            None,
            Outcome::Planned,
            format!("would restore: {}{share_note}", done.join(", ")),
        );
        return;
    }
    // Keep first: if a later step fails, cleanup still leaves the image alone.
    if steps.keep {
        let tag: Tags = [(key::KEEP.to_owned(), "true".to_owned())]
            .into_iter()
            .collect();
        if let Err(e) = ec2.set_tags(id.as_str(), &tag).await {
            return fail(report, img, "tag it keep=true", &e);
        }
    }
    if steps.enable {
        if let Err(e) = ec2.enable(id).await {
            return fail(report, img, "re-enable it (EnableImage)", &e);
        }
    }
    if steps.cancel_deprecation {
        if let Err(e) = ec2.cancel_deprecation(id).await {
            return fail(
                report,
                img,
                "cancel its deprecation (DisableImageDeprecation)",
                &e,
            );
        }
    }
    report.push(
        region,
        id.as_str(),
        None,
        Outcome::Restored,
        format!("{}{share_note}", done.join(", ")),
    );
}

fn fail(report: &mut RunReport, img: &Image, what: &str, e: &CloudError) {
    report.push(
        &img.region,
        img.id.as_str(),
        None,
        Outcome::for_error(e),
        format!("could not {what} ({e}); run amictl restore again (each step is idempotent)"),
    );
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
