//! replicate's settings: default destinations, the key per destination, the accounts
//! whose shared images are adopted, retention per region (`RETAIN_BY_REGION`, read by
//! cleanup and status too, through [`crate::lineage`]) and the copy deadline
//! (`COPY_COMPLETION_MINUTES`).

use std::collections::BTreeMap;

use super::parse::{err, parse_regions, Lookup};
use super::ConfigError;
use crate::lineage::{parse_rules_by_region, RULES_BY_REGION_FORM};
use crate::model::{AccountId, KeyRef, Region};
use crate::retention::RetentionRule;
use crate::tags::{self, truncate};

pub(super) struct ReplicateSettings {
    pub replica_regions: Vec<Region>,
    pub replica_keys: BTreeMap<Region, KeyRef>,
    pub adopt_from: Vec<AccountId>,
    pub retain_by_region: BTreeMap<Region, RetentionRule>,
    pub copy_completion_minutes: Option<u32>,
}

/// `COPY_COMPLETION_MINUTES` limits: CopyImage's `SnapshotCopyCompletionDurationMinutes`
/// is a duration in 15-minute increments, from 15 minutes to 48 hours (EBS time-based copies).
pub const COPY_COMPLETION_STEP: u32 = 15;
pub const COPY_COMPLETION_MAX: u32 = 2880;

