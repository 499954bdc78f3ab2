//! The fan-out against the fake: one item per account and region, each consumed in its
//! own account, a redelivered trigger or item changing nothing, an unreachable account
//! recorded failed, an incomplete item handed back to SQS, the summary sent once.
use std::sync::Arc;

use serde_json::{json, Value};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::config::Config;
use crate::context::Context;
use crate::deadline::Deadline;
use crate::fake::{FakeCloud, FakeFanOut};
use crate::ports::ItemState;
use crate::runner::{self, Cleanup};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 05:30 UTC);
const HUB: &str = "111111111111";
const SPOKE: &str = "222222222222";
const NO_ROLE: &str = "333333333333";
const SECRET: &str = "0123456789abcdef-secret";

/// Three daily images of one lineage in `region` (RETAIN=count=1 retires two).
fn lineage(cloud: &FakeCloud, region: &str) {
    for d in 0..3 {
        let slot = crate::time_util::rfc3339(NOW - Duration::days(d));
        cloud.add_image(
            region,
            &format!("web-{region}-{d}"),
            NOW - Duration::days(d),
            &[
                (key::MANAGED_BY, "ami-lifecycle"),
                (key::SOURCE_INSTANCE, "i-1"),
                (key::SCHEDULE, "daily"),
                (key::SLOT, &slot),
            ],
        );
    }
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "AMI_LIFECYCLE_REGIONS" => Some("us-east-1,eu-west-1".to_owned()),
        "RETAIN" => Some("count=1".to_owned()),
        "AMI_LIFECYCLE_ACCOUNTS" => Some(format!("{HUB},{SPOKE},{NO_ROLE}")),
        "SPOKE_EXTERNAL_ID" => Some(SECRET.to_owned()),
        "WORK_QUEUE_URL" => {
            Some("https://sqs.us-east-1.amazonaws.com/111111111111/work".to_owned())
        }
        "RUN_LEDGER_TABLE" => Some("ami-lifecycle-runs".to_owned()),
        _ => pairs
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned()),
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A hub with the fan-out on, a spoke with its role, an account without one; the hub and
/// the spoke hold a lineage in both regions.
fn org() -> (FakeCloud, FakeCloud, FakeFanOut) {
    let mut hub = FakeCloud::new(HUB);
    let fanout = hub.fan_out();
    let spoke = hub.add_account(SPOKE);
    for c in [&hub, &spoke] {
        lineage(c, "us-east-1");
        lineage(c, "eu-west-1");
    }
    (hub, spoke, fanout)
}

/// The SQS event Lambda would send for the `n`th message sent, on its `receive`th delivery.
fn delivery(fanout: &FakeFanOut, n: usize, receive: u32) -> Value {
    let body = fanout.state().sent[n].0.clone();
    json!({"Records": [{
        "messageId": format!("m-{n}"),
        "receiptHandle": format!("r-{n}-{receive}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": receive.to_string()},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:111111111111:work",
    }]})
}

