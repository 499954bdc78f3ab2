//! Many accounts from one deployment (issue 18, first slice): one request run in each
//! account `AMI_LIFECYCLE_ACCOUNTS` selects, one after the other, each with a [`Context`]
//! whose cloud acts in that account, and one merged report.
//!
//! - [`open_accounts`] reads this deployment's account (`sts:GetCallerIdentity`), the
//!   Organizations listing the `ou:`/`org` selectors need, resolves the accounts
//!   ([`crate::accounts::resolve`]) and opens each: the own account with the function's
//!   own credentials, every other one through its spoke role ([`Cloud::for_account`]). An
//!   account that cannot be opened is one report item naming the account, the role and
//!   the fix; the others are unaffected. `amictl status` uses it too.
//! - [`run_in_accounts`] runs the request in each opened account and merges the reports;
//!   every item carries its account.
//!
//! Continuations (create-image's reboot waves) are the hub's: each account's run asks for
//! the same continuation (schedule, slot, round), which is sent once per run, and the
//! next round runs every account again. Run reports are published once, merged.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Runner;
use crate::accounts::{self, AccountSelector, Listing};
use crate::context::Context;
use crate::error::CloudResult;
use crate::model::{AccountId, Region};
use crate::ports::{
    Agents, Cloud, Continuations, Ec2, Keys, LaunchTemplates, Ledger, Organization, Parameters,
    RecycleBin, Reports, Seals, WorkQueue,
};
use crate::report::{Outcome, ReportItem, RunReport};

/// Which accounts a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every account `AMI_LIFECYCLE_ACCOUNTS` selects (schedules, reconciles, direct
    /// invocations, continuations).
    Selected,
    /// The account an EC2 event is about (its envelope's `account`; this deployment's own
    /// when it has none), and only if `AMI_LIFECYCLE_ACCOUNTS` selects it. Spoke accounts'
    /// events reach the hub's bus through the forwarder StackSet; EventBridge keeps the
    /// source account in `account`.
    Event(Option<AccountId>),
}

impl Scope {
    /// The scope of an EC2 event `payload` (an AMI state or tag change).
    pub fn of_event(payload: &serde_json::Value) -> Self {
        Self::Event(
            payload
                .get("account")
                .and_then(serde_json::Value::as_str)
                .and_then(AccountId::parse),
        )
    }
}

/// The accounts of a run, each with its context, and the report items about accounts
/// (left out, unreachable).
pub struct Opened {
    pub own: Option<AccountId>,
    pub contexts: Vec<(AccountId, Context)>,
    pub report: RunReport,
}

pub(crate) fn home(ctx: &Context) -> Region {
    ctx.config
        .regions
        .first()
        .cloned()
        .unwrap_or_else(|| Region::new("us-east-1"))
}

pub(crate) fn push(
    report: &mut RunReport,
    ctx: &Context,
    account: Option<&AccountId>,
    subject: &str,
    outcome: Outcome,
    reason: String,
) {
    report.add(ReportItem {
        account: account.cloned(),
        region: home(ctx),
        subject: subject.to_owned(),
        image: None,
        outcome,
        reason,
    });
}

/// The accounts of a run before they are opened: this deployment's own account (when it
/// could be read), the accounts selected, and the report items about accounts left out.
pub struct Selected {
    pub own: Option<AccountId>,
    pub accounts: Vec<AccountId>,
    pub report: RunReport,
}

