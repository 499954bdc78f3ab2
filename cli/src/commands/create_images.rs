//! `amictl create-images --schedule NAME [--slot RFC3339]`: the create-image runner, run
//! from a terminal. Without a continuation queue the command itself waits out the reboot
//! waves: it runs one wave, polls until the next may start, and runs again (bounded by
//! `--max-wait`), printing progress lines.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ami_core::context::Context;
use ami_core::create::{self, CreateRequest, ScheduleRun};
use ami_core::error::CloudResult;
use ami_core::model::{AccountId, Region, ScheduleName};
use ami_core::ports::{
    Agents, Cloud, Continuations, Ec2, Keys, LaunchTemplates, Organization, Parameters, RecycleBin,
    Reports, Seals,
};
use ami_core::report::{Outcome, RunReport};
use ami_core::time_util::{parse_rfc3339, rfc3339, slot_of};
use time::OffsetDateTime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The schedule to run (one of SCHEDULES, e.g. daily).
    #[arg(long, value_parser = parse_schedule)]
    pub schedule: ScheduleName,
    /// The slot to image, RFC 3339 (default: now, truncated to the minute). Re-running a
    /// slot only makes the images it still lacks.
    #[arg(long, value_parser = parse_slot)]
    pub slot: Option<OffsetDateTime>,
    /// Plan and print, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run one wave and return (a configured continuation queue, if any, does the rest).
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds between checks while a reboot wave comes back.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub poll: u64,
    /// Give up waiting for the waves after this many seconds (the slot can be re-run).
    #[arg(long, default_value_t = 3600)]
    pub max_wait: u64,
}

fn parse_schedule(s: &str) -> Result<ScheduleName, String> {
    ami_core::tags::parse_schedule_name("--schedule", s)
        .map_err(|e| format!("{}; e.g. --schedule daily", e.problem))
}

