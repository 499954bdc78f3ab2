//! Application-consistent images without a reboot (`ami-lifecycle:method=quiesce`):
//! freeze through Systems Manager, `CreateImage` with `NoReboot`, thaw.
//!
//! [`run_jobs`] runs the plan's [`QuiesceJob`]s `QUIESCE_CONCURRENCY` at a time. One job:
//! 1. the instance must be managed and online (`DescribeInstanceInformation`);
//! 2. never freeze what cannot be thawed in time: the freeze starts only if the
//!    invocation has `QUIESCE_TIMEOUT` + [`IMAGE_AND_THAW_BUDGET`] left;
//! 3. the freeze command (the shipped Linux document, or `AWSEC2-ManageVssIO` on Windows)
//!    is awaited at most `QUIESCE_TIMEOUT`;
//! 4. `CreateImage` with `NoReboot`, tagged `consistency=application-consistent`;
//! 5. the thaw command as soon as CreateImage returns and **always** once the freeze was
//!    sent, whatever happened in between (the Linux document's watchdog also thaws by
//!    itself after `QUIESCE_MAX_FREEZE`);
//! 6. an instance that cannot be quiesced gets `QUIESCE_FALLBACK`'s image (planned in
//!    [`super::plan::QuiescePlan`]), or none (`skip`). The report says which path each
//!    instance took, why, and how long it was frozen.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::plan::{QuiescePlan, Wave};
use super::run::{create_one, wave_text, Made};
use crate::context::Context;
use crate::model::{InstanceId, Region};
use crate::ports::{AgentCommand, Agents, CommandStatus, NewImage};
use crate::report::{Outcome, RunReport};
use crate::tags::{key, Consistency};

/// AWS's document that pauses and resumes I/O through VSS on Windows.
pub const VSS_DOCUMENT: &str = "AWSEC2-ManageVssIO";

/// Time kept for CreateImage and the thaw after a freeze (CreateImage with `NoReboot`
/// answers in seconds; the thaw is one call).
pub const IMAGE_AND_THAW_BUDGET: Duration = Duration::from_secs(30);

/// How often a freeze or thaw command's status is read.
const POLL: Duration = Duration::from_secs(2);

/// How long a thaw's outcome is followed.
const THAW_WAIT: Duration = Duration::from_secs(20);

/// VSS resumes I/O by itself 10 s after a freeze. The freeze ended at the latest when it
/// was seen to succeed, so an image is made under it only if that was at most this long
/// after the freeze was sent (the rest of the window is CreateImage's).
const VSS_CLAIM_LIMIT: Duration = Duration::from_secs(7);

/// What became of a thaw command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Thawed {
    Done,
    /// Sent, still running after [`THAW_WAIT`] (or the deadline).
    Unconfirmed,
    Failed(String),
    NotSent,
}

/// A quiesced instance's image to make.
#[derive(Debug, Clone)]
pub(super) struct QuiesceJob {
    pub region: Region,
    pub instance: InstanceId,
    pub request: NewImage,
    pub wave: Option<Wave>,
    pub plan: QuiescePlan,
}

/// Runs the jobs `QUIESCE_CONCURRENCY` at a time; their items go into `report`. Returns
/// whether any was deferred.
pub(super) async fn run_jobs(ctx: &Context, jobs: Vec<QuiesceJob>, report: &mut RunReport) -> bool {
    if jobs.is_empty() {
        return false;
    }
    let limit = ctx.config.quiesce_concurrency.max(1) as usize;
    let done: Vec<(RunReport, bool)> = futures::stream::iter(jobs)
        .map(|job| async move {
            let mut part = RunReport::new(
                super::FUNCTION,
                ctx.dry_run(),
                time::OffsetDateTime::UNIX_EPOCH,
            );
            let deferred = run_job(ctx, &job, &mut part).await;
            (part, deferred)
        })
        .buffer_unordered(limit)
        .collect()
        .await;
    let mut deferred = false;
    for (part, d) in done {
        for item in part.items {
            report.add(item);
        }
        if part.incomplete.is_some() {
            report.incomplete = part.incomplete;
        }
        deferred |= d;
    }
    deferred
}

