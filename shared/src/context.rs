//! [`Context`]: what every runner needs, handed in by the Lambda handler or `amictl`.
//!
//! Runners (`create::run`, `replicate::run`, `cleanup::run`, `share::run`) take a
//! `&Context` and return a [`RunReport`]; [`Context::finish`] logs the report as one
//! structured JSON line and publishes it as an `ami-lifecycle` event. Publishing is
//! best-effort: a report that cannot be published is logged, never turned into a
//! failed run (the work it describes is already done).

use std::sync::Arc;

use crate::config::Config;
use crate::deadline::Deadline;
use crate::ports::Cloud;
use crate::report::RunReport;
use crate::seal::{Legacy, Sealer};

/// Progress lines for a person watching a terminal (`amictl`); Lambda passes none.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
pub struct Context {
    pub cloud: Arc<dyn Cloud>,
    pub config: Arc<Config>,
    pub deadline: Deadline,
    pub progress: Option<Progress>,
    /// Seals and verifies; its cache of verified seals lives as long as the context (a
    /// warm Lambda container).
    pub sealer: Sealer,
}

impl Context {
    pub fn new(cloud: Arc<dyn Cloud>, config: Config) -> Self {
        // A v1 seal (no account in it) is trusted where a one-account release could have
        // written it: anywhere with one account, else in this (the hub's) account only.
        let legacy = if config.accounts.is_empty() {
            Legacy::Anywhere
        } else {
            Legacy::OwnAccount(cloud.clone())
        };
        Self {
            sealer: Sealer::new(cloud.seals()).with_legacy(legacy),
            cloud,
            config: Arc::new(config),
            deadline: Deadline::none(),
            progress: None,
        }
    }

    pub fn with_deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn dry_run(&self) -> bool {
        self.config.dry_run
    }

    /// Reports progress to the terminal, if anyone is watching.
    pub fn progress(&self, message: &str) {
        if let Some(p) = &self.progress {
            p(message);
        }
    }

    /// Logs the report as one JSON line (in Lambda, its metrics too: [`crate::report::emf`])
    /// and publishes it; returns it unchanged.
    pub async fn finish(&self, report: RunReport) -> RunReport {
        let detail = report.event_detail();
        tracing::info!(report = %detail, "run report");
        // The run's CloudWatch metrics: EMF lines of their own (Lambda only).
        crate::report::emf::emit(&report, &self.config.deployment);
        if let Err(e) = self.cloud.reports().publish(&report).await {
            tracing::warn!(error = %e, "could not publish the run report");
        }
        report
    }
}
