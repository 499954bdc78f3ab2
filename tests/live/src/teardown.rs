//! Teardown, level-triggered: [`teardown`] finds what the run left by its tags (the run tag,
//! or `ami-lifecycle:managed-by=<run id>` on what the suite made) in both regions and
//! deletes it, whatever the lifecycle got to; the key (known from the [`Journal`]) is
//! scheduled for deletion. It repeats until nothing is left or its time is up, then
//! [`leftovers`] is the final listing: anything in it makes the run fail.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use ami_core::tags::key;
use anyhow::Context as _;
use aws_sdk_ec2::types::{Filter, ImageState, InstanceStateName};

use crate::lifecycle::Journal;
use crate::plan::KEY_PENDING_DAYS;
use crate::scaffold::{images_tagged, Clients};
use crate::settings::{Settings, RUN_TAG};

/// How long teardown keeps deleting and re-listing (an instance takes minutes to
/// terminate; a copy in progress is cancelled by deregistering it).
const PATIENCE: Duration = Duration::from_secs(20 * 60);
const PAUSE: Duration = Duration::from_secs(20);

/// A resource tagged with the run that still exists.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Leftover {
    pub region: String,
    pub kind: &'static str,
    pub id: String,
    pub state: String,
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<14} {:<15} {:<48} {}",
            self.region, self.kind, self.id, self.state
        )
    }
}

fn by_tag(k: &str, v: &str) -> Filter {
    Filter::builder().name(format!("tag:{k}")).values(v).build()
}

/// The tag filters that find a run's resources: the run tag, and the suite's managed-by.
fn run_filters(s: &Settings) -> [Filter; 2] {
    [
        by_tag(RUN_TAG, s.run.as_str()),
        by_tag(key::MANAGED_BY, s.run.as_str()),
    ]
}

async fn instances(
    ec2: &aws_sdk_ec2::Client,
    s: &Settings,
) -> anyhow::Result<Vec<(String, String)>> {
    let out = ec2
        .describe_instances()
        .filters(by_tag(RUN_TAG, s.run.as_str()))
        .send()
        .await
        .context("DescribeInstances")?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            let state = i.state().and_then(|s| s.name())?;
            (*state != InstanceStateName::Terminated).then(|| {
                (
                    i.instance_id().unwrap_or_default().to_owned(),
                    state.as_str().to_owned(),
                )
            })
        })
        .collect())
}

async fn images(
    ec2: &aws_sdk_ec2::Client,
    s: &Settings,
) -> anyhow::Result<Vec<aws_sdk_ec2::types::Image>> {
    let mut out = images_tagged(ec2, RUN_TAG, s.run.as_str()).await?;
    for i in images_tagged(ec2, key::MANAGED_BY, s.run.as_str()).await? {
        if !out.iter().any(|o| o.image_id() == i.image_id()) {
            out.push(i);
        }
    }
    out.retain(|i| i.state() != Some(&ImageState::Deregistered));
    Ok(out)
}

async fn snapshots(ec2: &aws_sdk_ec2::Client, s: &Settings) -> anyhow::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for f in run_filters(s) {
        let page = ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(f)
            .send()
            .await
            .context("DescribeSnapshots")?;
        out.extend(
            page.snapshots()
                .iter()
                .filter_map(|s| s.snapshot_id().map(str::to_owned)),
        );
    }
    Ok(out)
}

async fn volumes(ec2: &aws_sdk_ec2::Client, s: &Settings) -> anyhow::Result<Vec<(String, String)>> {
    let out = ec2
        .describe_volumes()
        .filters(by_tag(RUN_TAG, s.run.as_str()))
        .send()
        .await
        .context("DescribeVolumes")?;
    Ok(out
        .volumes()
        .iter()
        .map(|v| {
            (
                v.volume_id().unwrap_or_default().to_owned(),
                v.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            )
        })
        .collect())
}