/// The document and parameters of a freeze or thaw on `platform`.
fn command(
    ctx: &Context,
    platform: &str,
    mounts: &[String],
    freeze: bool,
    name: &str,
) -> AgentCommand {
    let config = &ctx.config;
    let one = |v: String| vec![v];
    let (document, parameters) = if platform.eq_ignore_ascii_case("windows") {
        let action = if freeze { "Freeze" } else { "Thaw" };
        (
            VSS_DOCUMENT.to_owned(),
            [("Action".to_owned(), one(action.to_owned()))].into(),
        )
    } else {
        let action = if freeze { "freeze" } else { "thaw" };
        (
            config.quiesce_linux_document.clone(),
            [
                ("action".to_owned(), one(action.to_owned())),
                ("mounts".to_owned(), one(mounts.join(","))),
                (
                    "maxFreezeSeconds".to_owned(),
                    one(config.quiesce_max_freeze_seconds.to_string()),
                ),
            ]
            .into(),
        )
    };
    AgentCommand {
        document,
        parameters,
        timeout_seconds: config.quiesce_timeout_seconds,
        comment: format!(
            "ami-lifecycle {} {} {name}",
            config.deployment,
            if freeze { "freeze" } else { "thaw" }
        ),
    }
}

/// Why the freeze did not hold.
enum FreezeFailed {
    /// Not sent: nothing to thaw.
    NotSent(String),
    /// Sent and failed, timed out or could not be followed: thawed.
    Sent(String),
}

async fn run_job(ctx: &Context, job: &QuiesceJob, report: &mut RunReport) -> bool {
    let subject = job.instance.as_str();
    let region = &job.region;
    let name = &job.request.name;
    let agents = ctx.cloud.agents(region);
    let needed =
        Duration::from_secs(u64::from(ctx.config.quiesce_timeout_seconds)) + IMAGE_AND_THAW_BUDGET;
    if !ctx.deadline.fits(needed) {
        report.incomplete =
            Some("the invocation's deadline is near; the continuation does the rest".to_owned());
        report.push(region, subject, None, Outcome::Deferred, format!(
            "{name}: not frozen: less than QUIESCE_TIMEOUT + {} s left before the deadline, so it could not be thawed in time; left to the continuation",
            IMAGE_AND_THAW_BUDGET.as_secs()
        ));
        return true;
    }
    let platform = match agents.agents(std::slice::from_ref(&job.instance)).await {
        Ok(found) => match found.into_iter().find(|a| a.instance == job.instance) {
            Some(a) if a.online => a.platform,
            Some(a) => return fallback(ctx, job, format!("its Systems Manager agent is not online (PingStatus {})", a.ping), report).await,
            None => return fallback(ctx, job, "it is not managed by Systems Manager (no SSM agent registered, or no instance profile allowing it)".to_owned(), report).await,
        },
        Err(e) if e.is_retryable() => {
            report.push(region, subject, None, Outcome::Deferred, format!("{name}: Systems Manager could not be asked ({e}); retried by the continuation"));
            return true;
        }
        Err(e) => return fallback(ctx, job, format!("Systems Manager could not be asked ({e})"), report).await,
    };
    let started = Instant::now();
    let frozen = freeze(ctx, agents.as_ref(), job, &platform).await;
    let took = started.elapsed();
    match frozen {
        Ok(()) if is_windows(&platform) && took > VSS_CLAIM_LIMIT => {
            let why = format!(
                "the VSS freeze was seen to succeed only {:.1} s after it was sent: VSS resumes I/O 10 s after the freeze, too soon to start CreateImage inside the window",
                took.as_secs_f64()
            );
            let thawed = thaw(ctx, agents.as_ref(), job, &platform, took, report).await;
            thaw_failed(ctx, job, &platform, &thawed, report);
            fallback(ctx, job, why, report).await
        }
        Ok(()) => {
            let frozen_at = Instant::now();
            let text = format!(
                "{name} (application-consistent{}; {} on {platform}: the freeze took {:.1} s)",
                wave_text(&job.wave),
                if is_windows(&platform) {
                    VSS_DOCUMENT
                } else {
                    "freeze"
                },
                took.as_secs_f64(),
            );
            let made = create_one(ctx, region, subject, &job.request, text, report).await;
            let thawed = thaw(
                ctx,
                agents.as_ref(),
                job,
                &platform,
                started.elapsed(),
                report,
            )
            .await;
            let held = frozen_at.elapsed();
            // The report's line for the image says how long the filesystems were held.
            if let Some(item) = report
                .items
                .iter_mut()
                .rev()
                .find(|i| i.subject == subject && i.outcome == Outcome::Created)
            {
                item.reason.push_str(&format!(
                    "; held frozen {:.1} s until the thaw",
                    held.as_secs_f64()
                ));
            }
            if let (Made::Created(image), Thawed::Failed(detail)) = (&made, &thawed) {
                unclaim(ctx, job, image, &platform, detail, report).await;
            }
            made == Made::Deferred
        }
        Err(FreezeFailed::NotSent(why)) => fallback(ctx, job, why, report).await,
        Err(FreezeFailed::Sent(why)) => {
            thaw(
                ctx,
                agents.as_ref(),
                job,
                &platform,
                started.elapsed(),
                report,
            )
            .await;
            fallback(ctx, job, why, report).await
        }
    }
}

