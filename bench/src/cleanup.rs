//! Benchmark 1: cleanup at scale under EC2's token buckets (time-scaled) and 20 ms latency.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ami_core::report::Outcome;
use ami_sim::EmulatorClient;
use serde_json::{json, Value};

use crate::*;

pub(crate) async fn bench_cleanup(
    emu: &EmulatorClient,
    json_out: &mut Value,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    eprintln!(
        "[1/4] cleanup at scale: seeding {CLEANUP_IMAGES} images x {} regions",
        CLEANUP_REGIONS.len()
    );
    emu.control("POST", "/_emulator/reset", None)?;
    for r in CLEANUP_REGIONS {
        seed(
            emu,
            r,
            CLEANUP_IMAGES,
            CLEANUP_LINEAGES,
            "2026-01-01T00:00:00Z",
        )?;
    }
    emu.configure(json!({"buckets": true, "time_scale": TIME_SCALE, "latency_ms": LATENCY_MS}))?;
    emu.control("POST", "/_emulator/counters/reset", None)?;
    let amictl = proc::binary("amictl")?;
    let cmd = {
        let mut c = proc::command(
            &amictl,
            &emu.endpoint,
            &[
                ("AMI_LIFECYCLE_REGIONS", CLEANUP_REGIONS.join(",")),
                ("RETAIN", CLEANUP_RETAIN.to_owned()),
                ("AMI_LIFECYCLE_PACE_SCALE", TIME_SCALE.to_string()),
            ],
        );
        c.args(["--json", "cleanup"]);
        c
    };
    // Watch the emulator's DeregisterImage counter to time the deletion phase.
    let watch_emu = emu.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let watcher = std::thread::spawn(move || {
        let started = Instant::now();
        let (mut first, mut last, mut last_n) = (None, None, 0u64);
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(c) = watch_emu.counters() {
                let n = sum_region_counts(&c["calls"])
                    .get("DeregisterImage")
                    .copied()
                    .unwrap_or(0);
                if n > 0 && first.is_none() {
                    first = Some(started.elapsed());
                }
                if n > last_n {
                    last = Some(started.elapsed());
                    last_n = n;
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        (first, last)
    });
    eprintln!(
        "[1/4] amictl cleanup over {} regions (buckets x{TIME_SCALE}, {LATENCY_MS} ms latency)",
        CLEANUP_REGIONS.len()
    );
    let emu_pid = proc::emulator_pid();
    let emu_cpu_before = emu_pid.and_then(proc::cpu_seconds);
    let finished = proc::run(cmd)?;
    let emu_cpu = match (emu_pid.and_then(proc::cpu_seconds), emu_cpu_before) {
        (Some(after), Some(before)) => Some(after - before),
        _ => None,
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (first_dereg, last_dereg) = watcher.join().unwrap_or((None, None));

    let c = counters(emu)?;
    let calls = sum_region_counts(&c["calls"]);
    let throttled: u64 = sum_region_counts(&c["throttled"]).values().sum();
    let mut deleted_per_region = BTreeMap::new();
    for r in CLEANUP_REGIONS {
        let left = count_images(emu, r, None, None).await?;
        deleted_per_region.insert(r.to_owned(), u64::from(CLEANUP_IMAGES) - left);
    }
    let deleted: u64 = deleted_per_region.values().sum();
    let report = parse_report(&finished.stdout);
    let failed = report
        .as_ref()
        .map(|r| r.count(Outcome::Failed))
        .unwrap_or(0);
    let deferred = report
        .as_ref()
        .map(|r| r.count(Outcome::Deferred))
        .unwrap_or(0);
    let throttle_failures = report
        .as_ref()
        .map(|r| {
            r.items
                .iter()
                .filter(|i| {
                    matches!(i.outcome, Outcome::Failed | Outcome::Deferred)
                        && i.reason.contains("RequestLimitExceeded")
                })
                .count()
        })
        .unwrap_or(0);
    let (burst, refill) = (100.0, 5.0 * TIME_SCALE);
    let ideal = deleted_per_region
        .values()
        .map(|&d| (d as f64 - burst).max(0.0) / refill)
        .fold(0.0, f64::max);
    let wall = finished.wall.as_secs_f64();
    let ratio = if wall > 0.0 { ideal / wall } else { 0.0 };
    let phase = match (first_dereg, last_dereg) {
        (Some(a), Some(b)) if b > a => Some((b - a).as_secs_f64()),
        _ => None,
    };
    let per_image: BTreeMap<String, f64> = calls
        .iter()
        .map(|(a, n)| {
            (
                a.clone(),
                if deleted > 0 {
                    *n as f64 / deleted as f64
                } else {
                    0.0
                },
            )
        })
        .collect();
    let mutating_calls: u64 = calls
        .iter()
        .filter(|(a, _)| is_mutating(a))
        .map(|(_, n)| *n)
        .sum();
    // The emulator counts a call before its bucket check: a throttled call (rejected,
    // no effect, retried by the SDK) is in `calls` too.
    let throttled_mutating: u64 = sum_region_counts(&c["throttled"])
        .iter()
        .filter(|(a, _)| is_mutating(a))
        .map(|(_, n)| *n)
        .sum();
    let accepted_per_image = if deleted > 0 {
        (mutating_calls - throttled_mutating.min(mutating_calls)) as f64 / deleted as f64
    } else {
        f64::INFINITY
    };
    let mutating_per_image = if deleted > 0 {
        mutating_calls as f64 / deleted as f64
    } else {
        f64::INFINITY
    };
    json_out["cleanup_at_scale"] = json!({
        "regions": CLEANUP_REGIONS, "images_per_region": CLEANUP_IMAGES, "snapshots_per_image": 2,
        "lineages_per_region": CLEANUP_LINEAGES, "retain": CLEANUP_RETAIN,
        "time_scale": TIME_SCALE, "latency_ms": LATENCY_MS, "pace_scale": TIME_SCALE,
        "exit_ok": finished.success, "wall_seconds": wall, "ideal_seconds": ideal, "ideal_over_wall": ratio,
        "deregistration_phase_seconds": phase, "deleted": deleted, "deleted_per_region": deleted_per_region,
        "calls": calls, "calls_per_deleted_image": per_image, "mutating_calls_per_deleted_image": mutating_per_image, "accepted_mutating_calls_per_deleted_image": accepted_per_image,
        "throttled_by_emulator": throttled, "report_failed": failed, "report_deferred": deferred,
        "failures_or_deferrals_from_throttling": throttle_failures,
        "amictl_peak_rss_mib": finished.peak_rss_kib as f64 / 1024.0,
        "amictl_cpu_seconds": finished.cpu_seconds,
        "emulator_cpu_seconds": emu_cpu,
    });
    let action_list = per_image
        .iter()
        .map(|(a, v)| format!("{a} {v:.3}"))
        .collect::<Vec<_>>()
        .join(", ");
    rows.push(row(
        format!("1. cleanup: {} images deleted ({} regions x {CLEANUP_IMAGES}, buckets x{TIME_SCALE}, {LATENCY_MS} ms)", deleted, CLEANUP_REGIONS.len()),
        format!("wall {wall:.1} s, ideal {ideal:.1} s{}", phase.map(|p| format!(", deregistration phase {p:.1} s")).unwrap_or_default()),
        "-",
        None,
    ));
    rows.push(row(
        "1. cleanup: CPU used during the run (emulator, one Python process / amictl)",
        format!(
            "emulator {} ({}), amictl {:.1} s",
            emu_cpu
                .map(|c| format!("{c:.0} s"))
                .unwrap_or_else(|| "?".into()),
            emu_cpu
                .map(|c| format!("{:.0}% of one core", 100.0 * c / wall))
                .unwrap_or_default(),
            finished.cpu_seconds
        ),
        "emulator < 50% of one core",
        // The emulator must not be what limits the rate: under half a core over the run.
        emu_cpu.filter(|_| wall > 0.0).map(|c| c / wall < 0.5),
    ));
    rows.push(row(
        "1. cleanup: rate vs bucket-limited ideal (ideal / wall)",
        format!("{:.0}%", ratio * 100.0),
        ">= 97%",
        Some(ratio >= 0.97),
    ));
    rows.push(row(
        "1. cleanup: mutating calls per deleted image",
        format!(
            "{accepted_per_image:.4} accepted, {mutating_per_image:.4} sent (throttled retries included; all calls per image: {action_list})"
        ),
        "<= 1",
        Some(accepted_per_image <= 1.0 + 1e-9),
    ));
    rows.push(row(
        "1. cleanup: throttling errors received / failures from throttling",
        format!("{throttled} received, {throttle_failures} items failed or deferred by it ({failed} failed, {deferred} deferred in all)"),
        "0 throttled responses, 0 failures",
        // Client pacing (first attempts and retries alike) keeps inside EC2's buckets: a
        // single throttled response means the client's count ran ahead of EC2's.
        Some(throttled == 0 && throttle_failures == 0 && failed == 0 && finished.success),
    ));
    Ok(())
}
