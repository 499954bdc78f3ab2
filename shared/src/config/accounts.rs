//! Many accounts (issue 18): which accounts the deployment acts on
//! (`AMI_LIFECYCLE_ACCOUNTS`) and the external id its spoke roles require
//! (`SPOKE_EXTERNAL_ID`). Unset: the deployment's own account only, as before.

use super::parse::{err, Lookup};
use super::ConfigError;
use crate::accounts::{AccountSelector, ExternalId};
use crate::values::split_list;

pub(super) struct AccountSettings {
    pub accounts: Vec<AccountSelector>,
    pub spoke_external_id: Option<ExternalId>,
}

const ACCOUNTS_ACCEPTED: &str =
    "12-digit account ids, ou:ou-xxxx-xxxxxxxx and org, separated by commas (unset: this account only)";
const EXTERNAL_ID_ACCEPTED: &str =
    "16 to 128 characters of A-Z a-z 0-9 + = , . @ : / _ - (the ExternalId of infra/spoke-role.yaml)";

/// STS `ExternalId`: 2–1224 in the API; the spoke template asks for 16–128.
const EXTERNAL_ID_LEN: (usize, usize) = (16, 128);

impl AccountSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>) -> Result<Self, ConfigError> {
        let mut accounts = Vec::new();
        if let Some(v) = get("AMI_LIFECYCLE_ACCOUNTS") {
            for item in split_list(&v) {
                let s = AccountSelector::parse(item)
                    .map_err(|p| err("AMI_LIFECYCLE_ACCOUNTS", &v, p, ACCOUNTS_ACCEPTED))?;
                if !accounts.contains(&s) {
                    accounts.push(s);
                }
            }
        }
        let spoke_external_id = match get("SPOKE_EXTERNAL_ID") {
            None => None,
            Some(v) => {
                let ok_chars = v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b));
                let (min, max) = EXTERNAL_ID_LEN;
                if !(min..=max).contains(&v.len()) || !ok_chars {
                    // The value is a secret: never echo it.
                    return Err(err(
                        "SPOKE_EXTERNAL_ID",
                        "(hidden)",
                        format!(
                            "{} characters{}",
                            v.len(),
                            if ok_chars {
                                ""
                            } else {
                                ", with a character STS refuses"
                            }
                        ),
                        EXTERNAL_ID_ACCEPTED,
                    ));
                }
                Some(ExternalId::new(v))
            }
        };
        // Several ids, an OU or the organization always select an account other than this
        // one; a single id may be this account (checked when the run knows it).
        let other_possible = accounts.len() > 1 || accounts.iter().any(|s| s.needs_organization());
        if other_possible && spoke_external_id.is_none() {
            return Err(err(
                "SPOKE_EXTERNAL_ID",
                "",
                "required when AMI_LIFECYCLE_ACCOUNTS selects other accounts: the spoke roles trust the hub only with it",
                EXTERNAL_ID_ACCEPTED,
            ));
        }
        Ok(Self {
            accounts,
            spoke_external_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;

    fn settings(accounts: Option<&str>, id: Option<&str>) -> Result<AccountSettings, ConfigError> {
        let get = move |k: &str| match k {
            "AMI_LIFECYCLE_ACCOUNTS" => accounts.map(str::to_owned),
            "SPOKE_EXTERNAL_ID" => id.map(str::to_owned),
            _ => None,
        };
        AccountSettings::from_lookup(&get)
    }

    const SECRET: &str = "0123456789abcdef0123";

    #[test]
    fn unset_means_this_account_only() -> Result<(), ConfigError> {
        let s = settings(None, None)?;
        assert!(s.accounts.is_empty() && s.spoke_external_id.is_none());
        Ok(())
    }

    #[test]
    fn selectors_parse_deduplicated() -> Result<(), ConfigError> {
        let s = settings(
            Some("111122223333, ou:ou-ab12-abcdef12 org,111122223333"),
            Some(SECRET),
        )?;
        let Some(a) = AccountId::parse("111122223333") else {
            panic!("an account id");
        };
        assert_eq!(
            s.accounts,
            [
                AccountSelector::Account(a),
                AccountSelector::Ou("ou-ab12-abcdef12".into()),
                AccountSelector::Org
            ]
        );
        // One id alone may be this account: no external id needed yet.
        assert!(settings(Some("111122223333"), None).is_ok());
        Ok(())
    }

    #[test]
    fn the_external_id_is_required_for_other_accounts_and_never_echoed() {
        for accounts in ["org", "ou:ou-ab12-abcdef12", "111122223333,444455556666"] {
            let e = settings(Some(accounts), None).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains("SPOKE_EXTERNAL_ID")
                    && e.contains("required when AMI_LIFECYCLE_ACCOUNTS")),
                "{accounts}: {e:?}"
            );
        }
        for bad in ["short", &"x".repeat(129), "0123456789abcdef 0123"] {
            let e = settings(Some("org"), Some(bad))
                .err()
                .map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("SPOKE_EXTERNAL_ID") && !e.contains(bad)),
                "{e:?}"
            );
        }
        let e = settings(Some("org,moon"), Some(SECRET))
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("AMI_LIFECYCLE_ACCOUNTS") && e.contains("\"moon\"")));
    }
}
