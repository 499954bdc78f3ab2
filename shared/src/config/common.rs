//! Settings every runner reads: who the deployment is, where it works, the default
//! retention, dry run and where reports go.
//!
//! `AMI_LIFECYCLE_NAME` feeds derived values with AWS limits (image names, tag values,
//! EventBridge rule and Lambda function names), so its limits are checked here, once,
//! at start-up: no valid configuration can produce a request AWS refuses.

use super::parse::{bool_setting, err, parse_regions, Lookup};
use super::ConfigError;
use crate::model::Region;
use crate::retention::RetentionRule;

/// The longest deployment name. Every name derived from it stays inside its AWS limit:
/// `NAME-schedule-SCHEDULE` EventBridge rules (64, see [`super::create`]),
/// `NAME-create-image` Lambda functions (64), `NAME/i-…/SCHEDULE/SLOT` image names (128).
pub const DEPLOYMENT_MAX: usize = 32;

const DEPLOYMENT_ACCEPTED: &str =
    "1-32 lowercase letters, digits and '-', not starting with '-' (it prefixes AWS resource names)";

pub(super) struct CommonSettings {
    pub deployment: String,
    pub regions: Vec<Region>,
    pub retain: RetentionRule,
    pub dry_run: bool,
    pub report_bus: String,
    pub seal_key: Option<String>,
}

/// Whether `name` can be a deployment name: see [`DEPLOYMENT_ACCEPTED`].
pub fn is_deployment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= DEPLOYMENT_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

impl CommonSettings {
    pub(super) fn from_lookup(get: &Lookup<'_>) -> Result<Self, ConfigError> {
        let deployment = get("AMI_LIFECYCLE_NAME").unwrap_or_else(|| "ami-lifecycle".to_owned());
        if !is_deployment_name(&deployment) {
            let problem = if deployment.chars().count() > DEPLOYMENT_MAX {
                format!(
                    "{} characters, more than {DEPLOYMENT_MAX}",
                    deployment.chars().count()
                )
            } else {
                "not a deployment name".to_owned()
            };
            return Err(err(
                "AMI_LIFECYCLE_NAME",
                &deployment,
                problem,
                DEPLOYMENT_ACCEPTED,
            ));
        }

        // Named after the variable that held it, so an error points at the right one.
        let home = get("AWS_REGION")
            .map(|v| ("AWS_REGION", v))
            .or_else(|| get("AWS_DEFAULT_REGION").map(|v| ("AWS_DEFAULT_REGION", v)));
        let regions = match get("AMI_LIFECYCLE_REGIONS") {
            Some(v) => parse_regions("AMI_LIFECYCLE_REGIONS", &v)?,
            None => match &home {
                Some((variable, h)) => parse_regions(variable, h)?,
                None => Vec::new(),
            },
        };
        if regions.is_empty() {
            return Err(err(
                "AMI_LIFECYCLE_REGIONS",
                "",
                "no region to manage (and AWS_REGION is not set)",
                "comma-separated region names, e.g. us-east-1,eu-west-1",
            ));
        }

        let retain = match get("RETAIN") {
            Some(v) => RetentionRule::parse(&v).map_err(|e| {
                err(
                    "RETAIN",
                    &v,
                    e.problem,
                    "count=N, days=N, count=N,days=N, or daily=N,weekly=N,monthly=N",
                )
            })?,
            None => RetentionRule {
                count: Some(7),
                ..RetentionRule::default()
            },
        };

        Ok(Self {
            deployment,
            regions,
            retain,
            dry_run: bool_setting(get, "DRY_RUN", false)?,
            report_bus: get("REPORT_EVENT_BUS").unwrap_or_else(|| "default".to_owned()),
            seal_key: get("SEAL_KEY").map(|v| v.trim().to_owned()),
        })
    }
}
