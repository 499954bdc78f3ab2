//! The EMF documents of hand-built reports: exact structure and values.

use serde_json::{json, Value};
use time::macros::datetime;

use super::*;
use crate::model::ImageId;

const STARTED_MS: i64 = 1_795_834_800_000; // 2026-11-28 03:00 UTC

fn report(function: &str) -> RunReport {
    RunReport::new(function, false, datetime!(2026-11-28 03:00 UTC))
}

fn all_counts(set: &[(&str, u64)]) -> Value {
    let mut m = serde_json::Map::new();
    for n in names::COUNTS {
        let v = set.iter().find(|(k, _)| *k == n).map_or(0, |(_, v)| *v);
        m.insert(n.to_owned(), json!(v));
    }
    Value::Object(m)
}

fn count_metrics() -> Value {
    names::COUNTS
        .iter()
        .map(|n| json!({ "Name": n, "Unit": "Count" }))
        .collect()
}

#[test]
fn a_create_run_counts_per_region_and_reboots_from_the_consistency() {
    let east = Region::new("us-east-1");
    let west = Region::new("eu-west-1");
    let mut r = report("create-image");
    let ami = ImageId::new("ami-1");
    r.push(
        &east,
        "i-1",
        Some(&ami),
        Outcome::Created,
        "web-daily-20261128T0300Z (rebooted)",
    );
    r.push(
        &east,
        "i-2",
        Some(&ami),
        Outcome::Created,
        "db-daily-20261128T0300Z (rebooted, reboot group db wave 1 of 2); note",
    );
    r.push(&east, "i-3", Some(&ami), Outcome::Created,
        "app-daily-20261128T0300Z (crash-consistent); not rebooted: it was rebooted for an image at 2026-11-28T02:00Z");
    r.push(
        &east,
        "i-4",
        None,
        Outcome::Failed,
        "CreateImage failed: InternalError",
    );
    r.push(
        &west,
        "i-5",
        None,
        Outcome::Deferred,
        "RequestLimitExceeded; the next run retries",
    );
    r.push(
        &west,
        "i-6",
        None,
        Outcome::NameSquatted,
        "name taken by an unsealed image",
    );
    r.push(&west, "i-7", None, Outcome::Skipped, "not opted in");

    let docs = documents(&r, "prod");
    assert_eq!(docs.len(), 3, "{docs:#?}");
    let dims = json!([
        ["Deployment", "Function"],
        ["Deployment", "Function", "Region"]
    ]);
    // Regions in order: eu-west-1, us-east-1.
    let mut west_doc = all_counts(&[("Deferred", 1), ("Unsealed", 1)]);
    west_doc["Deployment"] = json!("prod");
    west_doc["Function"] = json!("create-image");
    west_doc["Region"] = json!("eu-west-1");
    west_doc["_aws"] = json!({
        "Timestamp": STARTED_MS,
        "CloudWatchMetrics": [{ "Namespace": "AmiLifecycle", "Dimensions": dims, "Metrics": count_metrics() }],
    });
    assert_eq!(docs[0], west_doc);
    let mut east_doc = all_counts(&[("ImagesCreated", 3), ("Reboots", 2), ("Failures", 1)]);
    east_doc["Deployment"] = json!("prod");
    east_doc["Function"] = json!("create-image");
    east_doc["Region"] = json!("us-east-1");
    east_doc["_aws"] = west_doc["_aws"].clone();
    assert_eq!(docs[1], east_doc);
    assert_eq!(
        docs[2],
        json!({
            "Deployment": "prod",
            "Function": "create-image",
            "Runs": 1,
            "_aws": {
                "Timestamp": STARTED_MS,
                "CloudWatchMetrics": [{
                    "Namespace": "AmiLifecycle",
                    "Dimensions": [["Deployment", "Function"]],
                    "Metrics": [{ "Name": "Runs", "Unit": "Count" }],
                }],
            },
        })
    );
}

