//! Faults: 20% of every EC2 call fails (10% `RequestLimitExceeded`, 5% `InternalError`,
//! 5% `Unavailable`; fixed seed) while the SDK's standard retries are on (5 attempts).
//! Every run completes with a report (deferred items allowed, no handler error, no
//! panic); re-running the cycle — faults still on — until nothing is deferred or failed
//! (at most 5 rounds) ends in the fault-free final state, by (region, lineage, slot, kind)
//! and grants.

use ami_sim::cycle;
use ami_sim::Emulator;
use anyhow::ensure;
use serde_json::json;

use ami_sim::cycle::{expected, observe, run_cycle, seed};

const ROUNDS: usize = 5;

/// The SDK's standard retries (5 attempts) absorb almost every fault.
#[tokio::test]
async fn twenty_percent_faults_with_standard_retries_end_in_the_fault_free_state(
) -> anyhow::Result<()> {
    faults_case(5, 20261122, ROUNDS).await
}

/// Two attempts: about 4% of calls still fail, so items are deferred. Two faulty passes,
/// then the faults stop and the re-runs (at most 3) must do what was deferred.
#[tokio::test]
async fn twenty_percent_faults_with_two_attempts_are_deferred_and_redone() -> anyhow::Result<()> {
    faults_case(2, 7, 2).await
}

/// Runs the cycle with faults on for the first `faulty_rounds` passes, then off, until a
/// pass has nothing deferred or failed (at most [`ROUNDS`]).
async fn faults_case(
    max_attempts: u32,
    seed_value: u64,
    faulty_rounds: usize,
) -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    let estate = seed(&emu).await?;
    let ctx = cycle::context(&emu, max_attempts);
    emu.configure(json!({
        "seed": seed_value,
        "error_rates": {"*": {"RequestLimitExceeded": 0.10, "InternalError": 0.05, "Unavailable": 0.05}}
    }))?;
    let mut reported = String::new();
    let mut clean_round = None;
    let mut deferred_under_faults = 0;
    let mut failed_under_faults = 0;
    for round in 1..=ROUNDS {
        if round == faulty_rounds + 1 {
            emu.configure(json!({"error_rates": {}}))?;
        }
        let run = run_cycle(&emu, &ctx, &estate).await?;
        println!("{max_attempts} attempts, round {round}:\n{}", run.summary());
        // Every run completes: a report, never a handler error.
        ensure!(
            run.errors().is_empty(),
            "round {round}: handler errors {:?}",
            run.errors()
        );
        for inv in &run.invocations {
            let report = inv.result.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            ensure!(
                report["outcome"].is_string() && report["counts"].is_object(),
                "{}: not a report: {report}",
                inv.step
            );
        }
        reported.push_str(&run.cleanup_mentions());
        if round <= faulty_rounds {
            deferred_under_faults += run.deferred() + run.failed();
            failed_under_faults += run.failed();
        }
        if run.deferred() == 0 && run.failed() == 0 {
            clean_round = Some(round);
            break;
        }
    }
    let counters = emu.counters()?;
    println!(
        "injected: {}\nthrottled: {}",
        counters["injected"], counters["throttled"]
    );
    println!("{max_attempts} attempts: {deferred_under_faults} items deferred or failed under faults ({failed_under_faults} failed); clean at round {clean_round:?}");
    ensure!(
        clean_round.is_some(),
        "still deferred or failed items after {ROUNDS} rounds"
    );
    ensure!(
        max_attempts > 2 || deferred_under_faults > 0,
        "two attempts under 20% faults deferred nothing: the case tests nothing"
    );
    ensure!(
        counters["injected"]
            .as_object()
            .is_some_and(|m| !m.is_empty()),
        "no fault was injected: {counters}"
    );
    emu.configure(json!({"error_rates": {}}))?;
    let obs = observe(&emu, &estate, &reported).await?;
    ensure!(obs.problems.is_empty(), "invariants: {:#?}", obs.problems);
    ensure!(
        obs.state == expected(),
        "final state {:#?}\nexpected (fault-free) {:#?}",
        obs.state,
        expected()
    );
    Ok(())
}
