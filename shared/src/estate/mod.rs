//! A picture of the estate (`amictl report --html FILE`): per region and lineage, the images
//! the inventory holds, what the next cleanup will do with each, storage and monthly cost,
//! and the accounts images are shared with.
//!
//! Three steps, one job each:
//! - [`read`] (`read.rs`) lists this deployment's images per region through the ports (as
//!   `amictl status` does), their launch permissions, and the cleanup runner's **dry-run
//!   report** — retention and every guard are cleanup's own decisions, never judged here;
//! - [`build`] (`build.rs`, pure) turns those into the view model [`Estate`];
//! - [`render_html`] (`html.rs`, pure, with the inline SVG charts of `svg.rs`) turns the
//!   view model into one self-contained HTML page: inline CSS and SVG, no script, no
//!   network at view time, every name and tag value escaped.
//!
//! Deleted images are no longer in EC2: the report shows what the inventory holds now and
//! says so, rather than inventing history.

mod build;
mod html;
mod read;
mod svg;

#[cfg(test)]
mod tests;

use time::OffsetDateTime;

pub use build::{build, Inputs};
pub use html::render_html;
pub use read::read;

/// The whole picture: one [`RegionView`] per region read.
#[derive(Debug, Clone, PartialEq)]
pub struct Estate {
    pub deployment: String,
    pub generated: OffsetDateTime,
    /// `PRICE_PER_GIB_MONTH`: what the cost estimates multiply by.
    pub price_per_gib_month: f64,
    pub regions: Vec<RegionView>,
    /// Per grantee (account id, organization or OU ARN, `all`): the images shared with it.
    pub shares: Vec<AccountShares>,
    /// Things the reader should know: checks that failed, what the inventory cannot show.
    pub notes: Vec<String>,
}

/// One region: its lineages, sorted by name, and the plan's lines that are not about one
/// of its images (orphan snapshots, unsealed images, problems).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionView {
    pub region: String,
    pub lineages: Vec<LineageView>,
    pub other_plan: Vec<PlanLine>,
}

/// One lineage in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct LineageView {
    /// `i-…/daily`, `adopted ACCOUNT/ami-…`, … ([`crate::lineage::Lineage`]'s display).
    pub lineage: String,
    /// The retention rule that applies, or why the lineage is kept whole.
    pub rule: String,
    /// Oldest first (by retention time).
    pub images: Vec<ImageRow>,
    /// Volume GiB of the lineage's images (snapshots are incremental: an upper bound).
    pub gib: u64,
    pub monthly_cost_usd: f64,
}

impl LineageView {
    /// The images the next cleanup will deprecate, disable or deregister.
    pub fn planned(&self) -> impl Iterator<Item = &ImageRow> {
        self.images
            .iter()
            .filter(|i| matches!(i.next_cleanup, NextCleanup::Retire(_)))
    }
}

/// Where an image came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Made here by CreateImage (or registered).
    Created,
    /// Copied from an image in another region.
    Copied {
        from_region: String,
        from_image: String,
    },
}

/// What the next cleanup will do with an image: its dry-run report line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextCleanup {
    /// Kept, and why.
    Keep(String),
    /// Deprecated, disabled or deregistered ("would …: why").
    Retire(String),
    /// Any other outcome (deferred, failed, unsealed): its name and reason.
    Other { outcome: String, reason: String },
    /// The dry run has no line for it.
    NotPlanned,
}

/// One image of a lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    pub id: String,
    pub name: String,
    /// EC2's state: available, pending, disabled, …
    pub state: String,
    pub created: OffsetDateTime,
    /// The time retention counts by (the slot, else the creation time).
    pub retention_time: OffsetDateTime,
    pub deprecation_time: Option<OffsetDateTime>,
    pub origin: Origin,
    pub size_gib: u64,
    pub shared_with: Vec<String>,
    pub next_cleanup: NextCleanup,
}

/// A line of the cleanup plan that is not one of the lineages' images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLine {
    pub subject: String,
    pub outcome: String,
    pub reason: String,
}

/// The images shared with one grantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountShares {
    pub grantee: String,
    /// `(region, lineage, image id)`, sorted.
    pub images: Vec<(String, String, String)>,
}
