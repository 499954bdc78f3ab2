//! Whether the live test may run, and with what: [`mode`] decides dry run, live or
//! [`Refusal`]; [`Settings::from_lookup`] reads the regions and the share account; [`RunId`]
//! names everything one run creates.
//!
//! Everything here is pure (the environment comes in as a lookup function), so the
//! refusal rules are unit-tested without credentials or network.

use std::fmt;

use ami_core::model::AccountId;
use ami_core::tags::is_region_name;
use time::OffsetDateTime;

/// The opt-in variable: the live test creates billable resources only when it is `1`.
pub const OPT_IN: &str = "AMI_LIFECYCLE_LIVE";
/// The tag every resource of a run carries, valued with the [`RunId`].
pub const RUN_TAG: &str = "ami-lifecycle-live-run";

/// Why the live test did not start. Nothing was created and AWS was not called
/// (except to resolve credentials for [`Refusal::NoCredentials`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{OPT_IN} is {0}: the live test creates billable resources in a real AWS account and runs only when {OPT_IN}=1. \
         Run `make live-test LIVE_DRY_RUN=1` to see what it would create and cost, then `AMI_LIFECYCLE_LIVE=1 make live-test`"
    )]
    NotOptedIn(String),
    #[error(
        "no AWS credentials: {0}. The live test uses the SDK's default chain (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO, instance role); \
         configure one, or run with LIVE_DRY_RUN=1 to only print the plan"
    )]
    NoCredentials(String),
    #[error("{variable}={value:?} is not valid: {problem}. Fix: {fix}")]
    BadSetting {
        variable: &'static str,
        value: String,
        problem: String,
        fix: &'static str,
    },
    #[error("unknown argument {0:?}. Usage: live-test [--dry-run]")]
    Usage(String),
}

/// What this invocation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Print the listing and the cost; no credentials, no AWS call.
    DryRun,
    /// Opted in: check credentials, then create, exercise and tear down.
    Live,
}

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("1" | "true" | "yes")
    )
}

/// Dry run (`--dry-run` or `LIVE_DRY_RUN=1`), live (`AMI_LIFECYCLE_LIVE=1`), or refused.
pub fn mode(args: &[String], get: impl Fn(&str) -> Option<String>) -> Result<Mode, Refusal> {
    let mut dry = truthy(get("LIVE_DRY_RUN").as_deref());
    for a in args {
        match a.as_str() {
            "--dry-run" => dry = true,
            other => return Err(Refusal::Usage(other.to_owned())),
        }
    }
    if dry {
        return Ok(Mode::DryRun);
    }
    match get(OPT_IN) {
        Some(v) if v.trim() == "1" => Ok(Mode::Live),
        Some(v) => Err(Refusal::NotOptedIn(format!("{v:?}"))),
        None => Err(Refusal::NotOptedIn("not set".to_owned())),
    }
}

/// The outcome of resolving credentials through the SDK's default chain.
pub fn require_credentials(resolved: Result<(), String>) -> Result<(), Refusal> {
    resolved.map_err(Refusal::NoCredentials)
}

/// The name of one run: `live-YYYYMMDDtHHMM-xxxx`. It is the run tag's value, the suite's
/// deployment name (`AMI_LIFECYCLE_NAME`: lowercase, ≤ 32 characters) and the schedule the
/// test instance opts into, so the suite acts on nothing but what this run created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId(String);

impl RunId {
    /// `entropy` keeps two runs started in the same minute apart.
    pub fn new(at: OffsetDateTime, entropy: u64) -> Self {
        Self(format!(
            "live-{:04}{:02}{:02}t{:02}{:02}-{:04x}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            entropy & 0xffff
        ))
    }

    /// A run id for now, with entropy from the standard library's random hasher seed.
    pub fn generate() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        h.write_u32(std::process::id());
        Self::new(OffsetDateTime::now_utc(), h.finish())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a run works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub run: RunId,
    /// Where the instance, the images and the launch template live.
    pub home: String,
    /// Where the replica (and the customer managed key) live.
    pub replica: String,
    /// `LIVE_SHARE_ACCOUNT`: the share step runs only when given.
    pub share_account: Option<AccountId>,
    /// `LIVE_SUBNET_ID`: where the instance starts (default: the default VPC).
    pub subnet: Option<String>,
}