fn retried(detail: &Value) -> Vec<String> {
    detail["batchItemFailures"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_run_fans_out_one_item_per_account_and_region_and_each_acts_in_its_account(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, spoke, fanout) = org();
    let ctx = Context::new(Arc::new(hub.clone()), config(&[]));

    let detail = runner::handle::<Cleanup>(&ctx, json!({}), NOW).await?;
    assert_eq!(
        detail["counts"]["queued"], 6,
        "3 accounts × 2 regions: {detail}"
    );
    assert_eq!(fanout.state().sent.len(), 6);
    assert_eq!(
        hub.live_images("us-east-1").len(),
        3,
        "the fanning run deletes nothing"
    );
    let run = detail["run"].as_str().ok_or("no run id")?.to_owned();
    assert_eq!(fanout.state().runs[&run].counts.total, 6);

    for n in 0..6 {
        let d = runner::handle::<Cleanup>(&ctx, delivery(&fanout, n, 1), NOW).await?;
        assert!(retried(&d).is_empty(), "item {n} is not retried: {d}");
    }
    for region in ["us-east-1", "eu-west-1"] {
        assert_eq!(hub.live_images(region).len(), 1, "hub {region}");
        assert_eq!(spoke.live_images(region).len(), 1, "spoke {region}");
    }
    let state = fanout.state();
    let r = &state.runs[&run];
    assert_eq!(
        (r.counts.done, r.counts.failed, r.counts.remaining),
        (4, 2, 0)
    );
    assert_eq!(r.summaries, 1, "one summary");
    let failed: Vec<_> = r
        .records
        .values()
        .filter(|rec| rec.state == ItemState::Failed)
        .map(|rec| rec.account.to_string())
        .collect();
    assert_eq!(
        failed,
        vec![NO_ROLE, NO_ROLE],
        "the account without a role, both regions"
    );
    Ok(())
}

#[tokio::test]
async fn the_summary_is_published_once_with_the_run_counts(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, _spoke, fanout) = org();
    let ctx = Context::new(Arc::new(hub.clone()), config(&[]));
    let detail = runner::handle::<Cleanup>(&ctx, json!({}), NOW).await?;
    let run = detail["run"].as_str().ok_or("no run id")?.to_owned();
    for n in 0..6 {
        runner::handle::<Cleanup>(&ctx, delivery(&fanout, n, 1), NOW).await?;
    }
    // The last item delivered again: it changes nothing and sends no second summary.
    runner::handle::<Cleanup>(&ctx, delivery(&fanout, 5, 2), NOW).await?;
    let summaries: Vec<_> = hub
        .state()
        .reports
        .clone()
        .into_iter()
        .filter(|r| r.run.as_deref() == Some(run.as_str()) && r.metrics.contains_key("run_items"))
        .collect();
    assert_eq!(summaries.len(), 1, "exactly one summary");
    let m = &summaries[0].metrics;
    assert_eq!(
        (
            m["run_accounts"],
            m["run_regions"],
            m["run_items"],
            m["run_done"],
            m["run_failed"]
        ),
        (3.0, 2.0, 6.0, 4.0, 2.0)
    );
    assert_eq!(summaries[0].failed(), 2, "one line per failed item");
    Ok(())
}

#[tokio::test]
async fn a_redelivered_trigger_or_item_changes_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let (hub, _spoke, fanout) = org();
    let ctx = Context::new(Arc::new(hub.clone()), config(&[]));
    let schedule = json!({
        "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": HUB, "time": "2026-11-22T05:30:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:111111111111:rule/ami-lifecycle-cleanup"],
        "detail": {}
    });
    let first = runner::handle::<Cleanup>(&ctx, schedule.clone(), NOW).await?;
    let again = runner::handle::<Cleanup>(&ctx, schedule, NOW + Duration::minutes(3)).await?;
    assert_eq!(
        first["run"], again["run"],
        "the same schedule is the same run"
    );
    assert_eq!(again["counts"]["skipped"], 1, "{again}");
    assert_eq!(fanout.state().sent.len(), 6, "no item sent twice");

    runner::handle::<Cleanup>(&ctx, delivery(&fanout, 0, 1), NOW).await?;
    let deletions = hub.calls("DeregisterImage");
    let d = runner::handle::<Cleanup>(&ctx, delivery(&fanout, 0, 2), NOW).await?;
    assert_eq!(
        hub.calls("DeregisterImage"),
        deletions,
        "nothing done again"
    );
    assert!(retried(&d).is_empty());
    assert_eq!(d["counts"]["skipped"], 1, "{d}");
    let run = first["run"].as_str().ok_or("no run")?;
    assert_eq!(fanout.state().runs[run].counts.remaining, 5, "counted once");
    Ok(())
}

#[tokio::test]
async fn an_incomplete_item_goes_back_to_sqs_until_its_last_delivery(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, _spoke, fanout) = org();
    let ctx = Context::new(Arc::new(hub.clone()), config(&[]));
    let detail = runner::handle::<Cleanup>(&ctx, json!({}), NOW).await?;
    let run = detail["run"].as_str().ok_or("no run")?.to_owned();
    // No time left: the item stops before it starts.
    let late = ctx.clone().with_deadline(Deadline::after(
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    ));
    let d = runner::handle::<Cleanup>(&late, delivery(&fanout, 0, 1), NOW).await?;
    assert_eq!(retried(&d), vec!["m-0"], "handed back: {d}");
    assert_eq!(
        fanout.state().runs[&run].counts.remaining,
        6,
        "not recorded"
    );
    let d = runner::handle::<Cleanup>(&late, delivery(&fanout, 0, 3), NOW).await?;
    assert!(retried(&d).is_empty(), "the last delivery is recorded: {d}");
    let state = fanout.state();
    let rec = state.runs[&run]
        .records
        .values()
        .next()
        .ok_or("no record")?;
    assert_eq!(rec.state, ItemState::Deferred, "{rec:?}");
    Ok(())
}

