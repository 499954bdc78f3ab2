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

mod burst;
mod cleanup;
mod fanout;
mod functions;
mod inventory;
mod proc;
mod runtime_api;

use std::collections::BTreeMap;
use std::time::Instant;

use ami_core::report::RunReport;
use ami_sim::{Emulator, EmulatorClient};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// The emulator's bucket time scale, the same for every run (see README in bench/).
pub(crate) const TIME_SCALE: f64 = 4.0;
pub(crate) const LATENCY_MS: u64 = 20;
pub(crate) const CLEANUP_REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];
pub(crate) const CLEANUP_IMAGES: u32 = 5_000;
pub(crate) const CLEANUP_LINEAGES: u32 = 50;
pub(crate) const CLEANUP_RETAIN: &str = "count=2";
pub(crate) const BURST_SOURCES: u32 = 500;
pub(crate) const BURST_DESTINATIONS: [&str; 3] = ["us-west-2", "eu-west-1", "ap-southeast-2"];
pub(crate) const BURST_COPY_CAP: u32 = 50;
pub(crate) const BURST_PENDING_SECONDS: f64 = 10.0;
pub(crate) const INVENTORY_SIZES: [u32; 3] = [5_000, 20_000, 50_000];
pub(crate) const MIB: f64 = 1024.0 * 1024.0;

/// One line of the table.
pub(crate) struct Row {
    figure: String,
    measured: String,
    target: String,
    met: Option<bool>,
}

pub(crate) fn row(
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

pub(crate) fn managed_tags() -> Value {
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
pub(crate) fn seal_spec(emu: &EmulatorClient) -> anyhow::Result<Value> {
    let key = emu.seal_key("us-east-1", "ami-lifecycle")?;
    Ok(json!({"deployment": "ami-lifecycle", "key": key, "key_region": "us-east-1"}))
}

/// Seeds `count` managed images in `region` in chunks (each answer well under the
/// harness's 30 s read timeout).
pub(crate) fn seed(
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

pub(crate) fn counters(emu: &EmulatorClient) -> anyhow::Result<Value> {
    emu.counters()
}

pub(crate) fn sum_region_counts(v: &Value) -> BTreeMap<String, u64> {
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

pub(crate) fn is_mutating(action: &str) -> bool {
    // Other services' actions are counted as "service:Action" (rbin:ListRules): the verb
    // is what follows the prefix.
    let verb = action.rsplit(':').next().unwrap_or(action);
    !(verb.starts_with("Describe") || verb.starts_with("Get") || verb.starts_with("List"))
}

/// Images in `region` (owned by the default account), optionally only those with `tag_key`.
pub(crate) async fn count_images(
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

pub(crate) fn parse_report(stdout: &str) -> Option<RunReport> {
    serde_json::from_str(stdout.trim()).ok()
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
    proc::set_emulator_pid(emu.pid());
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
        if let Err(e) = cleanup::bench_cleanup(&client, &mut out, &mut rows).await {
            errors.push(format!("cleanup: {e:#}"));
        }
    }
    if want("burst") {
        if let Err(e) = burst::bench_burst(&client, &mut out, &mut rows).await {
            errors.push(format!("burst: {e:#}"));
        }
    }
    if want("functions") {
        if let Err(e) = functions::bench_functions(&client, &mut out, &mut rows).await {
            errors.push(format!("functions: {e:#}"));
        }
    }
    if want("inventory") {
        if let Err(e) = inventory::bench_inventory(&client, &mut out, &mut rows).await {
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
