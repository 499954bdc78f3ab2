//! Which accounts one deployment acts on (issue 18): the `AMI_LIFECYCLE_ACCOUNTS`
//! selectors, the spoke role a function assumes in each, and [`resolve`], the pure step
//! from selectors and an Organizations listing to the accounts of a run.
//!
//! Unset, the deployment acts on its own account only, exactly as before (no STS or
//! Organizations call at all). Set, each selector adds accounts: a 12-digit id adds that
//! account, `ou:ou-…` the accounts under that OU (recursively), `org` every account of the
//! organization. Only `ACTIVE` accounts of a listing are kept; the others are reported.
//! The deployment's own account is acted on with its own function roles; every other
//! account through its spoke role (`infra/spoke-role.yaml`).
//!
//! ```
//! use ami_core::accounts::{resolve, AccountSelector, Listing, OrgAccount};
//! use ami_core::model::AccountId;
//! # fn id(s: &str) -> AccountId { AccountId::parse(s).unwrap_or_else(|| panic!("{s}")) }
//! let own = id("111111111111");
//! let listing = Listing {
//!     org: Some(vec![
//!         OrgAccount::new(id("222222222222"), "spoke", "ACTIVE"),
//!         OrgAccount::new(id("111111111111"), "hub", "ACTIVE"),
//!         OrgAccount::new(id("333333333333"), "gone", "SUSPENDED"),
//!     ]),
//!     ..Listing::default()
//! };
//! let resolved = resolve(&[AccountSelector::Org], &listing, &own);
//! assert_eq!(resolved.accounts, vec![id("111111111111"), id("222222222222")]);
//! assert_eq!(resolved.left_out.len(), 1);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::model::AccountId;

/// The path of every spoke role (`infra/spoke-role.yaml`).
pub const SPOKE_ROLE_PATH: &str = "/ami-lifecycle/";

/// One entry of `AMI_LIFECYCLE_ACCOUNTS`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountSelector {
    /// One account, by id.
    Account(AccountId),
    /// Every account under an organizational unit, recursively (`ou:ou-…`).
    Ou(String),
    /// Every account of the organization (`org`).
    Org,
}

impl AccountSelector {
    /// Reads one selector: 12 digits, `ou:ou-xxxx-xxxxxxxx` or `org`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("org") {
            return Ok(Self::Org);
        }
        if let Some(ou) = v.strip_prefix("ou:") {
            return if is_ou_id(ou) {
                Ok(Self::Ou(ou.to_owned()))
            } else {
                Err(format!(
                    "{:?} is not an OU id (ou- then 4 to 32 lowercase letters or digits, a hyphen, 8 to 32 more)",
                    crate::tags::truncate(ou, 80)
                ))
            };
        }
        AccountId::parse(v).map(Self::Account).ok_or_else(|| {
            format!(
                "{:?} is neither a 12-digit account id, ou:ou-… nor org",
                crate::tags::truncate(v, 80)
            )
        })
    }

    /// Whether this selector can only be resolved through Organizations.
    pub fn needs_organization(&self) -> bool {
        !matches!(self, Self::Account(_))
    }
}

impl fmt::Display for AccountSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(a) => write!(f, "{a}"),
            Self::Ou(ou) => write!(f, "ou:{ou}"),
            Self::Org => f.write_str("org"),
        }
    }
}

/// Organizations' OU id pattern: `^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`.
pub fn is_ou_id(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("ou-") else {
        return false;
    };
    let Some((root, ou)) = rest.split_once('-') else {
        return false;
    };
    let lower = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    (4..=32).contains(&root.len()) && (8..=32).contains(&ou.len()) && lower(root) && lower(ou)
}

/// `SPOKE_EXTERNAL_ID`: a secret shared with the spoke roles' trust policy; never printed
/// (its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalId(redacted)")
    }
}

/// An account as Organizations lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: AccountId,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE` (the account's `State`, else `Status`).
    pub status: String,
}

impl OrgAccount {
    pub fn new(id: AccountId, name: &str, status: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            status: status.to_owned(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.status.eq_ignore_ascii_case("ACTIVE")
    }
}

/// What Organizations answered for the selectors that need it: the organization's
/// accounts (for `org`) and each OU's (for `ou:`). A selector whose listing is missing
/// (the call failed, and was reported) selects nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub org: Option<Vec<OrgAccount>>,
    pub ous: BTreeMap<String, Vec<OrgAccount>>,
}

/// The accounts of a run, and the ones a listing named but that are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Deduplicated; the deployment's own account first when it is selected, then in the
    /// order the selectors and listings name them.
    pub accounts: Vec<AccountId>,
    /// Accounts left out, with why (not `ACTIVE`).
    pub left_out: Vec<(AccountId, String)>,
}

/// The accounts `selectors` select, given Organizations' `listing`. An explicitly named
/// account is taken as named; listed accounts only when `ACTIVE` (the others are in
/// `left_out`, once each).
pub fn resolve(selectors: &[AccountSelector], listing: &Listing, own: &AccountId) -> Resolved {
    let mut out = Resolved::default();
    let add = |out: &mut Resolved, id: &AccountId| {
        if !out.accounts.contains(id) {
            out.accounts.push(id.clone());
        }
    };
    let listed = |out: &mut Resolved, accounts: &[OrgAccount], from: &str| {
        for a in accounts {
            if a.is_active() {
                add(out, &a.id);
            } else if !out.left_out.iter().any(|(id, _)| *id == a.id) {
                out.left_out.push((
                    a.id.clone(),
                    format!(
                        "left out: {} ({}) is {} in {from}; only ACTIVE accounts are managed",
                        a.id, a.name, a.status
                    ),
                ));
            }
        }
    };
    for s in selectors {
        match s {
            AccountSelector::Account(id) => add(&mut out, id),
            AccountSelector::Ou(ou) => {
                if let Some(accounts) = listing.ous.get(ou) {
                    listed(&mut out, accounts, &format!("ou:{ou}"));
                }
            }
            AccountSelector::Org => {
                if let Some(accounts) = &listing.org {
                    listed(&mut out, accounts, "the organization");
                }
            }
        }
    }
    // An account named explicitly as well as suspended in a listing is still acted on.
    out.left_out.retain(|(id, _)| !out.accounts.contains(id));
    if let Some(at) = out.accounts.iter().position(|a| a == own) {
        let mine = out.accounts.remove(at);
        out.accounts.insert(0, mine);
    }
    out
}

