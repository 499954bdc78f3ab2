//! Emulator integration tests for issue 18's fan-out: scheduled runs put one work item per
//! (account, region) on the function's own SQS work queue, and the same function consumes
//! them one record per invocation ([`ami_sim::FanoutDriver`], Lambda's event source mapping
//! with batch size 1, partial batch failures and the queue's DLQ), with a DynamoDB ledger
//! that makes a redelivered item change nothing and one run summary per run.
//!
//! - the driver itself against SQS: a returned record is redelivered, a failing one ends in
//!   the DLQ after maxReceiveCount receives, never more than `concurrency` at once;
//! - the lifecycle through the queue in an organization of three accounts (the hub and two
//!   spokes, one without the spoke role): images made and deleted in each reachable account,
//!   the unreachable one reported failed, a redelivered item changing nothing, one summary.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ami_core::tags::key;
use ami_core::time_util::slot_of;
use ami_sim::{
    Delivery, Emulator, EmulatorClient, FanoutDriver, InProcess, Invoke, Invoked, Org, WorkQueue,
};
use anyhow::{ensure, Context as _};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const HOME: &str = "us-east-1";

/// An invoker standing in for a function: it answers `batchItemFailures` from the item's
/// body (`{"fail_until": n}`: returned while the receive count is below n; `{"error": true}`:
/// an invocation error every time) and records how many run at once.
#[derive(Default)]
struct Scripted {
    running: AtomicUsize,
    most: AtomicUsize,
    seen: Mutex<Vec<(String, u32)>>,
}

struct ScriptedInvoker(Arc<Scripted>);

