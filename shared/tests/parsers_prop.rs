//! Bad input, by property: the parsers that read what others write — events
//! ([`parse_trigger`]), instance tags ([`InstanceSettings::from_tags`] and the value
//! languages under it) and the environment ([`Config::from_lookup`]) — never panic, and
//! every error says where and what, in a message whose length does not grow with the input.
//! A malformed event changes nothing: [`dispatch`] (the runners' one way in, parse, then run
//! against the in-memory fake) makes no call at all when the event does not parse.
//!
//! Inputs: arbitrary JSON (unicode, huge numbers, 100k-character strings, nesting up to 256
//! levels), mutations of the AWS-shaped fixtures (a field deleted, retyped, made huge or
//! made of unicode), tag maps and environments mixing contract keys, plausible values and
//! noise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ami_core::config::{Config, ConfigError};
use ami_core::context::Context;
use ami_core::events::{parse_trigger, EventError, Trigger};
use ami_core::fake::FakeCloud;
use ami_core::model::{AccountId, Grantee, ImageState, Region, Tags};
use ami_core::report::RunReport;
use ami_core::retention::RetentionRule;
use ami_core::runner::{invoke_report, Cause, RequestError, RUNNERS};
use ami_core::share_target::{AllowList, ShareTarget};
use ami_core::tags::{self, key, InstanceSettings, TagError};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use time::macros::datetime;
use time::OffsetDateTime;

const CASES: u32 = 256;

/// A message a person reads: at most this many characters, whatever the input.
const MAX_MESSAGE: usize = 1_000;
/// The same when the input holds characters `{:?}` escapes (`\u{1f}`: up to 10 characters
/// for one): echoes are truncated to 80 characters *before* escaping, so the message stays
/// bounded, at a higher bound.
const MAX_MESSAGE_ESCAPED: usize = 2_000;

const NOW: OffsetDateTime = datetime!(2026-11-22 03:00 UTC);

fn message_bound<'a>(inputs: impl IntoIterator<Item = &'a str>) -> usize {
    let escapes = inputs
        .into_iter()
        .any(|s| s.chars().any(|c| c.escape_debug().count() > 2));
    if escapes {
        MAX_MESSAGE_ESCAPED
    } else {
        MAX_MESSAGE
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// 100 000 characters: one random character repeated, inside a contract-shaped prefix and
/// suffix so the value reaches past the first checks (`count=…`, `group:…`, `…=1`).
fn huge() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "",
        "count=",
        "days=",
        "group:",
        "ami-",
        "us-east-1,",
        "arn:aws:organizations::111111111111:organization/o-",
        "prod=",
        "us-west-2=",
        "daily,",
    ]);
    let suffix = prop::sample::select(vec!["", "=1", "=0", ",us-east-1", "-1", " 111122223333"]);
    (prefix, any::<char>(), suffix)
        .prop_map(|(p, c, s)| format!("{p}{}{s}", c.to_string().repeat(100_000)))
}

/// Text of every kind: printable unicode, any character, the contract's alphabet with its
/// separators, control and invisible characters, and huge values.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{0,24}",
        2 => ".{0,24}",
        3 => "[a-z0-9:/=,; _.-]{0,30}",
        1 => "[\\x00-\\x1f\u{200b}\u{202e}\u{fe0f}\u{301}\u{10ffff} ,;=]{0,12}",
        1 => huge(),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![f64::MAX, f64::MIN, f64::MIN_POSITIVE, 1e300, -0.0])
            .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        text().prop_map(Value::from),
    ]
}

/// Object keys: the event contract's own (so arbitrary values reach past the first check)
/// and noise.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "detail-type", "source", "time", "region", "resources", "detail", "ImageId", "State",
            "ErrorMessage", "changed-tag-keys", "tags", "requestParameters", "resourcesSet", "items",
            "resourceId", "tagSet", "key", "schedule", "slot", "continue", "image", "Records",
            "body",
        ])
        .prop_map(str::to_owned),
        1 => text(),
    ]
}