#[tokio::test]
async fn a_ledger_that_cannot_be_written_hands_the_item_back(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, _spoke, fanout) = org();
    let ctx = Context::new(Arc::new(hub.clone()), config(&[]));
    runner::handle::<Cleanup>(&ctx, json!({}), NOW).await?;
    hub.fail(
        "TransactWriteItems",
        None,
        "ProvisionedThroughputExceededException",
        Some(1),
    );
    let d = runner::handle::<Cleanup>(&ctx, delivery(&fanout, 0, 1), NOW).await?;
    assert_eq!(retried(&d), vec!["m-0"], "{d}");
    let d = runner::handle::<Cleanup>(&ctx, delivery(&fanout, 0, 2), NOW).await?;
    assert!(retried(&d).is_empty(), "the redelivery records it: {d}");
    Ok(())
}

#[tokio::test]
async fn without_a_work_queue_the_accounts_run_in_one_invocation_as_before(
) -> Result<(), Box<dyn std::error::Error>> {
    let (hub, spoke, fanout) = org();
    let mut c = config(&[]);
    c.work_queue = None;
    c.run_ledger = None;
    let ctx = Context::new(Arc::new(hub.clone()), c);
    let detail = runner::handle::<Cleanup>(&ctx, json!({}), NOW).await?;
    assert_eq!(detail["counts"].get("queued"), None, "{detail}");
    assert!(fanout.state().sent.is_empty());
    assert_eq!(spoke.live_images("eu-west-1").len(), 1);
    Ok(())
}

#[test]
fn a_work_item_batch_is_read_with_its_message_ids_and_receive_counts() {
    let item = super::WorkItem {
        run: "cleanup/direct/x".to_owned(),
        item: "222222222222/us-east-1".to_owned(),
        function: "cleanup".to_owned(),
        account: crate::model::AccountId::parse(SPOKE).unwrap_or_else(|| panic!("id")),
        region: Some(crate::model::Region::new("us-east-1")),
        payload: json!({}),
        round: 0,
    };
    let event = json!({"Records": [{"messageId": "m", "body": item.body(),
        "attributes": {"ApproximateReceiveCount": "2"}}]});
    match crate::events::parse_trigger(&event) {
        Ok(crate::events::Trigger::WorkItems(batch)) => {
            assert_eq!(batch[0].message_id, "m");
            assert_eq!(batch[0].receive_count, 2);
            assert_eq!(batch[0].item, item);
        }
        other => panic!("{other:?}"),
    }
    let mixed = json!({"Records": [
        {"messageId": "a", "body": item.body()},
        {"messageId": "b", "body": "{\"continue\": {}}"}]});
    let e = crate::events::parse_trigger(&mixed)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("mixes work items"), "{e}");
}

#[test]
fn each_runner_splits_as_its_decisions_allow() {
    use crate::model::Region;
    use crate::runner::{CreateImage, Replicate, Runner, Share, Split};
    let mut c = config(&[]);
    let both = vec![Region::new("us-east-1"), Region::new("eu-west-1")];
    assert_eq!(
        Cleanup::split(&crate::cleanup::CleanupRequest::default(), &c),
        Some(Split::PerRegion(both.clone())),
        "cleanup: each region's plan is its own"
    );
    let reconcile = crate::replicate::Request::Reconcile;
    assert_eq!(
        Replicate::split(&reconcile, &c),
        Some(Split::PerRegion(both)),
        "replicate: per source region"
    );
    let eu = Region::new("eu-west-1");
    assert_eq!(
        Replicate::narrow(reconcile, &mut c, Some(&eu)),
        crate::replicate::Request::ReconcileIn(eu),
        "the item reconciles its region's sources, the config stays whole"
    );
    assert_eq!(c.regions.len(), 2);
    assert_eq!(
        CreateImage::split(&crate::create::Request::Reconcile, &c),
        Some(Split::PerAccount),
        "create-image: reboot groups may cross regions"
    );
    assert_eq!(
        Share::split(&crate::share::ShareRequest::Reconcile, &c),
        None,
        "share never fans out"
    );
}
