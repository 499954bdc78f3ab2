//! The configuration contract: every setting, read from the environment once at start-up.
//!
//! [`Config::from_env`] validates everything and fails with a [`ConfigError`] naming the
//! variable, the value and what is accepted — a bad value stops start-up before any AWS
//! call. [`Config::from_lookup`] takes any lookup function so tests need no process env.
//!
//! [`Config`] is one flat record every runner reads; it is parsed in sections, one file
//! each: [`common`] (deployment name, regions, retention, dry run, report bus),
//! [`create`], [`replicate`], [`cleanup`], [`share`], `publish` and `accounts` (issue 18). Settings that feed a derived
//! value with an AWS limit (the deployment name, schedule names, copied tag keys) are
//! checked against that limit here, so a valid configuration never yields a request AWS
//! refuses.

use std::collections::BTreeMap;

use crate::accounts::{AccountSelector, ExternalId};
use crate::model::{AccountId, Grantee, KeyRef, Region, ScheduleName};
use crate::retention::RetentionRule;
use crate::share_target::AllowList;

mod accounts;
mod cleanup;
pub mod common;
pub mod create;
mod fanout;
mod parse;
mod publish;
mod quiesce;
mod replicate;
mod share;

use self::accounts::AccountSettings;
use self::cleanup::CleanupSettings;
use self::common::CommonSettings;
use self::create::CreateSettings;
use self::fanout::FanOutSettings;
use self::publish::PublishSettings;
pub use self::publish::CONSISTENCY_LEVELS;
pub use self::quiesce::QuiesceFallback;
use self::quiesce::QuiesceSettings;
use self::replicate::ReplicateSettings;
use self::share::ShareSettings;

/// A setting with a value that is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {problem}. Accepted: {accepted}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub problem: String,
    pub accepted: &'static str,
}