/// Arbitrary JSON up to 6 levels by recursion, or a leaf wrapped in up to 256 levels.
fn json() -> impl Strategy<Value = Value> {
    let recursive = json_leaf().prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    let deep = (json_leaf(), 0..256usize, json_key()).prop_map(|(leaf, depth, k)| {
        (0..depth).fold(leaf, |v, i| {
            if i % 2 == 0 {
                Value::Array(vec![v])
            } else {
                serde_json::json!({ k.clone(): v })
            }
        })
    });
    prop_oneof![4 => recursive, 1 => deep]
}

/// A JSON object whose detail-type and source are the ones the parser dispatches on, with
/// every other field arbitrary.
fn event_shaped() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::select(vec![
        ("Scheduled Event", "aws.events"),
        ("Scheduled Event", "aws.scheduler"),
        ("EC2 AMI State Change", "aws.ec2"),
        ("Tag Change on Resource", "aws.tag"),
        ("AWS API Call via CloudTrail", "aws.ec2"),
    ]);
    (kinds, prop::collection::vec((json_key(), json()), 0..8)).prop_map(|((dt, src), fields)| {
        let mut m: serde_json::Map<String, Value> = fields.into_iter().collect();
        m.insert("detail-type".into(), dt.into());
        m.insert("source".into(), src.into());
        Value::Object(m)
    })
}

// ---------------------------------------------------------------------------------------
// Fixtures and mutations
// ---------------------------------------------------------------------------------------

fn fixture_dirs() -> [PathBuf; 1] {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [root.join("../tests/fixtures/events")]
}

/// Every fixture, `(file name, event)`, sorted by name.
fn fixtures() -> Result<Vec<(String, Value)>, String> {
    let mut out = Vec::new();
    for dir in fixture_dirs() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let value =
                    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((name, value));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Idx(usize),
}

type Path = Vec<Seg>;

fn paths(v: &Value) -> Vec<Path> {
    fn walk(v: &Value, here: &mut Path, out: &mut Vec<Path>) {
        let children: Vec<(Seg, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, c)| (Seg::Key(k.clone()), c)).collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, c)| (Seg::Idx(i), c))
                .collect(),
            _ => Vec::new(),
        };
        for (seg, child) in children {
            here.push(seg);
            out.push(here.clone());
            walk(child, here, out);
            here.pop();
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn node_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Seg::Key(k) => cur.get_mut(k.as_str()),
        Seg::Idx(i) => cur.get_mut(*i),
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    /// Replaced with a value of another JSON type.
    Retype(Value),
    Huge(String),
    Unicode(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::Delete),
        3 => json().prop_map(Mutation::Retype),
        1 => huge().prop_map(Mutation::Huge),
        2 => "\\PC{0,24}".prop_map(Mutation::Unicode),
    ]
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Applies `m` at `path`; returns false when there is nothing there.
fn apply(v: &mut Value, path: &[Seg], m: &Mutation) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let Some(parent) = node_mut(v, parent_path) else {
        return false;
    };
    match (m, parent, last) {
        (Mutation::Delete, Value::Object(o), Seg::Key(k)) => o.remove(k).is_some(),
        (Mutation::Delete, Value::Array(a), Seg::Idx(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        (_, parent, _) => {
            let Some(slot) = node_mut(parent, std::slice::from_ref(last)) else {
                return false;
            };
            *slot = match m {
                Mutation::Delete => return false,
                Mutation::Retype(new) if !same_type(slot, new) => new.clone(),
                // Same type drawn: take one that surely differs.
                Mutation::Retype(_) if slot.is_string() => Value::from(42),
                Mutation::Retype(_) => Value::from("42"),
                Mutation::Huge(s) | Mutation::Unicode(s) => Value::from(s.as_str()),
            };
            true
        }
    }
}

fn path_text(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Key(k) => k.chars().take(40).collect(),
            Seg::Idx(i) => i.to_string(),
        })
        .collect::<Vec<String>>()
        .join(".")
}

