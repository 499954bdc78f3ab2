//! `amictl report --html`: the estate report of a small estate on the emulator, rendered by
//! a real headless Chromium. The page is built by the code the command runs
//! ([`ami_core::estate::read`] and [`ami_core::estate::render_html`]); the test checks the
//! DOM Chromium parsed (sections per region and lineage, the SVG charts, the next cleanup,
//! shares) and that its screenshot is a PNG of the window's size that is not blank —
//! structure, not pixels.
//!
//! Chromium comes from the distribution (`make rust-test` / `make setup` install it). When
//! it cannot be found the browser half is skipped with a message, unless
//! `REQUIRE_CHROMIUM=1` (what the Makefile sets), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::estate::{self, NextCleanup};
use ami_core::report::Outcome;
use ami_core::tags::key;
use ami_core::time_util::slot_of;
use ami_sim::{Emulator, OTHER_ACCOUNT};
use anyhow::{bail, ensure, Context as _};
use aws_sdk_ec2::types::{LaunchPermission, LaunchPermissionModifications};
use time::Duration;

use crate::common::now;

const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";
const WINDOW: (u32, u32) = (1280, 1600);

/// A small estate: three daily images of one instance in us-east-1 (RETAIN=count=1), the
/// newest copied to eu-west-1 and shared with another account. Returns the page.
async fn seeded_report(emu: &Emulator) -> anyhow::Result<(String, estate::Estate)> {
    let ctx = emu.context(emu.config(&[
        ("AMI_LIFECYCLE_REGIONS", EAST),
        ("REPLICA_REGIONS", WEST),
        ("RETAIN", "count=1"),
    ]));
    emu.launch_instance(
        EAST,
        &[
            (key::SCHEDULE, "daily"),
            (key::REBOOT, "false"),
            (key::REPLICATE_TO, WEST),
        ],
        &[],
    )
    .await?;
    let mut newest = None;
    for days in [3, 2, 1] {
        let slot = slot_of(now() - Duration::days(days));
        let made = create::run(
            &ctx,
            CreateRequest::Schedule(ScheduleRun::new("daily".into(), slot)),
            now(),
        )
        .await;
        emu.tick()?;
        newest = made
            .items
            .iter()
            .find(|i| i.outcome == Outcome::Created)
            .and_then(|i| i.image.clone());
        ensure!(newest.is_some(), "{}", made.render_table());
    }
    let newest = newest.context("no image made")?;
    let copied =
        ami_core::replicate::run(&ctx, ami_core::replicate::Request::Reconcile, now()).await;
    ensure!(
        copied.count(Outcome::Copied) == 1,
        "{}",
        copied.render_table()
    );
    emu.tick()?;
    emu.ec2(EAST)
        .modify_image_attribute()
        .image_id(newest.as_str())
        .launch_permission(
            LaunchPermissionModifications::builder()
                .add(LaunchPermission::builder().user_id(OTHER_ACCOUNT).build())
                .build(),
        )
        .send()
        .await
        .context("ModifyImageAttribute")?;

    let estate = estate::read(&ctx, now()).await?;
    Ok((estate::render_html(&estate), estate))
}