impl Invoke for ScriptedInvoker {
    fn invoke(&self, event: Value) -> Invoked {
        let state = Arc::clone(&self.0);
        Box::pin(async move {
            let now = state.running.fetch_add(1, Ordering::SeqCst) + 1;
            state.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            state.running.fetch_sub(1, Ordering::SeqCst);
            let records = event["Records"].as_array().map(Vec::len).unwrap_or(0);
            let record = &event["Records"][0];
            let shaped = records == 1
                && record["eventSource"] == "aws:sqs"
                && record["eventSourceARN"].as_str().is_some_and(|a| {
                    a.starts_with("arn:aws:sqs:us-east-1:") && a.ends_with(":work")
                })
                && record["receiptHandle"]
                    .as_str()
                    .is_some_and(|h| !h.is_empty());
            if !shaped {
                return Err(format!("not a one-record SQS event: {event}"));
            }
            let id = record["messageId"].as_str().unwrap_or_default().to_owned();
            let count: u32 = record["attributes"]["ApproximateReceiveCount"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let body: Value = serde_json::from_str(record["body"].as_str().unwrap_or("null"))
                .unwrap_or(Value::Null);
            if let Ok(mut seen) = state.seen.lock() {
                seen.push((body["name"].as_str().unwrap_or_default().to_owned(), count));
            }
            if body["error"] == true {
                return Err("Retryable.Unavailable: boom".into());
            }
            let until = body["fail_until"].as_u64().unwrap_or(0) as u32;
            let failures = if count < until {
                json!([{"itemIdentifier": id}])
            } else {
                json!([])
            };
            Ok(json!({"batchItemFailures": failures}))
        })
    }
}

#[tokio::test]
async fn the_driver_deletes_done_records_redelivers_returned_ones_and_sqs_dead_letters_the_rest(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let queue = WorkQueue::create(&emu, HOME, "work", 3, 60).await?;
    let sqs = emu.sqs(HOME);
    let mut bodies = Vec::new();
    for i in 0..12 {
        bodies.push(json!({"name": format!("ok-{i}")}));
    }
    bodies.push(json!({"name": "twice", "fail_until": 2}));
    bodies.push(json!({"name": "broken", "error": true}));
    for b in &bodies {
        sqs.send_message()
            .queue_url(&queue.url)
            .message_body(b.to_string())
            .send()
            .await
            .context("SendMessage")?;
    }
    let state = Arc::new(Scripted::default());
    let stats = FanoutDriver::new(&emu, HOME, &queue.url)
        .concurrency(4)
        .timeout(Duration::from_secs(60))
        .run(Arc::new(ScriptedInvoker(Arc::clone(&state))))
        .await?;
    ensure!(!stats.timed_out, "{stats:?}");
    // 12 done at once, "twice" on its second receive, "broken" received 3 times.
    ensure!(stats.done == 13, "{stats:?}");
    ensure!(stats.invocations == 12 + 2 + 3, "{stats:?}");
    ensure!(stats.retried == 1 + 3, "{stats:?}");
    ensure!(stats.redelivered == 1 + 2, "{stats:?}");
    ensure!(stats.dead_lettered == 1, "{stats:?}");
    ensure!(stats.without_batch_item_failures == 0, "{stats:?}");
    let most = state.most.load(Ordering::SeqCst);
    ensure!(
        most <= 4 && stats.max_in_flight <= 4 && most >= 2,
        "{most} at once (driver saw {})",
        stats.max_in_flight
    );
    let seen = state.seen.lock().map(|s| s.clone()).unwrap_or_default();
    let counts = |name: &str| -> Vec<u32> {
        seen.iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| *c)
            .collect()
    };
    ensure!(counts("twice") == vec![1, 2], "{seen:?}");
    let mut broken = counts("broken");
    broken.sort_unstable();
    ensure!(broken == vec![1, 2, 3], "{seen:?}");
    ensure!(
        stats
            .log
            .iter()
            .filter(|i| i.outcome == Delivery::Failed)
            .all(|i| i.body["name"] == "broken"),
        "{stats:?}"
    );
    // The work queue is empty; the DLQ holds the broken item (SQS moved it, not the driver).
    let left = sqs
        .receive_message()
        .queue_url(&queue.url)
        .send()
        .await?
        .messages
        .unwrap_or_default();
    ensure!(left.is_empty(), "{left:?}");
    let dead = queue.dead_letters(&emu, HOME).await?;
    ensure!(
        dead == vec![json!({"name": "broken", "error": true})],
        "{dead:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_queue_without_a_dead_letter_queue_is_refused() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let plain = emu.queue(HOME, "no-dlq").await?;
    let refused = FanoutDriver::new(&emu, HOME, plain.url())
        .run(Arc::new(ScriptedInvoker(Arc::default())))
        .await;
    let message = format!(
        "{:#}",
        refused.err().context("a queue without a DLQ was driven")?
    );
    ensure!(
        message.contains(plain.url()) && message.contains("RedrivePolicy"),
        "{message}"
    );
    Ok(())
}

// --- the lifecycle through the queue, in an organization -------------------------------

const DEPLOYMENT: &str = "ami-lifecycle";
/// The emulator's default account: the hub, and the organization's management account.
const HUB: &str = "123456789012";
const SPOKE: &str = "111122223333";
const NO_ROLE: &str = "444455556666";
const EXTERNAL_ID: &str = "0123456789abcdef-external-id";
const LEDGER: &str = "ami-lifecycle-runs";
/// An image every account of the emulator may launch (moto's own).
const PUBLIC_AMI: &str = "ami-12c6146b";

/// An instance opted in to `daily` without reboots, in `account`.
async fn instance(emu: &EmulatorClient, account: &str) -> anyhow::Result<String> {
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let out = emu
        .ec2_as(HOME, account)
        .run_instances()
        .image_id(PUBLIC_AMI)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                .tags(tag("Name", &format!("web-{account}")))
                .tags(tag(key::SCHEDULE, "daily"))
                .tags(tag(key::REBOOT, "false"))
                .build(),
        )
        .send()
        .await
        .with_context(|| format!("RunInstances in {account}"))?;
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .context("no instance")
}

