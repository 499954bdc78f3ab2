//! The share Lambda function: share-on-tag with KMS and an allow-list (see `ami_core::share`). Start-up and the event → request →
//! report path are `lambda_shell::serve`'s; the decisions are the core's.

fn main() -> Result<(), lambda_shell::Error> {
    lambda_shell::serve::<ami_core::runner::Share>()
}
