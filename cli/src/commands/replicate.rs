//! `amictl replicate`: a full reconcile (every managed image missing a replica, adoption),
//! or one image with `--image` (searched in every managed region, or in `--region`).
//! Same code path as the Lambda function: build the request, run, finish the report.

use ami_core::config::Config;
use ami_core::context::Context;
use ami_core::replicate::Request;
use ami_core::report::RunReport;
use ami_core::runner::{run_request, Replicate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Replicate this image only (ami-…); the global --region says where it is.
    #[arg(long, value_name = "AMI_ID")]
    pub image: Option<String>,
    /// Plan and print, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The request `args` stand for (the global `--region` has already narrowed the config).
pub fn request(config: &Config, args: &Args) -> anyhow::Result<Request> {
    let Some(id) = &args.image else {
        return Ok(Request::Reconcile);
    };
    let image = super::image_flag(id)?;
    // With several managed regions and no --region, the runner searches them all.
    let region = match config.regions.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    };
    Ok(Request::Image {
        image,
        region,
        from_event: false,
    })
}

pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<RunReport> {
    let request = request(&ctx.config, args)?;
    Ok(run_request::<Replicate>(ctx, request, time::OffsetDateTime::now_utc()).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_core::model::{ImageId, Region};

    fn args(image: Option<&str>) -> Args {
        Args {
            image: image.map(str::to_owned),
            dry_run: false,
        }
    }

    #[test]
    fn no_image_is_a_reconcile_and_an_image_is_looked_up_in_the_region() -> anyhow::Result<()> {
        let one = Config::for_region("eu-west-1");
        assert_eq!(request(&one, &args(None))?, Request::Reconcile);
        assert_eq!(
            request(&one, &args(Some("ami-0abc")))?,
            Request::Image {
                image: ImageId::new("ami-0abc"),
                region: Some(Region::new("eu-west-1")),
                from_event: false
            }
        );
        let mut two = one.clone();
        two.regions.push(Region::new("us-east-1"));
        assert!(matches!(
            request(&two, &args(Some("ami-0abc")))?,
            Request::Image { region: None, .. }
        ));
        Ok(())
    }

    #[test]
    fn a_bad_image_id_says_what_is_expected() {
        let e = request(&Config::for_region("eu-west-1"), &args(Some("i-0abc")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("--image \"i-0abc\" is not an image id"), "{e}");
    }
}