#[test]
fn a_cleanup_run_reports_its_figures_once_and_counts_images_not_orphan_snapshots() {
    let east = Region::new("us-east-1");
    let mut r = report("cleanup");
    r.push(
        &east,
        "ami-1",
        None,
        Outcome::Deleted,
        "deregistered, 2 snapshot(s) deleted",
    );
    r.push(&east, "ami-2", None, Outcome::Deprecated, "superseded");
    r.push(&east, "snap-9", None, Outcome::Deleted, "orphan");
    r.push(
        &east,
        "ami-3",
        Some(&ImageId::new("ami-3")),
        Outcome::Revoked,
        "1 KMS grant(s) retired",
    );
    for (k, v) in [
        ("gib_freed", 24.5),
        ("monthly_saving_usd", 1.225),
        ("snapshots_deleted", 3.0),
        ("gib_stored", 100.0),
        ("monthly_cost_usd", 5.0),
        ("images_scanned", 40.0), // not a metric
    ] {
        r.metrics.insert(k.to_owned(), v);
    }
    let docs = documents(&r, "ami-lifecycle");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["ImagesDeleted"], 1);
    assert_eq!(docs[0]["ImagesDeprecated"], 1);
    assert_eq!(docs[0]["SharesRevoked"], 1);
    assert_eq!(
        docs[1],
        json!({
            "Deployment": "ami-lifecycle",
            "Function": "cleanup",
            "Runs": 1,
            "SnapshotsDeleted": 3.0,
            "GiBFreed": 24.5,
            "GiBStored": 100.0,
            "MonthlySavingUSD": 1.225,
            "MonthlyCostUSD": 5.0,
            "_aws": {
                "Timestamp": STARTED_MS,
                "CloudWatchMetrics": [{
                    "Namespace": "AmiLifecycle",
                    "Dimensions": [["Deployment", "Function"]],
                    "Metrics": [
                        { "Name": "Runs", "Unit": "Count" },
                        { "Name": "SnapshotsDeleted", "Unit": "Count" },
                        { "Name": "GiBFreed", "Unit": "Gigabytes" },
                        { "Name": "GiBStored", "Unit": "Gigabytes" },
                        { "Name": "MonthlySavingUSD", "Unit": "None" },
                        { "Name": "MonthlyCostUSD", "Unit": "None" },
                    ],
                }],
            },
        })
    );
}

#[test]
fn copies_grants_and_publications_are_counted() {
    let west = Region::new("eu-west-1");
    let mut r = report("replicate");
    r.push(
        &west,
        "ami-1",
        None,
        Outcome::Copied,
        "copy of ami-0 from us-east-1",
    );
    r.push(&west, "ami-2", None, Outcome::Copied, "copy");
    r.push(
        &west,
        "ami-1",
        None,
        Outcome::Granted,
        "launch permission for 111122223333",
    );
    r.push(
        &west,
        "/ami-lifecycle/prod/web",
        None,
        Outcome::Published,
        "now ami-1",
    );
    let docs = documents(&r, "prod");
    assert_eq!(docs[0]["ImagesCopied"], 2);
    assert_eq!(docs[0]["SharesGranted"], 1);
    assert_eq!(docs[0]["ImagesPublished"], 1);
    assert_eq!(docs[0]["Failures"], 0);
}

#[test]
fn a_fanned_out_summary_emits_no_counts_its_items_already_did() {
    let mut r = report("cleanup");
    r.metrics.insert("run_items".to_owned(), 4.0);
    r.push(
        &Region::new("us-east-1"),
        "account 1 us-east-1",
        None,
        Outcome::Failed,
        "boom",
    );
    let docs = documents(&r, "prod");
    assert_eq!(docs.len(), 1, "{docs:#?}");
    assert_eq!(docs[0]["Runs"], 1);
    assert!(docs[0].get("Failures").is_none());
}

