//! Benchmark 3: each function binary under a local Lambda Runtime API ([`crate::runtime_api`]).
//!
//! Start → ready is the median (and p90) of [`START_SAMPLES`] cold process starts per
//! function, taken round-robin over the functions before any of them runs an event, each
//! with `AMI_LIFECYCLE_STARTUP_TRACE=1`: the function's own trace line ([`StartSample`])
//! splits the time into spawn → main, its start-up phases, and hand-over → first `next`.
//! Then one event per function gives the handler time and the peak RSS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ami_sim::EmulatorClient;
use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::*;

pub(crate) fn fixture(path: &str) -> anyhow::Result<Value> {
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
pub(crate) fn lambda_env(name: &str, port: u16) -> Vec<(&'static str, String)> {
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
                Some(runtime_api::Seen::Next(at, _)) => break at.duration_since(started),
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
                Some(runtime_api::Seen::Next(..)) => continue,
                None => bail!("{name}: no response within 900 s"),
            }
        }
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Cold starts measured per function.
pub(crate) const START_SAMPLES: usize = 15;
/// The target for the median start → ready (issue 19, x86_64).
const READY_TARGET_MS: f64 = 12.0;
/// The start-up trace's phases in the order they happen (`lambda_shell::startup`), between
/// the bench's "spawn → main" and "hand-over → first next".
const TRACE_PHASES: [&str; 5] = ["runtime", "logging", "config", "sdk_config", "clients"];

/// One cold start: spawn → first `next`, and its parts when the function traced them.
struct StartSample {
    ready_ms: f64,
    /// Phase → milliseconds: "spawn → main", the [`TRACE_PHASES`], "hand-over → first next".
    phases: BTreeMap<String, f64>,
}

fn unix_us(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e6)
        .unwrap_or(0.0)
}

/// Reads the `startup_trace` line from a function's stderr into phases (ms), given when the
/// bench spawned it and when its first `next` arrived.
fn trace_phases(stderr: &str, spawned: SystemTime, next: SystemTime) -> BTreeMap<String, f64> {
    let mut phases = BTreeMap::new();
    let Some(trace) = stderr.lines().find_map(|l| {
        serde_json::from_str::<Value>(l)
            .ok()
            .and_then(|v| v.get("startup_trace").cloned())
    }) else {
        return phases;
    };
    let us = |k: &str| trace[k].as_f64();
    if let (Some(main), Some(run)) = (us("main_unix_us"), us("run_unix_us")) {
        phases.insert(
            "spawn → main".to_owned(),
            (main - unix_us(spawned)) / 1000.0,
        );
        phases.insert(
            "hand-over → first next".to_owned(),
            (unix_us(next) - run) / 1000.0,
        );
    }
    for p in TRACE_PHASES {
        if let Some(v) = trace["phases_us"][p].as_f64() {
            phases.insert(p.to_owned(), v / 1000.0);
        }
    }
    phases
}

