//! create-image's quiesce settings (`ami-lifecycle:method=quiesce`): how long a freeze may
//! take (`QUIESCE_TIMEOUT`), when the document's watchdog thaws by itself
//! (`QUIESCE_MAX_FREEZE`), what to do when an instance cannot be quiesced
//! (`QUIESCE_FALLBACK`), how many are quiesced at once (`QUIESCE_CONCURRENCY`) and the
//! shipped Linux document (`QUIESCE_LINUX_DOCUMENT`).

use super::parse::{err, u32_setting, Lookup};
use super::ConfigError;

/// What create-image does with an instance it cannot quiesce (not managed by Systems
/// Manager, agent offline, the freeze failed or timed out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuiesceFallback {
    /// Image it with a reboot (it asked for consistency; the reboot gives it).
    Reboot,
    /// Image it without a reboot: crash-consistent, and said so.
    NoReboot,
    /// Do not image it this slot (the default: an instance never gets a reboot it did not
    /// ask for, nor a crash-consistent image it did not ask for).
    Skip,
}

impl QuiesceFallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reboot => "reboot",
            Self::NoReboot => "no-reboot",
            Self::Skip => "skip",
        }
    }
}

pub(super) struct QuiesceSettings {
    pub timeout_seconds: u32,
    pub max_freeze_seconds: u32,
    pub fallback: QuiesceFallback,
    pub concurrency: u32,
    pub linux_document: String,
}

/// `QUIESCE_TIMEOUT`: SendCommand's `TimeoutSeconds` is at least 30; the freeze is waited
/// for at most this long.
const TIMEOUT: (u32, u32, u32) = (60, 5, 600);
const MAX_FREEZE: (u32, u32, u32) = (120, 10, 900);
const CONCURRENCY: (u32, u32, u32) = (5, 1, 50);

impl QuiesceSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>, deployment: &str) -> Result<Self, ConfigError> {
        let timeout_seconds =
            u32_setting(get, "QUIESCE_TIMEOUT", TIMEOUT, "seconds from 5 to 600")?;
        let max_freeze_seconds = u32_setting(
            get,
            "QUIESCE_MAX_FREEZE",
            MAX_FREEZE,
            "seconds from 10 to 900",
        )?;
        let fallback = match get("QUIESCE_FALLBACK").map(|v| v.trim().to_ascii_lowercase()) {
            None => QuiesceFallback::Skip,
            Some(v) => match v.as_str() {
                "reboot" => QuiesceFallback::Reboot,
                "no-reboot" => QuiesceFallback::NoReboot,
                "skip" => QuiesceFallback::Skip,
                _ => {
                    return Err(err(
                        "QUIESCE_FALLBACK",
                        &v,
                        "not a fallback",
                        "reboot, no-reboot or skip",
                    ))
                }
            },
        };
        let concurrency = u32_setting(
            get,
            "QUIESCE_CONCURRENCY",
            CONCURRENCY,
            "a whole number from 1 to 50",
        )?;
        let linux_document = get("QUIESCE_LINUX_DOCUMENT")
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| format!("{deployment}-quiesce-linux"));
        let valid = (3..=128).contains(&linux_document.len())
            && linux_document
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(err(
                "QUIESCE_LINUX_DOCUMENT",
                &linux_document,
                "not an SSM document name",
                "3-128 letters, digits, '_', '-' or '.' (the stack sets <deployment>-quiesce-linux)",
            ));
        }
        Ok(Self {
            timeout_seconds,
            max_freeze_seconds,
            fallback,
            concurrency,
            linux_document,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<QuiesceSettings, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let get = move |k: &str| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
        QuiesceSettings::from_lookup(&get, "prod")
    }

    #[test]
    fn defaults_skip_what_cannot_be_quiesced() -> Result<(), ConfigError> {
        let s = settings(&[])?;
        assert_eq!(
            (s.timeout_seconds, s.max_freeze_seconds, s.concurrency),
            (60, 120, 5)
        );
        assert_eq!(s.fallback, QuiesceFallback::Skip);
        assert_eq!(s.linux_document, "prod-quiesce-linux");
        Ok(())
    }

    #[test]
    fn bad_values_are_named() {
        let e = |pairs: &[(&str, &str)]| {
            settings(pairs)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(e(&[("QUIESCE_FALLBACK", "maybe")]).contains("reboot, no-reboot or skip"));
        assert!(e(&[("QUIESCE_MAX_FREEZE", "5")]).contains("QUIESCE_MAX_FREEZE"));
        assert!(e(&[("QUIESCE_LINUX_DOCUMENT", "a b")]).contains("not an SSM document name"));
    }
}