/// Up to three mutations of one fixture.
fn mutated_fixture(
    all: Vec<(String, Value)>,
) -> impl Strategy<Value = (String, Value, Value, Vec<(Path, Mutation)>)> {
    (
        prop::sample::select(all),
        prop::collection::vec((any::<Index>(), mutation()), 1..=3),
    )
        .prop_map(|((name, original), ms)| {
            let mut v = original.clone();
            let mut applied = Vec::new();
            for (at, m) in ms {
                let ps = paths(&v);
                if ps.is_empty() {
                    break;
                }
                let path = ps[at.index(ps.len())].clone();
                if apply(&mut v, &path, &m) {
                    applied.push((path, m));
                }
            }
            (name, original, v, applied)
        })
}

// ---------------------------------------------------------------------------------------
// What every error must say
// ---------------------------------------------------------------------------------------

/// Paths an [`EventError`] may name: the contract's fields, never an echo of the input.
const EVENT_PATHS: &[&str] = &[
    "$",
    "Records",
    "detail-type",
    "source",
    "time",
    "region",
    "resources",
    "detail",
    "detail.ImageId",
    "detail.State",
    "detail.changed-tag-keys",
    "detail.tags",
    "detail.requestParameters.resourcesSet.items",
    "detail.requestParameters.resourcesSet.items.resourceId",
    "detail.eventName",
];

fn check_event_error(e: &EventError, input: &Value) -> Result<(), TestCaseError> {
    let text = e.to_string();
    let sqs_body = e.path.starts_with("Records[") && e.path.ends_with("].body");
    prop_assert!(
        EVENT_PATHS.contains(&e.path.as_str()) || sqs_body,
        "unexpected path {:?} in {text:?}",
        e.path
    );
    prop_assert!(!e.problem.trim().is_empty(), "no problem stated: {text:?}");
    prop_assert!(
        text.contains(&e.path) && text.contains(&e.problem),
        "{text:?}"
    );
    let strings = strings_in(input);
    let bound = message_bound(strings.iter().map(String::as_str));
    prop_assert!(
        text.chars().count() < bound,
        "{} characters (bound {bound}): {:?}…",
        text.chars().count(),
        text.chars().take(200).collect::<String>()
    );
    Ok(())
}

fn strings_in(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => {
                out.extend(m.keys().cloned());
                stack.extend(m.values());
            }
            _ => {}
        }
    }
    out
}

fn check_tag_error(e: &TagError, expected_key: &str, inputs: &[&str]) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert_eq!(e.key.as_str(), expected_key);
    prop_assert!(
        text.contains(expected_key),
        "{text:?} does not name {expected_key}"
    );
    prop_assert!(
        !e.problem.trim().is_empty() && !e.fix.trim().is_empty(),
        "{text:?}"
    );
    let bound = message_bound(inputs.iter().copied());
    prop_assert!(
        text.chars().count() < bound,
        "{} characters (bound {bound}): {:?}…",
        text.chars().count(),
        text.chars().take(200).collect::<String>()
    );
    Ok(())
}

fn check_plain_error(text: &str, inputs: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(!text.trim().is_empty());
    let bound = message_bound(inputs.iter().copied());
    prop_assert!(
        text.chars().count() < bound,
        "{} characters (bound {bound}): {:?}…",
        text.chars().count(),
        text.chars().take(200).collect::<String>()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The harness: parse, then — only on Ok — run the matching runner against the fake
// ---------------------------------------------------------------------------------------

/// What a function does with an event, as Lambda runs it ([`invoke_report`]): parse it,
/// read the runner's request, and only when both succeed run the runner against `fake`.
fn dispatch(fake: &FakeCloud, function: &str, event: &Value) -> Result<RunReport, RequestError> {
    let ctx = Context::new(Arc::new(fake.clone()), Config::for_region("us-east-1"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"));
    rt.block_on(invoke_report(function, &ctx, event.clone(), NOW))
}

fn is_unreadable(result: &Result<RunReport, RequestError>) -> bool {
    matches!(result, Err(e) if matches!(e.cause(), Cause::UnreadableEvent(_)))
}

/// A cloud where a readable event has work to do: an opted-in instance and a managed,
/// shared image in the fixtures' region.
fn seeded_fake() -> FakeCloud {
    let fake = FakeCloud::new("123456789012");
    fake.set_now(NOW);
    let instance = fake.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REPLICATE_TO, "us-west-2")],
    );
    fake.add_image(
        "us-east-1",
        &format!("ami-lifecycle/{}/daily/20261101T0300Z", instance.as_str()),
        datetime!(2026-11-01 03:00 UTC),
        &[
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, instance.as_str()),
            (key::SLOT, "2026-11-01T03:00:00Z"),
            (key::SHARE_WITH, "111122223333"),
        ],
    );
    fake
}

