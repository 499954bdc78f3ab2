//! Benchmark 2: a replication burst against a low concurrent-copy cap.
//!
//! One `amictl replicate` run copies the burst: it learns the cap from one refused call
//! per destination and from there requests a copy only while a listing of the copies
//! pending there shows a slot free (issue 19), so the CopyImage bucket sets the pace.
//! Further runs follow only while a run leaves copies deferred. The rate is taken from
//! the start of the first run to the end of the last run that copied (listing and seal
//! checks included), against the bucket-limited ideal.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ami_core::report::Outcome;
use ami_sim::EmulatorClient;
use anyhow::Context as _;
use serde_json::{json, Value};

use crate::*;

pub(crate) async fn bench_burst(
    emu: &EmulatorClient,
    json_out: &mut Value,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    eprintln!(
        "[2/4] replication burst: {BURST_SOURCES} sources x {} destinations",
        BURST_DESTINATIONS.len()
    );
    emu.control("POST", "/_emulator/reset", None)?;
    // One lineage per source, all in the newest slot: every source is kept, so copied.
    emu.control(
        "POST",
        "/_emulator/seed-images",
        Some(json!({
            "region": "us-east-1", "count": BURST_SOURCES, "lineages": BURST_SOURCES, "snapshots_per_image": 2,
            "slot_start": "2026-11-22T03:00:00Z", "slot_step_seconds": 0, "return_ids": false,
            "tags": managed_tags(), "snapshot_tags": {"ami-lifecycle:managed-by": "ami-lifecycle"},
            "seal": seal_spec(emu)?,
        })),
    )?;
    emu.configure(json!({
        "buckets": true, "time_scale": TIME_SCALE, "latency_ms": LATENCY_MS,
        "copy_cap": BURST_COPY_CAP, "pending_seconds": BURST_PENDING_SECONDS,
    }))?;
    emu.control("POST", "/_emulator/counters/reset", None)?;
    let amictl = proc::binary("amictl")?;
    let started = Instant::now();
    let mut rounds = Vec::new();
    let mut copied = 0usize;
    let mut deferred_limit = 0usize;
    let mut deferred = 0usize;
    let mut failed = 0usize;
    let want = u64::from(BURST_SOURCES) * BURST_DESTINATIONS.len() as u64;
    let mut last_copy_at = None;
    for round in 1..=40 {
        let mut c = proc::command(
            &amictl,
            &emu.endpoint,
            &[
                ("AMI_LIFECYCLE_REGIONS", "us-east-1".to_owned()),
                ("REPLICA_REGIONS", BURST_DESTINATIONS.join(",")),
                ("AMI_LIFECYCLE_PACE_SCALE", TIME_SCALE.to_string()),
            ],
        );
        c.args(["--json", "replicate"]);
        let f = proc::run(c)?;
        let report = parse_report(&f.stdout).context("amictl replicate printed no JSON report")?;
        let n_copied = report.count(Outcome::Copied) + report.count(Outcome::Created);
        let n_limit = report
            .items
            .iter()
            .filter(|i| {
                i.outcome == Outcome::Deferred && i.reason.contains("ResourceLimitExceeded")
            })
            .count();
        copied += n_copied;
        deferred_limit += n_limit;
        deferred += report.count(Outcome::Deferred);
        failed += report.count(Outcome::Failed);
        if n_copied > 0 {
            last_copy_at = Some(started.elapsed());
        }
        rounds.push(json!({"round": round, "seconds": f.wall.as_secs_f64(), "copied": n_copied,
            "deferred_resource_limit": n_limit, "deferred": report.count(Outcome::Deferred),
            "failed": report.count(Outcome::Failed), "peak_rss_mib": f.peak_rss_kib as f64 / 1024.0}));
        eprintln!("[2/4] round {round}: {n_copied} copied, {n_limit} deferred (ResourceLimitExceeded), {:.1} s", f.wall.as_secs_f64());
        // Another run only for what this one left deferred.
        if report.count(Outcome::Deferred) == 0 || (copied as u64 >= want && n_copied == 0) {
            break;
        }
    }
    // Let the last copies finish, then count the replicas.
    std::thread::sleep(Duration::from_secs_f64(BURST_PENDING_SECONDS + 0.5));
    let mut present = BTreeMap::new();
    for d in BURST_DESTINATIONS {
        present.insert(
            d.to_owned(),
            count_images(
                emu,
                d,
                Some("ami-lifecycle:source-image"),
                Some("available"),
            )
            .await?,
        );
    }
    let all_present = present.values().all(|&n| n == u64::from(BURST_SOURCES));
    let c = counters(emu)?;
    let copy_calls = sum_region_counts(&c["calls"])
        .get("CopyImage")
        .copied()
        .unwrap_or(0);
    let throttled: u64 = sum_region_counts(&c["throttled"]).values().sum();
    // Every call of the run per copy made, by action (throttled retries included): what
    // each copy costs besides its CopyImage.
    let per_copy: BTreeMap<String, f64> = sum_region_counts(&c["calls"])
        .into_iter()
        .map(|(a, n)| (a, n as f64 / copied.max(1) as f64))
        .collect();
    let copy_throttled = sum_region_counts(&c["throttled"])
        .get("CopyImage")
        .copied()
        .unwrap_or(0);
    // Calls neither throttled nor making a copy: refused for the cap (each spends a
    // bucket token; the run then waits for a slot).
    let refused = copy_calls.saturating_sub(copied as u64 + copy_throttled);
    let copy_secs = last_copy_at.unwrap_or_default().as_secs_f64();
    let per_dest_rate = if copy_secs > 0.0 {
        copied as f64 / BURST_DESTINATIONS.len() as f64 / copy_secs
    } else {
        0.0
    };
    let bucket_pace = 1.0 * TIME_SCALE;
    let ideal = (f64::from(BURST_SOURCES) - 100.0).max(0.0) / bucket_pace;
    let share = if copy_secs > 0.0 {
        ideal / copy_secs
    } else {
        0.0
    };
    json_out["replication_burst"] = json!({
        "sources": BURST_SOURCES, "destinations": BURST_DESTINATIONS, "copy_cap": BURST_COPY_CAP,
        "pending_seconds": BURST_PENDING_SECONDS, "time_scale": TIME_SCALE, "latency_ms": LATENCY_MS,
        "rounds": rounds, "copied": copied, "copy_image_calls": copy_calls, "throttled_by_emulator": throttled,
        "deferred_resource_limit": deferred_limit, "deferred": deferred, "copy_calls_without_copy": refused,
        "failed": failed, "replicas_available": present,
        "all_present": all_present, "seconds_to_last_copy": copy_secs,
        "copies_per_second_per_destination": per_dest_rate, "calls_per_copy": per_copy, "bucket_pace_per_destination": bucket_pace,
        "ideal_seconds_per_destination": ideal, "share_of_ideal": share,
    });
    let runs = if rounds.len() == 1 {
        "one amictl replicate run".to_owned()
    } else {
        format!("{} amictl replicate runs", rounds.len())
    };
    rows.push(row(
        format!("2. burst: copies issued per s per destination ({copied} copies, {runs})"),
        format!("{per_dest_rate:.2}/s over {copy_secs:.1} s = {:.0}% of the bucket pace (bucket {bucket_pace:.0}/s after a 100 burst; ideal {ideal:.0} s)", share * 100.0),
        ">= 97% of the bucket pace",
        Some(share >= 0.97),
    ));
    rows.push(row(
        format!("2. burst: the concurrent-copy cap (copy_cap {BURST_COPY_CAP}, copies pending {BURST_PENDING_SECONDS:.0} s)"),
        format!("{refused} CopyImage calls refused (ResourceLimitExceeded; the run waited for a slot), {deferred} deferred to a later run ({deferred_limit} at the cap), {failed} failed, {throttled} throttled"),
        "none lost",
        Some(failed == 0 && all_present),
    ));
    rows.push(row(
        "2. burst: calls per copy made, by action (the whole run: listings, polls for free slots, seals, the end-of-run check)",
        per_copy
            .iter()
            .map(|(a, n)| format!("{a} {n:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        "-",
        None,
    ));
    rows.push(row(
        "2. burst: every replica present (available) at the end",
        present
            .iter()
            .map(|(r, n)| format!("{r} {n}/{BURST_SOURCES}"))
            .collect::<Vec<_>>()
            .join(", "),
        "all",
        Some(all_present),
    ));
    Ok(())
}
