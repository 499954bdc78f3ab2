//! replicate's settings: default destinations, the key per destination, and the accounts
//! whose shared images are adopted.

use std::collections::BTreeMap;

use super::parse::{err, parse_regions, Lookup};
use super::ConfigError;
use crate::model::{AccountId, KeyRef, Region};
use crate::tags::{self, truncate};

pub(super) struct ReplicateSettings {
    pub replica_regions: Vec<Region>,
    pub replica_keys: BTreeMap<Region, KeyRef>,
    pub adopt_from: Vec<AccountId>,
}

impl ReplicateSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>) -> Result<Self, ConfigError> {
        let replica_regions = match get("REPLICA_REGIONS") {
            Some(v) => parse_regions("REPLICA_REGIONS", &v)?,
            None => Vec::new(),
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
        })
    }
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