/// The images `account` owns in `region` that are not deregistered.
async fn images(emu: &EmulatorClient, region: &str, account: &str) -> anyhow::Result<Vec<String>> {
    let out = emu
        .ec2_as(region, account)
        .describe_images()
        .owners("self")
        .include_disabled(true)
        .send()
        .await?;
    let mut ids: Vec<String> = out
        .images()
        .iter()
        .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
        .filter_map(|i| i.image_id().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

/// The scheduled event of `rule` at `time` (the fixture's shape).
fn scheduled(rule: &str, time: OffsetDateTime) -> anyhow::Result<Value> {
    let path = ami_sim::repo_root().join("tests/fixtures/events/scheduled-event.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    event["time"] = json!(time.format(&Rfc3339)?);
    event["resources"] = json!([format!("arn:aws:events:{HOME}:{HUB}:rule/{rule}")]);
    Ok(event)
}

/// The run summaries among report events (the reports with the run's metrics).
fn summaries(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["detail"]["metrics"].get("run_items").is_some())
        .map(|e| e["detail"].clone())
        .collect()
}

/// The ledger's rows of `run`: its run row and its item rows (by item id).
async fn ledger(
    emu: &EmulatorClient,
    run: &str,
) -> anyhow::Result<(Value, std::collections::BTreeMap<String, Value>)> {
    let rows = emu.ledger_rows(HOME, LEDGER).await?;
    let mut run_row = Value::Null;
    let mut items = std::collections::BTreeMap::new();
    for r in rows.into_iter().filter(|r| r["run"] == run) {
        if r["item"] == "#run" {
            run_row = r;
        } else {
            items.insert(r["item"].as_str().unwrap_or_default().to_owned(), r);
        }
    }
    Ok((run_row, items))
}

/// One function as the template deploys it with the fan-out: its own work queue (DLQ
/// after 3 receives), the shared ledger, the hub's function role.
struct Fanned {
    name: &'static str,
    queue: WorkQueue,
    ctx: ami_core::context::Context,
}

impl Fanned {
    async fn new(
        emu: &EmulatorClient,
        org: &Org,
        creds: &aws_credential_types::Credentials,
        name: &'static str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let queue =
            WorkQueue::create(emu, HOME, &format!("{DEPLOYMENT}-{name}-work"), 3, 60).await?;
        // `extra` first: the first of a name is the one read.
        let mut pairs = extra.to_vec();
        pairs.extend([
            ("AMI_LIFECYCLE_ACCOUNTS", "org"),
            ("SPOKE_EXTERNAL_ID", EXTERNAL_ID),
            ("WORK_QUEUE_URL", queue.url.as_str()),
            ("RUN_LEDGER_TABLE", LEDGER),
            ("WORK_MAX_RECEIVES", "3"),
        ]);
        let ctx = org.hub_context(emu, creds.clone(), emu.config(&pairs), 0.0)?;
        Ok(Self { name, queue, ctx })
    }

    /// The scheduled invocation: fans the run out; answers its report's detail.
    async fn trigger(&self, event: Value) -> anyhow::Result<Value> {
        ami_sim::dispatch(self.name, &self.ctx, event, OffsetDateTime::now_utc())
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.name))
    }

    /// Lambda's event source mapping: consumes the queue, 2 at once.
    async fn consume(&self, emu: &EmulatorClient) -> anyhow::Result<ami_sim::DriveStats> {
        let ctx = self.ctx.clone();
        let invoker = InProcess::new(self.name, move || ctx.clone())?
            .with_deadline(Duration::from_secs(60), Duration::from_secs(5));
        let stats = FanoutDriver::new(emu, HOME, &self.queue.url)
            .concurrency(2)
            .timeout(Duration::from_secs(120))
            .run(Arc::new(invoker))
            .await?;
        ensure!(!stats.timed_out, "{stats:?}");
        ensure!(stats.without_batch_item_failures == 0, "{stats:?}");
        Ok(stats)
    }
}

