//! `ami-sim demo`: the whole lifecycle on the emulator, through the template's own wiring.
//!
//! [`run`] resets the emulator found at `AWS_ENDPOINT_URL` (loopback only), seeds a small
//! estate ([`estate`]), creates the template's rules on the emulator's EventBridge
//! ([`bus`], from [`wiring`]), then plays simulated days ([`scenario`]): schedules fire as
//! the template's expressions say ([`cron`]), AMI State Change and Tag Change events flow
//! through the rules to the same handlers the Lambda binaries run. It prints a timeline,
//! a final table per region and totals, and fails if any step failed or the final state
//! is not the expected one.

pub mod bus;
pub mod cron;
pub mod estate;
pub mod moved;
pub mod quiesced;
pub mod scenario;
pub mod wiring;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::EmulatorClient;
use ami_core::model::{ImageState, Region};
use ami_core::ports::{all_images, ImageQuery};
use ami_core::report::render_rows;
use ami_core::tags::key;
use anyhow::Context as _;
use serde_json::Value;
use time::{Date, Duration};

use bus::{Bus, Invocation};
use estate::{ALLOWED_ACCOUNT, DEPLOYMENT, HOME, REPLICA, SECOND};
use scenario::Action;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated days to play.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// The first simulated day (YYYY-MM-DD; default: tomorrow). Simulated time must not be
    /// earlier than the emulator's clock, which stamps the images' creation dates.
    #[arg(long)]
    pub start: Option<String>,
    /// The SAM template whose rules are wired.
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// Emulator URL (default: AWS_ENDPOINT_URL).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint: String,
    /// Where to write the final state's estate report (`amictl report --html`).
    #[arg(long, default_value = "target/demo/estate.html")]
    pub report: PathBuf,
}

fn summary(inv: &Invocation) -> String {
    match &inv.result {
        Err(e) => format!("ERROR {e}"),
        Ok(v) if v.get("lost").is_some() => {
            "never delivered; the evening's create-image reconcile catches the slot up".to_owned()
        }
        Ok(v) => {
            let caught_up = v
                .get("items")
                .and_then(Value::as_array)
                .is_some_and(|items| {
                    items.iter().any(|i| {
                        i["reason"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("caught up"))
                    })
                });
            let counts = v.get("counts").and_then(Value::as_object).map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{k}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            let held = v
                .get("items")
                .and_then(Value::as_array)
                .is_some_and(|items| {
                    items.iter().any(|i| {
                        i["outcome"] == "deferred"
                            && i["reason"]
                                .as_str()
                                .is_some_and(|r| r.contains("status checks ok"))
                    })
                });
            match counts {
                Some(c) if !c.is_empty() && caught_up => format!("{c} (caught up)"),
                Some(c) if !c.is_empty() && held => {
                    format!("{c} (next wave held: status checks not ok yet)")
                }
                Some(c) if !c.is_empty() => c,
                _ => "nothing to do".to_owned(),
            }
        }
    }
}

fn failed(inv: &Invocation) -> bool {
    match &inv.result {
        Err(_) => true,
        Ok(v) => v.get("failed").and_then(Value::as_u64).unwrap_or(0) > 0,
    }
}

/// Rows of the timeline: one per handler invocation, consecutive identical ones folded.
fn timeline_rows(day: u32, invocations: &[Invocation], rows: &mut Vec<[String; 5]>) {
    let mut folded: Vec<(usize, &Invocation, String)> = Vec::new();
    for inv in invocations {
        let s = summary(inv);
        match folded.last_mut() {
            Some((n, last, ls))
                if last.function == inv.function && last.event == inv.event && *ls == s =>
            {
                *n += 1
            }
            _ => folded.push((1, inv, s)),
        }
    }
    for (n, inv, s) in folded {
        let event = if n > 1 {
            format!("{n} × {}", inv.event)
        } else {
            inv.event.clone()
        };
        let hhmm = format!("{:02}:{:02}", inv.at.hour(), inv.at.minute());
        rows.push([day.to_string(), hhmm, event, inv.function.clone(), s]);
    }
}

