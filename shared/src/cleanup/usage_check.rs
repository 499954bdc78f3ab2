//! Gathers the cross-account use facts ([`super::usage::Usage`]) a planner reads before a
//! share is revoked or a shared image is disabled or deleted. [`UsageCheck`] lives for one
//! run and caches every answer, every spoke session and the OU listing.
//!
//! For each grantee of an image:
//! - an account the hub can reach — selected by `AMI_LIFECYCLE_ACCOUNTS` and whose spoke
//!   role can be assumed ([`crate::ports::Cloud::for_account`], the cleanup spoke role,
//!   which may call `DescribeImageReferences`) — is asked directly: DescribeImageReferences
//!   in that account and region lists its instances, launch template versions and SSM
//!   parameters naming the image, shared with it or not. One call per 10 images (the
//!   API's limit, [`crate::aws::references::IDS_PER_REFERENCE_CALL`]) per account and
//!   region, each image asked once per run;
//! - any other account, and an organization, OU or `all` grant, goes through an EC2 image
//!   usage report made in the owner's account: the first run requests one
//!   (`CreateImageUsageReport`, a deterministic client token so a redelivered run gets the
//!   same report) and keeps the image ("usage being checked: report amiur-…"); a later run
//!   reads its entries once it is `available`. A report older than [`REPORT_MAX_AGE`] is
//!   not trusted: a new one is requested. A report in `error` is a failed check: a new one
//!   is requested and the image kept. A dry run reads reports but requests none.
//!
//! A spoke session opened from a spoke account's own run (not the hub's) cannot assume
//! another spoke role (the trust admits the hub's function roles only): from there every
//! other account goes through usage reports.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

use super::usage::{AccountUse, Usage};
use crate::accounts::AccountSelector;
use crate::config::Config;
use crate::context::Context;
use crate::error::CloudError;
use crate::model::{AccountId, Grantee, ImageId, ImageReference, Region};
use crate::ports::{Cloud, UsageReport};

/// How old a usage report may be and still be believed (AWS documents the data lagging
/// up to a day; a daily run reads the report the previous run requested).
pub const REPORT_MAX_AGE: Duration = Duration::days(2);

type Reach = Result<Arc<dyn Cloud>, String>;

/// One run's cross-account use checks, cached.
pub struct UsageCheck {
    /// The function running the checks: they read references through its own spoke role
    /// (a role may assume only its function's spoke role; each spoke role's policy has
    /// `ec2:DescribeImageReferences` and the reads of its fallback, infra/spoke-role.yaml).
    function: &'static str,
    cloud: Arc<dyn Cloud>,
    config: Arc<Config>,
    dry_run: bool,
    now: OffsetDateTime,
    reach: Mutex<HashMap<AccountId, Reach>>,
    ou_members: Mutex<Option<BTreeSet<AccountId>>>,
    references: Mutex<HashMap<(AccountId, Region, ImageId), AccountUse>>,
    reports: Mutex<HashMap<ReportKey, ReportAnswer>>,
}

/// A usage report's question: the image in its region, for these accounts (none: all).
type ReportKey = (Region, ImageId, Vec<AccountId>);

/// What a usage report said of one image: `Err` is the answer for every grantee (pending,
/// failed); `Ok` the entries by account.
type ReportAnswer = Result<(String, Vec<(AccountId, String, u64)>), AccountUse>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// "instance i-…", "launch template lt-…", "parameter /name": the resource an ARN names.
pub fn resource_of(r: &ImageReference) -> String {
    let tail = r.arn.splitn(6, ':').nth(5).unwrap_or(r.arn.as_str());
    match tail.split_once('/') {
        Some(("instance", id)) => format!("instance {id}"),
        Some(("launch-template", id)) => format!("launch template {id}"),
        Some(("parameter", name)) => format!("parameter /{name}"),
        _ => format!("{} {}", r.resource_type, r.arn),
    }
}