#[tokio::test]
async fn scheduled_runs_fan_out_per_account_and_a_redelivered_item_changes_nothing(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let org = Org::new(HUB, DEPLOYMENT, EXTERNAL_ID, HOME);
    org.seed(
        &emu,
        &["Workloads"],
        &[
            (SPOKE, "spoke-1", "Workloads"),
            (NO_ROLE, "spoke-2", "Workloads"),
        ],
    )?;
    org.spoke_roles(&emu, SPOKE, &["create-image", "replicate", "cleanup"])
        .await?;
    emu.ledger_table(HOME, LEDGER).await?;
    let reports = emu
        .event_queue(HOME, json!({"source": ["ami-lifecycle"]}))
        .await?;
    let creds = org.hub_credentials(&emu).await?;
    let create = Fanned::new(&emu, &org, &creds, "create-image", &[]).await?;
    let cleanup = Fanned::new(
        &emu,
        &org,
        &creds,
        "cleanup",
        &[("RETAIN", "count=1"), ("REPLICA_REGIONS", "us-west-2")],
    )
    .await?;
    for account in [HUB, SPOKE, NO_ROLE] {
        instance(&emu, account).await?;
    }

    // Three daily slots: each scheduled run queues one item per account (home region).
    for days in [3, 2, 1] {
        let slot = slot_of(OffsetDateTime::now_utc() - time::Duration::days(days));
        let fanned = create
            .trigger(scheduled(&format!("{DEPLOYMENT}-schedule-daily"), slot)?)
            .await?;
        let queued: Vec<&Value> = fanned["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["outcome"] == "queued")
            .collect();
        ensure!(queued.len() == 3, "{fanned}");
        let stats = create.consume(&emu).await?;
        emu.tick()?;
        // The unreachable spoke is not retryable: recorded failed at once, never returned.
        ensure!(
            stats.invocations == 3 && stats.done == 3 && stats.retried == 0,
            "{stats:?}"
        );
    }
    ensure!(images(&emu, HOME, HUB).await?.len() == 3);
    ensure!(
        images(&emu, HOME, SPOKE).await?.len() == 3,
        "the spoke's images are made in the spoke"
    );
    ensure!(images(&emu, HOME, NO_ROLE).await?.is_empty());
    let made = summaries(&reports.wait_for(1, Duration::from_secs(2)).await?);
    ensure!(made.len() == 3, "one summary per run: {made:#?}");
    for s in &made {
        let m = &s["metrics"];
        ensure!(
            m["run_items"] == 3.0 && m["run_done"] == 2.0 && m["run_failed"] == 1.0,
            "{s}"
        );
        let failed: Vec<&Value> = s["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["outcome"] == "failed")
            .collect();
        ensure!(
            failed.len() == 1 && failed[0]["account"] == NO_ROLE,
            "the summary names the unreachable account: {s}"
        );
        let reason = failed[0]["reason"].as_str().unwrap_or_default();
        ensure!(
            reason.contains(&format!("{DEPLOYMENT}-spoke-create-image")),
            "{reason}"
        );
    }

    // replicate's reconcile: one item per account and home region; each account's newest
    // image (RETAIN=count=1 there too) is copied into that account's own us-west-2.
    let replicate = Fanned::new(
        &emu,
        &org,
        &creds,
        "replicate",
        &[("RETAIN", "count=1"), ("REPLICA_REGIONS", "us-west-2")],
    )
    .await?;
    let fanned = replicate
        .trigger(scheduled(
            &format!("{DEPLOYMENT}-replicate-reconcile"),
            OffsetDateTime::now_utc(),
        )?)
        .await?;
    let queued = fanned["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["outcome"] == "queued")
        .count();
    ensure!(
        queued == 3,
        "one item per account (one home region): {fanned}"
    );
    let stats = replicate.consume(&emu).await?;
    ensure!(stats.invocations == 3 && stats.done == 3, "{stats:?}");
    emu.tick()?;
    ensure!(images(&emu, "us-west-2", HUB).await?.len() == 1);
    ensure!(
        images(&emu, "us-west-2", SPOKE).await?.len() == 1,
        "the spoke's copy is made in the spoke"
    );
    ensure!(images(&emu, "us-west-2", NO_ROLE).await?.is_empty());
    let replicated = summaries(&reports.wait_for(1, Duration::from_secs(2)).await?);
    ensure!(
        replicated.len() == 1
            && replicated[0]["metrics"]["run_done"] == 2.0
            && replicated[0]["metrics"]["run_failed"] == 1.0,
        "{replicated:#?}"
    );

    // spoke 2 has an image of its own (made by hand there): never reached.
    let theirs = emu
        .ec2_as(HOME, NO_ROLE)
        .create_image()
        .instance_id(instance(&emu, NO_ROLE).await?)
        .name("spoke-2-own-image")
        .no_reboot(true)
        .send()
        .await?
        .image_id
        .context("no image")?;
    emu.tick()?;

    // cleanup (RETAIN=count=1): one item per account and region (us-east-1, us-west-2).
    let cleanup_event = json!({
        "version": "0", "id": "cleanup-1", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": HUB,
        "time": OffsetDateTime::now_utc().format(&Rfc3339)?, "region": HOME,
        "resources": [format!("arn:aws:events:{HOME}:{HUB}:rule/{DEPLOYMENT}-cleanup")],
        "detail": {},
    });
    let fanned = cleanup.trigger(cleanup_event.clone()).await?;
    let run = fanned["run"]
        .as_str()
        .context("the fanning report names its run")?
        .to_owned();
    let stats = cleanup.consume(&emu).await?;
    ensure!(stats.invocations == 6 && stats.done == 6, "{stats:?}");
    ensure!(images(&emu, HOME, HUB).await?.len() == 1);
    ensure!(images(&emu, HOME, SPOKE).await?.len() == 1);
    ensure!(images(&emu, HOME, NO_ROLE).await? == vec![theirs.clone()]);
    let (run_row, items) = ledger(&emu, &run).await?;
    ensure!(items.len() == 6, "{items:#?}");
    ensure!(
        run_row["total"] == 6
            && run_row["remaining"] == 0
            && run_row["done"] == 4
            && run_row["failed"] == 2,
        "{run_row}"
    );
    for account in [HUB, SPOKE, NO_ROLE] {
        for region in [HOME, "us-west-2"] {
            let row = &items[&format!("{account}/{region}")];
            let want = if account == NO_ROLE { "failed" } else { "done" };
            ensure!(row["state"] == want && row["account"] == account, "{row}");
        }
    }
    let cleaned = summaries(&reports.wait_for(1, Duration::from_secs(2)).await?);
    ensure!(cleaned.len() == 1, "{cleaned:#?}");
    ensure!(
        cleaned[0]["metrics"]["run_items"] == 6.0 && cleaned[0]["metrics"]["run_accounts"] == 3.0,
        "{}",
        cleaned[0]
    );

    // The same schedule again (EventBridge delivers at least once): nothing is queued twice.
    let again = cleanup.trigger(cleanup_event).await?;
    ensure!(
        again["items"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|i| i["outcome"] != "queued"),
        "{again}"
    );
    // A work item delivered again (the hub's us-east-1 item, sent as it was): nothing done,
    // not counted again, no second summary.
    let body = stats
        .log
        .iter()
        .find(|i| i.body["work_item"]["item"] == format!("{HUB}/{HOME}"))
        .map(|i| i.body.to_string())
        .context("the hub's item was consumed")?;
    emu.sqs(HOME)
        .send_message()
        .queue_url(&cleanup.queue.url)
        .message_body(body)
        .send()
        .await?;
    let replay = cleanup.consume(&emu).await?;
    ensure!(replay.invocations == 1 && replay.done == 1, "{replay:?}");
    let answer = replay.responses().next().context("no response")?;
    let skipped: Vec<&Value> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["outcome"] == "skipped")
        .collect();
    ensure!(
        skipped.len() == 1
            && skipped[0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("already done")),
        "{answer}"
    );
    ensure!(images(&emu, HOME, HUB).await?.len() == 1);
    let (after, items_after) = ledger(&emu, &run).await?;
    ensure!(
        after == run_row && items_after == items,
        "{after} vs {run_row}"
    );
    let more = summaries(&reports.wait_for(1, Duration::from_secs(2)).await?);
    ensure!(more.is_empty(), "a second summary: {more:#?}");
    Ok(())
}
