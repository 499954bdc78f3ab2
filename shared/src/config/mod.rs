//! The configuration contract: every setting, read from the environment once at start-up.
//!
//! [`Config::from_env`] validates everything and fails with a [`ConfigError`] naming the
//! variable, the value and what is accepted — a bad value stops start-up before any AWS
//! call. [`Config::from_lookup`] takes any lookup function so tests need no process env.

use std::collections::BTreeMap;

use crate::model::{AccountId, Grantee, KeyRef, Region, ScheduleName};
use crate::retention::RetentionRule;
use crate::share_target::{AllowList, ShareTarget};
use crate::tags::{self, truncate};

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
}

const BOOL: &str = "true or false";

fn err(
    variable: &'static str,
    value: &str,
    problem: impl Into<String>,
    accepted: &'static str,
) -> ConfigError {
    ConfigError {
        variable,
        value: truncate(value, 80),
        problem: problem.into(),
        accepted,
    }
}

fn parse_bool(
    variable: &'static str,
    value: Option<&str>,
    default: bool,
) -> Result<bool, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(err(variable, v, "not a boolean", BOOL)),
        },
    }
}

fn parse_u32(
    variable: &'static str,
    value: Option<&str>,
    default: u32,
    min: u32,
    max: u32,
    accepted: &'static str,
) -> Result<u32, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(n) => Err(err(variable, v, format!("{n} is out of range"), accepted)),
            Err(_) => Err(err(variable, v, "not a whole number", accepted)),
        },
    }
}

fn parse_regions(variable: &'static str, value: &str) -> Result<Vec<Region>, ConfigError> {
    tags::parse_regions(variable, value).map_err(|e| {
        err(
            variable,
            value,
            e.problem,
            "comma-separated region names, e.g. us-east-1,eu-west-1",
        )
    })
}

impl Config {
    /// Reads the process environment. The home region (`AWS_REGION`, else
    /// `AWS_DEFAULT_REGION`) is the default for `AMI_LIFECYCLE_REGIONS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`; see the module docs.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());

        let deployment = get("AMI_LIFECYCLE_NAME").unwrap_or_else(|| "ami-lifecycle".to_owned());
        let deployment_ok = !deployment.is_empty()
            && deployment.len() <= 32
            && deployment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !deployment.starts_with('-');
        if !deployment_ok {
            return Err(err(
                "AMI_LIFECYCLE_NAME",
                &deployment,
                "not a deployment name",
                "1-32 lowercase letters, digits and '-', not starting with '-'",
            ));
        }

        // Named after the variable that held it, so an error points at the right one.
        let home = get("AWS_REGION")
            .map(|v| ("AWS_REGION", v))
            .or_else(|| get("AWS_DEFAULT_REGION").map(|v| ("AWS_DEFAULT_REGION", v)));
        let regions = match get("AMI_LIFECYCLE_REGIONS") {
            Some(v) => parse_regions("AMI_LIFECYCLE_REGIONS", &v)?,
            None => match &home {
                Some((variable, h)) => parse_regions(variable, h)?,
                None => Vec::new(),
            },
        };
        if regions.is_empty() {
            return Err(err(
                "AMI_LIFECYCLE_REGIONS",
                "",
                "no region to manage (and AWS_REGION is not set)",
                "comma-separated region names, e.g. us-east-1,eu-west-1",
            ));
        }

        let replica_regions = match get("REPLICA_REGIONS") {
            Some(v) => parse_regions("REPLICA_REGIONS", &v)?,
            None => Vec::new(),
        };

        let mut replica_keys = BTreeMap::new();
        if let Some(v) = get("REPLICA_KMS_KEYS") {
            const ACCEPTED: &str = "region=key-arn-or-alias pairs separated by commas, e.g. eu-west-1=alias/ami-replicas";
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (region, key) = pair.split_once('=').ok_or_else(|| {
                    err(
                        "REPLICA_KMS_KEYS",
                        &v,
                        format!("{:?} is not region=key", truncate(pair, 80)),
                        ACCEPTED,
                    )
                })?;
                let (region, key) = (region.trim(), key.trim());
                if !tags::is_region_name(region) {
                    return Err(err(
                        "REPLICA_KMS_KEYS",
                        &v,
                        format!("{:?} is not a region name", truncate(region, 80)),
                        ACCEPTED,
                    ));
                }
                let key_ok = key.starts_with("alias/")
                    || key.starts_with("arn:aws")
                    || (key.len() == 36 && key.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
                    || key.starts_with("mrk-");
                if !key_ok {
                    return Err(err(
                        "REPLICA_KMS_KEYS",
                        &v,
                        format!(
                            "{:?} is not a key ARN, key id or alias/NAME",
                            truncate(key, 80)
                        ),
                        ACCEPTED,
                    ));
                }
                if replica_keys
                    .insert(Region::new(region), KeyRef::new(key))
                    .is_some()
                {
                    return Err(err(
                        "REPLICA_KMS_KEYS",
                        &v,
                        format!("region {} is given twice", truncate(region, 80)),
                        ACCEPTED,
                    ));
                }
            }
        }

        let retain = match get("RETAIN") {
            Some(v) => RetentionRule::parse(&v).map_err(|e| {
                err(
                    "RETAIN",
                    &v,
                    e.problem,
                    "count=N, days=N, count=N,days=N, or daily=N,weekly=N,monthly=N",
                )
            })?,
            None => RetentionRule {
                count: Some(7),
                ..RetentionRule::default()
            },
        };

