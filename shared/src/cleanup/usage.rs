//! Cross-account use checks (issue 18): before the suite revokes a share or deletes a
//! shared image, do the accounts it is shared with use it? The facts and the one pure
//! verdict; [`super::usage_check`] gathers them.
//!
//! - [`AccountUse`]: what one grantee's check found — unused, in use (where, by what),
//!   being checked (an image usage report not read yet), or the check failed.
//! - [`Usage`]: those answers by image and grantee, the snapshot the planners read
//!   (cleanup's [`super::plan::decide`], share's [`crate::share::hold`]).
//! - [`verdict`]: whether the grants of an image may go: only when every grantee's check
//!   answered "unused". Unknown usage (not checked, pending, failed) never lets them go.
//!
//! The checks run only when `AMI_LIFECYCLE_ACCOUNTS` is set ([`enabled`]): unset, the
//! suite is the one account it was before issue 18 and behaves as before.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::Config;
use crate::model::{Grantee, ImageId};

/// What checking one grantee's use of one image found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountUse {
    Unused,
    /// In use: each line names the account, the resource and the region
    /// ("in use in 222222222222 by instance i-… (us-east-1)").
    InUse(Vec<String>),
    /// An image usage report is being made (`Some(id)`), or would be requested (`None`,
    /// dry run); `note` says why a report is needed (the account is outside the hub's
    /// reach).
    Checking {
        report: Option<String>,
        note: String,
    },
    /// The check failed; `retryable` when the next run may succeed.
    Failed {
        problem: String,
        retryable: bool,
    },
}

/// The use checks of a run by image and grantee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    answers: BTreeMap<(ImageId, Grantee), AccountUse>,
}

impl Usage {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, image: &ImageId, grantee: &Grantee, answer: AccountUse) {
        self.answers
            .insert((image.clone(), grantee.clone()), answer);
    }

    pub fn get(&self, image: &ImageId, grantee: &Grantee) -> Option<&AccountUse> {
        self.answers.get(&(image.clone(), grantee.clone()))
    }

    /// Adds `other`'s answers (a later check of the same pair wins).
    pub fn extend(&mut self, other: Usage) {
        self.answers.extend(other.answers);
    }
}

/// Why grants may not go (the strongest reason among the grantees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    InUse(Vec<String>),
    Failed {
        problem: String,
        retryable: bool,
    },
    Checking(Vec<String>),
    /// No answer for these grantees (the check did not run for them).
    NotChecked(Vec<Grantee>),
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InUse(lines) => write!(f, "kept: {}", lines.join("; ")),
            Self::Failed { problem, .. } => {
                write!(f, "kept: the cross-account use check failed ({problem}); never deleted or unshared on doubt")
            }
            Self::Checking(lines) => write!(f, "kept: usage being checked: {}", lines.join("; ")),
            Self::NotChecked(gs) => {
                let list: Vec<String> = gs.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "kept: not yet checked whether {} use(s) it; the next run checks",
                    list.join(", ")
                )
            }
        }
    }
}

/// Whether the cross-account use checks run at all: only with `AMI_LIFECYCLE_ACCOUNTS` set.
pub fn enabled(config: &Config) -> bool {
    !config.accounts.is_empty()
}

/// The text of a `Checking` answer.
pub fn checking_line(report: Option<&str>, note: &str) -> String {
    match report {
        Some(id) => format!("report {id} ({note})"),
        None => format!("a usage report would be requested ({note}; dry run)"),
    }
}

/// The one decision: may `image`'s grants to `grantees` go? `None`: every grantee was
/// checked and uses it nowhere. Otherwise the strongest reason to keep: in use, then a
/// failed check, then a check in progress, then grantees never checked.
pub fn verdict(usage: Option<&Usage>, image: &ImageId, grantees: &[Grantee]) -> Option<Blocked> {
    if grantees.is_empty() {
        return None;
    }
    let Some(usage) = usage else {
        return Some(Blocked::NotChecked(grantees.to_vec()));
    };
    let mut in_use = Vec::new();
    let mut failed = None;
    let mut checking = Vec::new();
    let mut missing = Vec::new();
    for g in grantees {
        match usage.get(image, g) {
            Some(AccountUse::Unused) => {}
            Some(AccountUse::InUse(lines)) => in_use.extend(lines.iter().cloned()),
            Some(AccountUse::Failed { problem, retryable }) => {
                failed.get_or_insert_with(|| (format!("{g}: {problem}"), *retryable));
            }
            Some(AccountUse::Checking { report, note }) => {
                checking.push(format!("{g}: {}", checking_line(report.as_deref(), note)));
            }
            None => missing.push(g.clone()),
        }
    }
    if !in_use.is_empty() {
        in_use.dedup();
        return Some(Blocked::InUse(in_use));
    }
    if let Some((problem, retryable)) = failed {
        return Some(Blocked::Failed { problem, retryable });
    }
    if !checking.is_empty() {
        return Some(Blocked::Checking(checking));
    }
    (!missing.is_empty()).then_some(Blocked::NotChecked(missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;

    fn account(a: &str) -> Grantee {
        Grantee::Account(AccountId::parse(a).unwrap_or_else(|| panic!("{a}")))
    }

    #[test]
    fn grants_go_only_when_every_grantee_answered_unused() {
        let img = ImageId::new("ami-1");
        let (a, b) = (account("222222222222"), account("333333333333"));
        let mut usage = Usage::new();
        usage.set(&img, &a, AccountUse::Unused);
        assert_eq!(verdict(Some(&usage), &img, std::slice::from_ref(&a)), None);
        // B never checked: kept, naming B.
        assert_eq!(
            verdict(Some(&usage), &img, &[a.clone(), b.clone()]),
            Some(Blocked::NotChecked(vec![b.clone()]))
        );
        // No facts at all: kept.
        assert!(matches!(
            verdict(None, &img, std::slice::from_ref(&a)),
            Some(Blocked::NotChecked(_))
        ));
        // Nobody to ask: nothing blocks.
        assert_eq!(verdict(None, &img, &[]), None);
    }

    #[test]
    fn in_use_wins_over_a_failure_and_a_pending_report() {
        let img = ImageId::new("ami-1");
        let (a, b, c) = (
            account("222222222222"),
            account("333333333333"),
            account("444444444444"),
        );
        let mut usage = Usage::new();
        usage.set(
            &img,
            &a,
            AccountUse::Failed {
                problem: "throttled".into(),
                retryable: true,
            },
        );
        usage.set(
            &img,
            &b,
            AccountUse::Checking {
                report: Some("amiur-1".into()),
                note: "outside reach".into(),
            },
        );
        let failed = verdict(Some(&usage), &img, &[a.clone(), b.clone()]);
        assert!(
            matches!(&failed, Some(Blocked::Failed { retryable: true, problem }) if problem.contains("222222222222")),
            "{failed:?}"
        );
        let line = "in use in 444444444444 by instance i-9 (us-east-1)".to_owned();
        usage.set(&img, &c, AccountUse::InUse(vec![line.clone()]));
        let blocked =
            verdict(Some(&usage), &img, &[a, b.clone(), c]).unwrap_or_else(|| panic!("kept"));
        assert_eq!(blocked, Blocked::InUse(vec![line]));
        assert!(blocked
            .to_string()
            .starts_with("kept: in use in 444444444444 by instance i-9"));
        let pending = verdict(Some(&usage), &img, &[b]).unwrap_or_else(|| panic!("kept"));
        assert!(
            pending
                .to_string()
                .contains("usage being checked: 333333333333: report amiur-1"),
            "{pending}"
        );
    }
}