fn region_setting(variable: &'static str, value: String) -> Result<String, Refusal> {
    if is_region_name(&value) {
        Ok(value)
    } else {
        Err(Refusal::BadSetting {
            variable,
            value,
            problem: "not a region name".to_owned(),
            fix: "a region such as us-east-1",
        })
    }
}

impl Settings {
    /// Reads `LIVE_REGION` (else `AWS_REGION`, `AWS_DEFAULT_REGION`, then `sdk_region`, the
    /// region of the SDK's profile; a dry run falls back to us-east-1),
    /// `LIVE_REPLICA_REGION` (default us-west-2, or us-east-1 when home is us-west-2),
    /// `LIVE_SHARE_ACCOUNT` and `LIVE_SUBNET_ID`.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        sdk_region: Option<String>,
        mode: Mode,
        run: RunId,
    ) -> Result<Self, Refusal> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let home = ["LIVE_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"]
            .into_iter()
            .find_map(|k| get(k).map(|v| (k, v)));
        let home = match (home, sdk_region, mode) {
            (Some((variable, v)), _, _) => region_setting(variable, v)?,
            (None, Some(r), _) => region_setting("AWS_REGION", r)?,
            (None, None, Mode::DryRun) => "us-east-1".to_owned(),
            (None, None, Mode::Live) => {
                return Err(Refusal::BadSetting {
                    variable: "LIVE_REGION",
                    value: String::new(),
                    problem: "no home region (LIVE_REGION, AWS_REGION and the profile name none)"
                        .to_owned(),
                    fix: "set LIVE_REGION=us-east-1 (or any region)",
                })
            }
        };
        let replica = match get("LIVE_REPLICA_REGION") {
            Some(v) => region_setting("LIVE_REPLICA_REGION", v)?,
            None if home == "us-west-2" => "us-east-1".to_owned(),
            None => "us-west-2".to_owned(),
        };
        if replica == home {
            return Err(Refusal::BadSetting {
                variable: "LIVE_REPLICA_REGION",
                value: replica,
                problem: "the replica region is the home region".to_owned(),
                fix: "choose another region: the copy must cross regions",
            });
        }
        let share_account = match get("LIVE_SHARE_ACCOUNT") {
            Some(v) => Some(AccountId::parse(&v).ok_or(Refusal::BadSetting {
                variable: "LIVE_SHARE_ACCOUNT",
                value: v,
                problem: "not a 12-digit account id".to_owned(),
                fix: "a second account you own, e.g. 111122223333, or leave it unset to skip sharing",
            })?),
            None => None,
        };
        let subnet = match get("LIVE_SUBNET_ID") {
            Some(v) if v.starts_with("subnet-") => Some(v),
            Some(v) => {
                return Err(Refusal::BadSetting {
                    variable: "LIVE_SUBNET_ID",
                    value: v,
                    problem: "not a subnet id".to_owned(),
                    fix: "subnet-… in the home region, or unset to use the default VPC",
                })
            }
            None => None,
        };
        Ok(Self {
            run,
            home,
            replica,
            share_account,
            subnet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn run() -> RunId {
        RunId::new(datetime!(2026-12-01 15:40:59 UTC), 0xa3f9)
    }

    fn check_mode(args: &[&str], pairs: &[(&str, &str)], expected: Result<Mode, &str>) {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        match (mode(&args, env(pairs)), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{args:?} {pairs:?}"),
            (Err(e), Err(words)) => {
                assert!(e.to_string().contains(words), "{e} lacks {words:?}")
            }
            (got, want) => panic!("{args:?} {pairs:?}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn without_the_opt_in_it_refuses_and_says_how_to_opt_in() {
        check_mode(&[], &[], Err("AMI_LIFECYCLE_LIVE is not set"));
        check_mode(&[], &[(OPT_IN, "0")], Err("AMI_LIFECYCLE_LIVE is \"0\""));
        check_mode(
            &[],
            &[(OPT_IN, "yes")],
            Err("runs only when AMI_LIFECYCLE_LIVE=1"),
        );
        check_mode(&[], &[(OPT_IN, "")], Err("LIVE_DRY_RUN=1"));
        check_mode(&[], &[(OPT_IN, "1")], Ok(Mode::Live));
        check_mode(&[], &[(OPT_IN, " 1 ")], Ok(Mode::Live));
    }

    #[test]
    fn a_dry_run_needs_no_opt_in() {
        check_mode(&["--dry-run"], &[], Ok(Mode::DryRun));
        check_mode(&[], &[("LIVE_DRY_RUN", "1")], Ok(Mode::DryRun));
        check_mode(
            &[],
            &[("LIVE_DRY_RUN", "true"), (OPT_IN, "1")],
            Ok(Mode::DryRun),
        );
        // An empty LIVE_DRY_RUN (what make passes when unset) is not a dry run.
        check_mode(&[], &[("LIVE_DRY_RUN", "")], Err("not set"));
        check_mode(
            &["--live"],
            &[(OPT_IN, "1")],
            Err("unknown argument \"--live\""),
        );
    }

    #[test]
    fn missing_credentials_refuse_with_the_chain_named() {
        let e = require_credentials(Err("no providers in chain provided credentials".into()));
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("no AWS credentials: no providers"), "{msg}");
        assert!(msg.contains("default chain"), "{msg}");
        assert_eq!(require_credentials(Ok(())), Ok(()));
    }

    #[test]
    fn the_run_id_is_a_valid_deployment_and_schedule_name() {
        let id = run();
        assert_eq!(id.as_str(), "live-20261201t1540-a3f9");
        let config = ami_core::config::Config::from_lookup(|k| match k {
            "AWS_REGION" => Some("us-east-1".to_owned()),
            "AMI_LIFECYCLE_NAME" | "SCHEDULES" => Some(id.to_string()),
            _ => None,
        });
        assert!(config.is_ok(), "{config:?}");
        assert_ne!(
            RunId::generate(),
            RunId::generate(),
            "two runs started together get different ids"
        );
    }

    #[test]
    fn regions_default_and_are_checked() -> Result<(), Refusal> {
        let s = Settings::from_lookup(env(&[]), None, Mode::DryRun, run())?;
        assert_eq!(
            (s.home.as_str(), s.replica.as_str()),
            ("us-east-1", "us-west-2")
        );
        let s = Settings::from_lookup(env(&[]), Some("us-west-2".into()), Mode::Live, run())?;
        assert_eq!(
            (s.home.as_str(), s.replica.as_str()),
            ("us-west-2", "us-east-1")
        );
        let s = Settings::from_lookup(
            env(&[("AWS_REGION", "eu-west-1"), ("LIVE_REGION", "eu-central-1")]),
            None,
            Mode::Live,
            run(),
        )?;
        assert_eq!(s.home, "eu-central-1", "LIVE_REGION wins over AWS_REGION");

        let refused = |pairs: &[(&str, &str)], mode: Mode, words: &str| {
            let got = Settings::from_lookup(env(pairs), None, mode, run());
            let msg = got.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains(words), "{pairs:?}: {msg:?} lacks {words:?}");
        };
        refused(
            &[],
            Mode::Live,
            "LIVE_REGION=\"\" is not valid: no home region",
        );
        refused(
            &[("LIVE_REGION", "mars")],
            Mode::Live,
            "LIVE_REGION=\"mars\"",
        );
        refused(
            &[
                ("AWS_REGION", "eu-west-1"),
                ("LIVE_REPLICA_REGION", "eu-west-1"),
            ],
            Mode::Live,
            "the copy must cross regions",
        );
        refused(
            &[("LIVE_SHARE_ACCOUNT", "12345")],
            Mode::DryRun,
            "LIVE_SHARE_ACCOUNT=\"12345\" is not valid: not a 12-digit account id",
        );
        refused(
            &[("LIVE_SUBNET_ID", "vpc-1")],
            Mode::DryRun,
            "not a subnet id",
        );
        Ok(())
    }
}
