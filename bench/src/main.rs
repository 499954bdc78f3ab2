//! `make bench`: the suite's benchmarks against local emulators this binary starts itself.
//!
//! 1. cleanup at scale under EC2's token buckets (time-scaled) and 20 ms latency;
//! 2. a replication burst with a low concurrent-copy cap;
//! 3. each function binary under a local Lambda Runtime API ([`runtime_api`]);
//! 4. `amictl cleanup --dry-run` peak RSS over 5k / 20k / 50k images;
//! 5. the fan-out of issue 18: a scheduled cleanup over an organization through the work
//!    queue, consumed by a pool of cleanup functions ([`fanout`]).
//!
//! Everything measured runs the RELEASE binaries (`target/release/{amictl,cleanup,…}`,
//! `BENCH_BIN_DIR` to override); this orchestrator only seeds, starts and times them.
//! Results: `bench/results/latest.json` and `latest.md` (the table is also printed).

mod fanout;
mod proc;
mod runtime_api;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ami_core::report::{Outcome, RunReport};
use ami_sim::{Emulator, EmulatorClient};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// The emulator's bucket time scale, the same for every run (see README in bench/).
const TIME_SCALE: f64 = 4.0;
const LATENCY_MS: u64 = 20;
const CLEANUP_REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];
const CLEANUP_IMAGES: u32 = 5_000;
const CLEANUP_LINEAGES: u32 = 50;
const CLEANUP_RETAIN: &str = "count=2";
const BURST_SOURCES: u32 = 500;
const BURST_DESTINATIONS: [&str; 3] = ["us-west-2", "eu-west-1", "ap-southeast-2"];
const BURST_COPY_CAP: u32 = 50;
const BURST_PENDING_SECONDS: f64 = 10.0;
const INVENTORY_SIZES: [u32; 3] = [5_000, 20_000, 50_000];
const MIB: f64 = 1024.0 * 1024.0;

/// One line of the table.
struct Row {
    figure: String,
    measured: String,
    target: String,
    met: Option<bool>,
}

fn row(
    figure: impl Into<String>,
    measured: impl Into<String>,
    target: impl Into<String>,
    met: Option<bool>,
) -> Row {
    Row {
        figure: figure.into(),
        measured: measured.into(),
        target: target.into(),
        met,
    }
}

fn managed_tags() -> Value {
    json!({
        "ami-lifecycle:managed-by": "ami-lifecycle",
        "ami-lifecycle:source-instance": "i-{lineage:017x}",
        "ami-lifecycle:schedule": "daily",
        "ami-lifecycle:slot": "{slot}",
    })
}

/// Seeded images are sealed as create-image seals them (with the deployment's seal key in
/// us-east-1, made here after each emulator reset): otherwise every function would find
/// only `unsealed` images and the figures would measure nothing.
fn seal_spec(emu: &EmulatorClient) -> anyhow::Result<Value> {
    let key = emu.seal_key("us-east-1", "ami-lifecycle")?;
    Ok(json!({"deployment": "ami-lifecycle", "key": key, "key_region": "us-east-1"}))
}

/// Seeds `count` managed images in `region` in chunks (each answer well under the
/// harness's 30 s read timeout).
fn seed(
    emu: &EmulatorClient,
    region: &str,
    count: u32,
    lineages: u32,
    slot_start: &str,
) -> anyhow::Result<()> {
    let mut done = 0;
    while done < count {
        let n = (count - done).min(5_000);
        // Lineage numbering continues across chunks: image i of the chunk is done+i overall.
        let tags = managed_tags()
            .to_string()
            .replace("{lineage:017x}", &format!("{{lineage:017x}}-{done}"));
        emu.control(
            "POST",
            "/_emulator/seed-images",
            Some(json!({
                "region": region, "count": n, "lineages": lineages.min(n), "snapshots_per_image": 2,
                "slot_start": slot_start, "slot_step_seconds": 3600, "return_ids": false,
                "tags": serde_json::from_str::<Value>(&tags)?,
                "snapshot_tags": {"ami-lifecycle:managed-by": "ami-lifecycle"},
                "seal": seal_spec(emu)?,
            })),
        )?;
        done += n;
    }
    Ok(())
}

fn counters(emu: &EmulatorClient) -> anyhow::Result<Value> {
    emu.counters()
}

