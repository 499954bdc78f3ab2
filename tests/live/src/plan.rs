//! What a run creates and does, decided before any AWS call: [`Plan::new`] lists the
//! [`Planned`] resources (every one tagged with the run id) and the steps. The dry run
//! prints it; the live run prints it (with the cost) before creating anything, and
//! [`crate::lifecycle`] follows it.

use std::fmt;

use crate::cost::{estimate, CostTable};
use crate::settings::{Settings, RUN_TAG};

/// Images the create-image runner makes of the test instance (A, B, C, one slot each).
pub const IMAGES: usize = 3;
/// Versions of the launch template; version 1 (the oldest) pins image A.
pub const LAUNCH_TEMPLATE_VERSIONS: usize = 12;
/// The root volume size of the Amazon Linux 2023 images, GiB.
pub const ROOT_GIB: u32 = 8;
/// Days a deleted KMS key waits before AWS removes it (the minimum AWS allows).
pub const KEY_PENDING_DAYS: i32 = 7;
/// The smallest size per architecture: t4g.nano where the region offers it, else t3.nano.
pub const INSTANCE_TYPES: [(&str, &str); 2] = [("t4g.nano", "arm64"), ("t3.nano", "x86_64")];

/// The public SSM parameter holding the latest Amazon Linux 2023 image of `arch`
/// (`arm64` or `x86_64`); RunInstances resolves it (`resolve:ssm:`).
pub fn amazon_linux_parameter(arch: &str) -> String {
    format!("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}")
}

/// One resource a run creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub region: String,
    pub resource: String,
    pub detail: String,
}

/// The whole run, for printing.
#[derive(Debug, Clone)]
pub struct Plan {
    pub settings: Settings,
    pub resources: Vec<Planned>,
    pub steps: Vec<String>,
}

impl Plan {
    pub fn new(s: &Settings) -> Self {
        let run = s.run.as_str();
        let at = |region: &str, resource: &str, detail: String| Planned {
            region: region.to_owned(),
            resource: resource.to_owned(),
            detail,
        };
        let [(arm, _), (x86, _)] = INSTANCE_TYPES;
        let mut resources = vec![
            at(
                &s.replica,
                "KMS key",
                format!("customer managed, symmetric; replicas are encrypted with it; deletion scheduled ({KEY_PENDING_DAYS}-day minimum wait) at teardown"),
            ),
            at(
                &s.home,
                "event bus",
                format!("{run}: the run reports go there, not to the default bus (no deployed alarm sees them)"),
            ),
            at(
                &s.home,
                "instance",
                format!(
                    "{arm} where the region offers it, else {x86}; latest Amazon Linux 2023 (resolve:ssm:{}); {} subnet; tag ami-lifecycle:schedule={run}",
                    amazon_linux_parameter("<arch>"),
                    s.subnet.as_deref().unwrap_or("default VPC")
                ),
            ),
            at(
                &s.home,
                "images A, B, C",
                format!("create-image runner, one slot each, WITH reboot; {ROOT_GIB} GiB snapshot each"),
            ),
            at(
                &s.replica,
                "replica of C",
                "replicate runner, CopyImage encrypted with the KMS key above".to_owned(),
            ),
            at(
                &s.home,
                "launch template",
                format!("{LAUNCH_TEMPLATE_VERSIONS} versions: version 1 (the oldest) pins image A, versions 2-{LAUNCH_TEMPLATE_VERSIONS} the Amazon Linux image; default version {LAUNCH_TEMPLATE_VERSIONS}"),
            ),
        ];
        if let Some(a) = &s.share_account {
            resources.push(at(
                &s.home,
                "launch permissions",
                format!("image C and its replica shared with {a} (share runner), plus a KMS grant on the key"),
            ));
        }
        let mut steps = vec![
            "check credentials (STS GetCallerIdentity); print this plan and the cost".to_owned(),
            format!("create the KMS key ({}), the event bus and the instance; wait until it runs", s.replica),
            format!("create-image ×{IMAGES} ({{\"schedule\": \"{run}\", \"slot\": …}}): images A, B, C, each rebooted and available"),
            format!("replicate image C to {} ({{\"image\": C, \"region\": \"{}\"}}): the copy is available and encrypted with the key", s.replica, s.home),
        ];
        match &s.share_account {
            Some(a) => steps.push(format!("tag image C ami-lifecycle:share-with={a}; share ({{\"image\": C}}): C and its replica launchable by {a}, KMS grant for {a}")),
            None => steps.push("share: skipped (set LIVE_SHARE_ACCOUNT to a second account to run it)".to_owned()),
        }
        steps.push(format!("launch template: version 1 pins A, {} more versions, default {LAUNCH_TEMPLATE_VERSIONS}", LAUNCH_TEMPLATE_VERSIONS - 1));
        steps.push("cleanup ({}, RETAIN=count=1): B deleted with its snapshot; A kept (only the oldest of 12 template versions uses it); C and its replica kept".to_owned());
        steps.push(format!("teardown, always (also after a failure or Ctrl-C): delete everything tagged {RUN_TAG}={run} or managed by {run}, schedule the key's deletion, then list what is left (must be nothing)"));
        Self {
            settings: s.clone(),
            resources,
            steps,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        writeln!(f, "ami-lifecycle live test, run {}", s.run)?;
        writeln!(
            f,
            "home region {}, replica region {}, share account {}",
            s.home,
            s.replica,
            s.share_account
                .as_ref()
                .map_or("none".to_owned(), |a| a.to_string())
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "Creates (every resource tagged {RUN_TAG}={}; the suite runs as deployment {}):",
            s.run, s.run
        )?;
        let rw = self
            .resources
            .iter()
            .map(|r| r.region.len())
            .max()
            .unwrap_or(0);
        let kw = self
            .resources
            .iter()
            .map(|r| r.resource.len())
            .max()
            .unwrap_or(0);
        for r in &self.resources {
            writeln!(f, "  {:<rw$}  {:<kw$}  {}", r.region, r.resource, r.detail)?;
        }
        writeln!(f)?;
        writeln!(f, "Steps:")?;
        for (n, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {}. {step}", n + 1)?;
        }
        writeln!(f)?;
        write!(f, "{}", CostTable(&estimate()))
    }
}

#[cfg(test)]
mod tests {
    use ami_core::model::AccountId;
    use time::macros::datetime;

