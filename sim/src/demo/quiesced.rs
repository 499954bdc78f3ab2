//! The demo's proof that a quiesced instance's last image is application-consistent: its
//! timeline on the last simulated day as the emulator recorded it (the freeze command,
//! CreateImage with NoReboot, the thaw, and no reboot), and the consistency tag of its
//! newest image. [`check`] prints the table and returns what is wrong.

use ami_core::report::render_rows;
use ami_core::tags::key;
use anyhow::Context as _;
use serde_json::Value;
use time::Date;

use super::estate::Seeded;
use crate::EmulatorClient;

/// The steps a quiesced image takes, in order.
const EXPECTED: [&str; 3] = ["freeze", "create-image NoReboot", "thaw"];

/// Prints the last day's timeline of every quiesced instance; returns the problems.
pub async fn check(
    emu: &EmulatorClient,
    estate: &[Seeded],
    last_day: Date,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let day = last_day.to_string();
    for s in estate.iter().filter(|s| s.quiesced) {
        let entries = emu.timeline(s.region, &s.id).await?;
        let today: Vec<&Value> = entries
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["time"].as_str().is_some_and(|t| t.starts_with(&day)))
                    .collect()
            })
            .unwrap_or_default();
        let mut rows = Vec::new();
        let mut steps = Vec::new();
        let mut made = None;
        for e in &today {
            let time = e["time"]
                .as_str()
                .and_then(|t| t.get(11..19))
                .unwrap_or("-");
            let (step, what, status) = match e["kind"].as_str() {
                Some("command") => (
                    e["action"].as_str().unwrap_or("?").to_owned(),
                    format!(
                        "SendCommand {} mounts={}",
                        e["document"].as_str().unwrap_or("?"),
                        e["parameters"]["mounts"][0].as_str().unwrap_or("-")
                    ),
                    e["status"].as_str().unwrap_or("-").to_owned(),
                ),
                Some("create-image") => {
                    made = e["image_id"].as_str().map(str::to_owned);
                    let no_reboot = e["no_reboot"].as_bool() == Some(true);
                    (
                        format!(
                            "create-image {}",
                            if no_reboot { "NoReboot" } else { "reboot" }
                        ),
                        format!("CreateImage → {}", made.as_deref().unwrap_or("-")),
                        e["error"].as_str().unwrap_or("ok").to_owned(),
                    )
                }
                other => (
                    other.unwrap_or("?").to_owned(),
                    e["cause"].as_str().unwrap_or("-").to_owned(),
                    "-".to_owned(),
                ),
            };
            steps.push(step.clone());
            rows.push([time.to_owned(), step, what, status]);
        }
        let newest = newest_image(emu, s).await?;
        let tag = match &newest {
            Some(id) => image_tag(emu, s.region, id, key::CONSISTENCY).await?,
            None => None,
        };
        let reboots = emu
            .reboots()?
            .get(&s.id)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        println!(
            "\nQUIESCED: {} ({}), day {day} as the emulator recorded it",
            s.name, s.region
        );
        print!(
            "{}",
            render_rows(&["TIME", "STEP", "CALL", "STATUS"], &rows)
        );
        println!(
            "  newest image {}: {}={}; reboots ever: {reboots}",
            newest.as_deref().unwrap_or("-"),
            key::CONSISTENCY,
            tag.as_deref().unwrap_or("-")
        );
        if steps != EXPECTED {
            problems.push(format!(
                "{}: the last day's timeline is {steps:?}, expected {EXPECTED:?}",
                s.name
            ));
        }
        if rows.iter().any(|r| r[3] != "Success" && r[3] != "ok") {
            problems.push(format!(
                "{}: a step of the last day did not succeed",
                s.name
            ));
        }
        if made.is_none() || made != newest {
            problems.push(format!(
                "{}: the last day's image {made:?} is not its newest {newest:?}",
                s.name
            ));
        }
        if tag.as_deref() != Some("application-consistent") {
            problems.push(format!(
                "{}: its newest image is tagged {}={tag:?}",
                s.name,
                key::CONSISTENCY
            ));
        }
        if reboots != 0 {
            problems.push(format!("{}: rebooted {reboots} times", s.name));
        }
    }
    Ok(problems)
}

/// The id of the instance's newest original image (by slot) in its region.
async fn newest_image(emu: &EmulatorClient, s: &Seeded) -> anyhow::Result<Option<String>> {
    let out = emu
        .ec2(s.region)
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", key::SOURCE_INSTANCE))
                .values(&s.id)
                .build(),
        )
        .send()
        .await
        .context("DescribeImages")?;
    let slot = |i: &aws_sdk_ec2::types::Image| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(key::SLOT))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(out
        .images()
        .iter()
        .max_by_key(|i| slot(i))
        .and_then(|i| i.image_id())
        .map(str::to_owned))
}

async fn image_tag(
    emu: &EmulatorClient,
    region: &str,
    image: &str,
    tag: &str,
) -> anyhow::Result<Option<String>> {
    let out = emu
        .ec2(region)
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .context("DescribeImages")?;
    Ok(out
        .images()
        .first()
        .and_then(|i| i.tags().iter().find(|t| t.key() == Some(tag)))
        .and_then(|t| t.value())
        .map(str::to_owned))
}
