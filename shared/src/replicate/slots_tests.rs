//! Copies past the concurrent-copy cap against the fake cloud: a waiting run requests a
//! deferred copy as soon as one of ours completes; an event's run defers at the cap and
//! a replica's `available` event fills its region.

use std::time::Duration;

use time::macros::datetime;
use time::OffsetDateTime;

use super::run::{run_polling, IN_FLIGHT};
use super::slots::Slots;
use super::Request;
use crate::config::Config;
use crate::context::Context;
use crate::deadline::Deadline;
use crate::fake::FakeCloud;
use crate::model::{ImageId, Region};
use crate::report::{Outcome, RunReport};
use crate::tags::key;

const NOW: OffsetDateTime = datetime!(2026-11-22 03:05 UTC);
const POLL: Duration = Duration::from_millis(20);
const DEST: &str = "eu-west-1";

/// `n` managed sources in us-east-1 (one lineage each), one destination, copies capped at `cap`.
fn capped(n: usize, cap: usize) -> (FakeCloud, Context, Vec<ImageId>) {
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(NOW);
    cloud.state().copy_cap = Some(cap);
    let sources = (0..n)
        .map(|i| {
            let instance = format!("i-{i:017x}");
            cloud.add_image(
                "us-east-1",
                &format!("ami-lifecycle/{instance}/daily/20261122T0300Z"),
                datetime!(2026-11-22 03:00 UTC),
                &[
                    (key::MANAGED_BY, "ami-lifecycle"),
                    (key::SCHEDULE, "daily"),
                    (key::SLOT, "2026-11-22T03:00:00Z"),
                    (key::SOURCE_INSTANCE, instance.as_str()),
                ],
            )
        })
        .collect();
    let config = Config::from_lookup(|k| match k {
        "AWS_REGION" => Some("us-east-1".to_owned()),
        "REPLICA_REGIONS" => Some(DEST.to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ctx = Context::new(std::sync::Arc::new(cloud.clone()), config);
    (cloud, ctx, sources)
}

fn copies(cloud: &FakeCloud) -> Vec<crate::model::Image> {
    cloud
        .live_images(DEST)
        .into_iter()
        .filter(|i| i.tag(key::SOURCE_IMAGE).is_some())
        .collect()
}

fn event(image: &ImageId, region: &str) -> Request {
    Request::Image {
        image: image.clone(),
        region: Some(Region::new(region)),
        from_event: true,
    }
}

fn at_cap(report: &RunReport) -> usize {
    report
        .items
        .iter()
        .filter(|i| i.outcome == Outcome::Deferred && i.reason.contains("ResourceLimitExceeded"))
        .count()
}

/// Completes every pending image every `every`, as EC2 finishes copies, until dropped.
fn completer(cloud: &FakeCloud, every: Duration) -> tokio::task::JoinHandle<()> {
    let cloud = cloud.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            cloud.complete_pending();
        }
    })
}

#[tokio::test]
async fn one_reconcile_copies_past_the_cap_as_copies_complete_asking_ec2_once_too_many() {
    // GIVEN 6 sources, a destination that takes 2 concurrent copies, copies completing
    let (cloud, ctx, sources) = capped(6, 2);
    let done = completer(&cloud, Duration::from_millis(60));
    // WHEN one reconcile runs
    let report = run_polling(&ctx, Request::Reconcile, NOW, POLL).await;
    done.abort();
    // THEN every source is copied in that run, none deferred, and EC2 refused only the
    // requests in flight when the run learnt the cap (it waited for slots from there)
    assert_eq!(
        (
            report.count(Outcome::Copied),
            report.count(Outcome::Deferred)
        ),
        (6, 0),
        "{}",
        report.render_table()
    );
    assert_eq!(
        cloud.calls("CopyImage"),
        6 + IN_FLIGHT.min(4),
        "{}",
        report.render_table()
    );
    let mut made: Vec<String> = copies(&cloud)
        .iter()
        .filter_map(|c| c.tag(key::SOURCE_IMAGE).map(str::to_owned))
        .collect();
    made.sort();
    let mut want: Vec<String> = sources.iter().map(ToString::to_string).collect();
    want.sort();
    assert_eq!(made, want, "one copy of each source");
    // AND the polls asked for our pending copies only
    assert!(cloud.calls("DescribeImages") > 0);
}

