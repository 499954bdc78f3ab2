//! Benchmark 4: peak RSS of `amictl cleanup --dry-run` as the inventory grows.

use ami_core::report::Outcome;
use ami_sim::EmulatorClient;
use serde_json::{json, Value};

use crate::*;

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
        "4. peak RSS 50k / 5k",
        format!("x{growth:.2} for x10 images"),
        "flat (< x2)",
        Some(growth < 2.0),
    ));
    json_out["inventory_memory"] = json!({"points": points, "growth_50k_over_5k": growth});
    Ok(())
}
