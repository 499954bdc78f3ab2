//! [`ReportSink`]: where the items a [`super::RunReport`] does not keep go.
//!
//! A report keeps the first [`super::ITEMS_PER_OUTCOME`] items of each outcome (every
//! failure) and counts the rest. A caller that wants every item (`amictl cleanup --json`)
//! runs the work inside [`streaming`]: each report made in that scope
//! ([`super::RunReport::new`] reads it) hands every item it leaves out to the sink the
//! moment it leaves it out; the caller writes the kept ones once the run is done. Each
//! item thus reaches the output exactly once, and memory stays flat however many images a
//! run decides about. Without a scope (the Lambda functions) the items left out are only
//! counted: the report, its event and its log line stay bounded.
//!
//! A task-local scope rather than a field of the context: reports are made deep inside the
//! runners (one per region, per account, per work item), and every one of them must see it.
//! [`in_account`] narrows the scope to one account of a many-account run, so an item
//! streamed before the run's report is tagged with its account still names it.

use std::future::Future;
use std::sync::Arc;

use super::ReportItem;
use crate::model::AccountId;

/// Receives each item a report leaves out, as it leaves it out.
pub trait ReportSink: Send + Sync {
    fn item(&self, item: &ReportItem);
}

/// A sink and the account of the run in progress, if the deployment acts in several.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) sink: Arc<dyn ReportSink>,
    pub(crate) account: Option<AccountId>,
}

impl Scope {
    /// Hands `item` to the sink, with the scope's account when it names none.
    pub(crate) fn send(&self, mut item: ReportItem) {
        if item.account.is_none() {
            item.account.clone_from(&self.account);
        }
        self.sink.item(&item);
    }
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs `work` with every report made in it streaming the items it leaves out to `sink`.
pub async fn streaming<F: Future>(sink: Arc<dyn ReportSink>, work: F) -> F::Output {
    SCOPE
        .scope(
            Scope {
                sink,
                account: None,
            },
            work,
        )
        .await
}

/// Runs `work` (one account's part of a run) with streamed items tagged `account`; the
/// same as `work` outside a [`streaming`] scope.
pub async fn in_account<F: Future>(account: &AccountId, work: F) -> F::Output {
    match current() {
        Some(mut scope) => {
            scope.account = Some(account.clone());
            SCOPE.scope(scope, work).await
        }
        None => work.await,
    }
}

/// The scope the caller runs in, if any.
pub(crate) fn current() -> Option<Scope> {
    SCOPE.try_with(Clone::clone).ok()
}

/// The scope a report was made in ([`current`] at [`super::RunReport::new`]). Not part of
/// the report's value: two reports that say the same are equal wherever they stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attached(pub(crate) Option<Scope>);

impl PartialEq for Attached {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
