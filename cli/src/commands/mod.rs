//! One module per subcommand; each runs the same core runner as its Lambda function.
pub mod cleanup;
pub mod create_images;
pub mod replicate;
pub mod share;
pub mod status;