pub async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let emu = EmulatorClient::from_url(&args.endpoint)?;
    emu.control("POST", "/_emulator/reset", None)
        .context("resetting the emulator")?;
    // A rebooted instance's status checks pass 90 s after the reboot: a reboot group's next
    // wave waits for them (health-gated waves; continuations come a minute apart here).
    emu.configure(serde_json::json!({"reboot_seconds": 90}))
        .context("configuring the emulator's reboot model")?;
    let start = match &args.start {
        Some(s) => Date::parse(s, &time::format_description::well_known::Iso8601::DATE)
            .with_context(|| format!("--start {s:?} is not a date (YYYY-MM-DD)"))?,
        None => time::OffsetDateTime::now_utc()
            .date()
            .next_day()
            .context("no tomorrow")?,
    };

    let continuation = emu.queue(HOME, "ami-lifecycle-continuation").await?;
    let wiring = wiring::Wiring::load(&args.template, DEPLOYMENT)?;
    let settings = estate::settings(continuation.url(), &wiring.schedule_expressions(DEPLOYMENT));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = ami_core::config::Config::from_lookup(|k| {
        pairs
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned())
    })?;
    let regions: Vec<String> = config
        .all_regions()
        .iter()
        .map(ToString::to_string)
        .collect();
    let ctx = emu.context(config.clone());
    println!(
        "wiring from {}: {} rules ({} schedules), continuation queue → create-image",
        args.template.display(),
        wiring.rules.len(),
        wiring
            .rules
            .iter()
            .filter(|r| matches!(r.trigger, wiring::Trigger::Schedule(_)))
            .count()
    );
    let bus = Bus::wire(&emu, &wiring, &regions, continuation, &ctx).await?;
    // The stacks' Linux quiesce document: the template's in the home region, the
    // forwarder's (the same content) in the other managed region.
    for region in [HOME, SECOND] {
        emu.install_quiesce_document(region, &args.template, DEPLOYMENT)
            .await
            .with_context(|| format!("the quiesce document in {region}"))?;
    }
    let seeded = estate::seed(&emu).await?;
    println!(
        "estate: {}",
        seeded
            .iter()
            .map(|s| if s.quiesced {
                format!("{} ({}, quiesced)", s.name, s.region)
            } else {
                format!("{} ({})", s.name, s.region)
            })
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut all: Vec<Invocation> = Vec::new();
    let mut shared_on: BTreeMap<(String, u32), String> = BTreeMap::new();
    let mut sundays = 0;
    let mut first_web_image = None;
    let mut moved: Option<moved::Moved> = None;
    for d in 0..args.days {
        let day = start + Duration::days(i64::from(d));
        let n = d + 1;
        if day.weekday() == time::Weekday::Sunday {
            sundays += 1;
        }
        let mut today: Vec<Invocation> = Vec::new();
        let mut actions_done = false;
        let firings = scenario::firings(&wiring, day)?;
        // `None` closes the day, so the person's actions run exactly once: at 09:00, between
        // the morning runs and the reconciles, or at the end of a day with nothing after 09:00.
        for firing in firings.into_iter().map(Some).chain(std::iter::once(None)) {
            let due = firing
                .as_ref()
                .is_none_or(|(t, _, _)| *t >= scenario::at(day, 9, 0));
            if !actions_done && due {
                today.extend(
                    act(
                        &emu,
                        &ctx,
                        &bus,
                        &seeded,
                        n,
                        day,
                        &mut shared_on,
                        &mut first_web_image,
                        &mut moved,
                    )
                    .await?,
                );
                actions_done = true;
            }
            let Some((t, rule, function)) = firing else {
                break;
            };
            // The emulator stamps creation dates at the simulated time, as AWS would.
            emu.set_clock(t)?;
            if scenario::event_lost(n, &rule) {
                // EventBridge delivery is best-effort: this one never arrives. The
                // evening's create-image reconcile catches the slot up.
                today.push(Invocation::lost(&function, &rule, t));
                continue;
            }
            today.push(
                bus.invoke(
                    &function,
                    scenario::scheduled_event(&rule, t, crate::ACCOUNT),
                    t,
                )
                .await,
            );
            today.extend(bus.pump(&emu, t).await?);
        }
        timeline_rows(n, &today, &mut rows);
        all.extend(today);
    }
    println!("\nTIMELINE");
    print!(
        "{}",
        render_rows(&["DAY", "TIME", "EVENT", "FUNCTION", "OUTCOME"], &rows)
    );

    // Final state per region.
    let expected = scenario::expected_images(&seeded, args.days, sundays);
    let mut problems_early = Vec::new();
    let mut names: BTreeMap<String, &str> = seeded.iter().map(|s| (s.id.clone(), s.name)).collect();
    match &moved {
        Some(moved::Moved {
            successor: Some(new),
            ..
        }) => {
            names.insert(new.clone(), scenario::MIGRATED_SUCCESSOR);
        }
        Some(m) => problems_early.push(format!(
            "{} ({}) was not moved: no instance launched",
            m.name, m.source
        )),
        None if args.days >= scenario::MIGRATE_DAY => {
            problems_early.push(format!("{} was never moved", scenario::MIGRATED));
        }
        None => {}
    }
    let mut problems = std::mem::take(&mut problems_early);
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    println!("\nFINAL STATE");
    let mut final_rows = Vec::new();
    // Why each image is kept, as the last cleanup run reported it.
    let why: BTreeMap<String, String> = all
        .iter()
        .rev()
        .find(|i| i.function == "cleanup")
        .and_then(|i| i.result.as_ref().ok())
        .and_then(|v| v.get("items").and_then(Value::as_array))
        .map(|items| {
            items
                .iter()
                .filter(|i| i["outcome"] == "kept")
                .filter_map(|i| {
                    Some((
                        i["image"].as_str().or(i["subject"].as_str())?.to_owned(),
                        i["reason"].as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut actual: BTreeMap<(String, String), usize> = BTreeMap::new();
    for region in [HOME, SECOND, REPLICA] {
        let ec2 = ctx.cloud.ec2(&Region::new(region));
        let query = ImageQuery {
            owned_by_self: true,
            tag: Some((key::MANAGED_BY.into(), DEPLOYMENT.into())),
            include_disabled: true,
            ..ImageQuery::default()
        };
        let mut images = all_images(ec2.as_ref(), &query).await?;
        images.sort_by(|a, b| a.tag(key::SLOT).cmp(&b.tag(key::SLOT)));
        let mut lineages: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for img in &images {
            let instance = img.tag(key::SOURCE_INSTANCE).unwrap_or("-");
            let name = names.get(instance).copied().unwrap_or(instance).to_owned();
            let day = img
                .tag(key::SLOT)
                .map(|s| s.get(5..10).unwrap_or(s).to_owned())
                .unwrap_or_default();
            let mut what = day.clone();
            if img.tag(key::CONSISTENCY) == Some("crash-consistent") {
                what.push_str(" crash-consistent");
            }
            let shared = emu
                .launch_permission_accounts(region, img.id.as_str())
                .await?;
            if !shared.is_empty() {
                what.push_str(&format!(" shared→{}", shared.join(",")));
                *totals.entry("shared images").or_default() += 1;
            }
            if let Some(reason) = why.get(img.id.as_str()) {
                what.push_str(&format!(" [{}]", short_reason(reason)));
            }
            if img.state != ImageState::Available {
                what.push_str(&format!(" ({})", img.state.as_str()));
            }
            lineages.entry(name).or_default().push(what);
        }
        for (name, imgs) in &lineages {
            actual.insert((region.to_owned(), name.clone()), imgs.len());
            final_rows.push([
                region.to_owned(),
                name.clone(),
                imgs.len().to_string(),
                imgs.join("; "),
            ]);
        }
        *totals.entry("images kept").or_default() += images.len();
    }
    print!(
        "{}",
        render_rows(
            &[
                "REGION",
                "LINEAGE",
                "IMAGES",
                "KEPT: day [why] (crash-consistent, shared→account)"
            ],
            &final_rows
        )
    );

    // The quiesced instance's last image: frozen, imaged without a reboot, thawed.
    if args.days > 0 {
        let last_day = start + Duration::days(i64::from(args.days - 1));
        problems.extend(quiesced::check(&emu, &seeded, last_day).await?);
    }

    // The seed's question: one launch template text, a different image id per region.
    println!("\nLATEST IMAGE: resolve:ssm:{}", scenario::WEB_LATEST);
    let web = seeded
        .iter()
        .find(|s| s.name == "web-1")
        .map(|s| s.id.clone());
    let rolled_back = args.days >= scenario::ROLLBACK_DAY;
    let mut latest_rows = Vec::new();
    let mut resolved_ids = Vec::new();
    for region in [HOME, REPLICA] {
        let params = ctx.cloud.parameters(&Region::new(region));
        let value = params.get(scenario::WEB_LATEST).await?.map(|p| p.value);
        let pin = params
            .get(&ami_core::publish::pin_parameter(DEPLOYMENT, "web-1"))
            .await?
            .map(|p| p.value);
        let lt = emu
            .ec2(region)
            .describe_launch_templates()
            .launch_template_names("web-latest")
            .send()
            .await
            .context("DescribeLaunchTemplates web-latest")?;
        let lt_id = lt
            .launch_templates()
            .first()
            .and_then(|t| t.launch_template_id())
            .map(str::to_owned);
        let (stored, resolved) = match &lt_id {
            Some(id) => emu.launch_template_image(region, id).await?,
            None => ("-".to_owned(), "-".to_owned()),
        };
        let slot_day = match &value {
            Some(v) => image_slot(&emu, region, v).await?,
            None => "-".to_owned(),
        };
        if value.as_deref() != Some(resolved.as_str()) {
            problems.push(format!(
                "{region}: web-latest resolves to {resolved}, the parameter holds {value:?}"
            ));
        }
        if rolled_back {
            let want = ami_core::time_util::rfc3339(scenario::at(
                start + Duration::days(i64::from(scenario::ROLLBACK_TO_DAY - 1)),
                3,
                0,
            ));
            let want_image = match &web {
                Some(id) => image_of_slot(&emu, region, id, &want).await?,
                None => None,
            };
            if want_image.is_none() || value != want_image || pin != want_image {
                problems.push(format!(
                    "{region}: web-1 rolled back to day {} ({want_image:?}), but the parameter holds {value:?} and the pin {pin:?}",
                    scenario::ROLLBACK_TO_DAY
                ));
            }
        }
        resolved_ids.push(resolved.clone());
        latest_rows.push([
            region.to_owned(),
            value.clone().unwrap_or_else(|| "-".to_owned()),
            slot_day,
            pin.unwrap_or_else(|| "-".to_owned()),
            format!("{stored} → {resolved}"),
        ]);
    }
    print!(
        "{}",
        render_rows(
            &[
                "REGION",
                "web-1/latest",
                "DAY",
                "PINNED",
                "web-latest ImageId → launches"
            ],
            &latest_rows
        )
    );
    if resolved_ids.len() == 2 && resolved_ids[0] == resolved_ids[1] {
        problems.push("web-latest resolves to the same id in both regions".to_owned());
    }

    for ((region, name), want) in &expected {
        let got = actual
            .get(&(region.clone(), name.clone()))
            .copied()
            .unwrap_or(0);
        if got != *want {
            problems.push(format!("{region} {name}: {got} images, expected {want}"));
        }
    }
    for key in actual.keys() {
        if !expected.contains_key(key) {
            problems.push(format!("{} {}: unexpected images", key.0, key.1));
        }
    }
    // The image shared on day 6 is still shared with the allowed account; the refused
    // share left no permission anywhere.
    if args.days >= 6 {
        let still = shared_on.get(&("db-1".to_owned(), 6)).cloned();
        match still {
            Some(id)
                if emu
                    .launch_permission_accounts(HOME, &id)
                    .await?
                    .contains(&ALLOWED_ACCOUNT.to_owned()) => {}
            Some(id) => problems.push(format!(
                "db-1's image {id} is not shared with {ALLOWED_ACCOUNT}"
            )),
            None => problems.push("db-1 was not shared on day 6".to_owned()),
        }
    }
    let reboots = emu.reboots()?;
    for s in &seeded {
        let n = reboots
            .get(&s.id)
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        if s.reboots == (n == 0) {
            problems.push(format!(
                "{}: {n} reboots recorded, reboot opted {}",
                s.name,
                if s.reboots { "in" } else { "out" }
            ));
        }
        *totals.entry("reboots").or_default() += n;
    }
    for inv in &all {
        if failed(inv) {
            problems.push(format!(
                "{} on {}: {}",
                inv.function,
                inv.event,
                summary(inv)
            ));
        }
        if let Ok(v) = &inv.result {
            if let Some(counts) = v.get("counts").and_then(Value::as_object) {
                for (k, n) in counts {
                    let k: &'static str = match k.as_str() {
                        "created" => "images created",
                        "copied" => "copies",
                        "deleted" => "deleted",
                        "granted" => "grants",
                        "revoked" => "revokes",
                        "refused" => "refused",
                        _ => continue,
                    };
                    *totals.entry(k).or_default() += n.as_u64().unwrap_or(0) as usize;
                }
            }
        }
    }
    // The picture of the final state: what `amictl report --html FILE` writes.
    match write_report(
        &ctx,
        &args.report,
        scenario::at(start, 0, 0) + Duration::days(i64::from(args.days)),
    )
    .await
    {
        Ok(path) => println!("\nESTATE REPORT: {path}"),
        Err(e) => problems.push(format!("the estate report could not be written: {e:#}")),
    }
    println!("\nTOTALS");
    for (k, v) in &totals {
        println!("  {k}: {v}");
    }
    println!("  handler invocations: {}", all.len());
    println!("  wall time: {:.1} s", started.elapsed().as_secs_f64());
    if problems.is_empty() {
        println!("\ndemo: OK — final state is the expected one");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\ndemo: FAILED");
        for p in &problems {
            println!("  - {p}");
        }
        Ok(ExitCode::from(1))
    }
}

/// Writes the estate report (`amictl report --html`'s page) as of `now`; returns its path.
async fn write_report(
    ctx: &ami_core::context::Context,
    path: &std::path::Path,
    now: time::OffsetDateTime,
) -> anyhow::Result<String> {
    let estate = ami_core::estate::read(ctx, now).await?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, ami_core::estate::render_html(&estate))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string())
}

/// A few words for why cleanup kept an image (the report has the full sentence).
fn short_reason(reason: &str) -> String {
    let known = [
        ("in use by ec2:LaunchTemplate", "launch template"),
        ("published: the current value", "published"),
        ("published:", "published history"),
        ("pinned by amictl rollback", "pinned"),
        ("in use by ec2:Instance", "instance"),
        ("in use by", "in use"),
        ("newest of its lineage", "newest"),
        ("within the newest", "count"),
        ("younger than", "age"),
        ("newest of its", "gfs"),
    ];
    known
        .iter()
        .find(|(prefix, _)| reason.starts_with(prefix))
        .map(|(_, label)| (*label).to_owned())
        .unwrap_or_else(|| ami_core::tags::truncate(reason.split(':').next().unwrap_or(reason), 24))
}

/// Carries out the day's actions, then delivers the events they cause.
#[allow(clippy::too_many_arguments)]
async fn act(
    emu: &EmulatorClient,
    ctx: &ami_core::context::Context,
    bus: &Bus,
    seeded: &[estate::Seeded],
    n: u32,
    day: Date,
    shared_on: &mut BTreeMap<(String, u32), String>,
    first_web_image: &mut Option<String>,
    moved: &mut Option<moved::Moved>,
) -> anyhow::Result<Vec<Invocation>> {
    let now = scenario::at(day, 9, 0);
    let slot = ami_core::time_util::rfc3339(scenario::at(day, 3, 0));
    let image_of = |instance: &str| -> anyhow::Result<(String, String)> {
        let s = seeded
            .iter()
            .find(|s| s.name == instance)
            .with_context(|| format!("no instance {instance}"))?;
        Ok((s.id.clone(), s.region.to_owned()))
    };
    let mut out = Vec::new();
    for (_, action) in scenario::actions().into_iter().filter(|(d, _)| *d == n) {
        match action {
            Action::LaunchTemplateKeepsToday => {
                let (id, region) = image_of("web-1")?;
                let image = find_image(emu, &region, &id, &slot).await?;
                let base = emu.base_image(&region).await?;
                emu.launch_template_referencing(&region, "web-fleet", &base, &image)
                    .await?;
                *first_web_image = Some(image);
            }
            Action::Share { instance, value } => {
                let (id, region) = image_of(instance)?;
                let image = find_image(emu, &region, &id, &slot).await?;
                emu.tag_image(&region, &image, key::SHARE_WITH, value)
                    .await?;
                shared_on.insert((instance.to_owned(), n), image);
            }
            Action::LatestTemplates => {
                for region in [HOME, REPLICA] {
                    emu.launch_template_resolving(region, "web-latest", scenario::WEB_LATEST)
                        .await?;
                }
            }
            Action::Rollback { lineage, to_day } => {
                let to = scenario::at(day - Duration::days(i64::from(n - to_day)), 3, 0);
                let regions = ctx.config.all_regions();
                let report = ami_core::publish::rollback::rollback(
                    ctx,
                    lineage,
                    ami_core::publish::rollback::Target::Slot(to),
                    &regions,
                    now,
                )
                .await;
                out.push(Invocation {
                    at: now,
                    function: "amictl".to_owned(),
                    event: format!(
                        "rollback --lineage {lineage} --to {} --all-regions --apply",
                        ami_core::time_util::slot_compact(to)
                    ),
                    result: Ok(report.event_detail()),
                });
            }
            Action::Migrate { instance } => {
                let (id, region) = image_of(instance)?;
                let (runs, done) = moved::migrate(emu, ctx, instance, &id, &region, now).await?;
                out.extend(runs);
                *moved = Some(done);
            }
            Action::Unshare { instance, day } => {
                let (_, region) = image_of(instance)?;
                let image = shared_on
                    .get(&(instance.to_owned(), day))
                    .cloned()
                    .with_context(|| format!("{instance} was not shared on day {day}"))?;
                emu.untag_image(&region, &image, key::SHARE_WITH).await?;
            }
        }
    }
    out.extend(bus.pump(emu, now).await?);
    Ok(out)
}

/// The image of `instance` for `slot` in `region` (original or replica), if any.
async fn image_of_slot(
    emu: &EmulatorClient,
    region: &str,
    instance: &str,
    slot: &str,
) -> anyhow::Result<Option<String>> {
    let tag = |k: &str, v: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name(format!("tag:{k}"))
            .values(v)
            .build()
    };
    let out = emu
        .ec2(region)
        .describe_images()
        .owners("self")
        .filters(tag(key::SOURCE_INSTANCE, instance))
        .filters(tag(key::SLOT, slot))
        .send()
        .await
        .context("DescribeImages")?;
    Ok(out
        .images()
        .first()
        .and_then(|i| i.image_id())
        .map(str::to_owned))
}

/// The `MM-DD` of an image's slot, for the tables.
async fn image_slot(emu: &EmulatorClient, region: &str, image: &str) -> anyhow::Result<String> {
    let out = emu
        .ec2(region)
        .describe_images()
        .image_ids(image)
        .send()
        .await
        .context("DescribeImages")?;
    Ok(out
        .images()
        .first()
        .and_then(|i| i.tags().iter().find(|t| t.key() == Some(key::SLOT)))
        .and_then(|t| t.value())
        .and_then(|s| s.get(5..10))
        .unwrap_or("-")
        .to_owned())
}

/// The image of `instance` for `slot` in `region`.
async fn find_image(
    emu: &EmulatorClient,
    region: &str,
    instance: &str,
    slot: &str,
) -> anyhow::Result<String> {
    let out = emu
        .ec2(region)
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", key::SOURCE_INSTANCE))
                .values(instance)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", key::SLOT))
                .values(slot)
                .build(),
        )
        .send()
        .await
        .context("DescribeImages")?;
    out.images()
        .iter()
        .find(|i| !i.tags().iter().any(|t| t.key() == Some(key::SOURCE_IMAGE)))
        .and_then(|i| i.image_id())
        .map(str::to_owned)
        .with_context(|| format!("no image of {instance} for slot {slot} in {region}"))
}
