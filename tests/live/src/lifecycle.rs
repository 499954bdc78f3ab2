//! The lifecycle on a real account, step by step as [`crate::plan`] lists it: scaffolding,
//! create-image ×3 with reboot, replicate with the customer key, share (when a second
//! account is given), a 12-version launch template, cleanup. The suite is entered only
//! through [`invoke_function`]; every check reads AWS's state back (black box) and is
//! recorded in the [`Journal`], which also keeps what teardown must know.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_core::aws::AwsCloud;
use ami_core::config::Config;
use ami_core::context::Context;
use ami_core::tags::key;
use ami_core::time_util::{rfc3339, slot_of};
use anyhow::{anyhow, Context as _};
use aws_config::SdkConfig;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::invoke::invoke_function;
use crate::plan::IMAGES;
use crate::scaffold::{self as aws, Clients, Stop};
use crate::settings::{Settings, RUN_TAG};

/// One verified expectation.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What the run created that teardown cannot find by tag, and the checks so far. Shared
/// with teardown, which runs whatever happened to the lifecycle.
#[derive(Debug, Default)]
pub struct Journal {
    pub key_arn: Mutex<Option<String>>,
    pub checks: Mutex<Vec<Check>>,
}

impl Journal {
    fn check(&self, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
        let c = Check {
            name: name.into(),
            passed,
            detail: detail.into(),
        };
        println!(
            "  [{}] {}{}",
            if c.passed { "ok" } else { "FAILED" },
            c.name,
            if c.detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", c.detail)
            }
        );
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    pub fn checks(&self) -> Vec<Check> {
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn key_arn(&self) -> Option<String> {
        self.key_arn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The suite's settings for this run: its own deployment name and schedule (the run id),
/// so it acts on nothing else in the account.
pub fn suite_settings(s: &Settings, key_arn: &str) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("AMI_LIFECYCLE_NAME", s.run.to_string()),
        ("AWS_REGION", s.home.clone()),
        ("AMI_LIFECYCLE_REGIONS", s.home.clone()),
        ("REPLICA_REGIONS", s.replica.clone()),
        ("REPLICA_KMS_KEYS", format!("{}={key_arn}", s.replica)),
        ("SCHEDULES", s.run.to_string()),
        ("RETAIN", "count=1".to_owned()),
        ("DEPRECATION_GRACE", "0".to_owned()),
        ("COPY_INSTANCE_TAGS", RUN_TAG.to_owned()),
        ("REPORT_EVENT_BUS", s.run.to_string()),
        ("SHARE_REPLICAS", "true".to_owned()),
    ];
    if let Some(a) = &s.share_account {
        v.push(("SHARE_ALLOWED", a.to_string()));
    }
    v
}

fn suite_context(sdk: &SdkConfig, s: &Settings, key_arn: &str) -> anyhow::Result<Context> {
    let pairs = suite_settings(s, key_arn);
    let config = Config::from_lookup(|k| {
        pairs
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .map_err(|e| anyhow!("the suite refused its configuration: {e}"))?;
    let cloud = AwsCloud::new(aws::in_region(sdk, &s.home), &config, 1.0);
    Ok(Context::new(Arc::new(cloud), config).with_progress(Arc::new(|m| println!("    {m}"))))
}

fn count(detail: &Value, outcome: &str) -> u64 {
    detail["counts"][outcome].as_u64().unwrap_or(0)
}

async fn call(name: &str, ctx: &Context, payload: Value) -> anyhow::Result<Value> {
    println!("  invoke {name} {payload}");
    let detail = invoke_function(name, ctx, payload)
        .await
        .map_err(|e| anyhow!("{name} refused the request: {e}"))?;
    println!(
        "  {name}: {} counts {}",
        detail["outcome"], detail["counts"]
    );
    if count(&detail, "failed") > 0 {
        println!("  {name} failures: {}", detail["items"]);
    }
    Ok(detail)
}

fn tag_of<'a>(image: &'a aws_sdk_ec2::types::Image, k: &str) -> Option<&'a str> {
    image
        .tags()
        .iter()
        .find(|t| t.key() == Some(k))
        .and_then(|t| t.value())
}

fn step(text: &str) {
    println!(
        "\n== {} {text}",
        OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    );
}

/// Runs the lifecycle; an `Err` is a step that could not go on (checks so far are in the
/// journal). Teardown is the caller's.
pub async fn run(
    sdk: &SdkConfig,
    s: &Settings,
    c: &Clients,
    journal: &Journal,
    stop: &Stop,
) -> anyhow::Result<()> {
    let run = s.run.as_str();
    let home = &c.home_ec2;

    step("scaffolding: KMS key, event bus, instance");
    let key_arn = aws::create_key(c, s).await?;
    *journal.key_arn.lock().unwrap_or_else(|p| p.into_inner()) = Some(key_arn.clone());
    println!("  key {key_arn}");
    aws::create_bus(c, s).await?;
    let (instance, base_image) = aws::launch_instance(c, s).await?;
    aws::wait_running(c, &instance, stop).await?;
    let ctx = suite_context(sdk, s, &key_arn)?;

    step("create-image ×3, with reboot");
    let first_slot = slot_of(OffsetDateTime::now_utc()) - time::Duration::minutes(IMAGES as i64);
    let mut images = Vec::new();
    for (n, label) in ["A", "B", "C"].into_iter().enumerate() {
        let slot = rfc3339(first_slot + time::Duration::minutes(n as i64));
        let detail = call("create-image", &ctx, json!({"schedule": run, "slot": slot})).await?;
        journal.check(
            format!("create-image {label}: one image created"),
            count(&detail, "created") == 1 && count(&detail, "failed") == 0,
            format!("counts {}", detail["counts"]),
        );
        let made: Vec<_> = aws::images_tagged(home, key::SLOT, &slot)
            .await?
            .into_iter()
            .filter(|i| tag_of(i, key::MANAGED_BY) == Some(run))
            .collect();
        let [image] = made.as_slice() else {
            return Err(anyhow!(
                "create-image {label}: {} images of slot {slot} managed by {run}, expected 1",
                made.len()
            ));
        };
        let id = image.image_id().context("image without id")?.to_owned();
        journal.check(
            format!("image {label} ({id}) made with reboot"),
            tag_of(image, key::CONSISTENCY) == Some("rebooted"),
            format!("{}={:?}", key::CONSISTENCY, tag_of(image, key::CONSISTENCY)),
        );
        journal.check(
            format!("image {label} carries the run tag (COPY_INSTANCE_TAGS)"),
            tag_of(image, RUN_TAG) == Some(run),
            "",
        );
        aws::wait_available(home, &id, Duration::from_secs(45 * 60), stop).await?;
        images.push(id);
    }
    let (a, b, c_img) = (images[0].clone(), images[1].clone(), images[2].clone());

    step(&format!("replicate C to {}", s.replica));
    let detail = call("replicate", &ctx, json!({"image": c_img, "region": s.home})).await?;
    journal.check(
        "replicate: one copy started",
        count(&detail, "copied") == 1 && count(&detail, "failed") == 0,
        format!("counts {}", detail["counts"]),
    );
    let replica = aws::wait_for(
        "the replica is listed",
        Duration::from_secs(300),
        stop,
        || async {
            let found = aws::images_tagged(&c.replica_ec2, key::SOURCE_IMAGE, &c_img).await?;
            Ok(found
                .into_iter()
                .find(|i| tag_of(i, key::MANAGED_BY) == Some(run))
                .and_then(|i| i.image_id().map(str::to_owned)))
        },
    )
    .await?;
    let replica_image =
        aws::wait_available(&c.replica_ec2, &replica, Duration::from_secs(90 * 60), stop).await?;
    let keys = aws::snapshot_keys(&c.replica_ec2, &replica_image).await?;
    journal.check(
        format!("replica {replica} is encrypted with the run's customer managed key"),
        keys.iter().all(|k| k.as_deref() == Some(key_arn.as_str())),
        format!("snapshot keys {keys:?}"),
    );

    if let Some(account) = &s.share_account {
        step(&format!("share C with {account}"));
        aws::tag_image(home, &c_img, key::SHARE_WITH, account.as_str()).await?;
        let detail = call("share", &ctx, json!({"image": c_img, "region": s.home})).await?;
        journal.check(
            "share: granted, nothing failed",
            count(&detail, "granted") >= 1 && count(&detail, "failed") == 0,
            format!("counts {}", detail["counts"]),
        );
        for (region_ec2, image) in [(home, &c_img), (&c.replica_ec2, &replica)] {
            let who = aws::launch_permissions(region_ec2, image).await?;
            journal.check(
                format!("{image} launchable by {account}"),
                who.iter().any(|w| w == account.as_str()),
                format!("launch permissions {who:?}"),
            );
        }
        let grants = c
            .replica_kms
            .list_grants()
            .key_id(&key_arn)
            .send()
            .await
            .context("KMS ListGrants")?;
        let grantees: Vec<&str> = grants
            .grants()
            .iter()
            .filter_map(|g| g.grantee_principal())
            .collect();
        journal.check(
            format!("KMS grant on the replica key for {account}"),
            grantees.iter().any(|g| g.contains(account.as_str())),
            format!("grantees {grantees:?}"),
        );
    }

    step("launch template: version 1 of 12 pins A");
    aws::launch_template(c, s, &a, &base_image).await?;

    step("cleanup (RETAIN=count=1)");
    let detail = call("cleanup", &ctx, json!({})).await?;
    journal.check(
        "cleanup: nothing failed",
        count(&detail, "failed") == 0,
        format!("counts {}", detail["counts"]),
    );
    let b_gone = aws::wait_for("B is gone", Duration::from_secs(300), stop, || async {
        Ok((!aws::image_exists(home, &b).await?).then_some(()))
    })
    .await;
    journal.check(
        format!("B ({b}) deleted: past retention, referenced by nothing"),
        b_gone.is_ok(),
        b_gone.err().map(|e| e.to_string()).unwrap_or_default(),
    );
    for (label, region_ec2, image, why) in [
        (
            "A",
            home,
            &a,
            "only the oldest of 12 launch template versions uses it",
        ),
        ("C", home, &c_img, "the newest of its lineage"),
        (
            "replica of C",
            &c.replica_ec2,
            &replica,
            "the newest replica",
        ),
    ] {
        journal.check(
            format!("{label} ({image}) kept: {why}"),
            aws::image_exists(region_ec2, image).await?,
            "",
        );
    }
    Ok(())
}