/// Every setting of the suite. The same for each function and for `amictl`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `AMI_LIFECYCLE_NAME`: the value of `ami-lifecycle:managed-by` on what the suite makes.
    pub deployment: String,
    /// `AMI_LIFECYCLE_REGIONS`: regions whose instances and images are managed.
    pub regions: Vec<Region>,
    /// `REPLICA_REGIONS`: default replication destinations.
    pub replica_regions: Vec<Region>,
    /// `REPLICA_KMS_KEYS`: the key to re-encrypt with, per destination region.
    pub replica_keys: BTreeMap<Region, KeyRef>,
    /// `RETAIN`: default retention.
    pub retain: RetentionRule,
    /// `RETAIN_BY_REGION` (`eu-west-1=count=3;us-west-2=days=90`): retention per region,
    /// over `RETAIN` there (a lineage's own tags still come first: [`crate::lineage`]).
    pub retain_by_region: BTreeMap<Region, RetentionRule>,
    /// `COPY_COMPLETION_MINUTES` (15-minute steps, 15–2880): time-based copies
    /// (CopyImage's `SnapshotCopyCompletionDurationMinutes`); a copy still pending past it
    /// is reported `late`. Unset: best-effort copies.
    pub copy_completion_minutes: Option<u32>,
    /// `SHARE_ALLOWED`: who may receive shared images; empty = no sharing.
    pub share_allowed: AllowList,
    /// `SHARE_GROUPS`: `name=acct acct;name2=…`, used as `group:name` in share-with.
    pub share_groups: BTreeMap<String, Vec<Grantee>>,
    /// `ALLOW_PUBLIC`: whether `all` may ever be honoured.
    pub allow_public: bool,
    /// `SHARE_REPLICAS`: apply the same share targets to the image's replicas.
    pub share_replicas: bool,
    /// `DRY_RUN`: plan and report, change nothing.
    pub dry_run: bool,
    /// `SCHEDULES`: schedule names create-image knows.
    pub schedules: Vec<ScheduleName>,
    /// `REBOOT_CONCURRENCY`: members of one reboot group imaged at once.
    pub reboot_concurrency: u32,
    /// `COPY_INSTANCE_TAGS`: extra instance tag keys copied onto images.
    pub copy_instance_tags: Vec<String>,
    /// `KEEP_IF_LAUNCHED_WITHIN`: days; an image launched more recently is kept.
    pub keep_if_launched_within_days: u32,
    /// `CLEANUP_SHARED`: whether shared images may be deleted.
    pub cleanup_shared: bool,
    /// `DEPRECATION_GRACE`: days between deprecation and deregistration (0 = at once).
    pub deprecation_grace_days: u32,
    /// `DISABLE_GRACE`: days an image past retention stays disabled (DisableImage: hidden,
    /// unshared, restorable with `amictl restore`) before it is deregistered; 0 = no
    /// disabled stage.
    pub disable_grace_days: u32,
    /// `DELETE_ORPHANS`: delete snapshots tagged as ours whose image is gone.
    pub delete_orphans: bool,
    /// `PRICE_PER_GIB_MONTH`: snapshot storage price used for the saving estimate.
    pub price_per_gib_month: f64,
    /// `ADOPT_FROM`: accounts whose images shared with us are copied into this account.
    pub adopt_from: Vec<AccountId>,
    /// `REPORT_EVENT_BUS`: where run reports are published.
    pub report_bus: String,
    /// `CONTINUATION_QUEUE_URL`: SQS queue that continues create-image's reboot waves.
    pub continuation_queue: Option<String>,
    /// `CONTINUATION_DELAY_SECONDS`: how long a reboot wave is given before the next check.
    pub continuation_delay_seconds: u32,
    /// `SEAL_KEY`: the deployment's KMS HMAC key (ARN, id or alias), which seals what the
    /// suite makes ([`crate::seal`]). Unset: nothing can be sealed or verified, so nothing
    /// is created, deleted or shared (every such item says so).
    pub seal_key: Option<String>,
    /// `REBOOT_MIN_INTERVAL` (minutes, default 60): an instance is never rebooted again
    /// sooner than this after an image of it that rebooted it; such a request images it
    /// without a reboot.
    pub reboot_min_interval_minutes: u32,
    /// `SLOT_WINDOW` (minutes, default 60): how old the slot of a direct invocation may be
    /// (an operator's `force` aside).
    pub slot_window_minutes: u32,
    /// `SCHEDULE_EXPRESSIONS` (`daily=cron(0 3 * * ? *);weekly=…`): each schedule's
    /// expression, as its rule has it, for create-image's reconcile (missed slots, stale
    /// lineages). A schedule without one is not caught up.
    pub schedule_expressions: BTreeMap<ScheduleName, crate::schedule::ScheduleExpression>,
    /// `CATCH_UP_WINDOW` (minutes): how old a missed slot may be and still be made; unset,
    /// half each schedule's period.
    pub catch_up_window_minutes: Option<u32>,
    /// `STALE_GRACE` (minutes, default 60): a lineage whose newest image is older than its
    /// schedule's period plus this is reported `stale`.
    pub stale_grace_minutes: u32,
    /// `WAVE_MAX_WAIT` (minutes, default 180): how long a reboot group waits for a member
    /// of the previous wave to be running with both status checks ok before the group
    /// stops for the slot (reported failed).
    pub wave_max_wait_minutes: u32,
    /// `PUBLISH_CONSISTENCY` (default `rebooted,stopped,application-consistent`): the
    /// `ami-lifecycle:consistency` values an image must carry to be published as a
    /// lineage's latest image.
    pub publish_consistency: Vec<String>,
    /// `PUBLISHED_KEEP` (default 3): cleanup never deletes an image that is one of the
    /// last this many values of a latest-image parameter (the current one always).
    pub published_keep: u32,
    /// `QUIESCE_TIMEOUT` (seconds, default 60): how long a quiesce freeze may take.
    pub quiesce_timeout_seconds: u32,
    /// `QUIESCE_MAX_FREEZE` (seconds, default 120): the shipped document's watchdog thaws by
    /// itself this long after the freeze, thaw command or not.
    pub quiesce_max_freeze_seconds: u32,
    /// `QUIESCE_FALLBACK` (default `skip`): what an instance that cannot be quiesced gets.
    pub quiesce_fallback: QuiesceFallback,
    /// `QUIESCE_CONCURRENCY` (default 5): instances quiesced at once.
    pub quiesce_concurrency: u32,
    /// `QUIESCE_LINUX_DOCUMENT` (default `<deployment>-quiesce-linux`): the shipped document.
    pub quiesce_linux_document: String,
    /// `AMI_LIFECYCLE_ACCOUNTS` (issue 18): the accounts acted on ([`crate::accounts`]);
    /// empty (unset): this deployment's own account only, with no STS or Organizations call.
    pub accounts: Vec<AccountSelector>,
    /// `SPOKE_EXTERNAL_ID`: the external id the spoke roles' trust requires; needed as soon
    /// as another account can be selected.
    pub spoke_external_id: Option<ExternalId>,
    /// `WORK_QUEUE_URL`: this function's own work queue; set (with accounts), scheduled runs
    /// fan out one work item per account and region ([`crate::fanout`]).
    pub work_queue: Option<String>,
    /// `RUN_LEDGER_TABLE`: the DynamoDB table recording each fanned-out run's items.
    pub run_ledger: Option<String>,
    /// `WORK_MAX_RECEIVES` (default 3): deliveries of a work item before it is recorded as
    /// it stands (the queue's `maxReceiveCount`).
    pub work_max_receives: u32,
}

