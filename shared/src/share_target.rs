//! Share targets (`ami-lifecycle:share-with`) and the allow-list (`SHARE_ALLOWED`).
//!
//! [`ShareTarget::parse_list`] reads a tag value: 12-digit accounts, organization ARNs,
//! OU ARNs, `group:NAME` (expanded from `SHARE_GROUPS`) and `all`, separated by commas or
//! spaces. One invalid entry rejects the whole value. [`AllowList::permits`] decides
//! whether a resolved [`Grantee`] may receive an image: whoever can tag an image must not
//! be able to send it to a stranger.
//!
//! `SHARE_ALLOWED` may name `org` ([`OrgEntry`]): the organization's `ACTIVE` accounts,
//! the organization itself and its OUs, read from Organizations on every share run
//! ([`AllowList::with_organization`], by `share::allowed`). Until read, or when the
//! listing failed, `org` admits nothing and refuses nothing:
//! [`AllowList::undecided`] names the grantees only the listing could decide, which are
//! neither granted nor revoked.

use std::collections::BTreeMap;

use crate::accounts::OrgAccount;
use crate::model::{AccountId, Grantee};
use crate::tags::{key, split_list, truncate, TagError};

/// One entry of a share-with value before groups are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareTarget {
    Grantee(Grantee),
    Group(String),
}

/// `arn:aws:organizations::123456789012:organization/o-abc123def4`
pub fn is_organization_arn(s: &str) -> bool {
    org_arn_parts(s).is_some_and(|(kind, rest)| kind == "organization" && is_org_id(rest))
}

/// `arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12-cdef5678`
pub fn is_ou_arn(s: &str) -> bool {
    org_arn_parts(s).is_some_and(|(kind, rest)| {
        kind == "ou"
            && rest
                .split_once('/')
                .is_some_and(|(org, ou)| is_org_id(org) && ou.starts_with("ou-") && ou.len() > 4)
    })
}

/// The organization id (`o-…`) an organization or OU ARN belongs to.
pub fn org_id_of(arn: &str) -> Option<&str> {
    let (_, rest) = org_arn_parts(arn)?;
    Some(rest.split('/').next().unwrap_or(rest))
}

fn org_arn_parts(s: &str) -> Option<(&str, &str)> {
    let rest = s
        .strip_prefix("arn:aws:organizations::")
        .or_else(|| s.strip_prefix("arn:aws-us-gov:organizations::"))
        .or_else(|| s.strip_prefix("arn:aws-cn:organizations::"))?;
    let (account, resource) = rest.split_once(':')?;
    AccountId::parse(account)?;
    resource.split_once('/')
}