/// The role `function` assumes in `account`:
/// `arn:<partition>:iam::<account>:role/ami-lifecycle/<deployment>-spoke-<function>`.
pub fn spoke_role_arn(
    partition: &str,
    account: &AccountId,
    deployment: &str,
    function: &str,
) -> String {
    format!("arn:{partition}:iam::{account}:role{SPOKE_ROLE_PATH}{deployment}-spoke-{function}")
}

/// The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition(region: &crate::model::Region) -> &'static str {
    let r = region.as_str();
    if r.starts_with("cn-") {
        "aws-cn"
    } else if r.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The STS session name of `function`'s sessions in spoke accounts (CloudTrail shows it).
pub fn session_name(function: &str) -> String {
    format!("ami-lifecycle-{function}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AccountId {
        AccountId::parse(s).unwrap_or_else(|| panic!("{s} is an account id"))
    }

    #[test]
    fn selectors_parse_and_typos_are_named() {
        assert_eq!(AccountSelector::parse(" org "), Ok(AccountSelector::Org));
        assert_eq!(
            AccountSelector::parse("ou:ou-ab12-abcdef12"),
            Ok(AccountSelector::Ou("ou-ab12-abcdef12".into()))
        );
        assert_eq!(
            AccountSelector::parse("111122223333"),
            Ok(AccountSelector::Account(id("111122223333")))
        );
        for bad in [
            "ou:ou-AB12-abcdef12",
            "ou:r-ab12",
            "ou:ou-ab1-abcdef12",
            "1111",
            "all",
        ] {
            assert!(AccountSelector::parse(bad).is_err(), "{bad}");
        }
        assert!(AccountSelector::parse("12345")
            .err()
            .is_some_and(|e| e.contains("12-digit")));
        assert_eq!(
            AccountSelector::Ou("ou-ab12-abcdef12".into()).to_string(),
            "ou:ou-ab12-abcdef12"
        );
    }

    #[test]
    fn resolve_deduplicates_puts_the_own_account_first_and_leaves_out_suspended_ones() {
        let own = id("111111111111");
        let listing = Listing {
            org: Some(vec![
                OrgAccount::new(id("222222222222"), "a", "ACTIVE"),
                OrgAccount::new(id("333333333333"), "b", "SUSPENDED"),
                OrgAccount::new(id("111111111111"), "hub", "ACTIVE"),
                OrgAccount::new(id("444444444444"), "c", "PENDING_CLOSURE"),
            ]),
            ous: BTreeMap::from([(
                "ou-ab12-abcdef12".to_owned(),
                vec![
                    OrgAccount::new(id("222222222222"), "a", "ACTIVE"),
                    OrgAccount::new(id("333333333333"), "b", "SUSPENDED"),
                ],
            )]),
        };
        let r = resolve(
            &[
                AccountSelector::Account(id("555555555555")),
                AccountSelector::Ou("ou-ab12-abcdef12".into()),
                AccountSelector::Org,
                AccountSelector::Account(id("555555555555")),
            ],
            &listing,
            &own,
        );
        assert_eq!(
            r.accounts,
            vec![id("111111111111"), id("555555555555"), id("222222222222")]
        );
        let left: Vec<&str> = r.left_out.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(left, ["333333333333", "444444444444"]);
        assert!(r.left_out[0].1.contains("SUSPENDED in ou:ou-ab12-abcdef12"));
    }

    #[test]
    fn an_explicit_id_wins_over_a_listing_and_a_missing_listing_selects_nothing() {
        let own = id("111111111111");
        let listing = Listing {
            org: Some(vec![OrgAccount::new(id("333333333333"), "b", "SUSPENDED")]),
            ous: BTreeMap::new(),
        };
        let r = resolve(
            &[
                AccountSelector::Org,
                AccountSelector::Account(id("333333333333")),
                AccountSelector::Ou("ou-ab12-abcdef12".into()),
            ],
            &listing,
            &own,
        );
        assert_eq!(r.accounts, vec![id("333333333333")]);
        assert!(r.left_out.is_empty());
        // The own account is only acted on when selected.
        assert!(!r.accounts.contains(&own));
    }

    #[test]
    fn the_spoke_role_is_the_templates() {
        assert_eq!(
            spoke_role_arn("aws", &id("222222222222"), "prod-amis", "cleanup"),
            "arn:aws:iam::222222222222:role/ami-lifecycle/prod-amis-spoke-cleanup"
        );
        assert_eq!(session_name("create-image"), "ami-lifecycle-create-image");
        let template = include_str!("../../infra/spoke-role.yaml");
        for f in crate::runner::RUNNERS {
            assert!(
                template.contains(&format!("RoleName: !Sub ${{DeploymentName}}-spoke-{f}\n")),
                "no spoke role for {f}"
            );
        }
        assert!(template.contains(&format!("Path: {SPOKE_ROLE_PATH}\n")));
    }
}