impl Config {
    /// Reads the process environment. The home region (`AWS_REGION`, else
    /// `AWS_DEFAULT_REGION`) is the default for `AMI_LIFECYCLE_REGIONS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, one section at a time; see the module docs.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = move |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let common = CommonSettings::from_lookup(&get)?;
        let replicate = ReplicateSettings::from_lookup(&get, &common.regions)?;
        let share = ShareSettings::from_lookup(&get)?;
        let create = CreateSettings::from_lookup(&get, &common.deployment)?;
        let cleanup = CleanupSettings::from_lookup(&get)?;
        let publish = PublishSettings::from_lookup(&get)?;
        let quiesce = QuiesceSettings::from_lookup(&get, &common.deployment)?;
        let accounts = AccountSettings::from_lookup(&get)?;
        let fanout = FanOutSettings::from_lookup(&get)?;
        Ok(Config {
            deployment: common.deployment,
            regions: common.regions,
            replica_regions: replicate.replica_regions,
            replica_keys: replicate.replica_keys,
            retain: common.retain,
            retain_by_region: replicate.retain_by_region,
            copy_completion_minutes: replicate.copy_completion_minutes,
            share_allowed: share.share_allowed,
            share_groups: share.share_groups,
            allow_public: share.allow_public,
            share_replicas: share.share_replicas,
            dry_run: common.dry_run,
            schedules: create.schedules,
            reboot_concurrency: create.reboot_concurrency,
            copy_instance_tags: create.copy_instance_tags,
            keep_if_launched_within_days: cleanup.keep_if_launched_within_days,
            cleanup_shared: cleanup.cleanup_shared,
            deprecation_grace_days: cleanup.deprecation_grace_days,
            disable_grace_days: cleanup.disable_grace_days,
            delete_orphans: cleanup.delete_orphans,
            price_per_gib_month: cleanup.price_per_gib_month,
            adopt_from: replicate.adopt_from,
            report_bus: common.report_bus,
            continuation_queue: create.continuation_queue,
            continuation_delay_seconds: create.continuation_delay_seconds,
            seal_key: common.seal_key,
            reboot_min_interval_minutes: create.reboot_min_interval_minutes,
            slot_window_minutes: create.slot_window_minutes,
            schedule_expressions: create.schedule_expressions,
            catch_up_window_minutes: create.catch_up_window_minutes,
            stale_grace_minutes: create.stale_grace_minutes,
            wave_max_wait_minutes: create.wave_max_wait_minutes,
            publish_consistency: publish.publish_consistency,
            published_keep: publish.published_keep,
            quiesce_timeout_seconds: quiesce.timeout_seconds,
            quiesce_max_freeze_seconds: quiesce.max_freeze_seconds,
            quiesce_fallback: quiesce.fallback,
            quiesce_concurrency: quiesce.concurrency,
            quiesce_linux_document: quiesce.linux_document,
            accounts: accounts.accounts,
            spoke_external_id: accounts.spoke_external_id,
            work_queue: fanout.work_queue,
            run_ledger: fanout.run_ledger,
            work_max_receives: fanout.work_max_receives,
        })
    }

    /// Every region the suite touches: managed regions, then replication destinations.
    pub fn all_regions(&self) -> Vec<Region> {
        let mut out = self.regions.clone();
        for r in &self.replica_regions {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }

    /// A config for tests and examples: one region, defaults otherwise.
    pub fn for_region(region: &str) -> Self {
        Self::from_lookup(|k| (k == "AWS_REGION").then(|| region.to_owned()))
            .unwrap_or_else(|e| panic!("default config must parse: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() -> Result<(), ConfigError> {
        let c = config(&[("AWS_REGION", "eu-west-1")])?;
        assert_eq!(c.deployment, "ami-lifecycle");
        assert_eq!(c.regions, vec![Region::new("eu-west-1")]);
        assert_eq!(c.retain.count, Some(7));
        assert!(c.share_allowed.is_empty());
        assert!(!c.dry_run && !c.allow_public && c.share_replicas);
        assert_eq!(c.reboot_concurrency, 1);
        assert_eq!(c.report_bus, "default");
        Ok(())
    }

    #[test]
    fn full_settings_parse() -> Result<(), ConfigError> {
        let c = config(&[
            ("AMI_LIFECYCLE_NAME", "prod-amis"),
            ("AMI_LIFECYCLE_REGIONS", "us-east-1,eu-west-1"),
            ("REPLICA_REGIONS", "us-west-2 eu-west-1"),
            (
                "REPLICA_KMS_KEYS",
                "us-west-2=alias/replicas, eu-west-1=arn:aws:kms:eu-west-1:111122223333:key/abc",
            ),
            ("RETAIN", "daily=7,weekly=4"),
            ("SHARE_ALLOWED", "111122223333"),
            ("SHARE_GROUPS", "prod=111122223333 444455556666"),
            ("DRY_RUN", "TRUE"),
            ("ADOPT_FROM", "444455556666"),
        ])?;
        assert_eq!(c.all_regions().len(), 3);
        assert_eq!(
            c.replica_keys.get(&Region::new("us-west-2")),
            Some(&KeyRef::new("alias/replicas"))
        );
        assert_eq!(c.retain.weekly, Some(4));
        assert_eq!(c.share_groups.get("prod").map(Vec::len), Some(2));
        assert!(c.dry_run);
        Ok(())
    }

    fn check_rejects(pairs: &[(&str, &str)], variable: &str, words: &str) {
        let mut with_region = vec![("AWS_REGION", "us-east-1")];
        with_region.extend_from_slice(pairs);
        match config(&with_region) {
            Ok(c) => panic!("{pairs:?} accepted as {c:?}"),
            Err(e) => {
                assert_eq!(e.variable, variable);
                let text = e.to_string();
                assert!(text.contains(words), "{text:?} lacks {words:?}");
                assert!(text.contains("Accepted:"), "{text}");
            }
        }
    }

    #[test]
    fn bad_values_name_variable_value_and_what_is_accepted() {
        check_rejects(
            &[("AMI_LIFECYCLE_NAME", "Prod AMIs")],
            "AMI_LIFECYCLE_NAME",
            "\"Prod AMIs\"",
        );
        check_rejects(
            &[("AMI_LIFECYCLE_REGIONS", "us-east-1,moon")],
            "AMI_LIFECYCLE_REGIONS",
            "\"moon\" is not a region name",
        );
        check_rejects(
            &[("REPLICA_KMS_KEYS", "us-west-2")],
            "REPLICA_KMS_KEYS",
            "is not region=key",
        );
        check_rejects(
            &[("REPLICA_KMS_KEYS", "us-west-2=mykey")],
            "REPLICA_KMS_KEYS",
            "not a key ARN",
        );
        check_rejects(&[("RETAIN", "count=zero")], "RETAIN", "not a whole number");
        check_rejects(&[("SHARE_ALLOWED", "all")], "SHARE_ALLOWED", "ALLOW_PUBLIC");
        check_rejects(
            &[("SHARE_GROUPS", "prod=all")],
            "SHARE_GROUPS",
            "in group prod",
        );
        check_rejects(&[("DRY_RUN", "perhaps")], "DRY_RUN", "not a boolean");
        check_rejects(
            &[("REBOOT_CONCURRENCY", "0")],
            "REBOOT_CONCURRENCY",
            "out of range",
        );
        check_rejects(&[("ADOPT_FROM", "12")], "ADOPT_FROM", "12-digit");
        check_rejects(
            &[("PRICE_PER_GIB_MONTH", "-1")],
            "PRICE_PER_GIB_MONTH",
            "non-negative",
        );
        check_rejects(
            &[("CONTINUATION_DELAY_SECONDS", "901")],
            "CONTINUATION_DELAY_SECONDS",
            "out of range",
        );
    }

    #[test]
    fn no_region_at_all_is_an_error() {
        match config(&[]) {
            Ok(c) => panic!("accepted {c:?}"),
            Err(e) => assert_eq!(e.variable, "AMI_LIFECYCLE_REGIONS"),
        }
    }

    /// A deployment name of the maximum length, a schedule name as long as its rule
    /// name allows, and the most copied tag keys.
    fn longest() -> Result<Config, ConfigError> {
        let deployment = "d".repeat(common::DEPLOYMENT_MAX);
        let schedule = "s".repeat(create::RULE_NAME_MAX - deployment.len() - "-schedule-".len());
        let tags: Vec<String> = (0..create::COPIED_TAGS_MAX)
            .map(|i| format!("{i:0>128}"))
            .collect();
        config(&[
            ("AWS_REGION", "us-east-1"),
            ("AMI_LIFECYCLE_NAME", &deployment),
            ("SCHEDULES", &schedule),
            ("COPY_INSTANCE_TAGS", &tags.join(",")),
        ])
    }

    #[test]
    fn the_longest_accepted_values_are_accepted() -> Result<(), ConfigError> {
        let c = longest()?;
        assert_eq!(c.deployment.len(), 32);
        assert_eq!(
            create::schedule_rule_name(&c.deployment, c.schedules[0].as_str()).len(),
            64
        );
        assert_eq!(c.copy_instance_tags.len(), 30);
        Ok(())
    }

    #[test]
    fn one_character_or_tag_more_is_refused_with_the_limit_and_the_fix() {
        check_rejects(
            &[("AMI_LIFECYCLE_NAME", &"d".repeat(33))],
            "AMI_LIFECYCLE_NAME",
            "33 characters, more than 32",
        );
        check_rejects(
            &[
                ("AMI_LIFECYCLE_NAME", &"d".repeat(32)),
                ("SCHEDULES", &format!("daily,{}", "s".repeat(23))),
            ],
            "SCHEDULES",
            "is 65 characters, EventBridge allows 64; shorten the schedule name to 22 characters",
        );
        let tags: Vec<String> = (0..31).map(|i| format!("k{i}")).collect();
        check_rejects(
            &[("COPY_INSTANCE_TAGS", &tags.join(","))],
            "COPY_INSTANCE_TAGS",
            "31 keys",
        );
        check_rejects(
            &[("COPY_INSTANCE_TAGS", &"k".repeat(129))],
            "COPY_INSTANCE_TAGS",
            "at most 128 characters",
        );
    }

    /// AMI names: 3–128 characters of letters, digits and `()[] ./-'@_`.
    fn is_ami_name(name: &str) -> bool {
        (3..=128).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c))
    }

    #[test]
    fn names_derived_from_the_longest_settings_fit_aws_limits() -> Result<(), ConfigError> {
        use crate::create::{plan::image_name, ScheduleRun};
        use crate::model::{AccountId, ImageId, InstanceId};

        let c = longest()?;
        let run = ScheduleRun::new(
            c.schedules[0].clone(),
            time::macros::datetime!(2026-12-31 23:59 UTC),
        );
        // The longest instance id EC2 issues (17 hex digits).
        let name = image_name(&c.deployment, &InstanceId::new("i-0123456789abcdef0"), &run);
        assert!(is_ami_name(&name), "{name:?} ({} characters)", name.len());

        // KMS CreateGrant Name: 1–256 of [a-zA-Z0-9:/_-].
        let Some(account) = AccountId::parse("111122223333") else {
            panic!("a 12-digit account id parses");
        };
        let grant =
            crate::share::plan::grant_name(&ImageId::new("ami-0123456789abcdef0"), &account);
        assert!(grant.len() <= 256);
        assert!(grant
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ":/_-".contains(ch)));

        // EC2 ClientToken: at most 64 ASCII characters.
        let token = crate::replicate::plan::client_token(
            &c.deployment,
            &ImageId::new("ami-0123456789abcdef0"),
            &Region::new("ap-southeast-4"),
            u32::MAX,
        );
        assert!(token.len() <= 64 && token.is_ascii(), "{token}");

        // Every tag value the suite derives from settings: at most 256 characters.
        for value in [&c.deployment, c.schedules[0].as_str()] {
            assert!(value.chars().count() <= 256);
        }
        Ok(())
    }
}
