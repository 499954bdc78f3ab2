//! Duplicate delivery: every event type delivered three times, concurrently (three
//! `handle` calls with the same payload joined), as EventBridge's at-least-once delivery and
//! retries can. One image per instance per slot, one copy per destination region, the same
//! grants as once, the same deletions as once, and no failure reported by the losers.

use std::collections::BTreeSet;
use std::time::Duration;

use ami_core::model::Region;
use ami_core::ports::{all_images, ImageQuery};
use ami_core::tags::key;
use ami_sim::cycle;
use ami_sim::Emulator;
use anyhow::{ensure, Context as _};
use serde_json::{json, Value};

use ami_sim::cycle::{
    deliver, expected, observe, run_cycle_with, seed, slot, source_image, ALLOWED, HOME, REPLICA,
};

/// Every scheduled run (create-image's schedule, replicate's and share's reconciles, the
/// cleanup schedule) of the whole cycle delivered three times at once ends exactly as the
/// cycle with single deliveries: same images by (region, lineage, slot), same launch,
/// create-volume and KMS grants (each grant once), the same deletions.
#[tokio::test]
async fn every_scheduled_run_delivered_three_times_at_once_ends_as_once() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let estate = seed(&emu).await?;
    let ctx = cycle::context(&emu, 1);
    let run = run_cycle_with(&emu, &ctx, &estate, 3).await?;
    println!("{}", run.summary());
    ensure!(run.errors().is_empty(), "errors: {:?}", run.errors());
    ensure!(
        run.failed() == 0,
        "a duplicate reported failures:\n{}",
        run.summary()
    );
    // One image per instance per slot: the three deliveries of a slot created exactly two
    // between them, the others found them made. (Copies: each delivery may report `copied`,
    // as CopyImage's ClientToken hands every caller the same copy; `observe` counts copies.)
    for n in 0..2 {
        let made: u64 = run
            .invocations
            .iter()
            .filter(|i| i.step.starts_with(&format!("create-image slot{n} ")))
            .map(|i| i.count("created"))
            .sum();
        ensure!(
            made == 2,
            "create-image slot {n}: {made} created by three deliveries, expected 2:\n{}",
            run.summary()
        );
    }
    let deleted: u64 = run
        .invocations
        .iter()
        .filter(|i| i.step.starts_with("cleanup"))
        .map(|i| i.count("deleted"))
        .sum();
    ensure!(
        deleted >= 3,
        "cleanup deleted {deleted} between three deliveries, expected the 3 of a single run:\n{}",
        run.summary()
    );
    let obs = observe(&emu, &estate, &run.cleanup_mentions()).await?;
    ensure!(obs.problems.is_empty(), "invariants: {:#?}", obs.problems);
    ensure!(
        obs.state == expected(),
        "final state {:#?}\nexpected (single deliveries) {:#?}",
        obs.state,
        expected()
    );
    Ok(())
}