/// A failed thaw where no image was made under the freeze: reported (on Linux the mounts
/// may stay frozen until the watchdog; on Windows VSS timing is off and will be again).
fn thaw_failed(
    ctx: &Context,
    job: &QuiesceJob,
    platform: &str,
    thawed: &Thawed,
    report: &mut RunReport,
) {
    let Thawed::Failed(detail) = thawed else {
        return;
    };
    let what = if is_windows(platform) {
        "VSS resumed I/O by itself (10 s after the freeze)".to_owned()
    } else {
        format!(
            "the mounts may stay frozen until the document's watchdog thaws them {} s after the freeze; check the instance",
            ctx.config.quiesce_max_freeze_seconds
        )
    };
    report.push(
        &job.region,
        job.instance.as_str(),
        None,
        Outcome::Failed,
        format!("the thaw failed ({detail}): {what}"),
    );
}

fn is_windows(platform: &str) -> bool {
    platform.eq_ignore_ascii_case("windows")
}

/// A thaw that failed after an image was made. VSS resumes I/O by itself 10 s after the
/// freeze and then fails the thaw: the snapshots may have been taken after I/O resumed,
/// so the image is only crash-consistent and is retagged so (publish and people rely on
/// the tag). On Linux the freeze held while CreateImage started: the image stands, but the
/// mounts may stay frozen until the document's watchdog thaws them.
async fn unclaim(
    ctx: &Context,
    job: &QuiesceJob,
    image: &crate::model::ImageId,
    platform: &str,
    detail: &str,
    report: &mut RunReport,
) {
    let subject = job.instance.as_str();
    if !is_windows(platform) {
        report.push(&job.region, subject, Some(image), Outcome::Failed, format!(
            "the thaw failed ({detail}): {image} stands (the freeze held while CreateImage started), but the mounts may stay frozen until the document's watchdog thaws them {} s after the freeze; check the instance",
            ctx.config.quiesce_max_freeze_seconds
        ));
        return;
    }
    let ec2 = ctx.cloud.ec2(&job.region);
    let crash: crate::model::Tags = [(
        key::CONSISTENCY.to_owned(),
        Consistency::CrashConsistent.as_str().to_owned(),
    )]
    .into();
    let mut resources = vec![image.to_string()];
    let query = crate::ports::ImageQuery {
        ids: vec![image.clone()],
        ..crate::ports::ImageQuery::default()
    };
    if let Ok(page) = ec2.images_page(&query, None).await {
        resources.extend(
            page.items
                .iter()
                .flat_map(|i| i.snapshot_ids().map(ToString::to_string)),
        );
    }
    let mut retagged = Vec::new();
    for r in &resources {
        if ec2.set_tags(r, &crash).await.is_ok() {
            retagged.push(r.as_str());
        }
    }
    report.push(&job.region, subject, Some(image), Outcome::Failed, format!(
        "the VSS thaw failed ({detail}): VSS resumes I/O by itself 10 s after the freeze, so {image} may have been taken after that: tagged crash-consistent ({}); the freeze, CreateImage and thaw must fit in 10 s",
        if retagged.is_empty() { "retagging failed: fix the tag by hand".to_owned() } else { retagged.join(", ") }
    ));
}

/// Sends the freeze and waits for it, at most `QUIESCE_TIMEOUT` (and never past the deadline).
async fn freeze(
    ctx: &Context,
    agents: &dyn Agents,
    job: &QuiesceJob,
    platform: &str,
) -> Result<(), FreezeFailed> {
    let cmd = command(ctx, platform, &job.plan.mounts, true, &job.request.name);
    let id = agents
        .send(&job.instance, &cmd)
        .await
        .map_err(|e| FreezeFailed::NotSent(format!("the freeze command was not sent ({e})")))?;
    let limit = Duration::from_secs(u64::from(ctx.config.quiesce_timeout_seconds));
    match follow(ctx, agents, &id, &job.instance, limit, OnError::Stop).await {
        Followed::Success => Ok(()),
        Followed::Failed { status, detail } => {
            let hint = if is_windows(platform) {
                " (AWSEC2-ManageVssIO needs the AWS VSS components installed on the instance)"
            } else {
                ""
            };
            Err(FreezeFailed::Sent(format!(
                "the freeze {} ({}){hint}: {detail}",
                status.to_ascii_lowercase(),
                cmd.document
            )))
        }
        Followed::Error(e) => Err(FreezeFailed::Sent(format!(
            "the freeze could not be followed ({e})"
        ))),
        Followed::Running => Err(FreezeFailed::Sent(format!(
            "the freeze did not finish within QUIESCE_TIMEOUT={} s",
            ctx.config.quiesce_timeout_seconds
        ))),
    }
}