fn is_org_id(s: &str) -> bool {
    s.starts_with("o-")
        && s.len() >= 12
        && s[2..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl ShareTarget {
    pub fn parse(entry: &str) -> Option<Self> {
        if let Some(a) = AccountId::parse(entry) {
            return Some(Self::Grantee(Grantee::Account(a)));
        }
        if entry == "all" {
            return Some(Self::Grantee(Grantee::Public));
        }
        if is_organization_arn(entry) {
            return Some(Self::Grantee(Grantee::Organization(entry.to_owned())));
        }
        if is_ou_arn(entry) {
            return Some(Self::Grantee(Grantee::OrganizationalUnit(entry.to_owned())));
        }
        let group = entry.strip_prefix("group:")?;
        let ok = !group.is_empty()
            && group
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self::Group(group.to_owned()))
    }

    /// Parses a whole share-with value and expands groups. One bad entry (or an unknown
    /// group) rejects the whole value, so a typo never shares with a partial list.
    pub fn parse_list(
        value: &str,
        groups: &BTreeMap<String, Vec<Grantee>>,
    ) -> Result<Vec<Grantee>, TagError> {
        let mut out: Vec<Grantee> = Vec::new();
        for entry in split_list(value) {
            let target = Self::parse(entry).ok_or_else(|| {
                TagError::new(
                    key::SHARE_WITH,
                    value,
                    format!("{:?} is not an account id, organization or OU ARN, group:NAME or all", truncate(entry, 80)),
                    "list 12-digit account ids, organization/OU ARNs or group:NAME, separated by commas",
                )
            })?;
            let expanded = match target {
                Self::Grantee(g) => vec![g],
                Self::Group(name) => groups.get(&name).cloned().ok_or_else(|| {
                    TagError::new(
                        key::SHARE_WITH,
                        value,
                        format!("group {:?} is not defined", truncate(&name, 80)),
                        "define it in SHARE_GROUPS (stack parameter ShareGroups) or list the accounts",
                    )
                })?,
            };
            for g in expanded {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
        Ok(out)
    }
}

/// `org` in `SHARE_ALLOWED`, and whether Organizations has been read this run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrgEntry {
    /// `org` is not named.
    #[default]
    Absent,
    /// Named, not read yet: admits nothing and refuses nothing.
    Unread,
    /// Read this run: its members are in the lists ([`AllowList::with_organization`]).
    Read,
    /// Named, but the listing failed (why): admits nothing and refuses nothing.
    Unlisted(String),
}

/// Who may receive shared images (`SHARE_ALLOWED`). Empty means no sharing at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    pub accounts: Vec<AccountId>,
    pub organizations: Vec<String>,
    pub ous: Vec<String>,
    /// `org`: the organization's accounts, itself and its OUs, read on every share run.
    pub org: OrgEntry,
}

impl AllowList {
    /// Parses `SHARE_ALLOWED`: account ids, organization ARNs, OU ARNs and `org`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut list = AllowList::default();
        for entry in split_list(value) {
            if entry == "org" {
                list.org = OrgEntry::Unread;
                continue;
            }
            match ShareTarget::parse(entry) {
                Some(ShareTarget::Grantee(Grantee::Account(a))) => list.accounts.push(a),
                Some(ShareTarget::Grantee(Grantee::Organization(o))) => list.organizations.push(o),
                Some(ShareTarget::Grantee(Grantee::OrganizationalUnit(o))) => list.ous.push(o),
                _ => {
                    return Err(format!(
                        "{:?} is not a 12-digit account id, organization ARN, OU ARN or org (public sharing is ALLOW_PUBLIC, not an allow-list entry)",
                        truncate(entry, 80)
                    ))
                }
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.organizations.is_empty()
            && self.ous.is_empty()
            && self.org == OrgEntry::Absent
    }

    /// Whether `org` is named and must be read from Organizations.
    pub fn needs_organization(&self) -> bool {
        self.org != OrgEntry::Absent
    }

    /// This list with `org` read: the organization's `ACTIVE` accounts (suspended and
    /// closing ones are not: an account that left or is leaving loses what it was given at
    /// the next reconcile) and the organization `organization_arn` (which admits its OUs).
    #[must_use]
    pub fn with_organization(&self, organization_arn: &str, accounts: &[OrgAccount]) -> Self {
        let mut list = self.clone();
        for a in accounts.iter().filter(|a| a.is_active()) {
            if !list.accounts.contains(&a.id) {
                list.accounts.push(a.id.clone());
            }
        }
        if !list.organizations.iter().any(|o| o == organization_arn) {
            list.organizations.push(organization_arn.to_owned());
        }
        list.org = OrgEntry::Read;
        list
    }

    /// This list with `org` unread because the listing failed (`why`, for reports).
    #[must_use]
    pub fn unlisted(&self, why: &str) -> Self {
        let mut list = self.clone();
        list.org = OrgEntry::Unlisted(why.to_owned());
        list
    }

    /// Why the allow-list cannot decide `grantee` this run: `org` is named but was not
    /// read, and no explicit entry admits it. Such a grantee is neither granted (it may be
    /// outside the organization) nor revoked (it may be inside).
    pub fn undecided(&self, grantee: &Grantee) -> Option<String> {
        if matches!(grantee, Grantee::Public) || self.permits(grantee) {
            return None;
        }
        match &self.org {
            OrgEntry::Absent | OrgEntry::Read => None,
            OrgEntry::Unread => {
                Some("SHARE_ALLOWED names org, and the organization has not been read".to_owned())
            }
            OrgEntry::Unlisted(why) => Some(why.clone()),
        }
    }

    /// An account must be listed by id: membership of an organization cannot be proven from
    /// the id alone, so it is not assumed. An organization must be listed; an OU is allowed
    /// when listed or when its organization is listed. `all` is never in an allow-list.
    /// `org` admits its members only once read ([`AllowList::with_organization`]).
    pub fn permits(&self, grantee: &Grantee) -> bool {
        match grantee {
            Grantee::Account(a) => self.accounts.contains(a),
            Grantee::Organization(o) => self.organizations.contains(o),
            Grantee::OrganizationalUnit(ou) => {
                self.ous.contains(ou)
                    || org_id_of(ou).is_some_and(|id| {
                        self.organizations.iter().any(|o| org_id_of(o) == Some(id))
                    })
            }
            Grantee::Public => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "arn:aws:organizations::111111111111:organization/o-abc123def4";
    const OU: &str = "arn:aws:organizations::111111111111:ou/o-abc123def4/ou-ab12-cdef5678";

    fn acct(s: &str) -> Grantee {
        Grantee::Account(AccountId::parse(s).expect("test account id"))
    }

    #[test]
    fn parses_every_kind_and_expands_groups() -> Result<(), TagError> {
        let mut groups = BTreeMap::new();
        groups.insert(
            "prod".to_owned(),
            vec![acct("444455556666"), acct("111122223333")],
        );
        let got =
            ShareTarget::parse_list(&format!("111122223333, {ORG} {OU},group:prod"), &groups)?;
        assert_eq!(
            got,
            vec![
                acct("111122223333"),
                Grantee::Organization(ORG.into()),
                Grantee::OrganizationalUnit(OU.into()),
                acct("444455556666"),
            ]
        );
        Ok(())
    }

    #[test]
    fn one_bad_entry_rejects_the_whole_value() {
        let groups = BTreeMap::new();
        for (value, words) in [
            ("111122223333,12345", "\"12345\" is not an account id"),
            ("111122223333 group:nope", "group \"nope\" is not defined"),
            (
                "arn:aws:organizations::111111111111:organization/x",
                "is not an account id",
            ),
        ] {
            match ShareTarget::parse_list(value, &groups) {
                Ok(g) => panic!("{value:?} parsed as {g:?}"),
                Err(e) => assert!(e.to_string().contains(words), "{e}"),
            }
        }
    }

    #[test]
    fn allow_list_decides() -> Result<(), String> {
        let list = AllowList::parse(&format!("111122223333 {ORG}"))?;
        assert!(list.permits(&acct("111122223333")));
        assert!(!list.permits(&acct("999999999999")));
        assert!(list.permits(&Grantee::Organization(ORG.into())));
        assert!(
            list.permits(&Grantee::OrganizationalUnit(OU.into())),
            "OU inside an allowed org"
        );
        assert!(!list.permits(&Grantee::Public));
        assert!(AllowList::parse("").map(|l| l.is_empty())?);
        assert!(AllowList::parse("all").is_err());
        Ok(())
    }

    #[test]
    fn org_admits_the_active_members_the_organization_and_its_ous_once_read() -> Result<(), String>
    {
        const OTHER_OU: &str =
            "arn:aws:organizations::222222222222:ou/o-zzzzzzzzzz/ou-zz12-zzzz5678";
        let list = AllowList::parse("org, 444455556666")?;
        assert_eq!(list.org, OrgEntry::Unread);
        assert!(!list.is_empty() && list.needs_organization());
        // Unread: only the explicit entry is admitted; the rest is undecided, not refused.
        assert!(list.permits(&acct("444455556666")));
        assert!(!list.permits(&acct("111122223333")));
        assert!(list.undecided(&acct("111122223333")).is_some());
        assert_eq!(list.undecided(&acct("444455556666")), None);
        assert_eq!(list.undecided(&Grantee::Public), None);

        let members = [
            OrgAccount::new(AccountId::parse("111122223333").ok_or("id")?, "a", "ACTIVE"),
            OrgAccount::new(
                AccountId::parse("555566667777").ok_or("id")?,
                "b",
                "SUSPENDED",
            ),
        ];
        let read = list.with_organization(ORG, &members);
        assert_eq!(read.org, OrgEntry::Read);
        assert!(read.permits(&acct("111122223333")));
        assert!(read.permits(&acct("444455556666")), "explicit entries stay");
        assert!(
            !read.permits(&acct("555566667777")),
            "suspended: not a member to share with"
        );
        assert!(!read.permits(&acct("999999999999")));
        assert!(read.permits(&Grantee::Organization(ORG.into())));
        assert!(read.permits(&Grantee::OrganizationalUnit(OU.into())));
        assert!(!read.permits(&Grantee::OrganizationalUnit(OTHER_OU.into())));
        // Read: everything is decided.
        assert_eq!(read.undecided(&acct("999999999999")), None);

        let failed = list.unlisted("ListAccounts: AccessDenied");
        assert!(!failed.permits(&acct("111122223333")));
        assert_eq!(
            failed.undecided(&acct("111122223333")).as_deref(),
            Some("ListAccounts: AccessDenied")
        );
        assert!(AllowList::parse("orgs").is_err());
        assert_eq!(AllowList::parse("")?.org, OrgEntry::Absent);
        Ok(())
    }
}