fn sum_region_counts(v: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Some(regions) = v.as_object() {
        for actions in regions.values() {
            if let Some(actions) = actions.as_object() {
                for (a, n) in actions {
                    *out.entry(a.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
                }
            }
        }
    }
    out
}

fn is_mutating(action: &str) -> bool {
    !(action.starts_with("Describe") || action.starts_with("Get") || action.starts_with("List"))
}

/// Images in `region` (owned by the default account), optionally only those with `tag_key`.
async fn count_images(
    emu: &EmulatorClient,
    region: &str,
    tag_key: Option<&str>,
    state: Option<&str>,
) -> anyhow::Result<u64> {
    let ec2 = emu.ec2(region);
    let mut n = 0;
    let mut token = None;
    loop {
        let mut req = ec2
            .describe_images()
            .owners("self")
            .max_results(1000)
            .include_disabled(true);
        if let Some(k) = tag_key {
            req = req.filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("tag-key")
                    .values(k)
                    .build(),
            );
        }
        if let Some(t) = token {
            req = req.next_token(t);
        }
        let page = req
            .send()
            .await
            .with_context(|| format!("DescribeImages in {region}"))?;
        n += page
            .images()
            .iter()
            .filter(|i| state.is_none_or(|s| i.state().map(|x| x.as_str()) == Some(s)))
            .count() as u64;
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(n),
        }
    }
}

fn parse_report(stdout: &str) -> Option<RunReport> {
    serde_json::from_str(stdout.trim()).ok()
}

// --- 1. cleanup at scale -----------------------------------------------------------

async fn bench_cleanup(
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
    let emu_pid = proc::emulator_pid(emu.port);
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
        "-",
        None,
    ));
    rows.push(row(
        "1. cleanup: rate vs bucket-limited ideal (ideal / wall)",
        format!("{:.0}%", ratio * 100.0),
        ">= 90%",
        Some(ratio >= 0.9),
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
        "0 failures",
        Some(throttle_failures == 0 && failed == 0 && finished.success),
    ));
    Ok(())
}

// --- 2. replication burst ------------------------------------------------------------

