//! Crash anywhere: for every mutating EC2 action of the create → replicate → share →
//! cleanup cycle ([`cycle`]), the emulator fails that action's first call with a 500 —
//! `before` (not applied) or `after` (applied, answer lost) — while the SDK makes one
//! attempt, so the run sees the failure; then the whole cycle runs again without the crash
//! (every event redelivered, every reconcile run again). The invariants must hold and the
//! final state must equal the fault-free run's, compared by (region, lineage, slot, kind)
//! and grants.

use ami_sim::cycle;
use ami_sim::Emulator;
use anyhow::{ensure, Context as _};
use serde_json::json;

use ami_sim::cycle::{expected, mutating_calls, observe, run_cycle, seed};

#[tokio::test]
async fn fault_free_cycle_reaches_the_expected_state_and_a_replay_changes_nothing(
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let estate = seed(&emu).await?;
    let ctx = cycle::context(&emu, 1);
    emu.control("POST", "/_emulator/counters/reset", None)?;
    let first = run_cycle(&emu, &ctx, &estate).await?;
    let calls = mutating_calls(&emu)?;
    println!(
        "fault-free cycle:\n{}\nmutating calls: {calls:?}",
        first.summary()
    );
    ensure!(
        first.errors().is_empty() && first.failed() == 0 && first.deferred() == 0,
        "fault-free run had problems:\n{}",
        first.summary()
    );
    let obs = observe(&emu, &estate, &first.cleanup_mentions()).await?;
    ensure!(obs.problems.is_empty(), "invariants: {:#?}", obs.problems);
    ensure!(
        obs.state == expected(),
        "final state {:#?}\nexpected {:#?}",
        obs.state,
        expected()
    );
    let replay = run_cycle(&emu, &ctx, &estate).await?;
    println!(
        "replay:\n{}\nmutating calls after replay: {:?}",
        replay.summary(),
        mutating_calls(&emu)?
    );
    ensure!(
        replay.errors().is_empty() && replay.failed() == 0,
        "replay had problems:\n{}",
        replay.summary()
    );
    let again = observe(
        &emu,
        &estate,
        &format!("{}{}", first.cleanup_mentions(), replay.cleanup_mentions()),
    )
    .await?;
    ensure!(
        again.problems.is_empty(),
        "invariants after replay: {:#?}",
        again.problems
    );
    ensure!(
        again.state == obs.state,
        "replay changed the final state: {:#?}",
        again.state
    );
    Ok(())
}

/// Runs the cycle with `action`'s `nth` call crashing `when`, then again without the crash;
/// checks the invariants and the final state.
async fn crash_case(action: &str, nth: u32, when: &str) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let estate = seed(&emu).await?;
    let ctx = cycle::context(&emu, 1);
    emu.configure(json!({"crash": [{"action": action, "nth": nth, "when": when}]}))?;
    let crashed = run_cycle(&emu, &ctx, &estate).await?;
    let injected = emu.counters()?["injected"].to_string();
    emu.configure(json!({"crash": []}))?;
    println!(
        "{action} #{nth} {when}: injected {injected}\n{}",
        crashed.summary()
    );
    ensure!(
        injected.contains(action),
        "the crash of {action} never fired: {injected}"
    );
    let saw = crashed.failed() + crashed.deferred() + crashed.errors().len() as u64;
    ensure!(
        saw > 0,
        "no run reported the crash of {action} #{nth} {when}:\n{}",
        crashed.summary()
    );
    let rerun = run_cycle(&emu, &ctx, &estate).await?;
    println!("re-run:\n{}", rerun.summary());
    ensure!(
        rerun.errors().is_empty() && rerun.failed() == 0 && rerun.deferred() == 0,
        "the re-run did not complete cleanly:\n{}",
        rerun.summary()
    );
    let reported = format!("{}{}", crashed.cleanup_mentions(), rerun.cleanup_mentions());
    let obs = observe(&emu, &estate, &reported)
        .await
        .context("observing")?;
    ensure!(
        obs.problems.is_empty(),
        "{action} #{nth} {when}: invariants broken: {:#?}",
        obs.problems
    );
    ensure!(
        obs.state == expected(),
        "{action} #{nth} {when}: final state {:#?}\nexpected (fault-free) {:#?}",
        obs.state,
        expected()
    );
    Ok(())
}

macro_rules! crash_tests {
    ($($name:ident: $action:literal #$nth:literal $when:literal;)*) => {$(
        #[tokio::test]
        async fn $name() -> anyhow::Result<()> {
            crash_case($action, $nth, $when).await
        }
    )*};
}

// Every mutating action the fault-free cycle calls (the fault-free test prints them):
// CreateImage, CopyImage, ModifyImageAttribute, ModifySnapshotAttribute, CreateTags,
// DeregisterImage (cleanup deletes snapshots with DeleteAssociatedSnapshots, so no
// DeleteSnapshot; DEPRECATION_GRACE=0, so no EnableImageDeprecation). CreateTags #1 is the
// person's share-with tag (retried by the person): #2 is share's first record write.
crash_tests! {
    create_image_before: "CreateImage" #1 "before";
    create_image_after: "CreateImage" #1 "after";
    copy_image_before: "CopyImage" #1 "before";
    copy_image_after: "CopyImage" #1 "after";
    modify_image_attribute_before: "ModifyImageAttribute" #1 "before";
    modify_image_attribute_after: "ModifyImageAttribute" #1 "after";
    modify_snapshot_attribute_before: "ModifySnapshotAttribute" #1 "before";
    modify_snapshot_attribute_after: "ModifySnapshotAttribute" #1 "after";
    create_tags_before: "CreateTags" #2 "before";
    create_tags_after: "CreateTags" #2 "after";
    deregister_image_before: "DeregisterImage" #1 "before";
    deregister_image_after: "DeregisterImage" #1 "after";
    // Later calls: share's next record write (after its grants), a second snapshot's
    // permission (a partly shared image), cleanup's last deregistration.
    create_tags_third_before: "CreateTags" #3 "before";
    create_tags_third_after: "CreateTags" #3 "after";
    modify_snapshot_attribute_second_after: "ModifySnapshotAttribute" #2 "after";
    deregister_image_last_after: "DeregisterImage" #3 "after";
}
