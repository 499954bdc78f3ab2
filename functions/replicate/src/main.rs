//! The replicate Lambda function: cross-region copies of managed AMIs (see `ami_core::replicate`). Start-up and the event → request →
//! report path are `lambda_shell::serve`'s; the decisions are the core's.

fn main() -> Result<(), lambda_shell::Error> {
    lambda_shell::serve::<ami_core::runner::Replicate>()
}
