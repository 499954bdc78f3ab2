//! One module per subcommand; each runs the same core runner as its Lambda function.
pub mod cleanup;
pub mod create_images;
pub mod migrate;
pub mod publish;
pub mod replicate;
pub mod report;
pub mod restore;
pub mod seal;
pub mod share;
pub mod status;

use ami_core::model::ImageId;

/// The `--image` flag of `replicate` and `share`: one check, [`ImageId::parse`], with the
/// flag named in the message.
pub(crate) fn image_flag(id: &str) -> anyhow::Result<ImageId> {
    ImageId::parse(id).map_err(|bad| {
        anyhow::anyhow!(
            "--image {:?} is not an image id (ami- followed by hex digits)",
            bad.value
        )
    })
}
