//! Benchmark 5, the fan-out at scale (issue 18): one scheduled cleanup over an organization, fanned
//! out as one work item per (account, region) on the function's work queue and consumed by
//! a pool of the RELEASE cleanup binary, each under its own local Lambda Runtime API
//! ([`LambdaPool`]), fed by [`ami_sim::FanoutDriver`] (batch size 1, at most
//! `concurrency` at once, the queue's DLQ).
//!
//! Size (environment, defaults = the figure): `BENCH_FANOUT_ACCOUNTS` (50: the hub
//! and 49 spokes), `BENCH_FANOUT_IMAGES` (200 past retention per account and region; 3
//! regions), `BENCH_FANOUT_CONCURRENCY` (10).
//!
//! Ideal: EC2 throttles each account in each region with its own buckets, so items never
//! wait for each other's tokens; an item of `d` deletions needs `(d − 100 burst) / (5/s ×
//! scale)` (DeregisterImage's bucket), and `concurrency` items run at once:
//! `max(longest item, Σ items / concurrency)`. Lost / done twice are measured, not read
//! from reports: images past retention left in each account and region, DeregisterImage
//! calls beyond one per deleted image, ledger rows against items, summaries published.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ami_sim::{EmulatorClient, FanoutDriver, Invoke, Invoked, Org, WorkQueue};
use anyhow::{ensure, Context as _};
use serde_json::{json, Value};

use crate::runtime_api::{RuntimeApi, Seen};
use crate::{proc, row, Row, CLEANUP_REGIONS, LATENCY_MS, TIME_SCALE};

const HUB: &str = "123456789012";
const DEPLOYMENT: &str = "ami-lifecycle";
const EXTERNAL_ID: &str = "bench-fanout-external-id";
const HOME: &str = "us-east-1";
/// Images kept per account and region (RETAIN=count=1 over this many lineages).
const KEPT: u32 = 2;
/// The queue's maxReceiveCount and the functions' WORK_MAX_RECEIVES (the template's 3).
const MAX_RECEIVES: u32 = 3;
/// The Runtime API hands each invocation a 900 s deadline (the cleanup function's timeout).
const INVOCATION_LIMIT: Duration = Duration::from_secs(900);

/// The bench's size, from the environment.
struct Size {
    accounts: u32,
    images: u32,
    concurrency: usize,
}

impl Size {
    fn from_env() -> anyhow::Result<Self> {
        let get = |k: &str, default: u32| -> anyhow::Result<u32> {
            match std::env::var(k) {
                Ok(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("{k}={v:?}: expected a positive whole number")),
                _ => Ok(default),
            }
        };
        Ok(Self {
            accounts: get("BENCH_FANOUT_ACCOUNTS", 50)?,
            images: get("BENCH_FANOUT_IMAGES", 200)?,
            concurrency: get("BENCH_FANOUT_CONCURRENCY", 10)? as usize,
        })
    }
}

/// The hub first, then spokes 200000000001, … (12 digits).
fn accounts(n: u32) -> Vec<String> {
    std::iter::once(HUB.to_owned())
        .chain((1..n).map(|i| format!("{:012}", 200_000_000_000u64 + u64::from(i))))
        .collect()
}

/// Release function processes, each behind its own Runtime API: an invocation takes a free
/// one, hands it the event and waits for its response (one event at a time per process,
/// as one Lambda execution environment).
struct LambdaPool {
    free: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<RuntimeApi>>,
    back: tokio::sync::mpsc::Sender<RuntimeApi>,
    children: Mutex<Vec<Child>>,
}

impl LambdaPool {
    fn start(
        emu: &EmulatorClient,
        name: &str,
        env: &[(&str, String)],
        size: usize,
    ) -> anyhow::Result<Arc<Self>> {
        let binary = proc::binary(name)?;
        let (back, free) = tokio::sync::mpsc::channel(size);
        let mut children = Vec::new();
        for _ in 0..size {
            let api = RuntimeApi::start()?;
            let mut env = env.to_vec();
            env.extend(crate::functions::lambda_env(name, api.port));
            let child = proc::command(&binary, &emu.endpoint, &env)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            children.push(child);
            back.try_send(api).ok().context("pool channel full")?;
        }
        Ok(Arc::new(Self {
            free: tokio::sync::Mutex::new(free),
            back,
            children: Mutex::new(children),
        }))
    }