fn failed(what: &str, e: &CloudError) -> AccountUse {
    AccountUse::Failed {
        problem: format!("{what}: {e}"),
        retryable: e.is_retryable(),
    }
}

impl UsageCheck {
    /// The checks of one run of `ctx` (whose cloud owns the images).
    pub fn new(ctx: &Context, function: &'static str, now: OffsetDateTime) -> Self {
        Self {
            function,
            cloud: ctx.cloud.clone(),
            config: ctx.config.clone(),
            dry_run: ctx.dry_run(),
            now,
            reach: Mutex::default(),
            ou_members: Mutex::default(),
            references: Mutex::default(),
            reports: Mutex::default(),
        }
    }

    /// The use of each image in `region` by each of its grantees (the owner's own account
    /// needs no answer: its references are cleanup's own check).
    pub async fn check(&self, region: &Region, images: &[(ImageId, Vec<Grantee>)]) -> Usage {
        let mut usage = Usage::new();
        let own = match self.cloud.account().await {
            Ok(a) => a,
            Err(e) => {
                let answer = failed("this account could not be read", &e);
                for (id, grantees) in images {
                    for g in grantees {
                        usage.set(id, g, answer.clone());
                    }
                }
                return usage;
            }
        };
        // Reachable accounts: images per account. The rest: per image, one report.
        let mut direct: Vec<(AccountId, Arc<dyn Cloud>, Vec<ImageId>)> = Vec::new();
        let mut by_report: Vec<(ImageId, Vec<Grantee>, String)> = Vec::new();
        for (id, grantees) in images {
            let mut outside = Vec::new();
            let mut why = Vec::new();
            for g in grantees {
                match g {
                    Grantee::Account(a) if *a == own => usage.set(id, g, AccountUse::Unused),
                    Grantee::Account(a) => match self.reach(a).await {
                        Ok(spoke) => match direct.iter_mut().find(|(x, _, _)| x == a) {
                            Some((_, _, ids)) => ids.push(id.clone()),
                            None => direct.push((a.clone(), spoke, vec![id.clone()])),
                        },
                        Err(reason) => {
                            why.push(format!("{a} outside the hub's reach: {reason}"));
                            outside.push(g.clone());
                        }
                    },
                    other => {
                        why.push(format!("{other} is not one account"));
                        outside.push(other.clone());
                    }
                }
            }
            if !outside.is_empty() {
                by_report.push((id.clone(), outside, why.join("; ")));
            }
        }
        for (account, spoke, ids) in direct {
            for (id, answer) in self.references_in(&account, &spoke, region, &ids).await {
                usage.set(&id, &Grantee::Account(account.clone()), answer);
            }
        }
        for (id, grantees, note) in by_report {
            self.by_report(region, &id, &grantees, &note, &mut usage)
                .await;
        }
        usage
    }

    /// Whether `account` can be looked into, and its spoke cloud (once per run).
    async fn reach(&self, account: &AccountId) -> Reach {
        if let Some(known) = lock(&self.reach).get(account) {
            return known.clone();
        }
        let answer = self.open(account).await;
        if let Err(why) = &answer {
            tracing::info!(%account, why, "use check through a usage report");
        }
        lock(&self.reach).insert(account.clone(), answer.clone());
        answer
    }

    async fn open(&self, account: &AccountId) -> Reach {
        if !self.selected(account).await {
            return Err("not selected by AMI_LIFECYCLE_ACCOUNTS".to_owned());
        }
        if self.config.spoke_external_id.is_none() {
            return Err("SPOKE_EXTERNAL_ID is not set".to_owned());
        }
        self.cloud
            .for_account(account, self.function)
            .await
            .map_err(|e| {
                format!(
                    "its {} spoke role could not be assumed ({e})",
                    self.function
                )
            })
    }