#[test]
fn every_document_is_valid_emf() {
    let mut r = report("share");
    r.push(
        &Region::new("us-east-1"),
        "ami-1",
        None,
        Outcome::Granted,
        "x",
    );
    r.metrics.insert("gib_freed".to_owned(), f64::NAN); // not finite: left out
    for doc in documents(&r, "prod") {
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], STARTED_MS);
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .unwrap_or_else(|| panic!("{doc}"));
        for d in directives {
            assert_eq!(d["Namespace"], NAMESPACE);
            for set in d["Dimensions"].as_array().into_iter().flatten() {
                let set = set.as_array().unwrap_or_else(|| panic!("{doc}"));
                assert!(!set.is_empty() && set.len() <= 30);
                for dim in set {
                    // Target members: a dimension's value is a string at the root.
                    assert!(
                        doc[dim.as_str().unwrap_or_default()].is_string(),
                        "{dim} in {doc}"
                    );
                }
            }
            let metrics = d["Metrics"].as_array().unwrap_or_else(|| panic!("{doc}"));
            assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS_PER_DIRECTIVE);
            for m in metrics {
                assert!(
                    doc[m["Name"].as_str().unwrap_or_default()].is_number(),
                    "{m} in {doc}"
                );
            }
        }
        assert!(doc.get("GiBFreed").is_none());
    }
}

#[test]
fn directives_hold_at_most_100_metrics() {
    let owned: Vec<String> = (0..250).map(|n| format!("M{n}")).collect();
    let metrics: Vec<(&str, &str)> = owned.iter().map(|n| (n.as_str(), "Count")).collect();
    let mut root = serde_json::Map::new();
    for n in &owned {
        root.insert(n.clone(), json!(1));
    }
    let doc = document(root, 5, &json!([["Deployment"]]), &metrics);
    let sizes: Vec<usize> = doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["Metrics"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][2]["Metrics"][49]["Name"],
        "M249"
    );
}

#[test]
fn each_document_is_one_line_of_json() {
    let mut r = report("create-image");
    r.push(
        &Region::new("us-east-1"),
        "i-1",
        None,
        Outcome::Created,
        "web (rebooted)",
    );
    let docs = documents(&r, "prod");
    let mut out = Vec::new();
    write_lines(&docs, &mut out).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8(out).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), docs.len());
    for (line, doc) in lines.iter().zip(&docs) {
        let back: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(&back, doc);
        assert!(back["_aws"].is_object(), "_aws at the root: {line}");
    }
    assert!(text.ends_with('\n'));
}

/// The one place EMF reads a reason: a created image's consistency. Run create-image itself
/// (on the in-memory cloud) so that a change to how it words a reboot fails here.
#[tokio::test]
async fn reboots_are_counted_as_create_image_reports_them() {
    use crate::create::{CreateRequest, ScheduleRun};
    use crate::fake::FakeCloud;
    use crate::tags::key;

    let slot = datetime!(2026-11-28 03:00 UTC);
    let cloud = FakeCloud::new("123456789012");
    cloud.set_now(slot);
    cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
    );
    cloud.add_instance(
        "eu-west-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
    );
    let config = crate::config::Config::from_lookup(|k| {
        (k == "AMI_LIFECYCLE_REGIONS").then(|| "us-east-1,eu-west-1".to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ctx = crate::context::Context::new(std::sync::Arc::new(cloud.clone()), config);
    let request = CreateRequest::Schedule(ScheduleRun::new("daily".into(), slot));
    let report = crate::create::run(&ctx, request, slot).await;

    let docs = documents(&report, "ami-lifecycle");
    let total = |name: &str| -> u64 { docs.iter().filter_map(|d| d[name].as_u64()).sum() };
    let reboots = cloud.state().reboots.len() as u64;
    assert_eq!(reboots, 2, "{report:?}");
    assert_eq!(total(names::REBOOTS), reboots, "{docs:#?}");
    assert_eq!(total(names::IMAGES_CREATED), 3, "{docs:#?}");
}
