//! cleanup's settings: what keeps an image besides retention, the deprecation and
//! disable graces, orphan snapshots and the price used for the saving estimate.

use super::parse::{bool_setting, err, u32_setting, Lookup};
use super::ConfigError;

pub(super) struct CleanupSettings {
    pub keep_if_launched_within_days: u32,
    pub cleanup_shared: bool,
    pub deprecation_grace_days: u32,
    pub disable_grace_days: u32,
    pub delete_orphans: bool,
    pub price_per_gib_month: f64,
}

impl CleanupSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>) -> Result<Self, ConfigError> {
        let price_per_gib_month = match get("PRICE_PER_GIB_MONTH") {
            None => 0.05,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && p >= 0.0 => p,
                _ => {
                    return Err(err(
                        "PRICE_PER_GIB_MONTH",
                        &v,
                        "not a non-negative number",
                        "a price in USD per GiB-month, e.g. 0.05",
                    ))
                }
            },
        };
        Ok(Self {
            keep_if_launched_within_days: u32_setting(
                get,
                "KEEP_IF_LAUNCHED_WITHIN",
                (14, 0, 3650),
                "days, a whole number from 0 to 3650",
            )?,
            cleanup_shared: bool_setting(get, "CLEANUP_SHARED", false)?,
            deprecation_grace_days: u32_setting(
                get,
                "DEPRECATION_GRACE",
                (0, 0, 3650),
                "days, a whole number from 0 to 3650",
            )?,
            disable_grace_days: u32_setting(
                get,
                "DISABLE_GRACE",
                (0, 0, 3650),
                "days, a whole number from 0 to 3650 (0 = no disabled stage)",
            )?,
            delete_orphans: bool_setting(get, "DELETE_ORPHANS", false)?,
            price_per_gib_month,
        })
    }
}
