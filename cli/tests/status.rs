//! `amictl` as an operator runs it, without an emulator: a bad setting stops it before any
//! AWS call. (`amictl status` against the emulator is tested by the simulator crate,
//! sim/tests/amictl_status.rs: amictl does not depend on the emulator harness.)

use std::process::Command;

#[test]
fn a_bad_setting_stops_with_the_variable_value_and_fix() -> anyhow::Result<()> {
    // A loopback endpoint nothing listens on: if a call were made, it could reach no account.
    let out = Command::new(env!("CARGO_BIN_EXE_amictl"))
        .args(["--region", "us-east-1", "status"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RETAIN", "forever")
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RETAIN=\"forever\"") && stderr.contains("Accepted:"),
        "{stderr}"
    );
    Ok(())
}
