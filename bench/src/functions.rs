//! Benchmark 3: each function binary under a local Lambda Runtime API ([`crate::runtime_api`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

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

pub(crate) async fn bench_functions(
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
