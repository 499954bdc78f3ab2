//! share's settings: the allow-list, named groups of targets, public sharing and whether
//! replicas are shared too.

use std::collections::BTreeMap;

use super::parse::{bool_setting, err, Lookup};
use super::ConfigError;
use crate::model::Grantee;
use crate::share_target::{AllowList, ShareTarget};
use crate::tags::{self, truncate};

pub(super) struct ShareSettings {
    pub share_allowed: AllowList,
    pub share_groups: BTreeMap<String, Vec<Grantee>>,
    pub allow_public: bool,
    pub share_replicas: bool,
}

impl ShareSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>) -> Result<Self, ConfigError> {
        let share_allowed = match get("SHARE_ALLOWED") {
            Some(v) => AllowList::parse(&v).map_err(|p| {
                err(
                    "SHARE_ALLOWED",
                    &v,
                    p,
                    "account ids, organization ARNs, OU ARNs and org (the organization's accounts and OUs, read each run) separated by commas",
                )
            })?,
            None => AllowList::default(),
        };
        let share_groups = match get("SHARE_GROUPS") {
            Some(v) => share_groups(&v)?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            share_allowed,
            share_groups,
            allow_public: bool_setting(get, "ALLOW_PUBLIC", false)?,
            share_replicas: bool_setting(get, "SHARE_REPLICAS", true)?,
        })
    }
}

/// `SHARE_GROUPS`: `name=target target;name2=…`.
fn share_groups(v: &str) -> Result<BTreeMap<String, Vec<Grantee>>, ConfigError> {
    const ACCEPTED: &str =
        "name=target target;name2=target, e.g. prod=111122223333 444455556666;dev=777788889999";
    let mut groups = BTreeMap::new();
    for def in v.split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let (name, members) = def.split_once('=').ok_or_else(|| {
            err(
                "SHARE_GROUPS",
                v,
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
                v,
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
                        v,
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
        groups.insert(name.to_owned(), grantees);
    }
    Ok(groups)
}
