//! `ami-sim demo` end to end: the same scenario `make demo` plays, with its final state
//! checked here independently of the demo's own check.

use std::process::Command;

use ami_sim::Emulator;
use aws_sdk_ec2::types::Filter;

async fn managed_images(
    emu: &Emulator,
    region: &str,
) -> anyhow::Result<Vec<aws_sdk_ec2::types::Image>> {
    let out = emu
        .ec2(region)
        .describe_images()
        .owners("self")
        .filters(
            Filter::builder()
                .name("tag:ami-lifecycle:managed-by")
                .values("ami-lifecycle")
                .build(),
        )
        .send()
        .await?;
    Ok(out.images().to_vec())
}

#[tokio::test]
async fn the_demo_converges_to_the_expected_estate() -> anyhow::Result<()> {
    // GIVEN a fresh emulator
    let emu = Emulator::start()?;

    // WHEN the demo plays a week through the template's wiring
    let out = Command::new(env!("CARGO_BIN_EXE_ami-sim"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["demo", "--endpoint", &emu.endpoint])
        .env("AWS_MAX_ATTEMPTS", "2")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("demo: OK"), "{stdout}");
    assert!(
        stdout.contains("TIMELINE") && stdout.contains("FINAL STATE") && stdout.contains("TOTALS"),
        "{stdout}"
    );

    // THEN each region holds exactly what retention keeps: 3 per daily lineage per region
    // (web-1, db-1, db-2, batch-1 and the quiesced queue-1 at home; app-eu-1 in eu-west-1;
    // all six replicated), one more for web-1 at home (a launch template uses it), one
    // weekly image, and web-1's day-4 image in both regions: day 6 rolled its latest-image
    // parameter back to it, and cleanup keeps what is published and pinned. Day 3 moved
    // app-eu-1 to another zone: its migration image stays while the moved instance runs
    // from it, and the moved instance (which carries the schedule) has its own lineage of
    // 3 in eu-west-1 and in the replica region.
    let home = managed_images(&emu, "us-east-1").await?;
    let second = managed_images(&emu, "eu-west-1").await?;
    let replicas = managed_images(&emu, "us-west-2").await?;
    assert_eq!(home.len(), 3 * 5 + 1 + 1 + 1, "us-east-1");
    assert_eq!(second.len(), 3 + 1 + 3, "eu-west-1");
    assert_eq!(replicas.len(), 3 * 6 + 1 + 1 + 3, "us-west-2");
    assert!(
        stdout.contains("LATEST IMAGE") && stdout.contains("QUIESCED"),
        "the demo shows the published parameters and the quiesced image: {stdout}"
    );
    // Every replica was re-encrypted with the replica region's key.
    let key = |img: &aws_sdk_ec2::types::Image| {
        img.block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs())
            .all(|e| e.encrypted() == Some(true))
    };
    assert!(replicas.iter().all(key), "replicas are encrypted");
    // The opted-out instance was never rebooted; the others were, once per image.
    let reboots = emu.reboots()?;
    let total: usize = reboots
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_array()).map(Vec::len).sum())
        .unwrap_or(0);
    assert_eq!(
        total,
        4 * 7 + 1 + 1 + 5,
        "web-1, db-1, db-2, app-eu-1 daily for 7 days, files-1 weekly once; queue-1 (quiesced) never; \
         app-eu-1 once more for its migration image on day 3, and the moved instance on days 3-7 \
         (day 3: the evening reconcile catches up the slot whose event was lost, for every \
         scheduled instance)"
    );
    Ok(())
}