impl ReplicateSettings {
    /// `managed`: `AMI_LIFECYCLE_REGIONS` (already parsed); with `REPLICA_REGIONS`, the
    /// regions `RETAIN_BY_REGION` may name.
    pub(super) fn from_lookup(get: &Lookup<'_>, managed: &[Region]) -> Result<Self, ConfigError> {
        let replica_regions = match get("REPLICA_REGIONS") {
            Some(v) => parse_regions("REPLICA_REGIONS", &v)?,
            None => Vec::new(),
        };
        let retain_by_region = match get("RETAIN_BY_REGION") {
            Some(v) => retain_by_region(&v, managed, &replica_regions)?,
            None => BTreeMap::new(),
        };
        let copy_completion_minutes = match get("COPY_COMPLETION_MINUTES") {
            Some(v) => Some(copy_completion(&v)?),
            None => None,
        };
        let replica_keys = match get("REPLICA_KMS_KEYS") {
            Some(v) => replica_keys(&v)?,
            None => BTreeMap::new(),
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
        Ok(Self {
            replica_regions,
            replica_keys,
            adopt_from,
            retain_by_region,
            copy_completion_minutes,
        })
    }
}

/// `RETAIN_BY_REGION`: `region=rule;…`, each region one the deployment manages.
fn retain_by_region(
    v: &str,
    managed: &[Region],
    replica_regions: &[Region],
) -> Result<BTreeMap<Region, RetentionRule>, ConfigError> {
    let rules = parse_rules_by_region(v)
        .map_err(|e| err("RETAIN_BY_REGION", v, e.problem, RULES_BY_REGION_FORM))?;
    if let Some(r) = rules
        .keys()
        .find(|r| !managed.contains(r) && !replica_regions.contains(r))
    {
        return Err(err(
            "RETAIN_BY_REGION",
            v,
            format!("{r} is neither in AMI_LIFECYCLE_REGIONS nor in REPLICA_REGIONS: the deployment keeps no images there (add it there, or remove its entry)"),
            RULES_BY_REGION_FORM,
        ));
    }
    Ok(rules)
}

/// `COPY_COMPLETION_MINUTES`: a multiple of 15 from 15 to 2880.
fn copy_completion(v: &str) -> Result<u32, ConfigError> {
    const ACCEPTED: &str =
        "minutes in 15-minute steps from 15 to 2880 (48 hours), e.g. 120; unset for best-effort copies";
    let n: u32 = v.trim().parse().map_err(|_| {
        err(
            "COPY_COMPLETION_MINUTES",
            v,
            "not a whole number of minutes",
            ACCEPTED,
        )
    })?;
    if !(COPY_COMPLETION_STEP..=COPY_COMPLETION_MAX).contains(&n) || n % COPY_COMPLETION_STEP != 0 {
        return Err(err(
            "COPY_COMPLETION_MINUTES",
            v,
            "CopyImage takes a completion duration in 15-minute steps, at most 48 hours",
            ACCEPTED,
        ));
    }
    Ok(n)
}

/// `REPLICA_KMS_KEYS`: `region=key` pairs, one key per region.
fn replica_keys(v: &str) -> Result<BTreeMap<Region, KeyRef>, ConfigError> {
    const ACCEPTED: &str =
        "region=key-arn-or-alias pairs separated by commas, e.g. eu-west-1=alias/ami-replicas";
    let mut keys = BTreeMap::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (region, key) = pair.split_once('=').ok_or_else(|| {
            err(
                "REPLICA_KMS_KEYS",
                v,
                format!("{:?} is not region=key", truncate(pair, 80)),
                ACCEPTED,
            )
        })?;
        let (region, key) = (region.trim(), key.trim());
        if !tags::is_region_name(region) {
            return Err(err(
                "REPLICA_KMS_KEYS",
                v,
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
                v,
                format!(
                    "{:?} is not a key ARN, key id or alias/NAME",
                    truncate(key, 80)
                ),
                ACCEPTED,
            ));
        }
        if keys.insert(Region::new(region), KeyRef::new(key)).is_some() {
            return Err(err(
                "REPLICA_KMS_KEYS",
                v,
                format!("region {} is given twice", truncate(region, 80)),
                ACCEPTED,
            ));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| (k == "AWS_REGION").then(|| "us-east-1".to_owned()))
        })
    }

    #[test]
    fn retain_by_region_reads_each_managed_region_and_refuses_the_rest_by_name() {
        let c = config(&[
            ("REPLICA_REGIONS", "eu-west-1,us-west-2"),
            ("RETAIN_BY_REGION", "eu-west-1=count=3; us-west-2=days=90;"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.retain_by_region.len(), 2);
        assert_eq!(
            c.retain_by_region[&crate::model::Region::new("eu-west-1")].count,
            Some(3)
        );
        for (value, words) in [
            (
                "eu-west-1=count=3;ap-south-1=count=1",
                "ap-south-1 is neither",
            ),
            ("eu-west-1=count=zero", "eu-west-1"),
            ("eu-west-1", "not region=rule"),
            ("mars=count=1", "not a region name"),
            ("eu-west-1=count=1;eu-west-1=count=2", "named twice"),
        ] {
            let e = config(&[
                ("REPLICA_REGIONS", "eu-west-1"),
                ("RETAIN_BY_REGION", value),
            ])
            .err()
            .unwrap_or_else(|| panic!("{value} accepted"));
            assert_eq!(e.variable, "RETAIN_BY_REGION");
            assert!(e.problem.contains(words), "{value}: {e}");
            assert!(
                e.to_string()
                    .contains("eu-west-1=count=3;us-west-2=days=90"),
                "{e}"
            );
        }
    }

    #[test]
    fn copy_completion_minutes_takes_15_minute_steps_up_to_48_hours() {
        let ok =
            |v: &str| config(&[("COPY_COMPLETION_MINUTES", v)]).map(|c| c.copy_completion_minutes);
        assert_eq!(ok("15"), Ok(Some(15)));
        assert_eq!(ok("2880"), Ok(Some(2880)));
        assert_eq!(config(&[]).map(|c| c.copy_completion_minutes), Ok(None));
        for bad in ["0", "10", "20", "2895", "-15", "two hours"] {
            let e = ok(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(e.variable, "COPY_COMPLETION_MINUTES", "{bad}");
            assert!(e.to_string().contains("15-minute steps"), "{e}");
        }
    }
}
