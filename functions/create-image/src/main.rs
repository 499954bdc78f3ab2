//! The create-image Lambda function: scheduled, consistent AMIs (see `ami_core::create`). Start-up and the event → request →
//! report path are `lambda_shell::serve`'s; the decisions are the core's.

fn main() -> Result<(), lambda_shell::Error> {
    lambda_shell::serve::<ami_core::runner::CreateImage>()
}