async fn bench_burst(
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
        failed += report.count(Outcome::Failed);
        if n_copied > 0 {
            last_copy_at = Some(started.elapsed());
        }
        rounds.push(json!({"round": round, "seconds": f.wall.as_secs_f64(), "copied": n_copied,
            "deferred_resource_limit": n_limit, "deferred": report.count(Outcome::Deferred),
            "failed": report.count(Outcome::Failed), "peak_rss_mib": f.peak_rss_kib as f64 / 1024.0}));
        eprintln!("[2/4] round {round}: {n_copied} copied, {n_limit} deferred (ResourceLimitExceeded), {:.1} s", f.wall.as_secs_f64());
        if copied as u64 >= want && n_copied == 0 {
            break;
        }
        if n_copied == 0 && report.count(Outcome::Deferred) == 0 {
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
    let copy_secs = last_copy_at.unwrap_or_default().as_secs_f64();
    let per_dest_rate = if copy_secs > 0.0 {
        copied as f64 / BURST_DESTINATIONS.len() as f64 / copy_secs
    } else {
        0.0
    };
    let bucket_pace = 1.0 * TIME_SCALE;
    let ideal = (f64::from(BURST_SOURCES) - 100.0).max(0.0) / bucket_pace;
    json_out["replication_burst"] = json!({
        "sources": BURST_SOURCES, "destinations": BURST_DESTINATIONS, "copy_cap": BURST_COPY_CAP,
        "pending_seconds": BURST_PENDING_SECONDS, "time_scale": TIME_SCALE, "latency_ms": LATENCY_MS,
        "rounds": rounds, "copied": copied, "copy_image_calls": copy_calls, "throttled_by_emulator": throttled,
        "deferred_resource_limit": deferred_limit, "failed": failed, "replicas_available": present,
        "all_present": all_present, "seconds_to_last_copy": copy_secs,
        "copies_per_second_per_destination": per_dest_rate, "bucket_pace_per_destination": bucket_pace,
        "ideal_seconds_per_destination": ideal,
    });
    rows.push(row(
        format!("2. burst: copies issued per s per destination ({} copies, {} rounds)", copied, rounds.len()),
        format!("{per_dest_rate:.2}/s over {copy_secs:.1} s (bucket pace {bucket_pace:.0}/s after a 100 burst; ideal {ideal:.0} s)"),
        "at the CopyImage bucket's pace",
        Some(copy_secs > 0.0 && ideal / copy_secs >= 0.9),
    ));
    rows.push(row(
        format!("2. burst: ResourceLimitExceeded deferrals (copy_cap {BURST_COPY_CAP})"),
        format!("{deferred_limit} deferred, {failed} failed, {throttled} throttled"),
        "deferred, none lost",
        Some(failed == 0),
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

// --- 3. functions under a Lambda Runtime API -----------------------------------------

fn fixture(path: &str) -> anyhow::Result<Value> {
    let p = ami_sim::repo_root().join(path);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    Ok(serde_json::from_str(&text)?)
}

struct LambdaRun {
    ready_ms: f64,
    handler_ms: f64,
    peak_rss_mib: f64,
    ok: bool,
    response: String,
}

/// The variables Lambda sets for function `name`, its Runtime API on `port`.
fn lambda_env(name: &str, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("ami-lifecycle-{name}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/ami-lifecycle-{name}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
    ]
}

fn run_lambda(
    emu: &EmulatorClient,
    name: &str,
    env: &[(&str, String)],
    event: &Value,
) -> anyhow::Result<LambdaRun> {
    let api = runtime_api::RuntimeApi::start()?;
    let binary = proc::binary(name)?;
    let mut env: Vec<(&str, String)> = env.to_vec();
    env.extend(lambda_env(name, api.port));
    let mut cmd = proc::command(&binary, &emu.endpoint, &env);
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let result = (|| {
        let ready = loop {
            match api.wait(Duration::from_secs(30)) {
                Some(runtime_api::Seen::Next(at)) => break at.duration_since(started),
                Some(runtime_api::Seen::InitError(body)) => bail!("{name}: init error {body}"),
                Some(_) => continue,
                None => bail!("{name}: no `next` request within 30 s"),
            }
        };
        api.push_event(event);
        let mut delivered = None;
        loop {
            match api.wait(Duration::from_secs(900)) {
                Some(runtime_api::Seen::Delivered(at)) => delivered = Some(at),
                Some(runtime_api::Seen::Done { at, ok, body, .. }) => {
                    let handler = at.duration_since(delivered.unwrap_or(at));
                    // The runtime asks for the next event once the response is posted: the
                    // peak RSS of the whole invocation is in VmHWM now.
                    let _ = api.wait(Duration::from_secs(2));
                    let rss = proc::vm_hwm_kib(&child).unwrap_or(0);
                    return Ok(LambdaRun {
                        ready_ms: ready.as_secs_f64() * 1000.0,
                        handler_ms: handler.as_secs_f64() * 1000.0,
                        peak_rss_mib: rss as f64 / 1024.0,
                        ok,
                        response: body.chars().take(300).collect(),
                    });
                }
                Some(runtime_api::Seen::InitError(body)) => bail!("{name}: init error {body}"),
                Some(runtime_api::Seen::Next(_)) => continue,
                None => bail!("{name}: no response within 900 s"),
            }
        }
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn zipped_sizes() -> BTreeMap<String, Option<u64>> {
    let root = ami_sim::repo_root();
    let python = ["/.venv/tools/bin/python", "/.venv/emulator/bin/python"]
        .iter()
        .map(|p| PathBuf::from(format!("{}{p}", root.display())))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9)\ni=zipfile.ZipInfo('bootstrap',date_time=(1980,1,1,0,0,0))\ni.external_attr=0o755<<16\ni.compress_type=zipfile.ZIP_DEFLATED\nz.writestr(i,open(sys.argv[1],'rb').read())\nz.close()\nprint(len(b.getvalue()))";
    let mut out = BTreeMap::new();
    for (name, fun) in [
        ("create-image", "CreateImageFunction"),
        ("replicate", "ReplicateFunction"),
        ("share", "ShareFunction"),
        ("cleanup", "CleanupFunction"),
        ("publish", "PublishFunction"),
    ] {
        let p = root.join(".aws-sam/build").join(fun).join("bootstrap");
        let size = if p.exists() {
            std::process::Command::new(&python)
                .args(["-c", script])
                .arg(&p)
                .output()
                .ok()
                .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        } else {
            None
        };
        out.insert(name.to_owned(), size);
    }
    out
}

async fn bench_functions(
    emu: &EmulatorClient,
    json_out: &mut Value,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    eprintln!("[3/4] function binaries under a local Lambda Runtime API");
    let sizes = zipped_sizes();
    let mut results = serde_json::Map::new();
    let base_env = |extra: &[(&str, &str)]| -> Vec<(&'static str, String)> {
        let mut v: Vec<(&'static str, String)> = vec![
            ("AMI_LIFECYCLE_REGIONS", "us-east-1".to_owned()),
            ("AMI_LIFECYCLE_PACE_SCALE", "0".to_owned()),
        ];
        for (k, val) in extra {
            let k: &'static str = Box::leak(k.to_string().into_boxed_str());
            v.push((k, (*val).to_owned()));
        }
        v
    };
    for name in ["create-image", "replicate", "share", "cleanup", "publish"] {
        emu.control("POST", "/_emulator/reset", None)?;
        seal_spec(emu)?; // the seal key the functions' SEAL_KEY names

        let (env, event, what) = match name {
            "create-image" => {
                for _ in 0..3 {
                    emu.launch_instance(
                        "us-east-1",
                        &[("ami-lifecycle:schedule", "daily")],
                        &["/dev/sdf"],
                    )
                    .await?;
                }
                (
                    base_env(&[]),
                    fixture("tests/fixtures/events/scheduled-event.json")?,
                    "daily schedule, 3 instances",
                )
            }
            "replicate" | "share" => {
                let tags = if name == "share" {
                    json!({"ami-lifecycle:managed-by": "ami-lifecycle", "ami-lifecycle:share-with": "111122223333"})
                } else {
                    managed_tags()
                };
                let v = emu.control(
                    "POST",
                    "/_emulator/seed-images",
                    Some(json!({"region": "us-east-1", "count": 1, "tags": tags, "slot_start": "2026-11-22T03:00:00Z", "seal": seal_spec(emu)?})),
                )?;
                let id = v["image_ids"][0].as_str().context("seeded id")?.to_owned();
                if name == "replicate" {
                    let mut e = fixture("tests/fixtures/events/ami-state-change-available.json")?;
                    e["detail"]["ImageId"] = json!(id);
                    e["resources"] = json!([format!("arn:aws:ec2:us-east-1::image/{id}")]);
                    (
                        base_env(&[("REPLICA_REGIONS", "us-west-2,eu-west-1")]),
                        e,
                        "available event, 2 destinations",
                    )
                } else {
                    let mut e = fixture("tests/fixtures/events/tag-change-on-image.json")?;
                    e["resources"] =
                        json!([format!("arn:aws:ec2:us-east-1:123456789012:image/{id}")]);
                    e["detail"]["tags"] = tags;
                    (
                        base_env(&[("SHARE_ALLOWED", "111122223333")]),
                        e,
                        "tag change, 1 account",
                    )
                }
            }
            "publish" => {
                // A sealed image of a named lineage, made as create-image makes it: the
                // event publishes it (names, images, parameters, templates, one write).
                let instance = emu
                    .launch_instance(
                        "us-east-1",
                        &[("ami-lifecycle:schedule", "daily"), ("Name", "web-1")],
                        &[],
                    )
                    .await?;
                let name = format!("ami-lifecycle/{instance}/daily/20261122T0300Z");
                let tags: Vec<(String, String)> = [
                    ("ami-lifecycle:managed-by", "ami-lifecycle"),
                    ("ami-lifecycle:source-instance", instance.as_str()),
                    ("ami-lifecycle:schedule", "daily"),
                    ("ami-lifecycle:slot", "2026-11-22T03:00:00Z"),
                    ("ami-lifecycle:consistency", "rebooted"),
                ]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
                let sealed = emu
                    .sealed_tags("us-east-1", "ami-lifecycle", "us-east-1", &name, &tags)
                    .await?;
                let made = emu
                    .ec2("us-east-1")
                    .create_image()
                    .instance_id(&instance)
                    .name(&name)
                    .no_reboot(true)
                    .set_tag_specifications(Some(EmulatorClient::tag_specifications(&sealed)))
                    .send()
                    .await
                    .context("CreateImage")?;
                let id = made.image_id().context("image id")?.to_owned();
                let mut e = fixture("tests/fixtures/events/ami-state-change-available.json")?;
                e["detail"]["ImageId"] = json!(id);
                e["resources"] = json!([format!("arn:aws:ec2:us-east-1::image/{id}")]);
                (base_env(&[]), e, "available event, 1 lineage published")
            }
            _ => {
                seed(
                    emu,
                    "us-east-1",
                    CLEANUP_IMAGES,
                    CLEANUP_LINEAGES,
                    "2026-01-01T00:00:00Z",
                )?;
                (
                    base_env(&[("RETAIN", CLEANUP_RETAIN)]),
                    fixture("tests/fixtures/events/scheduled-event-cleanup.json")?,
                    "scheduled cleanup of the 5,000-image region (no buckets, no latency)",
                )
            }
        };
        eprintln!("[3/4] {name}: {what}");
        let r = match run_lambda(emu, name, &env, &event) {
            Ok(r) => r,
            Err(e) => {
                results.insert(
                    name.to_owned(),
                    json!({"event": what, "error": format!("{e:#}")}),
                );
                rows.push(row(
                    format!("3. {name}: run under the Runtime API"),
                    format!("could not run: {e:#}"),
                    "runs",
                    Some(false),
                ));
                continue;
            }
        };
        let size = sizes.get(name).copied().flatten();
        results.insert(
            name.to_owned(),
            json!({"event": what, "ready_ms": r.ready_ms, "handler_ms": r.handler_ms, "peak_rss_mib": r.peak_rss_mib,
                   "ok": r.ok, "response": r.response, "zipped_arm64_bytes": size}),
        );
        rows.push(row(
            format!("3. {name}: start → ready for the first event"),
            format!("{:.1} ms", r.ready_ms),
            "< 20 ms",
            Some(r.ready_ms < 20.0),
        ));
        rows.push(row(
            format!("3. {name}: handler time ({what})"),
            format!(
                "{:.0} ms{}",
                r.handler_ms,
                if r.ok { "" } else { " (ERROR response)" }
            ),
            "-",
            if r.ok { None } else { Some(false) },
        ));
        rows.push(row(
            format!("3. {name}: peak RSS"),
            format!("{:.1} MiB", r.peak_rss_mib),
            "< 32 MiB",
            Some(r.peak_rss_mib < 32.0),
        ));
        rows.push(match size {
            Some(s) => row(
                format!("3. {name}: arm64 zipped size"),
                format!("{:.2} MiB ({s} bytes)", s as f64 / MIB),
                "< 4 MiB",
                Some((s as f64) < 4.0 * MIB),
            ),
            None => row(
                format!("3. {name}: arm64 zipped size"),
                "not built (run `make package`)",
                "< 4 MiB",
                Some(false),
            ),
        });
    }
    json_out["functions"] = Value::Object(results);
    Ok(())
}

// --- 4. inventory memory ---------------------------------------------------------------

async fn bench_inventory(
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

// --- output --------------------------------------------------------------------------------

/// Each benchmark: its name (`BENCH_ONLY`), the prefix of its rows, its key in latest.json.
const BENCHMARKS: [(&str, &str, &str); 5] = [
    ("cleanup", "1.", "cleanup_at_scale"),
    ("burst", "2.", "replication_burst"),
    ("functions", "3.", "functions"),
    ("inventory", "4.", "inventory_memory"),
    ("fanout", "5.", "fanout"),
];

/// Adds the rows and sections of the benchmarks this run skipped from the last results
/// (`previous`), in benchmark order; `out["measured"]` says when each benchmark's figures
/// were measured. Answers that as text for the header.
fn keep_previous(
    previous: &std::path::Path,
    ran: &dyn Fn(&str) -> bool,
    out: &mut Value,
    rows: &mut Vec<Row>,
) -> Option<String> {
    let old: Value = serde_json::from_str(&std::fs::read_to_string(previous).ok()?).ok()?;
    let mut merged = Vec::new();
    let mut measured = serde_json::Map::new();
    for (name, prefix, key) in BENCHMARKS {
        let when = if ran(name) {
            out["generated"].clone()
        } else {
            old["measured"]
                .get(name)
                .cloned()
                .unwrap_or_else(|| old["generated"].clone())
        };
        if old.get(key).is_some() || ran(name) {
            measured.insert(name.to_owned(), when);
        }
        if ran(name) {
            let (mine, rest): (Vec<Row>, Vec<Row>) =
                rows.drain(..).partition(|r| r.figure.starts_with(prefix));
            merged.extend(mine);
            *rows = rest;
            continue;
        }
        if let Some(section) = old.get(key) {
            out[key] = section.clone();
        }
        for r in old["table"].as_array().into_iter().flatten() {
            let figure = r["figure"].as_str().unwrap_or_default();
            if figure.starts_with(prefix) {
                merged.push(row(
                    figure,
                    r["measured"].as_str().unwrap_or_default(),
                    r["target"].as_str().unwrap_or_default(),
                    r["met"].as_bool(),
                ));
            }
        }
    }
    merged.append(rows); // errors
    *rows = merged;
    let text = measured
        .iter()
        .map(|(name, when)| format!("{name} {}", when.as_str().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ");
    out["measured"] = Value::Object(measured);
    Some(text)
}

fn markdown(rows: &[Row], header: &str) -> String {
    let mut s = format!("{header}\n\n| figure | measured | target | met? |\n|---|---|---|---|\n");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        s.push_str(&format!(
            "| {} | {} | {} | {met} |\n",
            r.figure,
            r.measured.replace('|', "/"),
            r.target
        ));
    }
    s
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let want = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    let started = Instant::now();
    let emu = Emulator::start()?;
    let client: EmulatorClient = (*emu).clone();
    let mut out = json!({
        "generated": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?,
        "host": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        // Relative to the repository: results are committed, machine paths are not.
        "binaries": std::fs::canonicalize(proc::bin_dir())
            .unwrap_or_else(|_| proc::bin_dir())
            .strip_prefix(std::fs::canonicalize(ami_sim::repo_root())?)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "BENCH_BIN_DIR".to_string()),
    });
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    if want("cleanup") {
        if let Err(e) = bench_cleanup(&client, &mut out, &mut rows).await {
            errors.push(format!("cleanup: {e:#}"));
        }
    }
    if want("burst") {
        if let Err(e) = bench_burst(&client, &mut out, &mut rows).await {
            errors.push(format!("burst: {e:#}"));
        }
    }
    if want("functions") {
        if let Err(e) = bench_functions(&client, &mut out, &mut rows).await {
            errors.push(format!("functions: {e:#}"));
        }
    }
    if want("inventory") {
        if let Err(e) = bench_inventory(&client, &mut out, &mut rows).await {
            errors.push(format!("inventory: {e:#}"));
        }
    }
    if want("fanout") {
        if let Err(e) = fanout::bench_fanout(&client, &mut out, &mut rows).await {
            errors.push(format!("fanout: {e:#}"));
        }
    }
    drop(emu);
    for e in &errors {
        rows.push(row("benchmark error", e.clone(), "none", Some(false)));
    }
    let total = started.elapsed().as_secs_f64();
    out["total_seconds"] = json!(total);
    out["errors"] = json!(errors);
    let dir = ami_sim::repo_root().join("bench/results");
    // A subset run (BENCH_ONLY) keeps the other benchmarks' figures of the last run.
    let kept_from = if only.is_empty() {
        None
    } else {
        keep_previous(&dir.join("latest.json"), &want, &mut out, &mut rows)
    };
    out["table"] = Value::Array(
        rows.iter()
            .map(|r| json!({"figure": r.figure, "measured": r.measured, "target": r.target, "met": r.met}))
            .collect(),
    );
    let header = format!(
        "# ami-lifecycle benchmarks\n\n{} on {} CPUs, {total:.0} s in all; emulator buckets time-scaled x{TIME_SCALE} (client pacing the same), {LATENCY_MS} ms added per EC2 call in 1 and 2. Release binaries from `{}`.",
        out["generated"].as_str().unwrap_or(""),
        out["host"]["cpus"],
        out["binaries"].as_str().unwrap_or("")
    );
    let header = match kept_from {
        Some(previous) => format!(
            "{header}\n\nThis run measured only {}; when each benchmark's rows were measured: {previous}.",
            only.join(", ")
        ),
        None => header,
    };
    let md = markdown(&rows, &header);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("latest.json"),
        serde_json::to_string_pretty(&out)? + "\n",
    )?;
    std::fs::write(dir.join("latest.md"), &md)?;
    println!("{md}");
    if !errors.is_empty() {
        bail!(
            "{} benchmark(s) could not run: {}",
            errors.len(),
            errors.join("; ")
        );
    }
    Ok(())
}