const MUTATING_CALLS: &[&str] = &[
    "CreateImage",
    "CopyImage",
    "CreateTags",
    "DeleteTags",
    "DeregisterImage",
    "DeleteSnapshot",
    "EnableImageDeprecation",
    "ModifyImageAttribute",
    "ModifySnapshotAttribute",
    "CreateGrant",
    "RevokeGrant",
    "PutEvents",
    "SendMessage",
];

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_json_never_panics_and_errors_say_where(v in prop_oneof![json(), event_shaped()]) {
        match parse_trigger(&v) {
            Ok(Trigger::Direct(d)) => {
                prop_assert!(v.get("detail-type").is_none(), "only a payload without detail-type is direct");
                prop_assert_eq!(d, v);
            }
            Ok(Trigger::Continuation(_)) => {
                prop_assert!(v.get("detail-type").is_none() && v.get("Records").is_some(), "only an SQS batch is a continuation");
            }
            Ok(_) => prop_assert!(v.get("detail-type").is_some()),
            Err(e) => check_event_error(&e, &v)?,
        }
    }
}

#[test]
fn fixtures_are_there() -> Result<(), String> {
    let all = fixtures()?;
    for must in [
        "ami-state-change-available.json",
        "ami-state-change-failed.json",
        "scheduled-event.json",
        "tag-change-on-image.json",
    ] {
        assert!(
            all.iter().any(|(n, _)| n == must),
            "{must} missing from {:?}",
            fixture_dirs()
        );
    }
    assert!(all.len() >= 15, "{} fixtures", all.len());
    Ok(())
}

/// What each fixture is: the variant it must parse to, or the path its error names.
fn expected(name: &str) -> Option<Result<&'static str, &'static str>> {
    Some(match name {
        "scheduled-event.json"
        | "scheduled-event-cleanup.json"
        | "scheduled-event-schedule-weekly.json" => Ok("Schedule"),
        n if n.starts_with("ami-state-change-") => Ok("AmiState"),
        n if n.starts_with("tag-change-on-image") => Ok("ImageTags"),
        "cloudtrail-create-tags.json" | "cloudtrail-delete-tags.json" => Ok("ImageTags"),
        "tag-change-on-instance.json" | "tag-change-on-snapshot.json" => Err("resources"),
        n if n.starts_with("report-") => Err("detail-type"),
        _ => return None,
    })
}

fn variant(t: &Trigger) -> &'static str {
    match t {
        Trigger::Schedule { .. } => "Schedule",
        Trigger::AmiState { .. } => "AmiState",
        Trigger::ImageTags { .. } => "ImageTags",
        Trigger::Continuation(_) => "Continuation",
        Trigger::WorkItems(_) => "WorkItems",
        Trigger::Direct(_) => "Direct",
    }
}