    async fn selected(&self, account: &AccountId) -> bool {
        let selectors = &self.config.accounts;
        if selectors.iter().any(|s| {
            matches!(s, AccountSelector::Org) || *s == AccountSelector::Account(account.clone())
        }) {
            return true;
        }
        let ous: Vec<&String> = selectors
            .iter()
            .filter_map(|s| match s {
                AccountSelector::Ou(ou) => Some(ou),
                _ => None,
            })
            .collect();
        if ous.is_empty() {
            return false;
        }
        if let Some(members) = lock(&self.ou_members).as_ref() {
            return members.contains(account);
        }
        let org = self.cloud.organization();
        let mut members = BTreeSet::new();
        for ou in ous {
            match org.accounts_under(ou).await {
                Ok(list) => {
                    members.extend(list.into_iter().filter(|a| a.is_active()).map(|a| a.id))
                }
                Err(e) => {
                    tracing::warn!(ou, error = %e, "OU not listed: its accounts are checked through usage reports")
                }
            }
        }
        let found = members.contains(account);
        *lock(&self.ou_members) = Some(members);
        found
    }

    /// DescribeImageReferences in `account` and `region` for the images not asked yet.
    async fn references_in(
        &self,
        account: &AccountId,
        spoke: &Arc<dyn Cloud>,
        region: &Region,
        ids: &[ImageId],
    ) -> Vec<(ImageId, AccountUse)> {
        let key = |id: &ImageId| (account.clone(), region.clone(), id.clone());
        let mut unknown: Vec<ImageId> = Vec::new();
        {
            let cache = lock(&self.references);
            for id in ids {
                if !cache.contains_key(&key(id)) && !unknown.contains(id) {
                    unknown.push(id.clone());
                }
            }
        }
        if !unknown.is_empty() {
            // The adapter asks 10 ids per call (the API's limit).
            let answers: Vec<(ImageId, AccountUse)> =
                match spoke.ec2(region).references(&unknown).await {
                    Ok(found) => unknown
                        .iter()
                        .map(|id| {
                            let lines: Vec<String> = found
                                .iter()
                                .filter(|r| &r.image_id == id)
                                .map(|r| {
                                    format!("in use in {account} by {} ({region})", resource_of(r))
                                })
                                .collect();
                            let answer = if lines.is_empty() {
                                AccountUse::Unused
                            } else {
                                AccountUse::InUse(lines)
                            };
                            (id.clone(), answer)
                        })
                        .collect(),
                    Err(e) => {
                        let answer = failed(&format!("DescribeImageReferences in {account}"), &e);
                        unknown
                            .iter()
                            .map(|id| (id.clone(), answer.clone()))
                            .collect()
                    }
                };
            let mut cache = lock(&self.references);
            for (id, answer) in answers {
                cache.insert(key(&id), answer);
            }
        }
        let cache = lock(&self.references);
        ids.iter()
            .filter_map(|id| Some((id.clone(), cache.get(&key(id))?.clone())))
            .collect()
    }

    /// The answer of a usage report for `grantees` of `image` (made in the owner's
    /// account and region), into `usage`.
    async fn by_report(
        &self,
        region: &Region,
        image: &ImageId,
        grantees: &[Grantee],
        note: &str,
        usage: &mut Usage,
    ) {
        // Only accounts: the report is limited to them; anything else: every account.
        let mut accounts: Vec<AccountId> = Vec::new();
        for g in grantees {
            match g {
                Grantee::Account(a) => accounts.push(a.clone()),
                _ => {
                    accounts.clear();
                    break;
                }
            }
        }
        let whole = grantees.iter().any(|g| !matches!(g, Grantee::Account(_)));
        accounts.sort();
        accounts.dedup();
        let key = (region.clone(), image.clone(), accounts.clone());
        let cached = lock(&self.reports).get(&key).cloned();
        let answer = match cached {
            Some(a) => a,
            None => {
                let a = self.report_answer(region, image, &accounts, note).await;
                lock(&self.reports).insert(key, a.clone());
                a
            }
        };
        for g in grantees {
            let one = match &answer {
                Err(a) => a.clone(),
                Ok((report, entries)) => {
                    let lines: Vec<String> = entries
                        .iter()
                        .filter(|(a, _, n)| *n > 0 && (whole || Grantee::Account(a.clone()) == *g))
                        .map(|(a, t, n)| {
                            let what = match t.as_str() {
                                "ec2:Instance" => "instance(s)",
                                "ec2:LaunchTemplate" => "launch template(s)",
                                other => other,
                            };
                            format!("in use in {a} by {n} {what} ({region}, usage report {report})")
                        })
                        .collect();
                    if lines.is_empty() {
                        AccountUse::Unused
                    } else {
                        AccountUse::InUse(lines)
                    }
                }
            };
            usage.set(image, g, one);
        }
    }

