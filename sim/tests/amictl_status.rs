//! `amictl status` against the emulator, as an operator runs it.
//!
//! amictl does not depend on the simulator, so this test runs the `amictl` binary the
//! workspace build made, next to this test in the target directory (`cargo test
//! --workspace`, as `make test` runs, builds it; alone: `cargo build -p amictl` first).
//! `AMICTL` names another binary.

use std::path::PathBuf;
use std::process::Command;

use ami_sim::Emulator;
use anyhow::Context as _;

fn amictl_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("AMICTL") {
        return Ok(PathBuf::from(path));
    }
    // target/<profile>/deps/amictl-<hash> → target/<profile>/amictl
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test binary is not in target/<profile>/deps")?;
    let path = profile_dir.join(format!("amictl{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo build -p amictl` first (cargo test --workspace builds it)",
        path.display()
    );
    Ok(path)
}

fn amictl(emu: &Emulator, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(amictl_binary()?)
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