    use super::*;
    use crate::settings::RunId;

    fn settings(share: Option<&str>) -> Settings {
        Settings {
            run: RunId::new(datetime!(2026-12-01 15:40 UTC), 0xa3f9),
            home: "eu-west-1".to_owned(),
            replica: "eu-central-1".to_owned(),
            share_account: share.and_then(AccountId::parse),
            subnet: None,
        }
    }

    fn lines_with<'a>(listing: &'a str, words: &str) -> Vec<&'a str> {
        listing.lines().filter(|l| l.contains(words)).collect()
    }

    #[test]
    fn the_listing_names_every_resource_with_its_region_and_the_run_tag() {
        let listing = Plan::new(&settings(None)).to_string();
        assert!(
            listing
                .contains("every resource tagged ami-lifecycle-live-run=live-20261201t1540-a3f9"),
            "{listing}"
        );
        for (region, resource) in [
            ("eu-central-1", "KMS key"),
            ("eu-west-1", "event bus"),
            ("eu-west-1", "instance"),
            ("eu-west-1", "images A, B, C"),
            ("eu-central-1", "replica of C"),
            ("eu-west-1", "launch template"),
        ] {
            // Rows are columns separated by at least two spaces: region, resource, detail.
            let rows = listing
                .lines()
                .filter(|l| {
                    let cols: Vec<&str> = l
                        .split("  ")
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .collect();
                    cols.len() == 3 && cols[0] == region && cols[1] == resource
                })
                .count();
            assert_eq!(rows, 1, "{region} {resource} in\n{listing}");
        }
        let instance = lines_with(&listing, "  instance ")[0];
        assert!(
            instance.contains("t4g.nano where the region offers it, else t3.nano"),
            "{instance}"
        );
        assert!(
            instance.contains(
                "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-"
            ),
            "{instance}"
        );
        assert!(
            instance.contains("ami-lifecycle:schedule=live-20261201t1540-a3f9"),
            "{instance}"
        );
        let template = lines_with(&listing, "  launch template ")[0];
        assert!(
            template.contains("12 versions: version 1 (the oldest) pins image A"),
            "{template}"
        );
        assert!(
            listing.contains("A kept (only the oldest of 12 template versions uses it)"),
            "{listing}"
        );
        assert!(listing.contains("teardown, always"), "{listing}");
    }

    #[test]
    fn sharing_is_listed_only_with_a_share_account() {
        let without = Plan::new(&settings(None)).to_string();
        assert!(without.contains("share account none"), "{without}");
        assert!(
            lines_with(&without, "launch permissions").is_empty(),
            "{without}"
        );
        assert_eq!(
            lines_with(&without, "share: skipped (set LIVE_SHARE_ACCOUNT").len(),
            1
        );

        let with = Plan::new(&settings(Some("111122223333"))).to_string();
        assert!(with.contains("share account 111122223333"), "{with}");
        let row = lines_with(&with, "launch permissions");
        assert_eq!(row.len(), 1, "{with}");
        assert!(row[0].contains("shared with 111122223333"), "{}", row[0]);
        assert!(lines_with(&with, "share: skipped").is_empty(), "{with}");
        assert_eq!(
            lines_with(&with, "tag image C ami-lifecycle:share-with=111122223333").len(),
            1
        );
    }

    #[test]
    fn the_cost_is_printed_with_its_date_and_a_total() {
        let listing = Plan::new(&settings(None)).to_string();
        for words in [
            "approximate",
            "as of 2026-12-01",
            "instance-hours",
            "snapshot GiB-months, pro rata",
            "KMS key-month, pro rata",
            "copy data transfer",
        ] {
            assert!(listing.contains(words), "{words:?} missing in\n{listing}");
        }
        let lines = estimate();
        let total: f64 = lines.iter().map(|l| l.usd).sum();
        let printed = lines_with(&listing, "  total ");
        assert_eq!(printed.len(), 1, "{listing}");
        assert!(
            printed[0].ends_with(&format!("${total:>7.4}")),
            "{}",
            printed[0]
        );
        // A run is cents, not dollars: the copy's transfer (8 GB × $0.02) dominates.
        assert!((0.1..1.0).contains(&total), "total {total}");
    }
}