    async fn report_answer(
        &self,
        region: &Region,
        image: &ImageId,
        accounts: &[AccountId],
        note: &str,
    ) -> ReportAnswer {
        let ec2 = self.cloud.ec2(region);
        let reports = ec2
            .usage_reports(image)
            .await
            .map_err(|e| failed("DescribeImageUsageReports", &e))?;
        let covers = |r: &UsageReport| {
            r.accounts.is_empty()
                || (!accounts.is_empty() && accounts.iter().all(|a| r.accounts.contains(a)))
        };
        let fresh = |r: &UsageReport| r.created.is_none_or(|t| t + REPORT_MAX_AGE >= self.now);
        let newest = reports
            .iter()
            .filter(|r| r.image == *image && covers(r) && fresh(r))
            .max_by_key(|r| r.created);
        let previous_error = match newest {
            Some(r) if r.state == "available" => {
                let entries = ec2
                    .usage_report_entries(&r.id)
                    .await
                    .map_err(|e| failed("DescribeImageUsageReportEntries", &e))?;
                return Ok((
                    r.id.clone(),
                    entries
                        .into_iter()
                        .map(|e| (e.account, e.resource_type, e.count))
                        .collect(),
                ));
            }
            Some(r) if r.state == "error" => Some(format!(
                "usage report {} failed ({})",
                r.id,
                r.state_reason.as_deref().unwrap_or("no reason given")
            )),
            Some(r) => {
                return Err(AccountUse::Checking {
                    report: Some(r.id.clone()),
                    note: format!("{}, {note}", r.state),
                })
            }
            None => None,
        };
        if self.dry_run {
            return Err(match previous_error {
                Some(problem) => AccountUse::Failed {
                    problem,
                    retryable: true,
                },
                None => AccountUse::Checking {
                    report: None,
                    note: note.to_owned(),
                },
            });
        }
        // Deterministic: a redelivered run (same day, same reports) gets the same report.
        // At most about 55 characters (EC2 tokens: 64).
        let token = format!(
            "alc-use-{image}-{}-{}-{}",
            self.now.date().to_string().replace('-', ""),
            reports.len(),
            fingerprint(accounts)
        );
        match ec2.create_usage_report(image, accounts, &token).await {
            Ok(id) => Err(match previous_error {
                Some(problem) => AccountUse::Failed {
                    problem: format!("{problem}; requested {id}"),
                    retryable: true,
                },
                None => AccountUse::Checking {
                    report: Some(id),
                    note: format!("requested, {note}"),
                },
            }),
            Err(e) => Err(failed("CreateImageUsageReport", &e)),
        }
    }
}

/// A short stable digest of the accounts a report is limited to (part of its token).
fn fingerprint(accounts: &[AccountId]) -> String {
    // FNV-1a: stable across builds (std's hasher is not promised to be).
    let mut h: u32 = 0x811c_9dc5;
    for b in accounts
        .iter()
        .flat_map(|a| a.as_str().bytes().chain([b',']))
    {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}
