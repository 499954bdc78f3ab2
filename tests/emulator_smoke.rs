//! The harness and the adapters against the emulator: the foundation every function's
//! integration tests stand on.

use ami_core::model::Region;
use ami_core::ports::{all_images, Cloud, ImageQuery, NewImage};
use ami_core::tags::key;
use ami_sim::Emulator;
use serde_json::json;

#[tokio::test]
async fn adapters_create_list_and_page_images_on_the_emulator() -> anyhow::Result<()> {
    // GIVEN a running instance
    let emu = Emulator::start()?;
    let config = emu.config(&[]);
    let cloud = emu.cloud(&config);
    let region = Region::new("us-east-1");
    let instance = emu
        .launch_instance("us-east-1", &[(key::SCHEDULE, "daily")], &["/dev/sdf"])
        .await?;

    // WHEN the adapter lists scheduled instances and creates seven images of it
    let ec2 = cloud.ec2(&region);
    let scheduled = ec2.scheduled_instances().await?;
    assert_eq!(scheduled.len(), 1);
    assert_eq!(
        scheduled[0].volumes.len(),
        2,
        "root and data volume: {:?}",
        scheduled[0].volumes
    );
    for n in 0..7 {
        let tags = [(key::MANAGED_BY.to_owned(), "ami-lifecycle".to_owned())]
            .into_iter()
            .collect();
        ec2.create_image(&NewImage {
            instance: scheduled[0].id.clone(),
            name: format!("smoke/{instance}/{n}"),
            description: "smoke".into(),
            no_reboot: false,
            exclude_devices: vec![],
            image_tags: tags,
            snapshot_tags: Default::default(),
        })
        .await?;
    }

    // THEN paging with a page size of 6 (EC2's minimum is 6) returns all seven, each with both disks
    let query = ImageQuery {
        owned_by_self: true,
        tag: Some((key::MANAGED_BY.into(), "ami-lifecycle".into())),
        page_size: Some(6),
        ..ImageQuery::default()
    };
    emu.control("POST", "/_emulator/counters/reset", None)?;
    let images = all_images(ec2.as_ref(), &query).await?;
    assert_eq!(images.len(), 7);
    assert!(images.iter().all(|i| i.disks.len() == 2), "{images:?}");
    let calls = emu.counters()?;
    assert_eq!(
        calls["calls"]["us-east-1"]["DescribeImages"], 2,
        "two pages: {calls}"
    );
    Ok(())
}

#[tokio::test]
async fn control_api_reports_reboots_and_resets() -> anyhow::Result<()> {
    let emu = Emulator::start()?;
    emu.configure(json!({"pending_seconds": 0}))?;
    assert_eq!(emu.reboots()?, json!({}));
    emu.control("POST", "/_emulator/reset", None)?;
    Ok(())
}
