//! The publish Lambda function: latest-image SSM parameters and the launch templates that
//! follow them (see `ami_core::publish`). Start-up and the event → request → report path
//! are `lambda_shell::serve`'s; the decisions are the core's.

fn main() -> Result<(), lambda_shell::Error> {
    lambda_shell::serve::<ami_core::runner::Publish>()
}
