//! `amictl status` and `amictl seal --adopt` against the emulator, as an operator runs them.
//!
//! amictl does not depend on the simulator, so this test runs the `amictl` binary the
//! workspace build made, next to this test in the target directory (`cargo test
//! --workspace`, as `make test` runs, builds it; alone: `cargo build -p amictl` first).
//! `AMICTL` names another binary.

use std::process::Command;

use ami_sim::Emulator;
use anyhow::Context as _;

fn amictl(emu: &Emulator, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(ami_sim::amictl_binary()?)
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

/// `amictl seal --adopt`: the migration from a release before the seal. The dry run lists
/// what it would seal (and refuses a lineage EC2 contradicts); the real run seals with the
/// emulator's KMS (`GenerateMac`), and the seal verifies (`VerifyMac`).
#[tokio::test]
async fn seal_adopt_lists_then_seals_what_an_earlier_release_made() -> anyhow::Result<()> {
    use ami_core::tags::key;
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

    let emu = Emulator::start()?;
    let web = emu
        .launch_instance("us-east-1", &[("Name", "web")], &[])
        .await?;
    // An image of the previous release: managed-by and lineage, no seal.
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let lineage = |instance: &str| {
        TagSpecification::builder()
            .resource_type(ResourceType::Image)
            .tags(tag(key::MANAGED_BY, "ami-lifecycle"))
            .tags(tag(key::SOURCE_INSTANCE, instance))
            .tags(tag(key::SCHEDULE, "daily"))
            .tags(tag(key::SLOT, "2026-11-20T03:00:00Z"))
            .build()
    };
    let mut made = Vec::new();
    for (name, claimed) in [
        ("old-release", web.as_str()),
        ("forged", "i-0000000000000000f"),
    ] {
        let out = emu
            .ec2("us-east-1")
            .create_image()
            .instance_id(&web)
            .name(name)
            .no_reboot(true)
            .tag_specifications(lineage(claimed))
            .send()
            .await?;
        made.push(out.image_id().context("no image id")?.to_owned());
    }
    emu.tick()?;
    let seal_key = emu.seal_key("us-east-1", "ami-lifecycle")?;
    let run = |args: &[&str]| -> anyhow::Result<serde_json::Value> {
        let out = Command::new(ami_sim::amictl_binary()?)
            .args(args)
            .env("AWS_ENDPOINT_URL", &emu.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_MAX_ATTEMPTS", "2")
            .env("SEAL_KEY", &seal_key)
            .env_remove("AWS_REGION")
            .env_remove("AMI_LIFECYCLE_REGIONS")
            .output()?;
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "amictl {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let outcome = |report: &serde_json::Value, image: &str| -> Option<String> {
        report["items"]
            .as_array()?
            .iter()
            .find(|i| i["image"] == image)
            .and_then(|i| i["outcome"].as_str().map(str::to_owned))
    };
    let args = ["--region", "us-east-1", "--json", "seal", "--adopt"];

    let dry = run(&[&args[..], &["--dry-run"]].concat())?;
    assert_eq!(outcome(&dry, &made[0]).as_deref(), Some("planned"), "{dry}");
    assert_eq!(outcome(&dry, &made[1]).as_deref(), Some("refused"), "{dry}");

    let real = run(&args)?;
    assert_eq!(
        outcome(&real, &made[0]).as_deref(),
        Some("sealed"),
        "{real}"
    );
    assert_eq!(
        outcome(&real, &made[1]).as_deref(),
        Some("refused"),
        "{real}"
    );
    // Sealed now: a second adoption finds nothing to do, and the functions trust it.
    let again = run(&args)?;
    assert_eq!(outcome(&again, &made[0]), None, "{again}");
    assert_eq!(again["metrics"]["already_sealed"], 1.0, "{again}");
    Ok(())
}

/// `amictl restore --image`: an image cleanup disabled (and deprecated) is re-enabled, its
/// deprecation cancelled and tagged keep=true; the output names the share reconcile. A dry
/// run changes nothing; an image of no deployment is refused; an unknown id is an error
/// naming it.
#[tokio::test]
async fn restore_re_enables_a_disabled_image_of_this_deployment() -> anyhow::Result<()> {
    use ami_core::tags::key;
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};

    let emu = Emulator::start()?;
    let web = emu
        .launch_instance("us-east-1", &[("Name", "web")], &[])
        .await?;
    let ec2 = emu.ec2("us-east-1");
    let name = "ami-lifecycle/web/daily/20261120T0300Z";
    let lineage = [
        (key::MANAGED_BY.to_owned(), "ami-lifecycle".to_owned()),
        (key::SOURCE_INSTANCE.to_owned(), web.clone()),
        (key::SCHEDULE.to_owned(), "daily".to_owned()),
        (key::SLOT.to_owned(), "2026-11-20T03:00:00Z".to_owned()),
    ];
    let sealed = emu
        .sealed_tags("us-east-1", "ami-lifecycle", "us-east-1", name, &lineage)
        .await?;
    let ours = ec2
        .create_image()
        .instance_id(&web)
        .name(name)
        .no_reboot(true)
        .set_tag_specifications(Some(ami_sim::EmulatorClient::tag_specifications(&sealed)))
        .send()
        .await?
        .image_id()
        .context("no image id")?
        .to_owned();
    let theirs = ec2
        .create_image()
        .instance_id(&web)
        .name("hand-made")
        .no_reboot(true)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .tags(Tag::builder().key("Name").value("hand-made").build())
                .build(),
        )
        .send()
        .await?
        .image_id()
        .context("no image id")?
        .to_owned();
    emu.tick()?;
    for id in [&ours, &theirs] {
        ec2.enable_image_deprecation()
            .image_id(id)
            .deprecate_at(aws_sdk_ec2::primitives::DateTime::from_secs(
                time::OffsetDateTime::now_utc().unix_timestamp() + 60,
            ))
            .send()
            .await?;
        ec2.disable_image().image_id(id).send().await?;
    }
    let seal_key = emu.seal_key("us-east-1", "ami-lifecycle")?;
    let run = |args: &[&str]| -> anyhow::Result<(bool, serde_json::Value, String)> {
        let out = Command::new(ami_sim::amictl_binary()?)
            .args(args)
            .env("AWS_ENDPOINT_URL", &emu.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_MAX_ATTEMPTS", "2")
            .env("SEAL_KEY", &seal_key)
            .env_remove("AWS_REGION")
            .env_remove("AMI_LIFECYCLE_REGIONS")
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        Ok((out.status.success(), json, stderr))
    };
    let item = |report: &serde_json::Value, id: &str| -> (String, String) {
        report["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["subject"] == id))
            .map(|i| {
                (
                    i["outcome"].as_str().unwrap_or_default().to_owned(),
                    i["reason"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .unwrap_or_default()
    };
    let described = |id: &str| {
        let ec2 = ec2.clone();
        let id = id.to_owned();
        async move {
            let out = ec2
                .describe_images()
                .image_ids(id)
                .include_disabled(true)
                .send()
                .await?;
            let img = out.images().first().cloned().context("described")?;
            anyhow::Ok(img)
        }
    };
    let args = ["--region", "us-east-1", "--json", "restore", "--image"];

    let (_, dry, stderr) = run(&[&args[..], &[ours.as_str(), "--dry-run"]].concat())?;
    assert_eq!(item(&dry, &ours).0, "planned", "{dry} {stderr}");
    assert_eq!(
        described(&ours)
            .await?
            .state()
            .map(|s| s.as_str().to_owned()),
        Some("disabled".to_owned())
    );

    let (ok, real, stderr) = run(&[&args[..], &[ours.as_str()]].concat())?;
    assert!(ok, "{real} {stderr}");
    let (outcome, reason) = item(&real, &ours);
    assert_eq!(outcome, "restored", "{real}");
    assert!(reason.contains("share reconcile"), "{reason}");
    let img = described(&ours).await?;
    assert_eq!(img.state().map(|s| s.as_str()), Some("available"));
    assert_eq!(img.deprecation_time(), None);
    assert!(img
        .tags()
        .iter()
        .any(|t| t.key() == Some(key::KEEP) && t.value() == Some("true")));

    let (_, refused, stderr) = run(&[&args[..], &[theirs.as_str()]].concat())?;
    assert_eq!(item(&refused, &theirs).0, "refused", "{refused} {stderr}");
    assert_eq!(
        described(&theirs)
            .await?
            .state()
            .map(|s| s.as_str().to_owned()),
        Some("disabled".to_owned())
    );

    let (ok, _, stderr) = run(&[&args[..], &["ami-0123456789abcdef0"]].concat())?;
    assert!(!ok && stderr.contains("ami-0123456789abcdef0"), "{stderr}");
    Ok(())
}
