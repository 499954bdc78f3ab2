//! The demo's settings and the small estate it seeds: instances in two regions with
//! different schedules, one opted out of reboot, two in one reboot group, one with a data
//! volume excluded, one quiesced through Systems Manager (`queue-1`, its /data frozen
//! around a no-reboot image), and the replica region's KMS key.

use crate::EmulatorClient;

pub const HOME: &str = "us-east-1";
pub const SECOND: &str = "eu-west-1";
pub const REPLICA: &str = "us-west-2";
pub const DEPLOYMENT: &str = "ami-lifecycle";
/// The account allowed to receive shares, and one outside the allow-list.
pub const ALLOWED_ACCOUNT: &str = "111122223333";
pub const STRANGER_ACCOUNT: &str = "999988887777";

/// Settings as the template would pass them (plus the continuation queue, made at start).
pub fn settings(
    continuation_queue: &str,
    schedule_expressions: &str,
) -> Vec<(&'static str, String)> {
    vec![
        // The schedule rules' expressions (from the template), for create-image's
        // reconcile; the demo fires rate() reconciles once a simulated day at 23:00, so a
        // missed 03:00 slot is caught up the same day.
        ("SCHEDULE_EXPRESSIONS", schedule_expressions.into()),
        ("CATCH_UP_WINDOW", "1440".into()),
        ("AMI_LIFECYCLE_NAME", DEPLOYMENT.into()),
        ("AWS_REGION", HOME.into()),
        ("AMI_LIFECYCLE_REGIONS", format!("{HOME},{SECOND}")),
        ("REPLICA_REGIONS", REPLICA.into()),
        ("REPLICA_KMS_KEYS", format!("{REPLICA}=alias/ami-replicas")),
        ("RETAIN", "count=3".into()),
        ("SHARE_ALLOWED", ALLOWED_ACCOUNT.into()),
        ("REBOOT_CONCURRENCY", "1".into()),
        ("CONTINUATION_QUEUE_URL", continuation_queue.into()),
        // Simulated days pass in seconds: the next reboot wave is checked at once.
        ("CONTINUATION_DELAY_SECONDS", "0".into()),
    ]
}

/// One seeded instance.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub name: &'static str,
    pub region: &'static str,
    pub id: String,
    pub schedules: &'static [&'static str],
    pub reboots: bool,
    /// `ami-lifecycle:method=quiesce`: its SSM Agent is online, its images are frozen,
    /// made without a reboot, thawed.
    pub quiesced: bool,
}

/// (name, region, tags, data devices)
type Spec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

const ESTATE: &[Spec] = &[
    ("web-1", HOME, &[("ami-lifecycle:schedule", "daily")], &[]),
    (
        "db-1",
        HOME,
        &[
            ("ami-lifecycle:schedule", "daily"),
            ("ami-lifecycle:reboot-group", "db"),
        ],
        &[],
    ),
    (
        "db-2",
        HOME,
        &[
            ("ami-lifecycle:schedule", "daily"),
            ("ami-lifecycle:reboot-group", "db"),
        ],
        &[],
    ),
    (
        "batch-1",
        HOME,
        &[
            ("ami-lifecycle:schedule", "daily"),
            ("ami-lifecycle:reboot", "false"),
        ],
        &[],
    ),
    (
        "files-1",
        HOME,
        &[
            ("ami-lifecycle:schedule", "weekly"),
            ("ami-lifecycle:exclude-devices", "/dev/sdg"),
        ],
        &["/dev/sdf", "/dev/sdg"],
    ),
    (
        "queue-1",
        HOME,
        &[
            ("ami-lifecycle:schedule", "daily"),
            ("ami-lifecycle:method", "quiesce"),
            ("ami-lifecycle:freeze-mounts", "/data"),
        ],
        &["/dev/sdf"],
    ),
    (
        "app-eu-1",
        SECOND,
        &[("ami-lifecycle:schedule", "daily")],
        &[],
    ),
];

/// Launches the estate (with the quiesced instance's SSM Agent) and creates the replica
/// region's key.
pub async fn seed(emu: &EmulatorClient) -> anyhow::Result<Vec<Seeded>> {
    emu.create_key(REPLICA, Some("alias/ami-replicas")).await?;
    let mut out = Vec::new();
    for (name, region, tags, devices) in ESTATE {
        let mut all_tags: Vec<(&str, &str)> = vec![("Name", name)];
        all_tags.extend_from_slice(tags);
        let id = emu.launch_instance(region, &all_tags, devices).await?;
        let schedules: &'static [&'static str] =
            if tags.contains(&("ami-lifecycle:schedule", "weekly")) {
                &["weekly"]
            } else {
                &["daily"]
            };
        let quiesced = tags.contains(&("ami-lifecycle:method", "quiesce"));
        let reboots = !tags.contains(&("ami-lifecycle:reboot", "false")) && !quiesced;
        if quiesced {
            // Managed by Systems Manager, agent online, commands succeeding.
            emu.set_ssm_agent(region, &id, serde_json::json!({"ping": "Online"}))
                .await?;
        }
        out.push(Seeded {
            name,
            region,
            id,
            schedules,
            reboots,
            quiesced,
        });
    }
    Ok(out)
}