async fn templates(ec2: &aws_sdk_ec2::Client, s: &Settings) -> anyhow::Result<Vec<String>> {
    let out = ec2
        .describe_launch_templates()
        .filters(by_tag(RUN_TAG, s.run.as_str()))
        .send()
        .await
        .context("DescribeLaunchTemplates")?;
    Ok(out
        .launch_templates()
        .iter()
        .filter_map(|t| t.launch_template_id().map(str::to_owned))
        .collect())
}

/// Prints a failed delete and goes on: one failure never stops the rest.
fn note<T, E: fmt::Display>(what: &str, r: Result<T, E>) {
    if let Err(e) = r {
        println!("  teardown: {what}: {e}");
    }
}

/// One pass over both regions: delete everything found.
async fn delete_pass(
    c: &Clients,
    s: &Settings,
    journal: &Journal,
    snapshots_seen: &mut BTreeSet<String>,
) {
    for region in [&s.home, &s.replica] {
        let ec2 = c.ec2(s, region);
        match instances(ec2, s).await {
            Ok(found) => {
                let live: Vec<String> = found
                    .into_iter()
                    .filter(|(_, state)| state != "shutting-down")
                    .map(|(id, _)| id)
                    .collect();
                if !live.is_empty() {
                    println!("  terminate {live:?} ({region})");
                    note(
                        "TerminateInstances",
                        ec2.terminate_instances()
                            .set_instance_ids(Some(live))
                            .send()
                            .await,
                    );
                }
            }
            Err(e) => note::<(), _>("list instances", Err(e)),
        }
        match templates(ec2, s).await {
            Ok(found) => {
                for id in found {
                    println!("  delete launch template {id} ({region})");
                    note(
                        "DeleteLaunchTemplate",
                        ec2.delete_launch_template()
                            .launch_template_id(&id)
                            .send()
                            .await,
                    );
                }
            }
            Err(e) => note::<(), _>("list launch templates", Err(e)),
        }
        match images(ec2, s).await {
            Ok(found) => {
                for img in found {
                    let id = img.image_id().unwrap_or_default().to_owned();
                    snapshots_seen.extend(
                        img.block_device_mappings().iter().filter_map(|m| {
                            m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned)
                        }),
                    );
                    println!("  deregister {id} ({region}, {:?})", img.state());
                    note(
                        "DeregisterImage",
                        ec2.deregister_image()
                            .image_id(&id)
                            .delete_associated_snapshots(true)
                            .send()
                            .await,
                    );
                }
            }
            Err(e) => note::<(), _>("list images", Err(e)),
        }
        match snapshots(ec2, s).await {
            Ok(found) => snapshots_seen.extend(found),
            Err(e) => note::<(), _>("list snapshots", Err(e)),
        }
        match volumes(ec2, s).await {
            Ok(found) => {
                for (id, state) in found.into_iter().filter(|(_, st)| st == "available") {
                    println!("  delete volume {id} ({region}, {state})");
                    note(
                        "DeleteVolume",
                        ec2.delete_volume().volume_id(&id).send().await,
                    );
                }
            }
            Err(e) => note::<(), _>("list volumes", Err(e)),
        }
    }
    // Snapshots: those of deregistered images (DeleteAssociatedSnapshots may have taken
    // them already: NotFound is fine) and any tagged one. Tried in both regions.
    let mut gone = Vec::new();
    for id in snapshots_seen.iter() {
        for region in [&s.home, &s.replica] {
            match c
                .ec2(s, region)
                .delete_snapshot()
                .snapshot_id(id)
                .send()
                .await
            {
                Ok(_) => {
                    println!("  deleted snapshot {id} ({region})");
                    gone.push(id.clone());
                }
                Err(e) => {
                    let code = e
                        .as_service_error()
                        .and_then(|e| e.meta().code())
                        .unwrap_or("");
                    if code == "InvalidSnapshot.NotFound" {
                        continue;
                    }
                    println!("  teardown: DeleteSnapshot {id} ({region}): {code} {e}");
                }
            }
        }
    }
    if let Err(e) = c
        .home_events
        .delete_event_bus()
        .name(s.run.as_str())
        .send()
        .await
    {
        let code = e
            .as_service_error()
            .and_then(|e| e.meta().code())
            .unwrap_or("");
        if code != "ResourceNotFoundException" {
            println!("  teardown: DeleteEventBus {}: {code} {e}", s.run);
        }
    }
    if let Some(arn) = journal.key_arn() {
        match c.replica_kms.describe_key().key_id(&arn).send().await {
            Ok(k)
                if k.key_metadata()
                    .and_then(|m| m.key_state())
                    .map(|s| s.as_str())
                    == Some("PendingDeletion") => {}
            _ => {
                println!("  schedule deletion of key {arn} in {KEY_PENDING_DAYS} days");
                note(
                    "ScheduleKeyDeletion",
                    c.replica_kms
                        .schedule_key_deletion()
                        .key_id(&arn)
                        .pending_window_in_days(KEY_PENDING_DAYS)
                        .send()
                        .await,
                );
            }
        }
    }
}