/// Resolves the accounts of `function`'s run (see the module docs) without opening them.
/// Called only when `AMI_LIFECYCLE_ACCOUNTS` is set.
pub async fn select_accounts(
    ctx: &Context,
    function: &str,
    now: OffsetDateTime,
    scope: Scope,
) -> Selected {
    let mut report = RunReport::new(function, ctx.dry_run(), now);
    let own = match ctx.cloud.account().await {
        Ok(a) => a,
        Err(e) => {
            push(
                &mut report,
                ctx,
                None,
                "accounts",
                Outcome::for_error(&e),
                format!(
                    "no account acted on: this deployment's own account could not be read ({e})"
                ),
            );
            return Selected {
                own: None,
                accounts: Vec::new(),
                report,
            };
        }
    };
    let selectors = &ctx.config.accounts;
    let resolved = match scope {
        Scope::Selected => {
            let listing = list(ctx, selectors, &mut report).await;
            accounts::resolve(selectors, &listing, &own)
        }
        Scope::Event(about) => {
            let target = about.unwrap_or_else(|| own.clone());
            // Every account the hub acts in is a member of its organization: `org` or
            // the account's id select it without a listing; otherwise only the OUs named
            // can.
            let named = selectors.iter().any(|s| match s {
                AccountSelector::Org => true,
                AccountSelector::Account(a) => *a == target,
                AccountSelector::Ou(_) => false,
            });
            let selected = named || {
                let ous: Vec<AccountSelector> = selectors
                    .iter()
                    .filter(|s| matches!(s, AccountSelector::Ou(_)))
                    .cloned()
                    .collect();
                let listing = list(ctx, &ous, &mut report).await;
                accounts::resolve(&ous, &listing, &own)
                    .accounts
                    .contains(&target)
            };
            if !selected {
                push(
                    &mut report,
                    ctx,
                    Some(&target),
                    target.as_str(),
                    Outcome::Skipped,
                    format!("the event is about account {target}, which AMI_LIFECYCLE_ACCOUNTS does not select: nothing done"),
                );
            }
            accounts::Resolved {
                accounts: if selected { vec![target] } else { Vec::new() },
                left_out: Vec::new(),
            }
        }
    };
    for (account, why) in &resolved.left_out {
        push(
            &mut report,
            ctx,
            Some(account),
            account.as_str(),
            Outcome::Skipped,
            why.clone(),
        );
    }
    Selected {
        own: Some(own),
        accounts: resolved.accounts,
        report,
    }
}

/// Resolves and opens the accounts of `function`'s run (see the module docs). Called only
/// when `AMI_LIFECYCLE_ACCOUNTS` is set.
pub async fn open_accounts(
    ctx: &Context,
    function: &str,
    now: OffsetDateTime,
    scope: Scope,
) -> Opened {
    let Selected {
        own,
        accounts,
        mut report,
    } = select_accounts(ctx, function, now, scope).await;
    let Some(own) = own else {
        return Opened {
            own: None,
            contexts: Vec::new(),
            report,
        };
    };
    let continuations = ctx.cloud.continuations().map(|inner| {
        Arc::new(OnceContinuations {
            inner,
            sent: Mutex::default(),
        }) as Arc<dyn Continuations>
    });
    let mut contexts = Vec::new();
    for account in accounts {
        match open_account(ctx, &own, &account, function, continuations.clone()).await {
            Ok(scoped) => contexts.push((account, scoped)),
            Err((outcome, why)) => push(
                &mut report,
                ctx,
                Some(&account),
                account.as_str(),
                outcome,
                why,
            ),
        }
    }
    Opened {
        own: Some(own),
        contexts,
        report,
    }
}

/// A context acting in `account` as `function`: the hub's own cloud for its own account,
/// else the spoke role's ([`Cloud::for_account`]); continuations go to `continuations`.
/// Why it cannot be opened is the outcome and the line of its report item (the account,
/// the role, the fix).
pub async fn open_account(
    ctx: &Context,
    own: &AccountId,
    account: &AccountId,
    function: &str,
    continuations: Option<Arc<dyn Continuations>>,
) -> Result<Context, (Outcome, String)> {
    let cloud = if account == own {
        ctx.cloud.clone()
    } else if ctx.config.spoke_external_id.is_none() {
        return Err((
            Outcome::Failed,
            format!(
                "cannot act in account {account}: SPOKE_EXTERNAL_ID is not set; set it to the ExternalId the spoke stack (infra/spoke-role.yaml) was deployed with; the other accounts are unaffected"
            ),
        ));
    } else {
        match ctx.cloud.for_account(account, function).await {
            Ok(c) => c,
            Err(e) => {
                let role = accounts::spoke_role_arn(
                    accounts::partition(&home(ctx)),
                    account,
                    &ctx.config.deployment,
                    function,
                );
                let fix = if e.is_retryable() {
                    "the next run tries again".to_owned()
                } else {
                    format!(
                        "deploy infra/spoke-role.yaml in {account} (StackSet) with DeploymentName={}, HubAccountId={own} and this deployment's SPOKE_EXTERNAL_ID",
                        ctx.config.deployment
                    )
                };
                return Err((
                    Outcome::for_error(&e),
                    format!(
                        "cannot act in account {account}: assuming {role} failed ({e}); {fix}; the other accounts are unaffected"
                    ),
                ));
            }
        }
    };
    Ok(Context {
        cloud: Arc::new(InAccount {
            inner: cloud,
            continuations,
        }),
        ..ctx.clone()
    })
}