#[tokio::test]
async fn copies_in_flight_never_take_more_slots_than_the_learned_cap() {
    // GIVEN 24 sources, a destination that takes 3 concurrent copies, copies completing
    // now and then (each poll sees some slots free, not all)
    let (cloud, ctx, sources) = capped(24, 3);
    let done = completer(&cloud, Duration::from_millis(30));
    // WHEN one reconcile runs, several copy requests in flight at once
    let report = run_polling(&ctx, Request::Reconcile, NOW, POLL).await;
    done.abort();
    // THEN all are copied, and EC2 refused only the requests in flight when the run
    // learnt the cap: from there, ours pending plus ours being requested never reached
    // past the cap (any request beyond it would have been refused and counted here)
    assert_eq!(
        (report.count(Outcome::Copied), report.failed()),
        (sources.len(), 0),
        "{}",
        report.render_table()
    );
    let refused = cloud.calls("CopyImage") - sources.len();
    assert!(
        (1..=IN_FLIGHT).contains(&refused),
        "{refused} CopyImage calls refused for the cap\n{}",
        report.render_table()
    );
    assert_eq!(copies(&cloud).len(), sources.len());
}

#[tokio::test]
async fn copies_are_checked_to_exist_with_one_listing_not_one_call_each() {
    // GIVEN two estates, 3 and 15 sources, no cap reached
    let mut describes = Vec::new();
    for n in [3, 15] {
        let (cloud, ctx, sources) = capped(n, 1000);
        // WHEN one reconcile copies them
        let report = run_polling(&ctx, Request::Reconcile, NOW, POLL).await;
        assert_eq!(
            report.count(Outcome::Copied),
            sources.len(),
            "{}",
            report.render_table()
        );
        describes.push(cloud.calls("DescribeImages"));
    }
    // THEN the DescribeImages calls do not grow with the copies (the copies made are
    // checked with one listing of the destination once all are requested)
    assert_eq!(
        describes[0], describes[1],
        "DescribeImages calls for 3 and 15 copies"
    );
}

#[tokio::test]
async fn a_waiting_run_stops_at_the_deadline_and_defers_the_rest() {
    // GIVEN a destination that takes 1 concurrent copy, and copies that never complete
    let (cloud, ctx, _) = capped(3, 1);
    let ctx = ctx.with_deadline(Deadline::after(
        Duration::from_millis(400),
        Duration::from_millis(100),
    ));
    // WHEN the reconcile runs
    let report = run_polling(&ctx, Request::Reconcile, NOW, POLL).await;
    // THEN one copy is made, the other two are deferred (reported, not lost), the run is
    // incomplete, and EC2 was asked only while the run did not know the cap (the requests
    // in flight then), not again for each deferred copy
    assert_eq!(
        (
            report.count(Outcome::Copied),
            report.count(Outcome::Deferred),
            report.failed()
        ),
        (1, 2, 0),
        "{}",
        report.render_table()
    );
    assert_eq!(at_cap(&report), 2, "{}", report.render_table());
    assert!(report.incomplete.is_some());
    assert_eq!(cloud.calls("CopyImage"), 1 + IN_FLIGHT.min(2));
    assert_eq!(copies(&cloud).len(), 1);
}