#[test]
fn valid_fixtures_parse_to_their_variant() -> Result<(), String> {
    let mut checked = 0;
    for (name, v) in fixtures()? {
        let Some(want) = expected(&name) else {
            continue;
        };
        match (parse_trigger(&v), want) {
            (Ok(t), Ok(variant_name)) => assert_eq!(variant(&t), variant_name, "{name}: {t:?}"),
            (Err(e), Err(path)) => assert_eq!(e.path, path, "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked} fixtures checked");
    let parsed = parse_trigger(
        &fixtures()?
            .into_iter()
            .find(|(n, _)| n == "ami-state-change-failed.json")
            .ok_or("fixture")?
            .1,
    )
    .map_err(|e| e.to_string())?;
    match parsed {
        Trigger::AmiState {
            state,
            region,
            error,
            ..
        } => {
            assert_eq!(state, ImageState::Failed);
            assert_eq!(region, Region::new("us-west-2"));
            assert_eq!(error.as_deref(), Some("Description of failure"));
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

/// Fields no parser reads: changing them changes nothing.
const IRRELEVANT: &[&str] = &["version", "id", "account"];

fn all_fixtures_or_none() -> Vec<(String, Value)> {
    // A missing fixture directory is `fixtures_are_there`'s failure; here it means no cases.
    fixtures().unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn mutated_fixtures_parse_or_say_what_is_wrong((name, original, v, applied) in mutated_fixture(all_fixtures_or_none())) {
        let before = parse_trigger(&original);
        let after = parse_trigger(&v);
        if let Err(e) = &after {
            check_event_error(e, &v)?;
        }
        let only_irrelevant = applied.iter().all(|(p, _)| matches!(p.first(), Some(Seg::Key(k)) if IRRELEVANT.contains(&k.as_str())));
        if only_irrelevant {
            prop_assert_eq!(&after, &before, "{}: mutating only {:?} must not matter", name, applied.iter().map(|(p, _)| path_text(p)).collect::<Vec<_>>());
        }
        // One mutation of a readable event's region: the error names the region.
        if let ([(path, m)], Ok(_)) = (applied.as_slice(), &before) {
            if path.as_slice() == [Seg::Key("region".into())] {
                let region_ok = v.get("region").and_then(Value::as_str).is_some_and(tags::is_region_name);
                if !region_ok {
                    let e = after.as_ref().err();
                    prop_assert_eq!(e.map(|e| e.path.as_str()), Some("region"), "{}: {:?} of region", name, m);
                }
            }
        }
    }

    /// A malformed event changes nothing: no function makes a single call for it.
    #[test]
    fn malformed_events_change_nothing((name, _original, v, _applied) in mutated_fixture(all_fixtures_or_none())) {
        prop_assume!(parse_trigger(&v).is_err());
        for function in RUNNERS {
            let fake = seeded_fake();
            let images_before = fake.live_images("us-east-1");
            let result = dispatch(&fake, function, &v);
            prop_assert!(is_unreadable(&result), "{name}: {function:?} took a malformed event: {result:?}");
            for op in MUTATING_CALLS {
                prop_assert_eq!(fake.calls(op), 0, "{}: {:?} called {}", name, function, op);
            }
            let state = fake.state();
            prop_assert!(state.calls.is_empty(), "{name}: {function:?} made calls {:?}", state.calls);
            prop_assert!(state.reports.is_empty() && state.continuations.is_empty());
            drop(state);
            prop_assert_eq!(fake.live_images("us-east-1"), images_before);
        }
    }
}

/// The harness is not vacuous: a readable schedule event does make images.
#[test]
fn a_readable_event_does_reach_the_fake() -> Result<(), String> {
    let (_, event) = fixtures()?
        .into_iter()
        .find(|(n, _)| n == "scheduled-event.json")
        .ok_or("scheduled-event.json")?;
    let fake = seeded_fake();
    let report = dispatch(&fake, "create-image", &event).map_err(|e| format!("{e:?}"))?;
    assert_eq!(fake.calls("CreateImage"), 1, "{report:?}");
    let fake = seeded_fake();
    let mut broken = event.clone();
    broken["time"] = Value::from("yesterday");
    let refused = dispatch(&fake, "create-image", &broken);
    assert!(
        matches!(&refused, Err(e) if matches!(e.cause(), Cause::UnreadableEvent(e) if e.path == "time")),
        "{refused:?}"
    );
    assert_eq!(fake.calls("CreateImage"), 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------

/// The instance keys `from_tags` parses (and can therefore reject).
const PARSED_KEYS: &[&str] = &[
    key::SCHEDULE,
    key::REBOOT,
    key::RETAIN,
    key::REPLICATE_TO,
    key::EXCLUDE_DEVICES,
];

fn tag_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => text(),
        2 => prop::sample::select(vec![
            "daily", "daily, weekly", "true", "False", "no", "count=7", "days=30,count=2",
            "daily=7,weekly=4,monthly=12", "eu-west-1,us-west-2", "/dev/sdf /dev/sdg", "xvdf",
            "111122223333", "group:prod", "db-cluster", "", " , ",
        ])
        .prop_map(str::to_owned),
    ]
}

fn tag_map() -> impl Strategy<Value = Tags> {
    let contract_key = prop::sample::select(vec![
        key::SCHEDULE,
        key::REBOOT,
        key::REBOOT_GROUP,
        key::RETAIN,
        key::REPLICATE_TO,
        key::SHARE_WITH,
        key::EXCLUDE_DEVICES,
        key::KEEP,
        key::MANAGED_BY,
        "Name",
    ])
    .prop_map(str::to_owned);
    let k = prop_oneof![3 => contract_key, 1 => text()];
    prop::collection::vec((k, tag_value()), 0..8).prop_map(|kv| kv.into_iter().collect())
}

fn retention_rule() -> impl Strategy<Value = RetentionRule> {
    let n = || prop::option::of(1u32..=100_000);
    (n(), n(), n(), n(), n(), n())
        .prop_map(
            |(count, days, daily, weekly, monthly, yearly)| RetentionRule {
                count,
                days,
                daily,
                weekly,
                monthly,
                yearly,
            },
        )
        .prop_filter("a rule keeps something", |r| *r != RetentionRule::default())
}

fn share_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[1-9][0-9]{11}",
        1 => "[a-z0-9]{10}".prop_map(|o| format!("arn:aws:organizations::111111111111:organization/o-{o}")),
        1 => ("[a-z0-9]{10}", "[a-z0-9]{4}-[a-z0-9]{8}").prop_map(|(o, u)| format!("arn:aws:organizations::111111111111:ou/o-{o}/ou-{u}")),
        1 => Just("all".to_owned()),
        1 => prop::sample::select(vec!["group:prod", "group:dev", "group:nope"]).prop_map(str::to_owned),
        2 => text(),
    ]
}

fn groups() -> impl Strategy<Value = BTreeMap<String, Vec<Grantee>>> {
    prop_oneof![
        Just(BTreeMap::new()),
        Just(
            [("prod", "111122223333"), ("dev", "444455556666")]
                .into_iter()
                .filter_map(|(g, a)| Some((
                    g.to_owned(),
                    vec![Grantee::Account(AccountId::parse(a)?)]
                )))
                .collect()
        ),
    ]
}

fn separator() -> impl Strategy<Value = String> {
    "[ ,\t\n]{1,3}"
}

fn joined(entries: Vec<String>, seps: Vec<String>) -> String {
    let mut out = String::new();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(seps.get(i % seps.len().max(1)).map_or(",", String::as_str));
        }
        out.push_str(e);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn instance_tags_parse_or_name_the_bad_key(tags in tag_map()) {
        match InstanceSettings::from_tags(&tags) {
            Ok(s) => {
                prop_assert_eq!(s.schedules.is_empty(), !tags.contains_key(key::SCHEDULE));
                if !tags.contains_key(key::REBOOT) {
                    prop_assert!(s.reboot, "instances reboot unless they opt out");
                }
            }
            Err(e) => {
                prop_assert!(PARSED_KEYS.contains(&e.key.as_str()), "{e}");
                let value = tags.get(&e.key);
                prop_assert!(value.is_some(), "error names {} which is not set", e.key);
                check_tag_error(&e, &e.key.clone(), &[value.map_or("", String::as_str)])?;
            }
        }
    }

    #[test]
    fn retention_rules_parse_or_say_what_is_accepted(value in prop_oneof![text(), tag_value()]) {
        match RetentionRule::parse(&value) {
            Ok(r) => prop_assert_eq!(RetentionRule::parse(&r.to_string()), Ok(r)),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains("expected count=N"), "{text:?}");
                check_plain_error(&text, &[&value])?;
                check_tag_error(&TagError::from_retention(key::RETAIN, &e), key::RETAIN, &[&value])?;
            }
        }
    }

    #[test]
    fn retention_rules_round_trip(rule in retention_rule(), seps in prop::collection::vec(separator(), 1..4), order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle()) {
        prop_assert_eq!(RetentionRule::parse(&rule.to_string()), Ok(rule.clone()));
        // Any order, any separators.
        let parts: Vec<String> = rule.to_string().split(',').map(str::to_owned).collect();
        let shuffled: Vec<String> = order.iter().filter_map(|i| parts.get(*i).cloned()).collect();
        prop_assert_eq!(RetentionRule::parse(&joined(shuffled, seps)), Ok(rule));
    }

    #[test]
    fn share_lists_parse_or_name_the_tag(entries in prop::collection::vec(share_entry(), 0..6), seps in prop::collection::vec(separator(), 1..4), groups in groups()) {
        let value = joined(entries, seps);
        match ShareTarget::parse_list(&value, &groups) {
            Ok(grantees) => {
                prop_assert!(grantees.len() <= tags::split_list(&value).count() * 2);
                let mut dedup = grantees.clone();
                dedup.dedup();
                prop_assert_eq!(dedup.len(), grantees.len());
            }
            Err(e) => check_tag_error(&e, key::SHARE_WITH, &[&value])?,
        }
    }

    /// One bad entry anywhere rejects the whole value.
    #[test]
    fn one_bad_share_entry_rejects_the_value(good in prop::collection::vec("[1-9][0-9]{11}", 0..5), bad in prop_oneof!["[0-9]{1,11}", "[0-9]{13,20}", huge(), "group:[a-z]{1,8}"], at in any::<Index>(), seps in prop::collection::vec(separator(), 1..4)) {
        let mut entries = good;
        let i = at.index(entries.len() + 1);
        entries.insert(i, bad.clone());
        let value = joined(entries, seps);
        // The bad value must be one entry, and a bad one once split: a huge value can be
        // separators around a valid account (",,,, 111122223333"), which is that account.
        let mut split = tags::split_list(&bad);
        let entry = split.next();
        prop_assume!(split.next().is_none() && entry.is_some_and(|e| ShareTarget::parse(e).is_none_or(|t| matches!(t, ShareTarget::Group(_)))));
        match ShareTarget::parse_list(&value, &BTreeMap::new()) {
            Ok(g) => prop_assert!(false, "{value:?} parsed as {g:?}"),
            Err(e) => check_tag_error(&e, key::SHARE_WITH, &[&value])?,
        }
    }

    #[test]
    fn allow_lists_parse_or_say_why(entries in prop::collection::vec(share_entry(), 0..6), seps in prop::collection::vec(separator(), 1..4)) {
        let value = joined(entries, seps);
        match AllowList::parse(&value) {
            Ok(list) => prop_assert!(!list.permits(&Grantee::Public), "public is never allowed by a list"),
            // The variable is named by Config (SHARE_ALLOWED=…); the bare error says why.
            Err(why) => check_plain_error(&why, &[&value])?,
        }
    }

    #[test]
    fn region_and_device_lists_parse_or_name_the_key(value in prop_oneof![text(), tag_value(), "([a-z]{2}-[a-z]{1,9}-[0-9][ ,]?){0,4}"]) {
        match tags::parse_regions(key::REPLICATE_TO, &value) {
            Ok(regions) => prop_assert!(regions.iter().all(|r| tags::is_region_name(r.as_str()))),
            Err(e) => check_tag_error(&e, key::REPLICATE_TO, &[&value])?,
        }
        match tags::parse_devices(key::EXCLUDE_DEVICES, &value) {
            Ok(devices) => prop_assert!(devices.iter().all(|d| !d.as_str().is_empty() && d.as_str().len() <= 64)),
            Err(e) => check_tag_error(&e, key::EXCLUDE_DEVICES, &[&value])?,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// Every variable `Config::from_lookup` reads, with plausible values for it.
const VARIABLES: &[(&str, &[&str])] = &[
    ("AMI_LIFECYCLE_NAME", &["ami-lifecycle", "prod-amis"]),
    ("AWS_REGION", &["us-east-1", "eu-west-1"]),
    ("AWS_DEFAULT_REGION", &["us-west-2"]),
    (
        "AMI_LIFECYCLE_REGIONS",
        &["us-east-1,eu-west-1", "us-east-1"],
    ),
    ("REPLICA_REGIONS", &["us-west-2 eu-west-1"]),
    (
        "REPLICA_KMS_KEYS",
        &[
            "us-west-2=alias/replicas",
            "eu-west-1=arn:aws:kms:eu-west-1:111122223333:key/abc",
        ],
    ),
    ("RETAIN", &["count=7", "daily=7,weekly=4"]),
    (
        "SHARE_ALLOWED",
        &[
            "111122223333",
            "arn:aws:organizations::111111111111:organization/o-abc123def4",
        ],
    ),
    (
        "SHARE_GROUPS",
        &["prod=111122223333 444455556666;dev=777788889999"],
    ),
    ("SCHEDULES", &["daily,weekly"]),
    ("COPY_INSTANCE_TAGS", &["Name,team"]),
    ("PRICE_PER_GIB_MONTH", &["0.05"]),
    ("ADOPT_FROM", &["444455556666"]),
    ("ALLOW_PUBLIC", &["false"]),
    ("SHARE_REPLICAS", &["true"]),
    ("DRY_RUN", &["TRUE", "0"]),
    ("REBOOT_CONCURRENCY", &["1", "100"]),
    ("KEEP_IF_LAUNCHED_WITHIN", &["14"]),
    ("CLEANUP_SHARED", &["no"]),
    ("DEPRECATION_GRACE", &["0", "3650"]),
    ("DELETE_ORPHANS", &["yes"]),
    ("REPORT_EVENT_BUS", &["default"]),
    (
        "CONTINUATION_QUEUE_URL",
        &["https://sqs.us-east-1.amazonaws.com/123456789012/q"],
    ),
];

fn environment() -> impl Strategy<Value = BTreeMap<String, String>> {
    let per_variable: Vec<_> = VARIABLES
        .iter()
        .map(|(name, plausible)| {
            let plausible = prop::sample::select(plausible.to_vec()).prop_map(str::to_owned);
            let value = prop_oneof![4 => Just(None), 3 => plausible.prop_map(Some), 2 => text().prop_map(Some)];
            value.prop_map(move |v| v.map(|v| ((*name).to_owned(), v)))
        })
        .collect();
    per_variable.prop_map(|vs| vs.into_iter().flatten().collect())
}

fn check_config_error(
    e: &ConfigError,
    env: &BTreeMap<String, String>,
) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(VARIABLES.iter().any(|(v, _)| *v == e.variable), "{text:?}");
    prop_assert!(text.contains(e.variable), "{text:?}");
    prop_assert!(
        !e.problem.trim().is_empty() && !e.accepted.trim().is_empty(),
        "{text:?}"
    );
    // The variable named is the one that holds the bad value (no region at all is the
    // one error about a variable that is not set).
    let set = env.get(e.variable).is_some_and(|v| !v.trim().is_empty());
    prop_assert!(
        set || (e.variable == "AMI_LIFECYCLE_REGIONS" && e.value.is_empty()),
        "{text:?} names a variable that is not set"
    );
    let bound = message_bound(env.values().map(String::as_str));
    prop_assert!(
        text.chars().count() < bound,
        "{} characters (bound {bound}): {:?}…",
        text.chars().count(),
        text.chars().take(200).collect::<String>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn config_parses_or_names_the_variable(env in environment()) {
        match Config::from_lookup(|k| env.get(k).cloned()) {
            Ok(c) => {
                prop_assert!(!c.regions.is_empty());
                prop_assert!(c.retain != RetentionRule::default());
            }
            Err(e) => check_config_error(&e, &env)?,
        }
    }
}

/// Found by `one_bad_share_entry_rejects_the_value` in CI: separators around one valid
/// entry are that entry, not a bad value (the property now splits before judging).
#[test]
fn separators_around_one_account_are_that_account() {
    let value = format!("{} 111122223333", ",".repeat(100_000));
    let parsed = ShareTarget::parse_list(&value, &BTreeMap::new());
    assert_eq!(
        parsed.map_err(|e| e.to_string()),
        Ok(vec![Grantee::Account(
            AccountId::parse("111122223333").expect("a valid account id")
        )])
    );
}