/// Starts function `name` once, waits for its first `next`, and stops it.
fn start_once(endpoint: &str, name: &str, env: &[(&str, String)]) -> anyhow::Result<StartSample> {
    let api = runtime_api::RuntimeApi::start()?;
    let binary = proc::binary(name)?;
    let mut env: Vec<(&str, String)> = env.to_vec();
    env.extend(lambda_env(name, api.port));
    env.push(("AMI_LIFECYCLE_STARTUP_TRACE", "1".to_owned()));
    let err_path = std::env::temp_dir().join(format!(
        "bench-start-{}-{name}-{}.err",
        std::process::id(),
        unix_us(SystemTime::now()) as u64
    ));
    let err = std::fs::File::create(&err_path)?;
    let mut cmd = proc::command(&binary, endpoint, &env);
    cmd.stdout(Stdio::null()).stderr(Stdio::from(err));
    let spawned = SystemTime::now();
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let next = loop {
        match api.wait(Duration::from_secs(30)) {
            Some(runtime_api::Seen::Next(at, wall)) => {
                break Ok((at.duration_since(started), wall))
            }
            Some(runtime_api::Seen::InitError(body)) => {
                break Err(anyhow::anyhow!("{name}: init error {body}"))
            }
            Some(_) => continue,
            None => break Err(anyhow::anyhow!("{name}: no `next` request within 30 s")),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    let (ready, next_wall) = next.with_context(|| format!("stderr: {}", stderr.trim()))?;
    Ok(StartSample {
        ready_ms: ready.as_secs_f64() * 1000.0,
        phases: trace_phases(&stderr, spawned, next_wall),
    })
}

/// The value at quantile `q` of `v` (nearest rank); `v` must not be empty.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Each phase's median over the samples that traced it, in start-up order.
fn breakdown(samples: &[StartSample]) -> Vec<(String, f64)> {
    let order = std::iter::once("spawn → main")
        .chain(TRACE_PHASES)
        .chain(std::iter::once("hand-over → first next"));
    order
        .filter_map(|p| {
            let v: Vec<f64> = samples
                .iter()
                .filter_map(|s| s.phases.get(p).copied())
                .collect();
            (!v.is_empty()).then(|| (p.to_owned(), median(&v)))
        })
        .collect()
}

/// [`START_SAMPLES`] cold starts of every function in `names`, interleaved (so a busy moment
/// on the machine falls on all of them alike).
fn sample_starts(
    endpoint: &str,
    names: &[&str],
) -> BTreeMap<String, anyhow::Result<Vec<StartSample>>> {
    let mut out: BTreeMap<String, anyhow::Result<Vec<StartSample>>> = names
        .iter()
        .map(|n| ((*n).to_owned(), Ok(Vec::new())))
        .collect();
    for _ in 0..START_SAMPLES {
        for name in names {
            let slot = out.get_mut(*name).expect("every name has a slot");
            if let Ok(samples) = slot {
                match start_once(endpoint, name, &function_env(name)) {
                    Ok(s) => samples.push(s),
                    Err(e) => *slot = Err(e),
                }
            }
        }
    }
    out
}

/// The function's own variables in the bench (besides [`lambda_env`] and the emulator's).
fn function_env(name: &str) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("AMI_LIFECYCLE_REGIONS", "us-east-1".to_owned()),
        ("AMI_LIFECYCLE_PACE_SCALE", "0".to_owned()),
    ];
    match name {
        "replicate" => v.push(("REPLICA_REGIONS", "us-west-2,eu-west-1".to_owned())),
        "share" => v.push(("SHARE_ALLOWED", "111122223333".to_owned())),
        "cleanup" => v.push(("RETAIN", CLEANUP_RETAIN.to_owned())),
        _ => {}
    }
    v
}

/// The rows and JSON of one function's cold starts.
fn start_rows(name: &str, samples: &[StartSample], rows: &mut Vec<Row>) -> Value {
    let ready: Vec<f64> = samples.iter().map(|s| s.ready_ms).collect();
    let (med, p90) = (median(&ready), quantile(&ready, 0.9));
    let parts = breakdown(samples);
    rows.push(row(
        format!("3. {name}: start → ready for the first event"),
        format!(
            "{med:.1} ms median of {} cold starts (p90 {p90:.1} ms)",
            ready.len()
        ),
        format!("≤ {READY_TARGET_MS} ms median"),
        Some(med <= READY_TARGET_MS),
    ));
    rows.push(row(
        format!("3. {name}: start-up breakdown (median ms)"),
        if parts.is_empty() {
            "no start-up trace (binary older than AMI_LIFECYCLE_STARTUP_TRACE)".to_owned()
        } else {
            parts
                .iter()
                .map(|(p, v)| format!("{} {v:.2}", p.replace('_', " ")))
                .collect::<Vec<_>>()
                .join(" · ")
        },
        "-",
        None,
    ));
    json!({
        "ready_ms": med,
        "ready_p90_ms": p90,
        "ready_samples_ms": ready,
        "startup_breakdown_ms": parts.into_iter().map(|(p, v)| (p, json!(v))).collect::<serde_json::Map<String, Value>>(),
    })
}

/// The size of `binary` zipped as Lambda's `bootstrap` (deflate, level 9), or None.
fn zipped_size(python: &Path, binary: &Path) -> Option<u64> {
    let script = "import io,sys,zipfile\nb=io.BytesIO()\nz=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED,compresslevel=9)\ni=zipfile.ZipInfo('bootstrap',date_time=(1980,1,1,0,0,0))\ni.external_attr=0o755<<16\ni.compress_type=zipfile.ZIP_DEFLATED\nz.writestr(i,open(sys.argv[1],'rb').read())\nz.close()\nprint(len(b.getvalue()))";
    if !binary.exists() {
        return None;
    }
    std::process::Command::new(python)
        .args(["-c", script])
        .arg(binary)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
}