#[tokio::test]
async fn a_replicas_available_event_fills_its_region_up_to_the_cap() {
    // GIVEN a destination that takes 2 concurrent copies, 6 sources, and the events of
    // the first three: two copied, the third deferred at the cap
    let (cloud, ctx, sources) = capped(6, 2);
    for s in &sources[..3] {
        run_polling(&ctx, event(s, "us-east-1"), NOW, POLL).await;
    }
    assert_eq!(copies(&cloud).len(), 2);
    assert_eq!(cloud.calls("CopyImage"), 3);

    // WHEN the copies complete and one replica's available event is handled
    cloud.complete_pending();
    let replica = copies(&cloud).remove(0);
    let calls = cloud.calls("CopyImage");
    let fill = run_polling(&ctx, event(&replica.id, DEST), NOW, POLL).await;

    // THEN the region is filled up to the cap (2 copies), the rest deferred at the cap
    // with one refused call (the last is not asked for), nothing failed
    assert_eq!(
        (
            fill.count(Outcome::Copied),
            fill.count(Outcome::AlreadyExisted),
            fill.count(Outcome::Deferred),
            fill.failed()
        ),
        (2, 2, 2, 0),
        "{}",
        fill.render_table()
    );
    assert_eq!(at_cap(&fill), 2, "{}", fill.render_table());
    assert_eq!(cloud.calls("CopyImage") - calls, 3);
    assert!(
        fill.items.iter().any(|i| i.outcome == Outcome::Skipped
            && i.reason.contains("copy slot in eu-west-1 is free")),
        "{}",
        fill.render_table()
    );

    // WHEN those complete and the next replica's event is handled
    cloud.complete_pending();
    let next = copies(&cloud)
        .into_iter()
        .find(|c| c.id != replica.id)
        .unwrap_or_else(|| panic!("no second replica"));
    let again = run_polling(&ctx, event(&next.id, DEST), NOW, POLL).await;

    // THEN the last two are copied: every source has its one copy
    assert_eq!(again.count(Outcome::Copied), 2, "{}", again.render_table());
    assert_eq!(copies(&cloud).len(), 6);
    assert_eq!(at_cap(&again), 0);
}

#[tokio::test]
async fn a_copy_not_provably_ours_fills_nothing() {
    // GIVEN a deferred copy, and an unsealed look-alike of a replica in the destination
    let (cloud, ctx, sources) = capped(3, 1);
    run_polling(&ctx, event(&sources[0], "us-east-1"), NOW, POLL).await;
    cloud.complete_pending();
    let forged = cloud.add_unsealed_image(
        DEST,
        "look-alike",
        NOW,
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_IMAGE, sources[1].as_str()),
            (key::SOURCE_REGION, "us-east-1"),
        ],
    );
    // (made by CopyImage, so EC2 records its source: only the seal is missing)
    if let Some(i) = cloud.state().images.get_mut(&forged) {
        i.source = Some((sources[1].clone(), Region::new("us-east-1")));
    }
    let calls = cloud.calls("CopyImage");
    // WHEN its available event is handled
    let report = run_polling(&ctx, event(&forged, DEST), NOW, POLL).await;
    // THEN nothing is copied: tags confer nothing
    assert_eq!(cloud.calls("CopyImage"), calls, "{}", report.render_table());
    assert_eq!(report.count(Outcome::Copied), 0);
    assert!(
        !report.items.iter().any(|i| i.reason.contains("copy slot")),
        "{}",
        report.render_table()
    );
    assert!(
        report
            .items
            .iter()
            .any(|i| i.outcome == Outcome::Unsealed && i.image.as_ref() == Some(&forged)),
        "{}",
        report.render_table()
    );
}

/// A copy pending in the destination that this deployment did not make (another tool of
/// the same account): untagged, but a copy by EC2's record.
fn foreign_copy(cloud: &FakeCloud, n: usize) -> ImageId {
    let id = cloud.add_unsealed_image(DEST, &format!("someone-elses-copy-{n}"), NOW, &[]);
    if let Some(i) = cloud.state().images.get_mut(&id) {
        i.state = crate::model::ImageState::Pending;
        i.source = Some((ImageId::new("ami-0elsewhere"), Region::new("us-east-1")));
    }
    id
}

