//! Planner tests: selection, names, tags, devices and waves, over inventories seeded
//! through the in-memory fake.

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::fake::FakeCloud;

const SLOT: OffsetDateTime = datetime!(2026-11-22 03:00 UTC);

fn run() -> ScheduleRun {
    ScheduleRun::new("daily".into(), SLOT)
}

fn config(pairs: &[(&str, &str)]) -> Config {
    let mut all = vec![("AMI_LIFECYCLE_REGIONS", "us-east-1,eu-west-1")];
    all.extend_from_slice(pairs);
    Config::from_lookup(|k| {
        all.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn inventory(cloud: &FakeCloud) -> Inventory {
    let s = cloud.state();
    Inventory {
        instances: s
            .instances
            .values()
            .filter(|i| i.tags.contains_key(key::SCHEDULE))
            .cloned()
            .collect(),
        slot_images: s.images.values().cloned().collect(),
        ..Inventory::default()
    }
}

fn action<'a>(plan: &'a Plan, id: &InstanceId) -> Option<&'a Action> {
    plan.items
        .iter()
        .find(|i| &i.instance == id)
        .map(|i| &i.action)
}

fn created(plan: &Plan) -> Vec<InstanceId> {
    plan.creates().map(|i| i.instance.clone()).collect()
}

#[test]
fn selects_opted_in_running_and_stopped_instances_of_every_region() {
    // GIVEN instances in two regions, some opted in to daily, one to weekly, one untagged
    let cloud = FakeCloud::new("123456789012");
    let east = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily"), ("Name", "web")]);
    let west = cloud.add_instance("eu-west-1", &[(key::SCHEDULE, "weekly,daily")]);
    let weekly = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "weekly")]);
    let untagged = cloud.add_instance("us-east-1", &[("Name", "other")]);
    let stopped = cloud.add_instance_with(
        "us-east-1",
        &[(key::SCHEDULE, "daily")],
        InstanceState::Stopped,
        &[],
    );
    let gone = cloud.add_instance_with(
        "us-east-1",
        &[(key::SCHEDULE, "daily")],
        InstanceState::Terminated,
        &[],
    );
    let pending = cloud.add_instance_with(
        "eu-west-1",
        &[(key::SCHEDULE, "daily")],
        InstanceState::Pending,
        &[],
    );

    // WHEN the daily slot is planned
    let plan = plan(&run(), &inventory(&cloud), &config(&[]), SLOT);

    // THEN exactly the running and stopped daily instances are imaged, the rest explained
    let mut want = vec![east.clone(), west.clone(), stopped.clone()];
    want.sort();
    let mut got = created(&plan);
    got.sort();
    assert_eq!(got, want);
    assert_eq!(action(&plan, &weekly), None);
    assert_eq!(action(&plan, &untagged), None);
    for (id, state) in [(&gone, "terminated"), (&pending, "pending")] {
        match action(&plan, id) {
            Some(Action::Skip { reason }) => assert!(reason.contains(state), "{reason}"),
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(!plan.waves_remain());
}

#[test]
fn names_tags_and_consistency_follow_the_contract() {
    // GIVEN a rebooting instance with lineage tags, an opted-out one and a stopped one
    let cloud = FakeCloud::new("123456789012");
    let web = cloud.add_instance(
        "us-east-1",
        &[
            (key::SCHEDULE, "daily"),
            ("Name", "web"),
            ("team", "blue"),
            ("cost", "x"),
            (key::RETAIN, "count=3"),
            (key::REPLICATE_TO, "eu-west-1"),
            (key::SHARE_WITH, "111122223333"),
        ],
    );
    let optout = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
    );
    let stopped = cloud.add_instance_with(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "false")],
        InstanceState::Stopped,
        &[],
    );
    let config = config(&[
        ("AMI_LIFECYCLE_NAME", "prod"),
        ("COPY_INSTANCE_TAGS", "team"),
    ]);

    // WHEN planned
    let plan = plan(&run(), &inventory(&cloud), &config, SLOT);

    // THEN the name is deployment/instance/schedule/slot and the tags carry the lineage
    let Some(Action::Create {
        request,
        consistency,
        wave: None,
        ..
    }) = action(&plan, &web)
    else {
        panic!("{plan:?}");
    };
    assert_eq!(request.name, format!("prod/{web}/daily/20261122T0300Z"));
    assert_eq!(*consistency, Consistency::Rebooted);
    assert!(!request.no_reboot);
    let t = &request.image_tags;
    let get = |k: &str| t.get(k).map(String::as_str);
    assert_eq!(get(key::MANAGED_BY), Some("prod"));
    assert_eq!(get(key::SOURCE_INSTANCE), Some(web.as_str()));
    assert_eq!(get(key::SCHEDULE), Some("daily"));
    assert_eq!(get(key::SLOT), Some("2026-11-22T03:00:00Z"));
    assert_eq!(get(key::CONSISTENCY), Some("rebooted"));
    assert_eq!(get("Name"), Some("web"));
    assert_eq!(get("team"), Some("blue"));
    assert_eq!(get("cost"), None, "only COPY_INSTANCE_TAGS are copied");
    assert_eq!(get(key::RETAIN), Some("count=3"));
    assert_eq!(get(key::REPLICATE_TO), Some("eu-west-1"));
    assert_eq!(get(key::SHARE_WITH), Some("111122223333"));
    assert_eq!(request.snapshot_tags, request.image_tags);
    assert!(request.description.contains("rebooted") && request.description.len() <= 255);
    assert!(!request.name.contains(':'));

    let Some(Action::Create {
        request,
        consistency,
        ..
    }) = action(&plan, &optout)
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (*consistency, request.no_reboot),
        (Consistency::CrashConsistent, true)
    );
    assert_eq!(
        request.image_tags.get(key::CONSISTENCY).map(String::as_str),
        Some("crash-consistent")
    );
    let Some(Action::Create {
        request,
        consistency,
        ..
    }) = action(&plan, &stopped)
    else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (*consistency, request.no_reboot),
        (Consistency::Stopped, true)
    );
}