    async fn call(&self, event: Value) -> Result<Value, String> {
        let api = self
            .free
            .lock()
            .await
            .recv()
            .await
            .ok_or("the pool is closed")?;
        let (api, answer) = tokio::task::spawn_blocking(move || {
            api.push_event(&event);
            let started = Instant::now();
            let answer = loop {
                let left = INVOCATION_LIMIT.saturating_sub(started.elapsed());
                match api.wait(left) {
                    Some(Seen::Done { ok: true, body, .. }) => {
                        break serde_json::from_str(&body)
                            .map_err(|e| format!("response is not JSON ({e}): {body}"));
                    }
                    Some(Seen::Done {
                        ok: false, body, ..
                    }) => break Err(body),
                    Some(Seen::InitError(e)) => break Err(format!("init error: {e}")),
                    Some(_) => continue,
                    None => break Err("no response within the function's timeout".to_owned()),
                }
            };
            (api, answer)
        })
        .await
        .map_err(|e| format!("invocation thread: {e}"))?;
        let _ = self.back.send(api).await;
        answer
    }
}

impl Drop for LambdaPool {
    fn drop(&mut self) {
        if let Ok(children) = self.children.get_mut() {
            for c in children.iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

struct PoolInvoker(Arc<LambdaPool>);

impl Invoke for PoolInvoker {
    fn invoke(&self, event: Value) -> Invoked {
        let pool = Arc::clone(&self.0);
        Box::pin(async move { pool.call(event).await })
    }
}

/// Images `account` owns in `region`, not deregistered (paged).
async fn images_left(emu: &EmulatorClient, region: &str, account: &str) -> anyhow::Result<u64> {
    let ec2 = emu.ec2_as(region, account);
    let mut n = 0;
    let mut token = None;
    loop {
        let page = ec2
            .describe_images()
            .owners("self")
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .with_context(|| format!("DescribeImages {account} {region}"))?;
        n += page
            .images()
            .iter()
            .filter(|i| i.state().map(|s| s.as_str()) != Some("deregistered"))
            .count() as u64;
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(n),
        }
    }
}

pub async fn bench_fanout(
    emu: &EmulatorClient,
    json_out: &mut Value,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let size = Size::from_env()?;
    let accounts = accounts(size.accounts);
    let regions = CLEANUP_REGIONS;
    let items = accounts.len() * regions.len();
    eprintln!(
        "[5] fan-out: {} accounts x {} regions x {} images past retention, concurrency {}",
        accounts.len(),
        regions.len(),
        size.images,
        size.concurrency
    );
    emu.control("POST", "/_emulator/reset", None)?;
    let org = Org::new(HUB, DEPLOYMENT, EXTERNAL_ID, HOME);
    let members: Vec<(&str, String)> = accounts[1..]
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), format!("spoke-{}", i + 1)))
        .collect();
    let members: Vec<(&str, &str, &str)> = members
        .iter()
        .map(|(a, n)| (*a, n.as_str(), "Workloads"))
        .collect();
    org.seed(emu, &["Workloads"], &members)?;
    for a in &accounts[1..] {
        org.spoke_roles(emu, a, &["cleanup"]).await?;
    }
    let seeding = Instant::now();
    let seal = crate::seal_spec(emu)?;
    for a in &accounts {
        for r in regions {
            emu.control(
                "POST",
                "/_emulator/seed-images",
                Some(json!({
                    "region": r, "account": a, "count": size.images + KEPT, "lineages": KEPT,
                    "snapshots_per_image": 2, "slot_start": "2026-01-01T00:00:00Z",
                    "slot_step_seconds": 3600, "return_ids": false,
                    "tags": crate::managed_tags(),
                    "snapshot_tags": {"ami-lifecycle:managed-by": "ami-lifecycle"},
                    "seal": seal,
                })),
            )
            .with_context(|| format!("seeding {a} {r}"))?;
        }
    }
    let seed_seconds = seeding.elapsed().as_secs_f64();
    eprintln!("[5] seeded in {seed_seconds:.0} s");
    let queue = WorkQueue::create(
        emu,
        HOME,
        &format!("{DEPLOYMENT}-cleanup-work"),
        MAX_RECEIVES,
        5400,
    )
    .await?;
    let table = format!("{DEPLOYMENT}-runs");
    emu.ledger_table(HOME, &table).await?;
    let reports = emu
        .event_queue(HOME, json!({"source": ["ami-lifecycle"]}))
        .await?;
    let creds = org.hub_credentials(emu).await?;
    let env: Vec<(&str, String)> = vec![
        ("AWS_ACCESS_KEY_ID", creds.access_key_id().to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            creds.secret_access_key().to_owned(),
        ),
        (
            "AWS_SESSION_TOKEN",
            creds.session_token().unwrap_or_default().to_owned(),
        ),
        ("AMI_LIFECYCLE_REGIONS", regions.join(",")),
        ("RETAIN", "count=1".to_owned()),
        ("AMI_LIFECYCLE_ACCOUNTS", "org".to_owned()),
        ("SPOKE_EXTERNAL_ID", EXTERNAL_ID.to_owned()),
        ("WORK_QUEUE_URL", queue.url.clone()),
        ("RUN_LEDGER_TABLE", table.clone()),
        ("WORK_MAX_RECEIVES", MAX_RECEIVES.to_string()),
        ("AMI_LIFECYCLE_PACE_SCALE", TIME_SCALE.to_string()),
    ];
    let pool = LambdaPool::start(emu, "cleanup", &env, size.concurrency)?;
    emu.configure(json!({"buckets": true, "time_scale": TIME_SCALE, "latency_ms": LATENCY_MS}))?;
    emu.control("POST", "/_emulator/counters/reset", None)?;
    let emu_pid = proc::emulator_pid();
    let emu_cpu_before = emu_pid.and_then(proc::cpu_seconds);

    // The schedule's invocation: fans the run out (one item per account and region).
    let fanning = Instant::now();
    let fanned = pool
        .call(crate::functions::fixture(
            "tests/fixtures/events/scheduled-event-cleanup.json",
        )?)
        .await
        .map_err(|e| anyhow::anyhow!("the fanning invocation failed: {e}"))?;
    let fan_seconds = fanning.elapsed().as_secs_f64();
    eprintln!("[5] fanned out in {fan_seconds:.1} s; consuming");

    let stats = FanoutDriver::new(emu, HOME, &queue.url)
        .concurrency(size.concurrency)
        .timeout(Duration::from_secs(3600))
        .run(Arc::new(PoolInvoker(Arc::clone(&pool))))
        .await?;
    let emu_cpu = match (emu_pid.and_then(proc::cpu_seconds), emu_cpu_before) {
        (Some(after), Some(before)) => Some(after - before),
        _ => None,
    };
    drop(pool);
    let wall = stats.wall.as_secs_f64();
    // What the item invocations reported, summed by outcome, and a few lines that did not
    // end in a deletion (the figures below are measured; these say why, if they differ).
    let mut reported: BTreeMap<String, u64> = BTreeMap::new();
    let mut other_lines = Vec::new();
    for r in stats.responses() {
        for (outcome, n) in r["counts"].as_object().into_iter().flatten() {
            *reported.entry(outcome.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
        }
        for i in r["items"].as_array().into_iter().flatten() {
            if i["outcome"] != "deleted" && i["outcome"] != "kept" && other_lines.len() < 5 {
                other_lines.push(i.clone());
            }
        }
    }
    let errors: Vec<&String> = stats
        .log
        .iter()
        .filter_map(|i| i.response.as_ref().err())
        .take(3)
        .collect();
    eprintln!(
        "[5] consumed in {wall:.1} s: {} invocations, {} done, {} retried",
        stats.invocations, stats.done, stats.retried
    );

    // What happened, measured: counters first (the reads below take tokens too).
    let c = emu.counters()?;
    let action = |kind: &str, name: &str| -> u64 {
        crate::sum_region_counts(&c[kind])
            .get(name)
            .copied()
            .unwrap_or(0)
    };
    let dereg_accepted = action("calls", "DeregisterImage")
        .saturating_sub(action("throttled", "DeregisterImage"))
        .saturating_sub(action("injected", "DeregisterImage"));
    let throttled: u64 = crate::sum_region_counts(&c["throttled"]).values().sum();
    emu.configure(json!({"buckets": false, "latency_ms": 0}))?;
    let rows_read = emu.ledger_rows(HOME, &table).await?;
    let item_rows: Vec<&Value> = rows_read.iter().filter(|r| r["item"] != "#run").collect();
    let state_of = |item: &str| {
        item_rows
            .iter()
            .find(|r| r["item"] == item)
            .and_then(|r| r["state"].as_str())
            .unwrap_or("absent")
            .to_owned()
    };
    let mut deleted_per_item = BTreeMap::new();
    // Images past retention left in items the ledger calls done (lost), and in items it
    // calls deferred or failed (reported, for the next run).
    let (mut left_in_done, mut left_reported) = (0u64, 0u64);
    for a in &accounts {
        for r in regions {
            let item = format!("{a}/{r}");
            let left = images_left(emu, r, a).await?;
            let seeded = u64::from(size.images + KEPT);
            deleted_per_item.insert(item.clone(), seeded.saturating_sub(left));
            let past = left.saturating_sub(u64::from(KEPT));
            match state_of(&item).as_str() {
                "deferred" | "failed" => left_reported += past,
                _ => left_in_done += past,
            }
        }
    }
    let left_past_retention = left_in_done + left_reported;
    let deleted: u64 = deleted_per_item.values().sum();
    let run_rows: Vec<&Value> = rows_read.iter().filter(|r| r["item"] == "#run").collect();
    let mut states = BTreeMap::new();
    for r in &item_rows {
        *states
            .entry(r["state"].as_str().unwrap_or("?").to_owned())
            .or_insert(0u64) += 1;
    }
    let recorded = states.get("done").copied().unwrap_or(0)
        + states.get("deferred").copied().unwrap_or(0)
        + states.get("failed").copied().unwrap_or(0);
    let events = reports.wait_for(1, Duration::from_secs(5)).await?;
    let summaries: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail"]["metrics"].get("run_items").is_some())
        .collect();
    let summary_done = summaries
        .first()
        .and_then(|s| s["detail"]["metrics"]["run_done"].as_f64())
        .unwrap_or(-1.0);

    let lost = (items as u64).saturating_sub(recorded) + left_in_done;
    let twice = dereg_accepted.saturating_sub(deleted)
        + (item_rows.len() as u64).saturating_sub(items as u64)
        + (summaries.len() as u64).saturating_sub(1);

    let refill = 5.0 * TIME_SCALE;
    let per_item: Vec<f64> = deleted_per_item
        .values()
        .map(|&d| (d as f64 - 100.0).max(0.0) / refill)
        .collect();
    let longest = per_item.iter().copied().fold(0.0, f64::max);
    let ideal = longest.max(per_item.iter().sum::<f64>() / size.concurrency as f64);
    let ratio = if wall > 0.0 { ideal / wall } else { 0.0 };
    ensure!(run_rows.len() == 1, "ledger run rows: {run_rows:?}");

    json_out["fanout"] = json!({
        "generated": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?,
        "accounts": accounts.len(), "regions": regions, "items": items,
        "images_past_retention_per_item": size.images, "kept_per_item": KEPT,
        "concurrency": size.concurrency, "max_receives": MAX_RECEIVES,
        "time_scale": TIME_SCALE, "latency_ms": LATENCY_MS, "seed_seconds": seed_seconds,
        "fan_seconds": fan_seconds, "fanning_counts": fanned["counts"],
        "wall_seconds": wall, "ideal_seconds": ideal, "ideal_over_wall": ratio,
        "invocations": stats.invocations, "done": stats.done, "retried": stats.retried,
        "redelivered": stats.redelivered, "dead_lettered": stats.dead_lettered,
        "max_in_flight": stats.max_in_flight, "timed_out": stats.timed_out,
        "responses_without_batch_item_failures": stats.without_batch_item_failures,
        "deleted": deleted, "deregister_accepted": dereg_accepted, "throttled_by_emulator": throttled,
        "left_past_retention": left_past_retention, "left_in_done_items": left_in_done,
        "left_in_deferred_or_failed_items": left_reported, "ledger_item_rows": item_rows.len(),
        "ledger_states": states, "ledger_run_row": run_rows[0], "summaries": summaries.len(),
        "summary": summaries.first(), "lost": lost, "done_twice": twice,
        "emulator_cpu_seconds": emu_cpu, "reported_by_items": reported,
        "other_item_lines": other_lines, "invocation_errors": errors,
    });
    let shape = format!(
        "{} accounts x {} regions x {} images, concurrency {}",
        accounts.len(),
        regions.len(),
        size.images,
        size.concurrency
    );
    rows.push(row(
        format!("5. fan-out: {items} items, {deleted} images deleted ({shape}, buckets x{TIME_SCALE}, {LATENCY_MS} ms)"),
        format!(
            "wall {wall:.1} s through the queue (fanning invocation {fan_seconds:.1} s), ideal {ideal:.1} s ({:.0}%); emulator CPU {}",
            ratio * 100.0,
            emu_cpu.map(|c| format!("{c:.0} s ({:.0}% of one core)", 100.0 * c / wall)).unwrap_or_else(|| "?".into())
        ),
        "-",
        None,
    ));
    rows.push(row(
        "5. fan-out: invocations / items retried (returned or failed) / redelivered / to the DLQ",
        format!(
            "{} / {} / {} / {} (at most {} at once; {} responses without batchItemFailures)",
            stats.invocations,
            stats.retried,
            stats.redelivered,
            stats.dead_lettered,
            stats.max_in_flight,
            stats.without_batch_item_failures
        ),
        "-",
        None,
    ));
    rows.push(row(
        "5. fan-out: lost / done twice (measured: items without a ledger record or left with images past retention though recorded done; DeregisterImage calls vs images deleted, ledger rows vs items, summaries)",
        format!(
            "lost {lost} / done twice {twice} ({recorded}/{items} items recorded {states:?}; images past retention left: {left_in_done} in done items, {left_reported} in deferred/failed items (reported, for the next run); {dereg_accepted} deregistrations accepted for {deleted} images; {} summary published with run_done {summary_done})",
            summaries.len()
        ),
        "lost 0 / done twice 0",
        Some(lost == 0 && twice == 0 && summaries.len() == 1 && !stats.timed_out),
    ));
    Ok(())
}