/// Per function: the arm64 `bootstrap` of `make package` (.aws-sam/build) zipped, and the
/// host's release binary (the one measured here, x86_64) zipped the same way.
fn zipped_sizes() -> BTreeMap<String, (Option<u64>, Option<u64>)> {
    let root = ami_sim::repo_root();
    let python = ["/.venv/tools/bin/python", "/.venv/emulator/bin/python"]
        .iter()
        .map(|p| PathBuf::from(format!("{}{p}", root.display())))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let mut out = BTreeMap::new();
    for (name, fun) in [
        ("create-image", "CreateImageFunction"),
        ("replicate", "ReplicateFunction"),
        ("share", "ShareFunction"),
        ("cleanup", "CleanupFunction"),
        ("publish", "PublishFunction"),
    ] {
        let arm64 = zipped_size(
            &python,
            &root.join(".aws-sam/build").join(fun).join("bootstrap"),
        );
        let host = zipped_size(&python, &crate::proc::bin_dir().join(name));
        out.insert(name.to_owned(), (arm64, host));
    }
    out
}

pub(crate) async fn bench_functions(
    emu: &EmulatorClient,
    json_out: &mut Value,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    eprintln!("[3/4] function binaries under a local Lambda Runtime API");
    let sizes = zipped_sizes();
    let mut results = serde_json::Map::new();
    const NAMES: [&str; 5] = ["create-image", "replicate", "share", "cleanup", "publish"];
    eprintln!("[3/4] {START_SAMPLES} cold starts of each function");
    let mut starts = sample_starts(&emu.endpoint, &NAMES);
    for name in NAMES {
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
                    function_env(name),
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
                    (function_env(name), e, "available event, 2 destinations")
                } else {
                    let mut e = fixture("tests/fixtures/events/tag-change-on-image.json")?;
                    e["resources"] =
                        json!([format!("arn:aws:ec2:us-east-1:123456789012:image/{id}")]);
                    e["detail"]["tags"] = tags;
                    (function_env(name), e, "tag change, 1 account")
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
                (
                    function_env("publish"),
                    e,
                    "available event, 1 lineage published",
                )
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
                    function_env(name),
                    fixture("tests/fixtures/events/scheduled-event-cleanup.json")?,
                    "scheduled cleanup of the 5,000-image region (no buckets, no latency)",
                )
            }
        };
        let mut result = match starts.remove(name) {
            Some(Ok(samples)) if !samples.is_empty() => start_rows(name, &samples, rows),
            Some(Err(e)) => {
                rows.push(row(
                    format!("3. {name}: start → ready for the first event"),
                    format!("could not start: {e:#}"),
                    format!("≤ {READY_TARGET_MS} ms median"),
                    Some(false),
                ));
                json!({"start_error": format!("{e:#}")})
            }
            _ => json!({}),
        };
        eprintln!("[3/4] {name}: {what}");
        let r = match run_lambda(emu, name, &env, &event) {
            Ok(r) => r,
            Err(e) => {
                result["event"] = json!(what);
                result["error"] = json!(format!("{e:#}"));
                results.insert(name.to_owned(), result);
                rows.push(row(
                    format!("3. {name}: run under the Runtime API"),
                    format!("could not run: {e:#}"),
                    "runs",
                    Some(false),
                ));
                continue;
            }
        };
        let (size, host_size) = sizes.get(name).copied().unwrap_or((None, None));
        for (k, v) in [
            ("event", json!(what)),
            // The event run's own start (one sample; the row is the cold starts' median).
            ("event_run_ready_ms", json!(r.ready_ms)),
            ("handler_ms", json!(r.handler_ms)),
            ("peak_rss_mib", json!(r.peak_rss_mib)),
            ("ok", json!(r.ok)),
            ("response", json!(r.response)),
            ("zipped_arm64_bytes", json!(size)),
            ("zipped_host_bytes", json!(host_size)),
        ] {
            result[k] = v;
        }
        results.insert(name.to_owned(), result);
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
                "not measured: `make package` (cross-compiles for arm64) was not run",
                "< 4 MiB",
                None,
            ),
        });
        if let Some(s) = host_size {
            rows.push(row(
                format!("3. {name}: x86_64 zipped size (the release binary measured here)"),
                format!("{:.2} MiB ({s} bytes)", s as f64 / MIB),
                "- (the < 4 MiB target is the arm64 zip's)",
                None,
            ));
        }
    }
    json_out["functions"] = Value::Object(results);
    Ok(())
}
