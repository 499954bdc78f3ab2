//! publish's settings: which consistency levels are published (`PUBLISH_CONSISTENCY`) and
//! how many of the last values of a latest-image parameter cleanup keeps (`PUBLISHED_KEEP`).

use super::parse::{err, u32_setting, Lookup};
use super::ConfigError;
use crate::tags::{self, truncate};

pub(super) struct PublishSettings {
    pub publish_consistency: Vec<String>,
    pub published_keep: u32,
}

/// The consistency levels an image can carry (`ami-lifecycle:consistency`);
/// `application-consistent` is what a quiesce hook makes.
pub const CONSISTENCY_LEVELS: [&str; 4] = [
    "rebooted",
    "stopped",
    "application-consistent",
    "crash-consistent",
];

/// `PUBLISH_CONSISTENCY` unset: everything but crash-consistent images.
pub const DEFAULT_PUBLISH_CONSISTENCY: [&str; 3] =
    ["rebooted", "stopped", "application-consistent"];

/// `PUBLISHED_KEEP`: SSM keeps the last 100 versions of a parameter.
const PUBLISHED_KEEP: (u32, u32, u32) = (3, 0, 100);

impl PublishSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>) -> Result<Self, ConfigError> {
        let publish_consistency = match get("PUBLISH_CONSISTENCY") {
            None => DEFAULT_PUBLISH_CONSISTENCY.map(str::to_owned).to_vec(),
            Some(v) => {
                let mut out = Vec::new();
                for item in tags::split_list(&v) {
                    if !CONSISTENCY_LEVELS.contains(&item) {
                        return Err(err(
                            "PUBLISH_CONSISTENCY",
                            &v,
                            format!("{:?} is not a consistency level", truncate(item, 80)),
                            "rebooted, stopped, application-consistent, crash-consistent, separated by commas",
                        ));
                    }
                    out.push(item.to_owned());
                }
                if out.is_empty() {
                    return Err(err(
                        "PUBLISH_CONSISTENCY",
                        &v,
                        "no level named",
                        "rebooted, stopped, application-consistent, crash-consistent, separated by commas",
                    ));
                }
                out
            }
        };
        let published_keep = u32_setting(
            get,
            "PUBLISHED_KEEP",
            PUBLISHED_KEEP,
            "a whole number from 0 to 100 (the last values of each latest-image parameter cleanup keeps; the current one always)",
        )?;
        Ok(Self {
            publish_consistency,
            published_keep,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(v: Option<&str>, keep: Option<&str>) -> Result<PublishSettings, ConfigError> {
        let get = move |k: &str| match k {
            "PUBLISH_CONSISTENCY" => v.map(str::to_owned),
            "PUBLISHED_KEEP" => keep.map(str::to_owned),
            _ => None,
        };
        PublishSettings::from_lookup(&get)
    }

    #[test]
    fn defaults_publish_consistent_images_and_keep_three() -> Result<(), ConfigError> {
        let s = settings(None, None)?;
        assert_eq!(
            s.publish_consistency,
            ["rebooted", "stopped", "application-consistent"]
        );
        assert_eq!(s.published_keep, 3);
        Ok(())
    }

    #[test]
    fn a_crash_consistent_opt_in_parses_and_typos_are_named() {
        let s = settings(Some("rebooted, crash-consistent"), Some("0"));
        assert!(s.is_ok_and(
            |s| s.publish_consistency == ["rebooted", "crash-consistent"] && s.published_keep == 0
        ));
        let e = settings(Some("rebooted,crashy"), None)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("\"crashy\"") && e.contains("PUBLISH_CONSISTENCY")));
        let e = settings(None, Some("101")).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("PUBLISHED_KEEP") && e.contains("0 to 100")));
    }
}