fn set_state(cloud: &FakeCloud, id: &ImageId, state: crate::model::ImageState) {
    if let Some(i) = cloud.state().images.get_mut(id) {
        i.state = state;
    }
}

#[tokio::test]
async fn the_learned_cap_counts_every_copy_pending_in_the_region_not_only_ours() {
    // GIVEN a destination that takes 3 concurrent copies: 2 pending copies another tool
    // of the account made, and 1 of ours
    let (cloud, ctx, sources) = capped(1, 3);
    let theirs = [foreign_copy(&cloud, 1), foreign_copy(&cloud, 2)];
    run_polling(&ctx, event(&sources[0], "us-east-1"), NOW, POLL).await;
    assert_eq!(copies(&cloud).len(), 1);
    let mut slots = Slots::new(Region::new(DEST), POLL);
    // WHEN EC2 refuses a copy
    slots.refused(&ctx).await;
    // THEN the cap learned is the 3 copies pending, not the 1 of ours: no room now
    assert!(!slots.has_room(0));
    // WHEN the other tool's copies complete
    for id in &theirs {
        set_state(&cloud, id, crate::model::ImageState::Available);
    }
    tokio::time::sleep(POLL).await;
    // THEN two slots are free (ours still pending holds the third)
    assert!(slots.refresh_if_due(&ctx, 0).await);
    assert!(slots.has_room(1));
    assert!(!slots.has_room(2));
}

#[tokio::test]
async fn a_count_at_the_cap_is_listed_again_once_per_interval_not_waited_out() {
    // GIVEN a learned cap of 2, reached by two copies of ours
    let (cloud, ctx, sources) = capped(2, 2);
    for s in &sources {
        run_polling(&ctx, event(s, "us-east-1"), NOW, POLL).await;
    }
    let poll = Duration::from_millis(200);
    let mut slots = Slots::new(Region::new(DEST), poll);
    slots.refused(&ctx).await;
    assert!(!slots.has_room(0));
    let listed = cloud.calls("DescribeImages");
    // WHEN both complete (EC2 says nothing) and the run asks again within the interval
    cloud.complete_pending();
    // THEN the count is not listed again yet (one listing per interval at most)
    assert!(!slots.refresh_if_due(&ctx, 0).await);
    assert_eq!(cloud.calls("DescribeImages"), listed);
    // WHEN the interval has passed
    tokio::time::sleep(poll).await;
    // THEN one listing shows both slots free: no wait, no refused call
    let started = std::time::Instant::now();
    assert!(slots.refresh_if_due(&ctx, 1).await);
    assert!(
        started.elapsed() < poll,
        "listed at once, not after a sleep"
    );
    assert_eq!(cloud.calls("DescribeImages"), listed + 1);
    // AND each copy requested from there takes a slot until the next listing
    slots.requested(&ImageId::new("ami-0new1"));
    slots.requested(&ImageId::new("ami-0new2"));
    assert!(!slots.has_room(0));
}

#[tokio::test]
async fn a_copy_just_requested_holds_its_slot_while_a_listing_may_not_show_it() {
    // GIVEN a learned cap of 2: one copy pending, and one this run just requested that
    // DescribeImages (eventually consistent) does not list yet
    let (cloud, ctx, sources) = capped(2, 2);
    for s in &sources {
        run_polling(&ctx, event(s, "us-east-1"), NOW, POLL).await;
    }
    let poll = Duration::from_millis(150);
    let mut slots = Slots::new(Region::new(DEST), poll);
    slots.refused(&ctx).await;
    let done = copies(&cloud).remove(0);
    set_state(&cloud, &done.id, crate::model::ImageState::Available);
    tokio::time::sleep(poll).await;
    slots.refresh(&ctx).await;
    assert!(slots.has_room(0), "one slot free");
    let unlisted = ImageId::new("ami-0notlistedyet");
    slots.requested(&unlisted);
    // WHEN the region is listed again at once
    slots.refresh(&ctx).await;
    // THEN the unlisted copy still holds its slot
    assert!(!slots.has_room(0));
    // WHEN a poll interval has passed and it is still not listed
    tokio::time::sleep(poll).await;
    slots.refresh(&ctx).await;
    // THEN the listing is believed
    assert!(slots.has_room(0));
}