#[test]
fn excluded_devices_map_to_the_instance_and_never_the_root() {
    // GIVEN instances excluding a data device, the root device, and a device they lack
    let cloud = FakeCloud::new("123456789012");
    let data = cloud.add_instance_with(
        "us-east-1",
        &[
            (key::SCHEDULE, "daily"),
            (key::EXCLUDE_DEVICES, "sdg,/dev/sdf"),
        ],
        InstanceState::Running,
        &["/dev/sdf", "/dev/sdg"],
    );
    let root = cloud.add_instance_with(
        "us-east-1",
        &[
            (key::SCHEDULE, "daily"),
            (key::EXCLUDE_DEVICES, "/dev/xvda"),
        ],
        InstanceState::Running,
        &["/dev/sdf"],
    );
    let missing = cloud.add_instance_with(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::EXCLUDE_DEVICES, "/dev/sdz")],
        InstanceState::Running,
        &["/dev/sdf"],
    );

    let plan = plan(&run(), &inventory(&cloud), &config(&[]), SLOT);

    let Some(Action::Create { request, .. }) = action(&plan, &data) else {
        panic!("{plan:?}")
    };
    assert_eq!(
        request.exclude_devices,
        vec![DeviceName::new("/dev/sdg"), DeviceName::new("/dev/sdf")]
    );
    for (id, words) in [
        (&root, "is the root device"),
        (&missing, "/dev/sdz is not attached"),
    ] {
        match action(&plan, id) {
            Some(Action::Fail { reason }) => assert!(
                reason.contains(words) && reason.contains(id.as_str()),
                "{reason}"
            ),
            other => panic!("{id}: {other:?}"),
        }
    }
}