/// The event-triggered paths: each AMI `available` event delivered three times at once to
/// replicate makes one copy; a share-with Tag Change event delivered three times at once to
/// share grants exactly what one delivery grants (compared image for image: `i1`'s image
/// gets its event once, `i0`'s three times).
#[tokio::test]
async fn events_delivered_three_times_at_once_copy_once_and_grant_as_once() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let estate = seed(&emu).await?;
    let ctx = cycle::context(&emu, 1);
    let ami_events = emu.event_queue(HOME, json!({"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"], "detail": {"State": ["available", "failed"]}})).await?;
    let tag_events = emu
        .event_queue(HOME, json!({"source": ["aws.tag"], "detail-type": ["Tag Change on Resource"], "detail": {"service": ["ec2"], "resource-type": ["image"], "changed-tag-keys": [key::SHARE_WITH]}}))
        .await?;
    let t = slot(0);
    let schedule = cycle::scheduled_event(&format!("{}-schedule-daily", cycle::DEPLOYMENT), t);
    deliver(&ctx, "create-image", &schedule, t, 1)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    emu.tick()?;
    let available = ami_events.wait_for(2, Duration::from_secs(10)).await?;
    ensure!(
        available.len() == 2,
        "expected 2 AMI available events, got {available:#?}"
    );

    // Replicate: each event three times, all six deliveries at once.
    let now = t + time::Duration::minutes(5);
    let (a, b) = tokio::join!(
        deliver(&ctx, "replicate", &available[0], now, 3),
        deliver(&ctx, "replicate", &available[1], now, 3)
    );
    let results: Vec<Value> = a
        .into_iter()
        .chain(b)
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let copied: u64 = results
        .iter()
        .map(|r| r["counts"]["copied"].as_u64().unwrap_or(0))
        .sum();
    let failed: u64 = results
        .iter()
        .map(|r| r["failed"].as_u64().unwrap_or(0))
        .sum();
    // Every delivery may report `copied`: CopyImage's ClientToken hands the losers the
    // winner's copy. What counts is one copy per source (below).
    ensure!(
        failed == 0 && copied >= 2,
        "6 deliveries: {copied} copied, {failed} failed: {results:#?}"
    );
    let replicas = all_images(
        ctx.cloud.ec2(&Region::new(REPLICA)).as_ref(),
        &ImageQuery {
            owned_by_self: true,
            ..ImageQuery::default()
        },
    )
    .await?;
    let mut per_source = std::collections::BTreeMap::<String, usize>::new();
    for r in &replicas {
        *per_source
            .entry(r.tag(key::SOURCE_IMAGE).unwrap_or("-").to_owned())
            .or_default() += 1;
    }
    ensure!(
        per_source.len() == 2 && per_source.values().all(|n| *n == 1),
        "copies per source in {REPLICA}: {per_source:?}"
    );
    emu.tick()?;

    // Share: i1's image tagged and its event delivered once; i0's three times at once.
    let mut images = Vec::new();
    for (_, instance) in &estate.instances {
        images.push(
            source_image(&ctx, instance, t)
                .await?
                .context("source image")?,
        );
    }
    let mut events = Vec::new();
    for image in &images {
        emu.tag_image(HOME, image.as_str(), key::SHARE_WITH, ALLOWED)
            .await?;
        let got = tag_events.wait_for(1, Duration::from_secs(10)).await?;
        events.push(got.into_iter().next().context("no Tag Change event")?);
    }
    let now = t + time::Duration::hours(6);
    let once = deliver(&ctx, "share", &events[1], now, 1).await;
    let thrice = deliver(&ctx, "share", &events[0], now, 3).await;
    let results: Vec<Value> = once
        .into_iter()
        .chain(thrice)
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    ensure!(
        results.iter().all(|r| r["failed"] == 0),
        "share deliveries failed: {results:#?}"
    );
    let granted: u64 = results[1..]
        .iter()
        .map(|r| r["counts"]["granted"].as_u64().unwrap_or(0))
        .sum();
    ensure!(
        granted >= 2,
        "the three deliveries granted {granted} (image + replica expected): {results:#?}"
    );

    let obs = observe(&emu, &estate, "").await?;
    ensure!(obs.problems.is_empty(), "invariants: {:#?}", obs.problems);
    // Per lineage: what one delivery granted (i1) and what three did (i0) are the same.
    let want: BTreeSet<String> = [ALLOWED.to_owned()].into();
    for (k, (state, launch, snaps)) in &obs.state.images {
        ensure!(
            state == "available" && *launch == want && snaps.iter().all(|s| *s == want),
            "{k:?}: {state}, launch {launch:?}, snapshots {snaps:?}"
        );
    }
    let grants: Vec<_> = obs
        .state
        .kms_grants
        .iter()
        .map(|((k, a), n)| (k.lineage.clone(), a.clone(), *n))
        .collect();
    ensure!(
        grants
            == vec![
                ("i0".to_owned(), ALLOWED.to_owned(), 1),
                ("i1".to_owned(), ALLOWED.to_owned(), 1)
            ],
        "KMS grants on the replica key (lineage, account, count): {grants:?}"
    );
    ensure!(
        obs.state.images.len() == 4,
        "images: {:#?}",
        obs.state.images.keys()
    );
    Ok(())
}