#[tokio::test]
async fn a_refusal_with_nothing_listed_pending_holds_until_the_next_listing() {
    // GIVEN nothing pending in the destination (copies that just completed)
    let (cloud, ctx, _) = capped(1, 1);
    let poll = Duration::from_millis(100);
    let mut slots = Slots::new(Region::new(DEST), poll);
    // WHEN EC2 refuses a copy all the same
    slots.refused(&ctx).await;
    // THEN no cap is learned from it (a cap of 0 would stop the run), but the run does
    // not ask EC2 again before the next listing
    assert!(!slots.has_room(0));
    let listed = cloud.calls("DescribeImages");
    assert!(!slots.refresh_if_due(&ctx, 0).await);
    tokio::time::sleep(poll).await;
    assert!(slots.refresh_if_due(&ctx, 0).await);
    assert_eq!(cloud.calls("DescribeImages"), listed + 1);
    assert!(slots.has_room(5), "the cap is still unknown");
}

#[tokio::test]
async fn a_run_with_more_copies_than_the_burst_learns_the_cap_from_one_refused_call() {
    // GIVEN 110 sources (more than the CopyImage burst of 100), a destination that takes
    // 10 concurrent copies, copies completing now and then
    let (cloud, ctx, sources) = capped(110, 10);
    let done = completer(&cloud, Duration::from_millis(30));
    // WHEN one reconcile runs
    let report = run_polling(&ctx, Request::Reconcile, NOW, POLL).await;
    done.abort();
    // THEN all are copied, and EC2 refused exactly one call: the one that taught the run
    // the cap (requests went one at a time until then); none after it
    assert_eq!(
        (
            report.count(Outcome::Copied),
            report.failed(),
            report.count(Outcome::Deferred)
        ),
        (sources.len(), 0, 0),
        "{}",
        report.render_table()
    );
    assert_eq!(cloud.calls("CopyImage"), sources.len() + 1);
    assert_eq!(copies(&cloud).len(), sources.len());
}

#[tokio::test]
async fn a_refusal_the_count_did_not_foresee_is_listed_again_and_waited_out() {
    // GIVEN a learned cap of 2 with one slot free as far as the run knows
    let (cloud, ctx, sources) = capped(2, 2);
    for s in &sources {
        run_polling(&ctx, event(s, "us-east-1"), NOW, POLL).await;
    }
    let poll = Duration::from_millis(100);
    let mut slots = Slots::new(Region::new(DEST), poll);
    slots.refused(&ctx).await;
    let done = copies(&cloud).remove(0);
    set_state(&cloud, &done.id, crate::model::ImageState::Available);
    tokio::time::sleep(poll).await;
    assert!(slots.refresh_if_due(&ctx, 0).await, "one slot free");
    // WHEN another tool of the account starts a copy there and EC2 refuses ours
    foreign_copy(&cloud, 1);
    let listed = cloud.calls("DescribeImages");
    slots.refused(&ctx).await;
    // THEN the region is listed again at once and the run waits for a slot: no more
    // requests while the listing shows the cap reached
    assert_eq!(cloud.calls("DescribeImages"), listed + 1);
    assert!(!slots.has_room(0));
    // AND a slot freed there is seen at the next listing
    cloud.complete_pending();
    tokio::time::sleep(poll).await;
    assert!(slots.refresh_if_due(&ctx, 1).await);
}