/// What Organizations says for the selectors that need it; a failed listing is a report
/// item, and its selector selects nothing.
async fn list(ctx: &Context, selectors: &[AccountSelector], report: &mut RunReport) -> Listing {
    let mut listing = Listing::default();
    if !selectors.iter().any(AccountSelector::needs_organization) {
        return listing;
    }
    let org = ctx.cloud.organization();
    for s in selectors {
        let answer = match s {
            AccountSelector::Account(_) => continue,
            AccountSelector::Org => org.accounts().await.map(|a| listing.org = Some(a)),
            AccountSelector::Ou(ou) => org.accounts_under(ou).await.map(|a| {
                listing.ous.insert(ou.clone(), a);
            }),
        };
        if let Err(e) = answer {
            push(
                report,
                ctx,
                None,
                &s.to_string(),
                Outcome::for_error(&e),
                format!(
                    "the accounts of {s} could not be listed ({e}): none of them is acted on; the hub must run in the organization's management account or a delegated administrator, with organizations:ListAccounts, ListAccountsForParent and ListOrganizationalUnitsForParent"
                ),
            );
        }
    }
    listing
}

/// Runs `request` in every account of the run, one after the other, and merges the
/// reports (each item with its account). Stops opening accounts when the deadline is
/// near: the rest are deferred to the next run.
pub async fn run_in_accounts<R: Runner>(
    ctx: &Context,
    request: R::Request,
    now: OffsetDateTime,
    scope: Scope,
) -> RunReport {
    let opened = open_accounts(ctx, R::NAME, now, scope).await;
    let mut report = opened.report;
    let total = opened.contexts.len();
    let mut done = 0_u32;
    for (account, actx) in opened.contexts {
        if ctx.deadline.near() {
            push(
                &mut report,
                ctx,
                Some(&account),
                account.as_str(),
                Outcome::Deferred,
                "not started: the invocation's deadline is near; the next run does it".to_owned(),
            );
            report
                .incomplete
                .get_or_insert_with(|| "deadline".to_owned());
            continue;
        }
        ctx.progress(&format!("account {account}"));
        let ran =
            crate::report::sink::in_account(&account, R::run(&actx, request.clone(), now)).await;
        report.merge(ran.in_account(&account));
        done += 1;
    }
    report
        .metrics
        .insert("accounts".to_owned(), f64::from(done));
    tracing::info!(accounts = total, done, "accounts acted on");
    report
}

/// Sends each distinct continuation once per run (every account's run asks for the same).
struct OnceContinuations {
    inner: Arc<dyn Continuations>,
    sent: Mutex<HashSet<String>>,
}

#[async_trait]
impl Continuations for OnceContinuations {
    async fn continue_later(
        &self,
        body: &serde_json::Value,
        delay_seconds: u32,
    ) -> CloudResult<()> {
        let fresh = self
            .sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(body.to_string());
        if !fresh {
            return Ok(());
        }
        self.inner.continue_later(body, delay_seconds).await
    }
}

/// One account's cloud with the run's shared continuations.
struct InAccount {
    inner: Arc<dyn Cloud>,
    continuations: Option<Arc<dyn Continuations>>,
}

#[async_trait]
impl Cloud for InAccount {
    fn ec2(&self, region: &Region) -> Arc<dyn Ec2> {
        self.inner.ec2(region)
    }
    fn keys(&self, region: &Region) -> Arc<dyn Keys> {
        self.inner.keys(region)
    }
    fn recycle_bin(&self, region: &Region) -> Arc<dyn RecycleBin> {
        self.inner.recycle_bin(region)
    }
    fn reports(&self) -> Arc<dyn Reports> {
        self.inner.reports()
    }
    fn continuations(&self) -> Option<Arc<dyn Continuations>> {
        self.continuations.clone()
    }
    fn seals(&self) -> Arc<dyn Seals> {
        self.inner.seals()
    }
    fn parameters(&self, region: &Region) -> Arc<dyn Parameters> {
        self.inner.parameters(region)
    }
    fn launch_templates(&self, region: &Region) -> Arc<dyn LaunchTemplates> {
        self.inner.launch_templates(region)
    }
    fn agents(&self, region: &Region) -> Arc<dyn Agents> {
        self.inner.agents(region)
    }
    fn organization(&self) -> Arc<dyn Organization> {
        self.inner.organization()
    }
    async fn account(&self) -> CloudResult<AccountId> {
        self.inner.account().await
    }
    async fn for_account(
        &self,
        account: &AccountId,
        function: &str,
    ) -> CloudResult<Arc<dyn Cloud>> {
        self.inner.for_account(account, function).await
    }
    fn work_queue(&self) -> Option<Arc<dyn WorkQueue>> {
        self.inner.work_queue()
    }
    fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        self.inner.ledger()
    }
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
