//! The expected cost of one run, printed before anything is created: [`estimate`] prices
//! what the [`crate::plan`] creates ([`CostLine`]s) from list prices kept here as constants.
//!
//! The prices are APPROXIMATE: on-demand list prices of us-east-1 as of [`PRICES_AS_OF`];
//! other regions cost a little more or less, and AWS changes prices. Quantities are upper
//! bounds (full-size snapshots, the whole root volume copied), pro rata over
//! [`EXPECTED_HOURS`].

use std::fmt;

use crate::plan::{IMAGES, ROOT_GIB};

/// When the prices below were read from the AWS pricing pages.
pub const PRICES_AS_OF: &str = "2026-12-01";
/// How long a run keeps its resources: create ×3 with reboot, one cross-region copy,
/// cleanup and teardown (the copy dominates).
pub const EXPECTED_HOURS: f64 = 1.5;
const HOURS_PER_MONTH: f64 = 730.0;

/// USD per instance-hour, t3.nano (the dearer of the two sizes the run may pick).
pub const T3_NANO_HOUR: f64 = 0.0052;
/// USD per instance-hour, t4g.nano.
pub const T4G_NANO_HOUR: f64 = 0.0042;
/// USD per hour of a public IPv4 address (the default VPC gives the instance one).
pub const PUBLIC_IPV4_HOUR: f64 = 0.005;
/// USD per GiB-month of gp3 volume.
pub const GP3_GIB_MONTH: f64 = 0.08;
/// USD per GiB-month of EBS snapshot (standard tier).
pub const SNAPSHOT_GIB_MONTH: f64 = 0.05;
/// USD per customer managed KMS key-month (pro rata per hour).
pub const KMS_KEY_MONTH: f64 = 1.0;
/// USD per GB transferred between regions (the AMI copy).
pub const INTER_REGION_GB: f64 = 0.02;

/// One row of the cost table.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    pub item: &'static str,
    pub quantity: String,
    pub usd: f64,
}

/// The cost of one run (see the module docs for what "approximate" covers).
pub fn estimate() -> Vec<CostLine> {
    let h = EXPECTED_HOURS;
    let month = h / HOURS_PER_MONTH;
    // Images at home plus the one replica; each snapshot counted at the full root size.
    let snapshots = (IMAGES + 1) as f64;
    vec![
        CostLine {
            item: "instance-hours (t3.nano price; t4g.nano is cheaper)",
            quantity: format!("{h} h × ${T3_NANO_HOUR}/h"),
            usd: h * T3_NANO_HOUR,
        },
        CostLine {
            item: "public IPv4 address",
            quantity: format!("{h} h × ${PUBLIC_IPV4_HOUR}/h"),
            usd: h * PUBLIC_IPV4_HOUR,
        },
        CostLine {
            item: "root volume (gp3), pro rata",
            quantity: format!("{ROOT_GIB} GiB × {h} h of ${GP3_GIB_MONTH}/GiB-month"),
            usd: ROOT_GIB as f64 * GP3_GIB_MONTH * month,
        },
        CostLine {
            item: "snapshot GiB-months, pro rata",
            quantity: format!(
                "{snapshots} × {ROOT_GIB} GiB × {h} h of ${SNAPSHOT_GIB_MONTH}/GiB-month"
            ),
            usd: snapshots * ROOT_GIB as f64 * SNAPSHOT_GIB_MONTH * month,
        },
        CostLine {
            item: "KMS key-month, pro rata",
            quantity: format!("1 key × {h} h of ${KMS_KEY_MONTH}/month"),
            usd: KMS_KEY_MONTH * month,
        },
        CostLine {
            item: "copy data transfer (inter-region)",
            quantity: format!("≤ {ROOT_GIB} GB × ${INTER_REGION_GB}/GB"),
            usd: ROOT_GIB as f64 * INTER_REGION_GB,
        },
    ]
}

/// The table, with its total and what the numbers are.
pub struct CostTable<'a>(pub &'a [CostLine]);

impl fmt::Display for CostTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Expected cost (approximate: us-east-1 list prices as of {PRICES_AS_OF}, upper bounds, {EXPECTED_HOURS} h run):"
        )?;
        let width = self.0.iter().map(|l| l.item.len()).max().unwrap_or(0);
        let qwidth = self
            .0
            .iter()
            .map(|l| l.quantity.chars().count())
            .max()
            .unwrap_or(0);
        for l in self.0 {
            writeln!(
                f,
                "  {:<width$}  {:<qwidth$}  ${:>7.4}",
                l.item, l.quantity, l.usd
            )?;
        }
        let total: f64 = self.0.iter().map(|l| l.usd).sum();
        writeln!(f, "  {:<width$}  {:<qwidth$}  ${total:>7.4}", "total", "")
    }
}