        let share_allowed = match get("SHARE_ALLOWED") {
            Some(v) => AllowList::parse(&v).map_err(|p| {
                err(
                    "SHARE_ALLOWED",
                    &v,
                    p,
                    "account ids, organization ARNs and OU ARNs separated by commas",
                )
            })?,
            None => AllowList::default(),
        };

        let mut share_groups = BTreeMap::new();
        if let Some(v) = get("SHARE_GROUPS") {
            const ACCEPTED: &str = "name=target target;name2=target, e.g. prod=111122223333 444455556666;dev=777788889999";
            for def in v.split(';').map(str::trim).filter(|d| !d.is_empty()) {
                let (name, members) = def.split_once('=').ok_or_else(|| {
                    err(
                        "SHARE_GROUPS",
                        &v,
                        format!("{:?} is not name=targets", truncate(def, 80)),
                        ACCEPTED,
                    )
                })?;
                let name = name.trim();
                if !matches!(
                    ShareTarget::parse(&format!("group:{name}")),
                    Some(ShareTarget::Group(_))
                ) {
                    return Err(err(
                        "SHARE_GROUPS",
                        &v,
                        format!("{:?} is not a group name", truncate(name, 80)),
                        ACCEPTED,
                    ));
                }
                let mut grantees = Vec::new();
                for m in tags::split_list(members) {
                    match ShareTarget::parse(m) {
                        Some(ShareTarget::Grantee(g)) if g != Grantee::Public => grantees.push(g),
                        _ => {
                            return Err(err(
                                "SHARE_GROUPS",
                                &v,
                                format!(
                                    "{:?} in group {} is not an account id, organization or OU ARN",
                                    truncate(m, 80),
                                    truncate(name, 80)
                                ),
                                ACCEPTED,
                            ))
                        }
                    }
                }
                share_groups.insert(name.to_owned(), grantees);
            }
        }

        let schedules = match get("SCHEDULES") {
            Some(v) => tags::parse_schedules("SCHEDULES", &v).map_err(|e| {
                err(
                    "SCHEDULES",
                    &v,
                    e.problem,
                    "schedule names separated by commas, e.g. daily,weekly",
                )
            })?,
            None => vec![ScheduleName::new("daily"), ScheduleName::new("weekly")],
        };

        let copy_instance_tags = get("COPY_INSTANCE_TAGS")
            .map(|v| tags::split_list(&v).map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default();
        if let Some(bad) = copy_instance_tags
            .iter()
            .find(|k| k.starts_with("aws:") || k.len() > 128)
        {
            return Err(err(
                "COPY_INSTANCE_TAGS",
                bad,
                "tag keys starting with aws: are reserved and keys are at most 128 characters",
                "instance tag keys separated by commas",
            ));
        }

        let price_raw = get("PRICE_PER_GIB_MONTH");
        let price_per_gib_month = match price_raw.as_deref() {
            None => 0.05,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && p >= 0.0 => p,
                _ => {
                    return Err(err(
                        "PRICE_PER_GIB_MONTH",
                        v,
                        "not a non-negative number",
                        "a price in USD per GiB-month, e.g. 0.05",
                    ))
                }
            },
        };

        let adopt_from = match get("ADOPT_FROM") {
            Some(v) => tags::split_list(&v)
                .map(|a| {
                    AccountId::parse(a).ok_or_else(|| {
                        err(
                            "ADOPT_FROM",
                            &v,
                            format!("{:?} is not a 12-digit account id", truncate(a, 80)),
                            "12-digit account ids separated by commas",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };

        Ok(Config {
            deployment,
            regions,
            replica_regions,
            replica_keys,
            retain,
            share_allowed,
            share_groups,
            allow_public: parse_bool("ALLOW_PUBLIC", get("ALLOW_PUBLIC").as_deref(), false)?,
            share_replicas: parse_bool("SHARE_REPLICAS", get("SHARE_REPLICAS").as_deref(), true)?,
            dry_run: parse_bool("DRY_RUN", get("DRY_RUN").as_deref(), false)?,
            schedules,
            reboot_concurrency: parse_u32(
                "REBOOT_CONCURRENCY",
                get("REBOOT_CONCURRENCY").as_deref(),
                1,
                1,
                100,
                "a whole number from 1 to 100",
            )?,
            copy_instance_tags,
            keep_if_launched_within_days: parse_u32(
                "KEEP_IF_LAUNCHED_WITHIN",
                get("KEEP_IF_LAUNCHED_WITHIN").as_deref(),
                14,
                0,
                3650,
                "days, a whole number from 0 to 3650",
            )?,
            cleanup_shared: parse_bool("CLEANUP_SHARED", get("CLEANUP_SHARED").as_deref(), false)?,
            deprecation_grace_days: parse_u32(
                "DEPRECATION_GRACE",
                get("DEPRECATION_GRACE").as_deref(),
                0,
                0,
                3650,
                "days, a whole number from 0 to 3650",
            )?,
            delete_orphans: parse_bool("DELETE_ORPHANS", get("DELETE_ORPHANS").as_deref(), false)?,
            price_per_gib_month,
            adopt_from,
            report_bus: get("REPORT_EVENT_BUS").unwrap_or_else(|| "default".to_owned()),
            continuation_queue: get("CONTINUATION_QUEUE_URL"),
            continuation_delay_seconds: parse_u32(
                "CONTINUATION_DELAY_SECONDS",
                get("CONTINUATION_DELAY_SECONDS").as_deref(),
                60,
                0,
                900,
                "seconds, a whole number from 0 to 900 (the SQS delay limit)",
            )?,
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
}