/// The browser: `CHROMIUM`, else the distribution's names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with `extra` flags; returns its stdout. A private
/// profile directory per run; killed after two minutes.
fn headless(browser: &Path, dir: &Path, extra: &[String], page: &Path) -> anyhow::Result<String> {
    let profile = tempdir(dir, "profile")?;
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", browser.display()))?;
    let started = Instant::now();
    while child.try_wait()?.is_none() {
        if started.elapsed() > StdDuration::from_secs(120) {
            child.kill()?;
            child.wait()?;
            bail!("{} did not finish within 120 s", browser.display());
        }
        std::thread::sleep(StdDuration::from_millis(100));
    }
    let out = child.wait_with_output()?;
    // The profile is per run: nothing of it is worth keeping.
    let _ = std::fs::remove_dir_all(&profile);
    ensure!(
        out.status.success(),
        "{} failed ({}): {}",
        browser.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tempdir(base: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = base.join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A PNG's width and height (its IHDR chunk), after checking the signature.
fn png_size(bytes: &[u8]) -> anyhow::Result<(u32, u32)> {
    ensure!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG"
    );
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Ok((be(16), be(20)))
}

/// A screenshot of `page` at [`WINDOW`]; returns the PNG's bytes.
fn screenshot(browser: &Path, dir: &Path, page: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    headless(
        browser,
        dir,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ],
        page,
    )?;
    std::fs::read(&png).with_context(|| format!("no screenshot at {}", png.display()))
}

#[tokio::test]
async fn the_estate_report_renders_in_a_headless_browser() -> anyhow::Result<()> {
    // GIVEN a small estate on the emulator and the report of it
    let emu = Emulator::start()?;
    let (page, estate) = seeded_report(&emu).await?;

    // THEN the view model holds both regions, the lineage in each, the next cleanup's plan
    // (RETAIN=count=1: the two older images go, the newest and its copy stay) and the share
    let east = estate
        .regions
        .iter()
        .find(|r| r.region == EAST)
        .context("no us-east-1")?;
    let west = estate
        .regions
        .iter()
        .find(|r| r.region == WEST)
        .context("no eu-west-1")?;
    ensure!(
        east.lineages.len() == 1 && west.lineages.len() == 1,
        "{estate:#?}"
    );
    ensure!(east.lineages[0].images.len() == 3, "{estate:#?}");
    ensure!(east.lineages[0].planned().count() == 2, "{estate:#?}");
    ensure!(
        matches!(
            east.lineages[0].images.last().map(|i| &i.next_cleanup),
            Some(NextCleanup::Keep(_))
        ),
        "{estate:#?}"
    );
    ensure!(west.lineages[0].lineage == east.lineages[0].lineage);
    ensure!(
        matches!(
            west.lineages[0].images[0].origin,
            estate::Origin::Copied { .. }
        ),
        "{estate:#?}"
    );
    ensure!(east.lineages[0].gib > 0 && east.lineages[0].monthly_cost_usd > 0.0);
    ensure!(
        estate.shares.len() == 1 && estate.shares[0].grantee == OTHER_ACCOUNT,
        "{estate:#?}"
    );

    // WHEN it is written where `amictl report --html FILE` writes it
    let dir = tempdir(Path::new(env!("CARGO_TARGET_TMPDIR")), "estate-report")?;
    let file = dir.join("estate.html");
    std::fs::write(&file, &page)?;
    let Some(browser) = chromium() else {
        ensure!(
            std::env::var("REQUIRE_CHROMIUM").is_err(),
            "REQUIRE_CHROMIUM is set but no chromium was found (CHROMIUM, or chromium on PATH): `make browser` installs it"
        );
        eprintln!(
            "SKIPPED the browser half: no chromium found (set CHROMIUM or install the distribution's chromium: `make browser`); the report is at {}",
            file.display()
        );
        return Ok(());
    };

    // THEN Chromium parses it into the expected sections (no script runs: there is none)
    let dom = headless(&browser, &dir, &["--dump-dom".to_owned()], &file)?;
    for wanted in [
        "id=\"summary\"",
        "id=\"notes\"",
        "<section class=\"region\" id=\"region-us-east-1\"",
        "<section class=\"region\" id=\"region-eu-west-1\"",
        "id=\"shares\"",
        &format!("data-grantee=\"{OTHER_ACCOUNT}\""),
    ] {
        ensure!(dom.contains(wanted), "no {wanted} in the DOM:\n{dom}");
    }
    ensure!(
        dom.matches("<article class=\"lineage\"").count() == 2,
        "{dom}"
    );
    ensure!(dom.matches("<svg class=\"timeline\"").count() == 2, "{dom}");
    ensure!(dom.matches("<svg class=\"storage\"").count() == 2, "{dom}");
    ensure!(dom.matches("<li class=\"planned\">").count() == 2, "{dom}");
    ensure!(!dom.contains("<script"), "the page needs no script");

    // AND its screenshot is a PNG of the window's size, far from a blank page's
    let shot = screenshot(&browser, &dir, &file, "estate")?;
    ensure!(
        png_size(&shot)? == WINDOW,
        "screenshot size {:?}",
        png_size(&shot)?
    );
    let blank_page = dir.join("blank.html");
    std::fs::write(&blank_page, "<!DOCTYPE html><html><body></body></html>")?;
    let blank = screenshot(&browser, &dir, &blank_page, "blank")?;
    ensure!(png_size(&blank)? == WINDOW);
    ensure!(
        shot.len() > 4 * blank.len(),
        "the report's screenshot ({} bytes) looks blank (a blank page: {} bytes)",
        shot.len(),
        blank.len()
    );
    println!("report: {} ({} bytes of PNG)", file.display(), shot.len());
    Ok(())
}