#[test]
fn bad_tags_fail_only_their_instance_and_only_for_their_schedule() {
    // GIVEN a daily instance with a bad reboot tag, a weekly one with a bad tag, a good one
    let cloud = FakeCloud::new("123456789012");
    let bad = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT, "maybe")],
    );
    let other = cloud.add_instance(
        "us-east-1",
        &[(key::SCHEDULE, "weekly"), (key::REBOOT, "maybe")],
    );
    let good = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);

    let plan = plan(&run(), &inventory(&cloud), &config(&[]), SLOT);

    match action(&plan, &bad) {
        Some(Action::Fail { reason }) => assert!(
            reason.contains("ami-lifecycle:reboot=\"maybe\"") && reason.contains("true or false"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(action(&plan, &other), None);
    assert_eq!(created(&plan), vec![good]);
}

#[test]
fn an_existing_slot_image_is_already_done_and_a_failed_one_reported() {
    // GIVEN one instance already imaged for the slot (by tags) and one by name only, one failed
    let cloud = FakeCloud::new("123456789012");
    let config = config(&[]);
    let tagged = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let named = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let failed = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let fresh = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let lineage = |id: &InstanceId| {
        vec![
            (key::MANAGED_BY, "ami-lifecycle".to_owned()),
            (key::SOURCE_INSTANCE, id.to_string()),
            (key::SCHEDULE, "daily".to_owned()),
            (key::SLOT, "2026-11-22T03:00:00Z".to_owned()),
        ]
    };
    let t = lineage(&tagged);
    let t: Vec<(&str, &str)> = t.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let img = cloud.add_image("us-east-1", "something else", SLOT, &t);
    let by_name = cloud.add_image(
        "us-east-1",
        &image_name(&config.deployment, &named, &run()),
        SLOT,
        &[],
    );
    let f = lineage(&failed);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bad = cloud.add_image(
        "us-east-1",
        &image_name(&config.deployment, &failed, &run()),
        SLOT,
        &f,
    );
    cloud.edit_image(&bad, |i| i.state = ImageState::Failed);
    // an image of the previous slot does not count
    cloud.add_image(
        "us-east-1",
        &image_name(
            &config.deployment,
            &fresh,
            &ScheduleRun::new("daily".into(), datetime!(2026-11-21 03:00 UTC)),
        ),
        SLOT,
        &[],
    );

    let plan = plan(&run(), &inventory(&cloud), &config, SLOT);

    assert_eq!(
        action(&plan, &tagged),
        Some(&Action::Exists {
            image: img,
            state: ImageState::Available
        })
    );
    assert_eq!(
        action(&plan, &named),
        Some(&Action::Exists {
            image: by_name,
            state: ImageState::Available
        })
    );
    assert_eq!(
        action(&plan, &failed),
        Some(&Action::ImageFailed { image: bad })
    );
    assert_eq!(created(&plan), vec![fresh]);
}

/// Seeds a reboot group of `n` running members plus an ungrouped instance.
fn group_of(cloud: &FakeCloud, n: usize) -> (Vec<InstanceId>, InstanceId) {
    let mut members: Vec<InstanceId> = (0..n)
        .map(|_| {
            cloud.add_instance(
                "us-east-1",
                &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
            )
        })
        .collect();
    members.sort();
    let loner = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    (members, loner)
}

/// Makes the images that `plan` creates in the fake, as `run` would.
fn make(cloud: &FakeCloud, plan: &Plan, created_at: OffsetDateTime) {
    cloud.set_now(created_at);
    for item in plan.creates() {
        if let Action::Create { request, .. } = &item.action {
            let tags: Vec<(&str, &str)> = request
                .image_tags
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            cloud.add_image(item.region.as_str(), &request.name, created_at, &tags);
        }
    }
}

#[test]
fn reboot_groups_go_in_waves_of_the_concurrency_and_wait_for_running() {
    // GIVEN a group of five members, REBOOT_CONCURRENCY=2, and an ungrouped instance
    let cloud = FakeCloud::new("123456789012");
    let (members, loner) = group_of(&cloud, 5);
    let config = config(&[("REBOOT_CONCURRENCY", "2")]);

    // WHEN the first invocation plans
    let first = plan(&run(), &inventory(&cloud), &config, SLOT);
    // THEN the ungrouped instance and the first two members are imaged, three wait
    assert_eq!(
        created(&first),
        vec![members[0].clone(), members[1].clone(), loner.clone()]
    );
    match action(&first, &members[4]) {
        Some(Action::Wait { wave, .. }) => assert_eq!((wave.number, wave.of), (3, 3)),
        other => panic!("{other:?}"),
    }
    assert!(first.waves_remain());

    // WHEN wave 1 is imaged and one member is still rebooting (stopping)
    make(&cloud, &first, SLOT);
    cloud.set_instance_state(&members[0], InstanceState::Stopping);
    let later = SLOT + time::Duration::minutes(1);
    let held = plan(&run(), &inventory(&cloud), &config, later);
    // THEN nothing new starts: the next wave waits for it
    assert!(created(&held).is_empty(), "{held:?}");
    match action(&held, &members[2]) {
        Some(Action::Wait {
            blocked_by, wave, ..
        }) => {
            assert_eq!(blocked_by, &vec![members[0].clone()]);
            assert_eq!(wave.number, 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        action(&held, &members[0]),
        Some(Action::Exists { .. })
    ));

    // WHEN it is running again but its image is only seconds old
    cloud.set_instance_state(&members[0], InstanceState::Running);
    let too_soon = plan(
        &run(),
        &inventory(&cloud),
        &config,
        SLOT + time::Duration::seconds(5),
    );
    assert!(
        created(&too_soon).is_empty(),
        "a reboot that may not have begun yet holds the wave"
    );

    // THEN, once running and settled, the second wave starts; then the last
    let second = plan(&run(), &inventory(&cloud), &config, later);
    assert_eq!(
        created(&second),
        vec![members[2].clone(), members[3].clone()]
    );
    make(&cloud, &second, later);
    let third = plan(
        &run(),
        &inventory(&cloud),
        &config,
        later + time::Duration::minutes(1),
    );
    assert_eq!(created(&third), vec![members[4].clone()]);
    assert!(!third.waves_remain());
    make(&cloud, &third, later + time::Duration::minutes(1));
    let done = plan(
        &run(),
        &inventory(&cloud),
        &config,
        later + time::Duration::minutes(2),
    );
    assert!(created(&done).is_empty() && !done.waves_remain());
    assert_eq!(
        done.items
            .iter()
            .filter(|i| matches!(i.action, Action::Exists { .. }))
            .count(),
        6
    );
}

#[test]
fn stopped_and_opted_out_members_never_hold_a_wave() {
    // GIVEN a group with one stopped member and one opted out of the reboot
    let cloud = FakeCloud::new("123456789012");
    let (members, _) = group_of(&cloud, 2);
    let stopped = cloud.add_instance_with(
        "us-east-1",
        &[(key::SCHEDULE, "daily"), (key::REBOOT_GROUP, "db")],
        InstanceState::Stopped,
        &[],
    );
    let optout = cloud.add_instance(
        "us-east-1",
        &[
            (key::SCHEDULE, "daily"),
            (key::REBOOT_GROUP, "db"),
            (key::REBOOT, "false"),
        ],
    );

    let first = plan(&run(), &inventory(&cloud), &config(&[]), SLOT);

    // THEN both are imaged with the first wave, which holds one rebooting member only
    let got = created(&first);
    assert!(
        got.contains(&stopped) && got.contains(&optout) && got.contains(&members[0]),
        "{got:?}"
    );
    assert!(!got.contains(&members[1]));
    // and once imaged they do not block the next wave
    make(&cloud, &first, SLOT);
    let second = plan(
        &run(),
        &inventory(&cloud),
        &config(&[]),
        SLOT + time::Duration::minutes(1),
    );
    assert_eq!(created(&second), vec![members[1].clone()]);
}

#[test]
fn a_group_blocked_for_hours_gives_up_instead_of_looping() {
    // GIVEN wave 1 imaged, its member never comes back
    let cloud = FakeCloud::new("123456789012");
    let (members, _) = group_of(&cloud, 2);
    let first = plan(&run(), &inventory(&cloud), &config(&[]), SLOT);
    make(&cloud, &first, SLOT);
    cloud.set_instance_state(&members[0], InstanceState::Stopping);

    // WHEN planned 4 hours later
    let late = plan(
        &run(),
        &inventory(&cloud),
        &config(&[]),
        SLOT + time::Duration::hours(4),
    );

    // THEN the waiting member is failed for the slot with the way out, and nothing continues
    match action(&late, &members[1]) {
        Some(Action::Fail { reason }) => assert!(
            reason.contains(members[0].as_str()) && reason.contains("--slot 2026-11-22T03:00:00Z"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!late.waves_remain());
}

#[test]
fn unknown_schedules_are_named_with_the_setting() {
    let config = config(&[("SCHEDULES", "daily,weekly")]);
    assert!(check_schedule(&run(), &config).is_ok());
    let text = check_schedule(&ScheduleRun::new("hourly".into(), SLOT), &config)
        .err()
        .unwrap_or_default();
    assert!(
        text.contains("\"hourly\"") && text.contains("SCHEDULES=daily,weekly"),
        "{text}"
    );
}

mod failed_image {
    use super::*;
    use crate::model::ImageDisk;

    const LINEAGE: [(&str, &str); 3] = [
        (key::MANAGED_BY, "ami-lifecycle"),
        (key::SOURCE_INSTANCE, "i-1"),
        (key::SCHEDULE, "daily"),
    ];

    fn tags(extra: &[(&str, &str)]) -> Tags {
        LINEAGE
            .iter()
            .chain(extra)
            .chain(&[(key::SLOT, "2026-11-22T03:00:00Z")])
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn image(id: &str, state: ImageState, snaps: &[&str], tags: Tags) -> Image {
        Image {
            id: ImageId::new(id),
            region: Region::new("us-east-1"),
            name: format!("ami-lifecycle/i-1/daily/{id}"),
            state,
            owner: None,
            created: SLOT,
            tags,
            disks: snaps
                .iter()
                .map(|s| ImageDisk {
                    device: DeviceName::new("/dev/xvda"),
                    snapshot_id: SnapshotId::new(*s),
                    size_gib: 8,
                    encrypted: false,
                    kms_key: None,
                })
                .collect(),
            public: false,
            deprecation_time: None,
            last_launched: None,
            deregistration_protected: false,
            source: None,
            billing_products: Vec::new(),
            source_instance: None,
        }
    }

    fn snapshot(id: &str, tags: Tags) -> Snapshot {
        Snapshot {
            id: SnapshotId::new(id),
            region: Region::new("us-east-1"),
            tags,
            size_gib: 8,
            encrypted: false,
            kms_key: None,
            started: SLOT,
            full_size_bytes: None,
        }
    }

    #[test]
    fn only_a_failed_image_create_image_made_for_this_deployment_is_cleaned_up() {
        let config = config(&[]);
        let id = ImageId::new("ami-1");
        let check = |img: Option<&Image>| failed_image_check(&id, img, &config);
        let ours = image("ami-1", ImageState::Failed, &[], tags(&[]));
        assert_eq!(check(Some(&ours)).map(|m| m.instance), Ok("i-1".to_owned()));
        let mut foreign = ours.clone();
        foreign
            .tags
            .insert(key::MANAGED_BY.to_owned(), "other".to_owned());
        let copy = image(
            "ami-1",
            ImageState::Failed,
            &[],
            tags(&[(key::SOURCE_IMAGE, "ami-0")]),
        );
        for (img, words) in [
            (None, "no longer exists"),
            (Some(&foreign), "not an image create-image made"),
            (Some(&copy), "not an image create-image made"),
        ] {
            let skip = check(img).err().map(|s| s.reason).unwrap_or_default();
            assert!(skip.contains(words), "{skip:?}");
        }
        let available = image("ami-1", ImageState::Available, &[], tags(&[]));
        let skip = check(Some(&available))
            .err()
            .unwrap_or_else(|| panic!("not failed"));
        assert_eq!(skip.subject, "i-1");
        assert!(skip.reason.contains("available, not failed"));
    }

    #[test]
    fn leftover_snapshots_are_those_of_the_lineage_and_slot_that_are_ours_and_unused() {
        // GIVEN a failed image (snap-own), a stray snapshot of its lineage, one used by a
        // live image of the slot, one of another instance, one not tagged as ours, and one
        // used only by another failed image
        let config = config(&[]);
        let failed = image("ami-1", ImageState::Failed, &["snap-own"], tags(&[]));
        let made = failed_image_check(&failed.id, Some(&failed), &config)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let other_instance: Tags = [
            (key::MANAGED_BY, "ami-lifecycle"),
            (key::SOURCE_INSTANCE, "i-2"),
            (key::SCHEDULE, "daily"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let mut unmanaged = tags(&[]);
        unmanaged.remove(key::MANAGED_BY);
        let snaps = [
            snapshot("snap-own", tags(&[])),
            snapshot("snap-stray", tags(&[])),
            snapshot("snap-live", tags(&[])),
            snapshot("snap-i2", other_instance),
            snapshot("snap-unmanaged", unmanaged),
            snapshot("snap-other-failed", tags(&[])),
        ];
        let images = [
            failed.clone(),
            image("ami-2", ImageState::Available, &["snap-live"], tags(&[])),
            image(
                "ami-3",
                ImageState::Failed,
                &["snap-other-failed"],
                tags(&[]),
            ),
        ];
        // WHEN planned
        let plan = failed_image_plan(&failed, &made, Some("boom"), &snaps, &images, &config);
        // THEN only ours, unused, of the lineage go
        let ids: Vec<&str> = plan.snapshots.iter().map(SnapshotId::as_str).collect();
        assert_eq!(ids, ["snap-other-failed", "snap-own", "snap-stray"]);
        assert_eq!(plan.instance, "i-1");
        assert!(
            plan.reason.contains("boom")
                && plan
                    .reason
                    .contains("amictl create-images --schedule daily --slot 2026-11-22T03:00:00Z"),
            "{}",
            plan.reason
        );
    }
}

#[test]
fn an_instance_is_never_rebooted_twice_within_reboot_min_interval() {
    // GIVEN a running instance that opts into reboots, last rebooted for an image
    let cloud = FakeCloud::new("123456789012");
    let web = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let cfg = config(&[]);
    let reboot_of = |inv: &Inventory| match action(&plan(&run(), inv, &cfg, SLOT), &web) {
        Some(Action::Create {
            request,
            consistency,
            note,
            ..
        }) => (request.no_reboot, *consistency, note.clone()),
        other => panic!("{other:?}"),
    };

    // WHEN the last reboot was 30 minutes before the slot (a second schedule, an operator,
    // a forged invocation with a fresh slot), THEN it is imaged without a reboot, saying why
    let mut inv = inventory(&cloud);
    inv.last_reboot
        .insert(web.clone(), SLOT - time::Duration::minutes(30));
    let (no_reboot, consistency, note) = reboot_of(&inv);
    assert!(no_reboot);
    assert_eq!(consistency, Consistency::CrashConsistent);
    assert!(
        note.as_deref()
            .is_some_and(|n| n.contains("REBOOT_MIN_INTERVAL=60")),
        "{note:?}"
    );

    // WHEN it was exactly an interval before (an hourly schedule), THEN it reboots
    inv.last_reboot
        .insert(web.clone(), SLOT - time::Duration::minutes(60));
    assert_eq!(reboot_of(&inv), (false, Consistency::Rebooted, None));

    // AND REBOOT_MIN_INTERVAL=0 turns the guard off
    let off = plan(
        &run(),
        &{
            let mut i = inventory(&cloud);
            i.last_reboot.insert(web.clone(), SLOT);
            i
        },
        &config(&[("REBOOT_MIN_INTERVAL", "0")]),
        SLOT,
    );
    assert!(matches!(
        action(&off, &web),
        Some(Action::Create {
            consistency: Consistency::Rebooted,
            ..
        })
    ));
}

#[test]
fn an_unsealed_image_holding_the_slot_name_is_name_squatted_and_lookalikes_are_ignored() {
    let cloud = FakeCloud::new("123456789012");
    let web = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let db = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let config = config(&[]);
    let slot = rfc3339(SLOT);
    let lineage = |i: &InstanceId| {
        vec![
            (key::MANAGED_BY, "ami-lifecycle".to_owned()),
            (key::SOURCE_INSTANCE, i.to_string()),
            (key::SCHEDULE, "daily".to_owned()),
            (key::SLOT, slot.clone()),
        ]
    };
    let pairs = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };
    // a squatter on web's name; a look-alike of db's image under another name
    let web_tags = pairs(&lineage(&web));
    let web_ref: Vec<(&str, &str)> = web_tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let squatter = cloud.add_unsealed_image(
        "us-east-1",
        &image_name("ami-lifecycle", &web, &run()),
        SLOT,
        &web_ref,
    );
    let db_tags = pairs(&lineage(&db));
    let db_ref: Vec<(&str, &str)> = db_tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let lookalike = cloud.add_unsealed_image("us-east-1", "not-the-name", SLOT, &db_ref);
    let mut inv = inventory(&cloud);
    inv.unsealed = [squatter.clone(), lookalike].into_iter().collect();

    let plan = plan(&run(), &inv, &config, SLOT);
    assert_eq!(
        action(&plan, &web),
        Some(&Action::NameSquatted {
            image: squatter,
            name: image_name("ami-lifecycle", &web, &run()),
        })
    );
    assert!(
        matches!(action(&plan, &db), Some(Action::Create { .. })),
        "a look-alike cannot stand in for the real image: {plan:?}"
    );
}

#[test]
fn instance_store_and_transitional_instances_are_reported_not_attempted() {
    let cloud = FakeCloud::new("123456789012");
    let store = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    cloud.set_instance_store(&store);
    let going = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    cloud.set_instance_state(&going, InstanceState::ShuttingDown);
    let fine = cloud.add_instance("us-east-1", &[(key::SCHEDULE, "daily")]);
    let plan = plan(&run(), &inventory(&cloud), &config(&[]), SLOT);
    assert!(
        matches!(action(&plan, &store), Some(Action::Skip { reason }) if reason.contains("instance-store")),
        "{plan:?}"
    );
    assert!(
        matches!(action(&plan, &going), Some(Action::Skip { reason }) if reason.contains("shutting-down")),
        "{plan:?}"
    );
    assert!(matches!(action(&plan, &fine), Some(Action::Create { .. })));
}

#[test]
fn an_impaired_member_holds_its_group_back_then_stops_it_after_wave_max_wait() {
    // GIVEN a group of three, one at a time; wave 1 rebooted members[0]
    let cloud = FakeCloud::new("123456789012");
    let (members, _) = group_of(&cloud, 3);
    let config = config(&[("WAVE_MAX_WAIT", "30")]);
    let first = plan(&run(), &inventory(&cloud), &config, SLOT);
    make(&cloud, &first, SLOT);
    let health = |impaired: bool| {
        let mut inv = inventory(&cloud);
        inv.health.insert(
            members[0].clone(),
            crate::model::InstanceHealth {
                id: members[0].clone(),
                state: InstanceState::Running,
                healthy: !impaired,
                summary: format!(
                    "running, system ok, instance {}",
                    if impaired { "impaired" } else { "ok" }
                ),
            },
        );
        inv
    };

    // WHEN it is running but its instance status check is impaired
    let later = SLOT + time::Duration::minutes(5);
    let held = plan(&run(), &health(true), &config, later);
    // THEN the next wave waits for it
    assert!(created(&held).is_empty(), "{held:?}");
    assert!(
        matches!(action(&held, &members[1]), Some(Action::Wait { blocked_by, .. }) if blocked_by == &vec![members[0].clone()])
    );

    // WHEN it stays impaired past WAVE_MAX_WAIT, THEN the group stops: the rest fail, named
    let stopped = plan(
        &run(),
        &health(true),
        &config,
        SLOT + time::Duration::minutes(45),
    );
    match action(&stopped, &members[1]) {
        Some(Action::Fail { reason }) => {
            assert!(
                reason.contains("stopped")
                    && reason.contains("impaired")
                    && reason.contains("WAVE_MAX_WAIT"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(created(&stopped).is_empty());

    // AND when both checks are ok, the next wave goes
    let healthy = plan(&run(), &health(false), &config, later);
    assert_eq!(created(&healthy), vec![members[1].clone()]);
}