fn parse_slot(s: &str) -> Result<OffsetDateTime, String> {
    parse_rfc3339(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 time such as 2026-11-22T03:00:00Z"))
}

/// The cloud without continuations: the command waits out the waves itself.
struct WithoutContinuations(Arc<dyn Cloud>);

#[async_trait::async_trait]
impl Cloud for WithoutContinuations {
    fn ec2(&self, region: &Region) -> Arc<dyn Ec2> {
        self.0.ec2(region)
    }
    fn keys(&self, region: &Region) -> Arc<dyn Keys> {
        self.0.keys(region)
    }
    fn recycle_bin(&self, region: &Region) -> Arc<dyn RecycleBin> {
        self.0.recycle_bin(region)
    }
    fn reports(&self) -> Arc<dyn Reports> {
        self.0.reports()
    }
    fn continuations(&self) -> Option<Arc<dyn Continuations>> {
        None
    }
    fn seals(&self) -> Arc<dyn Seals> {
        self.0.seals()
    }
    fn parameters(&self, region: &Region) -> Arc<dyn Parameters> {
        self.0.parameters(region)
    }
    fn launch_templates(&self, region: &Region) -> Arc<dyn LaunchTemplates> {
        self.0.launch_templates(region)
    }
    fn agents(&self, region: &Region) -> Arc<dyn Agents> {
        self.0.agents(region)
    }
    fn organization(&self) -> Arc<dyn Organization> {
        self.0.organization()
    }
    async fn account(&self) -> CloudResult<AccountId> {
        self.0.account().await
    }
    async fn for_account(
        &self,
        account: &AccountId,
        function: &str,
    ) -> CloudResult<Arc<dyn Cloud>> {
        let inner = self.0.for_account(account, function).await?;
        Ok(Arc::new(WithoutContinuations(inner)))
    }
}

/// Folds one round into the report of the whole command: an item's latest outcome wins,
/// except that what this command created stays "created".
fn fold(total: &mut Option<RunReport>, round: RunReport) {
    let Some(all) = total.as_mut() else {
        *total = Some(round);
        return;
    };
    let mut index: HashMap<(Region, String), usize> = all
        .items
        .iter()
        .enumerate()
        .map(|(n, i)| ((i.region.clone(), i.subject.clone()), n))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for item in round.items {
        let k = (item.region.clone(), item.subject.clone());
        seen.insert(k.clone());
        match index.get(&k) {
            Some(&n)
                if all.items[n].outcome == Outcome::Created
                    && item.outcome == Outcome::AlreadyExisted => {}
            Some(&n) => all.items[n] = item,
            None => {
                index.insert(k, all.items.len());
                all.items.push(item);
            }
        }
    }
    // Round-level notes (e.g. "continue with …") that the last round no longer has are stale.
    all.items.retain(|i| {
        seen.contains(&(i.region.clone(), i.subject.clone())) || i.outcome == Outcome::Created
    });
    // Items a round only counted (past the report's bound) are the last round's, as its
    // figures are.
    all.omitted = round.omitted;
    all.metrics = round.metrics;
    all.incomplete = round.incomplete;
}

pub async fn run(ctx: &Context, args: &Args) -> anyhow::Result<RunReport> {
    let now = OffsetDateTime::now_utc();
    let slot = slot_of(args.slot.unwrap_or(now));
    let slot_run = ScheduleRun::new(args.schedule.clone(), slot);
    // An operator's --slot is an explicit `force`: any past slot, never a future one.
    create::check_slot(&slot_run, now, create::SlotAuthority::Forced, &ctx.config)
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "create-images: schedule {}, slot {} (re-run this slot with --schedule {} --slot {})",
        args.schedule,
        rfc3339(slot),
        args.schedule,
        rfc3339(slot)
    );
    let waits = !args.no_wait && !ctx.dry_run();
    let ctx = if waits {
        Context {
            cloud: Arc::new(WithoutContinuations(ctx.cloud.clone())),
            ..ctx.clone()
        }
    } else {
        ctx.clone()
    };
    let started = Instant::now();
    let mut request = CreateRequest::Schedule(slot_run.clone());
    let mut total: Option<RunReport> = None;
    let mut round = 1;
    loop {
        let out = create::run_wave(&ctx, request, OffsetDateTime::now_utc()).await;
        let created = out.report.count(Outcome::Created);
        // Instances held for a later reboot wave (not the round's notes).
        let waiting = out.report.metrics.get("waiting").copied().unwrap_or(0.0) as u64;
        fold(&mut total, out.report);
        if !out.more || !waits {
            break;
        }
        if started.elapsed() >= Duration::from_secs(args.max_wait) {
            if let Some(t) = total.as_mut() {
                t.incomplete = Some(format!(
                    "stopped waiting after {} s; continue with amictl create-images --schedule {} --slot {}",
                    args.max_wait,
                    args.schedule,
                    rfc3339(slot)
                ));
            }
            break;
        }
        eprintln!("… round {round}: created {created}, {waiting} waiting for a reboot wave; checking again in {} s", args.poll);
        tokio::time::sleep(Duration::from_secs(args.poll)).await;
        request = CreateRequest::Continue(slot_run.clone(), round);
        round += 1;
    }
    let report = total.unwrap_or_else(|| {
        RunReport::new(
            create::run::FUNCTION,
            ctx.dry_run(),
            OffsetDateTime::now_utc(),
        )
    });
    Ok(ctx.finish(report).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn round(items: &[(&str, Outcome)]) -> RunReport {
        let mut r = RunReport::new("create-image", false, datetime!(2026-11-22 03:00 UTC));
        for (subject, outcome) in items {
            r.push(&Region::new("us-east-1"), *subject, None, *outcome, "");
        }
        r
    }

    #[test]
    fn rounds_fold_into_one_report_that_keeps_what_was_created() {
        let mut total = None;
        fold(
            &mut total,
            round(&[
                ("i-1", Outcome::Created),
                ("i-2", Outcome::Deferred),
                ("schedule daily", Outcome::Deferred),
            ]),
        );
        fold(
            &mut total,
            round(&[("i-1", Outcome::AlreadyExisted), ("i-2", Outcome::Created)]),
        );
        let items: Vec<(String, Outcome)> = total
            .map(|t| {
                t.items
                    .into_iter()
                    .map(|i| (i.subject, i.outcome))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            items,
            vec![
                ("i-1".to_owned(), Outcome::Created),
                ("i-2".to_owned(), Outcome::Created)
            ]
        );
    }

    #[test]
    fn bad_flags_say_what_is_expected() {
        assert!(parse_slot("yesterday").is_err_and(|e| e.contains("RFC 3339")));
        assert!(parse_schedule("no way").is_err_and(|e| e.contains("--schedule daily")));
        assert_eq!(
            parse_slot("2026-11-22T03:00:00Z"),
            Ok(datetime!(2026-11-22 03:00 UTC))
        );
    }
}
