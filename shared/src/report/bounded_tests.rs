//! The bounded report: exact counts, the first items of each outcome, every failure, and
//! every item left out handed to the sink exactly once.

use std::sync::{Arc, Mutex};

use time::macros::datetime;

use super::sink::{self, ReportSink};
use super::*;

fn report() -> RunReport {
    RunReport::new("cleanup", true, datetime!(2026-11-22 03:00 UTC))
}

fn push_n(rep: &mut RunReport, region: &str, prefix: &str, n: usize, outcome: Outcome) {
    for k in 0..n {
        rep.push(
            &Region::new(region),
            format!("{prefix}{k}"),
            None,
            outcome,
            "why",
        );
    }
}

/// Records what it is handed.
#[derive(Default)]
struct Collect(Mutex<Vec<ReportItem>>);

impl ReportSink for Collect {
    fn item(&self, item: &ReportItem) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(item.clone());
    }
}

impl Collect {
    fn subjects(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|i| i.subject.clone())
            .collect()
    }
}

#[test]
fn counts_stay_exact_past_the_bound_and_the_first_items_are_kept() {
    let mut rep = report();
    push_n(&mut rep, "us-east-1", "ami-k", 250, Outcome::Kept);
    push_n(&mut rep, "us-east-1", "ami-p", 30, Outcome::Planned);
    assert_eq!(rep.count(Outcome::Kept), 250);
    assert_eq!(rep.count(Outcome::Planned), 30);
    assert_eq!(rep.total(), 280);
    assert_eq!(rep.counts().get("kept"), Some(&250));
    assert_eq!(rep.omitted.get(&Outcome::Kept), Some(&150));
    assert_eq!(rep.items.len(), ITEMS_PER_OUTCOME + 30);
    let kept: Vec<&str> = rep
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Kept)
        .map(|i| i.subject.as_str())
        .collect();
    assert_eq!(kept.first(), Some(&"ami-k0"));
    assert_eq!(kept.last(), Some(&"ami-k99"));
    let detail = rep.event_detail();
    assert_eq!(detail["counts"]["kept"], 250);
    assert_eq!(detail["items_truncated"], true);
    // The counts survive the JSON form.
    let back: RunReport = serde_json::from_value(serde_json::to_value(&rep).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.count(Outcome::Kept), 250);
}

#[test]
fn failures_are_never_left_out() {
    let mut rep = report();
    push_n(&mut rep, "us-east-1", "ami-f", 150, Outcome::Failed);
    push_n(&mut rep, "us-east-1", "ami-k", 150, Outcome::Kept);
    assert_eq!(rep.items.len(), 150 + ITEMS_PER_OUTCOME);
    assert_eq!(rep.failed(), 150);
    assert!(!rep.omitted.contains_key(&Outcome::Failed));
    assert_eq!(rep.outcome(), "partial");
    let mut all_failed = report();
    push_n(&mut all_failed, "us-east-1", "ami-f", 150, Outcome::Failed);
    assert_eq!(all_failed.outcome(), "failed");
}

#[test]
fn the_table_says_how_many_more() {
    let mut rep = report();
    push_n(&mut rep, "us-east-1", "ami-k", 130, Outcome::Kept);
    let text = rep.render_table();
    assert!(text.contains("… and 30 more kept\n"), "{text}");
    assert!(text.contains("cleanup (dry run): kept=130"), "{text}");
    // A header, the 100 kept rows, the line above and the summary.
    assert_eq!(text.lines().count(), 1 + ITEMS_PER_OUTCOME + 2, "{text}");
}

#[tokio::test]
async fn in_a_streaming_scope_every_item_reaches_the_output_once() {
    let sink = Arc::new(Collect::default());
    let spoke = AccountId::parse("222233334444").unwrap_or_else(|| panic!("an account"));
    let report = sink::streaming(sink.clone() as Arc<dyn ReportSink>, async {
        // As cleanup does: a report per region, merged into the run's.
        let mut run = report();
        let mut east = report();
        push_n(&mut east, "us-east-1", "east-", 120, Outcome::Planned);
        let west = sink::in_account(&spoke, async {
            let mut west = report();
            push_n(&mut west, "us-west-2", "west-", 90, Outcome::Planned);
            west
        })
        .await;
        run.merge(east);
        run.merge(west.in_account(&spoke));
        run
    })
    .await;
    assert_eq!(report.count(Outcome::Planned), 210);
    assert_eq!(report.items.len(), ITEMS_PER_OUTCOME);
    let streamed = sink.subjects();
    assert_eq!(streamed.len(), 110, "{streamed:?}");
    let mut every: Vec<String> = streamed
        .iter()
        .cloned()
        .chain(report.items.iter().map(|i| i.subject.clone()))
        .collect();
    every.sort();
    let before = every.len();
    every.dedup();
    assert_eq!((before, every.len()), (210, 210), "each item once");
    // East's 20 past the bound were streamed as east left them out; of west's 90, the 90
    // the run's report had no room for once east's 100 were in.
    assert_eq!(
        streamed.iter().filter(|s| s.starts_with("east-")).count(),
        20
    );
    let items = sink
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(items
        .iter()
        .filter(|i| i.subject.starts_with("west-"))
        .all(|i| i.account.as_ref() == Some(&spoke)));
}

#[test]
fn without_a_scope_items_left_out_are_only_counted() {
    let mut rep = report();
    push_n(&mut rep, "us-east-1", "ami-", 101, Outcome::Planned);
    assert!(rep.stream.0.is_none());
    assert_eq!(rep.count(Outcome::Planned), 101);
}

#[test]
fn an_unbounded_report_keeps_everything_until_merged_into_a_bounded_one() {
    let mut part = report().unbounded();
    push_n(&mut part, "us-east-1", "i-", 150, Outcome::Deferred);
    assert_eq!(part.items.len(), 150);
    let mut run = report();
    run.merge(part);
    assert_eq!(run.items.len(), ITEMS_PER_OUTCOME);
    assert_eq!(run.count(Outcome::Deferred), 150);
}

#[test]
fn metrics_count_the_items_left_out() {
    let mut rep = report();
    push_n(&mut rep, "us-east-1", "ami-", 150, Outcome::Deleted);
    push_n(&mut rep, "us-east-1", "snap-", 150, Outcome::Deleted);
    push_n(&mut rep, "eu-west-1", "ami-", 120, Outcome::Deferred);
    let docs = emf::documents(&rep, "ami-lifecycle");
    let region = |r: &str| {
        docs.iter()
            .find(|d| d["Region"] == r)
            .cloned()
            .unwrap_or_else(|| panic!("no document for {r}: {docs:?}"))
    };
    // Deleted snapshots are not images, kept or left out.
    assert_eq!(region("us-east-1")[emf::names::IMAGES_DELETED], 150);
    assert_eq!(region("eu-west-1")[emf::names::DEFERRED], 120);
}