/// What became of a command followed by [`follow`].
enum Followed {
    Success,
    Failed {
        status: String,
        detail: String,
    },
    /// Still running when the wait ended (its limit or the deadline).
    Running,
    /// Its status could not be read ([`OnError::Stop`] only).
    Error(crate::error::CloudError),
}

/// Whether a status that cannot be read ends the wait ([`follow`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnError {
    Stop,
    /// Keep asking until the limit: the thaw was sent; only its outcome is in doubt.
    KeepAsking,
}

/// Reads a command's status every [`POLL`] until it ends, for at most `limit` and never
/// past the deadline.
async fn follow(
    ctx: &Context,
    agents: &dyn Agents,
    id: &str,
    instance: &InstanceId,
    limit: Duration,
    on_error: OnError,
) -> Followed {
    let started = Instant::now();
    loop {
        match agents.status(id, instance).await {
            Ok(CommandStatus::Success) => return Followed::Success,
            Ok(CommandStatus::Failed { status, detail }) => {
                return Followed::Failed { status, detail }
            }
            Ok(CommandStatus::Running) => {}
            Err(e) if on_error == OnError::Stop => return Followed::Error(e),
            Err(_) => {}
        }
        if started.elapsed() + POLL > limit || ctx.deadline.near() {
            return Followed::Running;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Sends the thaw (always, once a freeze was sent). A thaw that cannot be sent is an
/// item of its own: the watchdog thaws after `QUIESCE_MAX_FREEZE`, but someone must know.
async fn thaw(
    ctx: &Context,
    agents: &dyn Agents,
    job: &QuiesceJob,
    platform: &str,
    since_freeze: Duration,
    report: &mut RunReport,
) -> Thawed {
    let cmd = command(ctx, platform, &job.plan.mounts, false, &job.request.name);
    let id = match agents.send(&job.instance, &cmd).await {
        Ok(id) => id,
        Err(e) => {
            report.push(&job.region, job.instance.as_str(), None, Outcome::Failed, format!(
                "thaw command not sent ({e}) {:.1} s after the freeze: the document's watchdog thaws it {} s after the freeze; check the instance",
                since_freeze.as_secs_f64(),
                ctx.config.quiesce_max_freeze_seconds
            ));
            return Thawed::NotSent;
        }
    };
    // Its outcome is followed briefly (bounded): a failed thaw changes what the image is.
    match follow(
        ctx,
        agents,
        &id,
        &job.instance,
        THAW_WAIT,
        OnError::KeepAsking,
    )
    .await
    {
        Followed::Success => Thawed::Done,
        Followed::Failed { status, detail } => {
            Thawed::Failed(format!("{}: {detail}", status.to_ascii_lowercase()))
        }
        Followed::Running | Followed::Error(_) => Thawed::Unconfirmed,
    }
}

/// The instance could not be quiesced: `QUIESCE_FALLBACK`'s image, or none.
async fn fallback(ctx: &Context, job: &QuiesceJob, why: String, report: &mut RunReport) -> bool {
    let name = &job.request.name;
    match &job.plan.fallback {
        None => {
            report.push(&job.region, job.instance.as_str(), None, Outcome::Skipped, format!(
                "{name}: not quiesced: {why}; QUIESCE_FALLBACK=skip: not imaged this slot (set QUIESCE_FALLBACK=reboot or no-reboot to image it anyway)"
            ));
            false
        }
        Some(f) => {
            let text = format!(
                "{} ({}{}): not quiesced: {why}; {}",
                f.request.name,
                f.consistency.as_str(),
                wave_text(&job.wave),
                f.note
            );
            create_one(
                ctx,
                &job.region,
                job.instance.as_str(),
                &f.request,
                text,
                report,
            )
            .await
                == Made::Deferred
        }
    }
}
