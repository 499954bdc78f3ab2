//! Holding a revocation while the grantee may still use the image (issue 18's
//! cross-account use checks, [`crate::cleanup::usage`]). Pure.
//!
//! [`hold_in_use`] runs inside [`super::plan::plan_image`] once the changes are known: every
//! grantee about to lose its launch permission, create-volume permission or KMS grant
//! (the allow-list no longer admits it, the share-with value dropped it) keeps all of
//! them unless the use check answered "unused" for it ([`crate::cleanup::usage::verdict`]).
//! A held grantee stays in the grant record (the suite still owns the grant and revokes it
//! once unused) and gets one `kept` line naming where it is used, or why its use is
//! unknown. The run asks the grantees held as not checked ([`held_unchecked`]), gathers
//! their use and plans again.

use std::collections::BTreeSet;

use super::plan::{grant_account, Changes, PlanItem};
use crate::cleanup::usage::{self, Blocked, Usage};
use crate::config::Config;
use crate::model::{AccountId, Grantee, ImageId};
use crate::report::Outcome;

/// Every grantee `ch` revokes something from (duplicate KMS grants of a desired account
/// are not a revocation).
fn revoked(image: &ImageId, ch: &Changes) -> BTreeSet<Grantee> {
    let mut out: BTreeSet<Grantee> = ch.launch_remove.iter().cloned().collect();
    for (_, accounts) in &ch.snapshot_remove {
        out.extend(accounts.iter().cloned().map(Grantee::Account));
    }
    for g in &ch.grants_revoke {
        if let Some(a) = g.name.as_deref().and_then(|n| grant_account(image, n)) {
            let grantee = Grantee::Account(a);
            if !ch.desired.contains(&grantee) {
                out.insert(grantee);
            }
        }
    }
    out
}

/// Keeps every revocation whose grantee's use is not known to be nil: removes it from the
/// changes, keeps the grantee in the record, records why in `ch.held`, and returns the
/// `kept` lines. Does nothing when the use checks are off ([`usage::enabled`]).
pub fn hold_in_use(
    image: &ImageId,
    ch: &mut Changes,
    facts: Option<&Usage>,
    config: &Config,
) -> Vec<PlanItem> {
    if !usage::enabled(config) {
        return Vec::new();
    }
    let mut items = Vec::new();
    for g in revoked(image, ch) {
        let Some(blocked) = usage::verdict(facts, image, std::slice::from_ref(&g)) else {
            continue;
        };
        let outcome = match &blocked {
            Blocked::InUse(_) => Outcome::Kept,
            Blocked::Failed {
                retryable: false, ..
            } => Outcome::Failed,
            _ => Outcome::Deferred,
        };
        items.push(PlanItem {
            subject: g.to_string(),
            outcome,
            reason: format!(
                "{blocked}: its grants are not revoked until it no longer uses the image"
            ),
        });
        ch.held.push((g, blocked));
    }
    if ch.held.is_empty() {
        return items;
    }
    let held: BTreeSet<&Grantee> = ch.held.iter().map(|(g, _)| g).collect();
    let held_account = |a: &AccountId| held.contains(&Grantee::Account(a.clone()));
    ch.launch_remove.retain(|g| !held.contains(g));
    for (_, accounts) in &mut ch.snapshot_remove {
        accounts.retain(|a| !held_account(a));
    }
    ch.snapshot_remove
        .retain(|(_, accounts)| !accounts.is_empty());
    ch.grants_revoke.retain(|g| {
        g.name
            .as_deref()
            .and_then(|n| grant_account(image, n))
            .is_none_or(|a| !held_account(&a) || ch.desired.contains(&Grantee::Account(a)))
    });
    for g in &held {
        if !ch.record_after.contains(g) {
            ch.record_after.push((*g).clone());
        }
    }
    ch.record_after.sort();
    items
}

/// The grantees held because their use was not checked yet: the ones the run asks.
pub fn held_unchecked(ch: &Changes) -> Vec<Grantee> {
    ch.held
        .iter()
        .filter(|(_, b)| matches!(b, Blocked::NotChecked(_)))
        .map(|(g, _)| g.clone())
        .collect()
}
