//! `SHARE_ALLOWED=org`: the allow-list read from Organizations at the start of every share
//! run, so an account that joins the organization is admitted by the next run and one that
//! leaves (or is suspended) loses what it was given at the next reconcile.
//!
//! [`resolve`] returns the run's [`Context`] with the allow-list read
//! ([`AllowList::with_organization`]: `DescribeOrganization` for the organization's ARN,
//! `ListAccounts` for its `ACTIVE` accounts). When a call fails, the list keeps its
//! explicit entries and `org` decides nothing ([`AllowList::unlisted`]): what only the
//! organization could admit is not granted, and what the suite granted is not revoked
//! because of the failure (`share::plan::screen` defers such images); one report item
//! names the failure and the fix.
//!
//! [`AllowList`]: crate::share_target::AllowList
//! [`AllowList::with_organization`]: crate::share_target::AllowList::with_organization
//! [`AllowList::unlisted`]: crate::share_target::AllowList::unlisted

use std::sync::Arc;

use crate::context::Context;
use crate::error::CloudResult;
use crate::report::{Outcome, RunReport};

/// The allow-list of this run: `ctx` itself when `SHARE_ALLOWED` does not name `org`,
/// else a context whose configuration has the organization read (or marked unlisted, with
/// a report item).
pub async fn resolve(ctx: &Context, report: &mut RunReport) -> Context {
    let allowed = &ctx.config.share_allowed;
    if !allowed.needs_organization() {
        return ctx.clone();
    }
    let listed: CloudResult<_> = async {
        let org = ctx.cloud.organization();
        let arn = org.organization_arn().await?;
        let accounts = org.accounts().await?;
        Ok((arn, accounts))
    }
    .await;
    let list = match listed {
        Ok((arn, accounts)) => {
            let active = accounts.iter().filter(|a| a.is_active()).count();
            tracing::info!(organization = %arn, accounts = active, "SHARE_ALLOWED=org read");
            report
                .metrics
                .insert("org_accounts_allowed".to_owned(), active as f64);
            allowed.with_organization(&arn, &accounts)
        }
        Err(e) => {
            let why =
                format!("SHARE_ALLOWED names org, and the organization could not be read ({e})");
            let home = ctx
                .config
                .regions
                .first()
                .cloned()
                .unwrap_or_else(|| crate::model::Region::new("us-east-1"));
            report.push(
                &home,
                "SHARE_ALLOWED=org",
                None,
                Outcome::for_error(&e),
                format!(
                    "{why}: nothing is granted that only the organization admits, and nothing is revoked for want of it (those images are deferred); the explicit entries apply. Fix: run the share function in the organization's management account or a delegated administrator, with organizations:DescribeOrganization and organizations:ListAccounts; the next run reads it again"
                ),
            );
            allowed.unlisted(&why)
        }
    };
    let mut config = (*ctx.config).clone();
    config.share_allowed = list;
    Context {
        config: Arc::new(config),
        ..ctx.clone()
    }
}
