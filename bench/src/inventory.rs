//! Benchmark 4: peak RSS of `amictl cleanup --dry-run` as the inventory grows.
//!
//! Target (issue 19, flat memory): the peak at 50k images at most [`MAX_GROWTH`] times the
//! peak at 5k. The inventory holds a compact record per image and the report the first
//! items of each outcome; `--json` streams every item (`planned` counts the planned items
//! of the document this bench reads back, so it stays the whole plan).

use ami_core::report::Outcome;
use ami_sim::EmulatorClient;
use serde_json::{json, Value};

use crate::*;

/// The most the peak RSS may grow from the first inventory size to the last.
const MAX_GROWTH: f64 = 1.2;

pub(crate) async fn bench_inventory(
    emu: &EmulatorClient,
    json_out: &mut Value,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    emu.control("POST", "/_emulator/reset", None)?;
    let amictl = proc::binary("amictl")?;
    let mut seeded = 0;
    let mut points = Vec::new();
    for &size in &INVENTORY_SIZES {
        eprintln!("[4/4] inventory: seeding to {size} images");
        // Each 5,000 a set of 50 new lineages, as the cleanup bench.
        while seeded < size {
            seed(
                emu,
                "us-east-1",
                5_000,
                CLEANUP_LINEAGES,
                "2026-01-01T00:00:00Z",
            )?;
            seeded += 5_000;
        }
        let mut c = proc::command(
            &amictl,
            &emu.endpoint,
            &[
                ("AMI_LIFECYCLE_REGIONS", "us-east-1".to_owned()),
                ("RETAIN", CLEANUP_RETAIN.to_owned()),
                ("AMI_LIFECYCLE_PACE_SCALE", "0".to_owned()),
                // Skips the one DescribeImageAttribute per candidate (49,000 calls at
                // 50k, minutes of emulator time); the inventory and the report, which
                // are what hold memory, are the same.
                ("CLEANUP_SHARED", "true".to_owned()),
            ],
        );
        c.args(["--json", "cleanup", "--dry-run"]);
        let f = proc::run(c)?;
        eprintln!(
            "[4/4] (this bench process's own peak RSS: {})",
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| s
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .map(|v| v.trim().to_owned()))
                .unwrap_or_default()
        );
        let report = parse_report(&f.stdout);
        let planned = report
            .as_ref()
            .map(|r| r.count(Outcome::Planned))
            .unwrap_or(0);
        eprintln!(
            "[4/4] {size}: {:.1} MiB peak, {:.1} s, {planned} planned",
            f.peak_rss_kib as f64 / 1024.0,
            f.wall.as_secs_f64()
        );
        points.push(json!({"images": size, "peak_rss_mib": f.peak_rss_kib as f64 / 1024.0, "seconds": f.wall.as_secs_f64(),
                           "planned": planned, "exit_ok": f.success}));
    }
    let rss: Vec<f64> = points
        .iter()
        .map(|p| p["peak_rss_mib"].as_f64().unwrap_or(0.0))
        .collect();
    let growth =
        rss.last().copied().unwrap_or(0.0) / rss.first().copied().unwrap_or(1.0).max(0.001);
    for p in &points {
        rows.push(row(
            format!(
                "4. amictl cleanup --dry-run, {} images: peak RSS",
                p["images"]
            ),
            format!(
                "{:.1} MiB ({:.0} s, {} planned)",
                p["peak_rss_mib"].as_f64().unwrap_or(0.0),
                p["seconds"].as_f64().unwrap_or(0.0),
                p["planned"]
            ),
            "flat as the inventory grows",
            None,
        ));
    }
    rows.push(row(
        "4. peak RSS 50k / 5k (flat memory)",
        format!("x{growth:.2} for x10 images"),
        format!("≤ x{MAX_GROWTH}"),
        Some(growth <= MAX_GROWTH),
    ));
    json_out["inventory_memory"] = json!({"points": points, "growth_50k_over_5k": growth});
    Ok(())
}
