//! `amictl status` against the emulator, as an operator runs it.

use std::process::Command;

use integration_tests::Emulator;

fn amictl(emu: &Emulator, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_amictl"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &emu.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_MAX_ATTEMPTS", "2")
        .env_remove("AWS_REGION")
        .env_remove("AMI_LIFECYCLE_REGIONS")
        .output()?)
}

#[test]
fn status_prints_an_empty_inventory() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let out = amictl(&emu, &["--region", "us-east-1", "status"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("regions us-east-1"), "{stdout}");
    assert!(stdout.contains("no managed images"), "{stdout}");

    let out = amictl(&emu, &["--region", "us-east-1", "--json", "status"])?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(json["managed_images"], 0);
    assert_eq!(json["lineages"], serde_json::json!([]));
    Ok(())
}

#[test]
fn a_bad_setting_stops_with_the_variable_value_and_fix() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let out = Command::new(env!("CARGO_BIN_EXE_amictl"))
        .args(["--region", "us-east-1", "status"])
        .env("AWS_ENDPOINT_URL", &emu.endpoint)
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