/// What is left of the run. A key pending deletion and terminated instances are not
/// left (AWS removes them on its own); they are printed as notes.
pub async fn leftovers(
    c: &Clients,
    s: &Settings,
    journal: &Journal,
    snapshots_seen: &BTreeSet<String>,
) -> anyhow::Result<Vec<Leftover>> {
    let mut out = Vec::new();
    let left = |region: &str, kind: &'static str, id: String, state: String| Leftover {
        region: region.to_owned(),
        kind,
        id,
        state,
    };
    for region in [&s.home, &s.replica] {
        let ec2 = c.ec2(s, region);
        for (id, state) in instances(ec2, s).await? {
            out.push(left(region, "instance", id, state));
        }
        for id in templates(ec2, s).await? {
            out.push(left(region, "launch template", id, String::new()));
        }
        for img in images(ec2, s).await? {
            out.push(left(
                region,
                "image",
                img.image_id().unwrap_or_default().to_owned(),
                img.state()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            ));
        }
        let mut snaps = snapshots(ec2, s).await?;
        // Untagged snapshots of the run's images: still there if DescribeSnapshots knows them.
        for id in snapshots_seen {
            if ec2
                .describe_snapshots()
                .snapshot_ids(id)
                .send()
                .await
                .is_ok()
            {
                snaps.insert(id.clone());
            }
        }
        for id in snaps {
            out.push(left(region, "snapshot", id, String::new()));
        }
        for (id, state) in volumes(ec2, s).await? {
            out.push(left(region, "volume", id, state));
        }
    }
    if c.home_events
        .describe_event_bus()
        .name(s.run.as_str())
        .send()
        .await
        .is_ok()
    {
        out.push(left(&s.home, "event bus", s.run.to_string(), String::new()));
    }
    if let Some(arn) = journal.key_arn() {
        let k = c.replica_kms.describe_key().key_id(&arn).send().await?;
        let meta = k.key_metadata();
        let state = meta
            .and_then(|m| m.key_state())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        if state == "PendingDeletion" {
            let at = meta
                .and_then(|m| m.deletion_date())
                .map(|d| d.to_string())
                .unwrap_or_default();
            println!("  note: key {arn} is pending deletion (AWS deletes it on {at})");
        } else {
            out.push(left(&s.replica, "KMS key", arn, state));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes everything of the run, re-listing until nothing is left or [`PATIENCE`] runs
/// out; returns the final listing (empty = clean).
pub async fn teardown(
    c: &Clients,
    s: &Settings,
    journal: &Journal,
) -> anyhow::Result<Vec<Leftover>> {
    let start = Instant::now();
    let mut snapshots_seen = BTreeSet::new();
    loop {
        delete_pass(c, s, journal, &mut snapshots_seen).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let left = leftovers(c, s, journal, &snapshots_seen).await?;
        if left.is_empty() || start.elapsed() > PATIENCE {
            return Ok(left);
        }
        println!(
            "  teardown: {} left ({}), again in {} s",
            left.len(),
            left.iter()
                .map(|l| format!("{} {}", l.kind, l.id))
                .collect::<Vec<_>>()
                .join(", "),
            PAUSE.as_secs()
        );
        tokio::time::sleep(PAUSE).await;
    }
}
