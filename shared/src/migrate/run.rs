//! Applying a [`MigrationPlan`], in its order, every step level-triggered:
//!
//! 1. the image — reused, or found again by its migration token (sealed, and made of the
//!    source by EC2's own `SourceInstanceId`), or made now (sealed at creation, in the
//!    source's lineage, rebooted when the source runs);
//! 2. across regions, its copy — found again by the `source-image` it came from (sealed),
//!    or requested through replicate's own code path ([`crate::replicate::run`]): the
//!    migration image replicates to the target region with that region's key;
//! 3. the launch — found again by its client token, or RunInstances with that token;
//! 4. the wait for `running` with both status checks `ok`;
//! 5. only then the source (stopped with `--stop-source`, never terminated) and the
//!    Elastic IP (moved with `--move-eip`, else reported).
//!
//! Every wait is bounded ([`Waits`] and the context's deadline): a step that is not done
//! in time ends the run `deferred`, and running the same command again continues where
//! it stopped — it never launches a second instance or makes a second image.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::fleet::{Fleets, Launch};
use super::plan::{AddressStep, ImageStep, MigrationPlan, SourceAfter};
use super::MIGRATION;
use crate::context::Context;
use crate::create::run::{create_one, find_by_name, Made};
use crate::create::ScheduleRun;
use crate::error::CloudError;
use crate::model::{ImageId, ImageState, InstanceId, Region};
use crate::ports::{all_images, own_image, ImageQuery, NewImage};
use crate::report::{Outcome, RunReport};
use crate::seal;
use crate::tags::{self, key, Consistency};

/// The name migrations report under.
pub const FUNCTION: &str = "migrate";
/// The lineage of a migration image when the source has no schedule of its own.
pub const MIGRATE_SCHEDULE: &str = "migrate";

/// How long each wait may take and how often it looks.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    pub poll: Duration,
    /// For each of: image available, copy available, instance healthy.
    pub max: Duration,
}

/// Applies `plan`; the report has one line per step (the source instance is the subject).
pub async fn apply(
    ctx: &Context,
    fleets: &dyn Fleets,
    plan: &MigrationPlan,
    waits: Waits,
    now: OffsetDateTime,
) -> RunReport {
    let mut report = RunReport::new(FUNCTION, false, now);
    let mut steps = Steps {
        ctx,
        fleets,
        plan,
        waits,
        now,
        report: &mut report,
    };
    if steps.all().await.is_none() && steps.report.incomplete.is_none() {
        steps.report.incomplete = Some(format!(
            "the migration of {} stopped at the step above; run the same command again to continue",
            plan.source
        ));
    }
    report
}

struct Steps<'a> {
    ctx: &'a Context,
    fleets: &'a dyn Fleets,
    plan: &'a MigrationPlan,
    waits: Waits,
    now: OffsetDateTime,
    report: &'a mut RunReport,
}

impl Steps<'_> {
    /// Each step answers `None` when the migration cannot go on in this run (reported).
    async fn all(&mut self) -> Option<()> {
        let image = self.image().await?;
        let from = self.plan.from_region.clone();
        self.wait_image(&from, &image, "the migration image")
            .await?;
        let image = match &self.plan.copy {
            None => image,
            Some(copy) => {
                let replica = self.copy(&image, &copy.to).await?;
                self.wait_image(&copy.to, &replica, "the copy").await?;
                replica
            }
        };
        let instance = self.launch(&image).await?;
        self.wait_healthy(&instance).await?;
        self.source_after(&instance).await;
        self.address(&instance).await;
        let to = &self.plan.launch;
        self.push(
            &to.region,
            Some(&image),
            Outcome::Migrated,
            format!(
                "moved {} ({}) to {instance} in {} (subnet {}), from {image}",
                self.plan.source, self.plan.from_zone, to.zone, to.subnet.id
            ),
        );
        Some(())
    }

    fn push(&mut self, region: &Region, image: Option<&ImageId>, outcome: Outcome, text: String) {
        self.report
            .push(region, self.plan.source.as_str(), image, outcome, text);
    }

    fn failed<T>(&mut self, region: &Region, what: &str, e: &CloudError) -> Option<T> {
        let outcome = Outcome::for_error(e);
        self.push(region, None, outcome, format!("{what}: {e}"));
        None
    }

    async fn image(&mut self) -> Option<ImageId> {
        let region = self.plan.from_region.clone();
        let (name, reboot) = match &self.plan.image {
            ImageStep::Reuse {
                image,
                age_seconds,
                consistency,
            } => {
                self.push(
                    &region,
                    Some(image),
                    Outcome::AlreadyExisted,
                    format!(
                        "reusing {image} ({consistency}, {} min old; --max-age allows it)",
                        age_seconds / 60
                    ),
                );
                return Some(image.clone());
            }
            ImageStep::Create { name, reboot } => (name.clone(), *reboot),
        };
        let ec2 = self.ctx.cloud.ec2(&region);
        // A re-run finds the first run's image: EC2 says the source made it, the seal that
        // it is ours, the token that it is this migration's.
        let query = ImageQuery {
            owned_by_self: true,
            source_instances: vec![self.plan.source.clone()],
            tag: Some((MIGRATION.to_owned(), self.plan.token.clone())),
            ..ImageQuery::default()
        };
        let found = match all_images(ec2.as_ref(), &query).await {
            Ok(found) => found,
            Err(e) => return self.failed(&region, "looking for the migration image", &e),
        };
        let deployment = self.ctx.config.deployment.clone();
        let sealed = seal::sealed_only(&self.ctx.sealer, found, &deployment, None).await;
        if let Some(img) = sealed
            .into_iter()
            .find(|i| i.state != ImageState::Deregistered)
        {
            self.push(
                &region,
                Some(&img.id),
                Outcome::AlreadyExisted,
                format!("{} made by an earlier run of this migration", img.name),
            );
            return Some(img.id);
        }
        let instance = match ec2.instances(std::slice::from_ref(&self.plan.source)).await {
            Ok(found) => found.into_iter().next(),
            Err(e) => return self.failed(&region, "reading the source", &e),
        }?;
        let run = ScheduleRun::new(super::plan::lineage_schedule(&instance.tags), self.now);
        let consistency = if reboot {
            Consistency::Rebooted
        } else {
            Consistency::Stopped
        };
        let mut image_tags =
            crate::create::plan::image_tags(&instance, &run, consistency, &self.ctx.config);
        image_tags.insert(MIGRATION.to_owned(), self.plan.token.clone());
        if let Some(copy) = &self.plan.copy {
            // The copy goes through replicate: the image replicates where the source's
            // images do, and to the target region.
            let mut to = match instance.tags.get(key::REPLICATE_TO) {
                Some(v) => tags::parse_regions(key::REPLICATE_TO, v).unwrap_or_default(),
                None => self.ctx.config.replica_regions.clone(),
            };
            if !to.contains(&copy.to) {
                to.push(copy.to.clone());
            }
            let list: Vec<&str> = to.iter().map(Region::as_str).collect();
            image_tags.insert(key::REPLICATE_TO.to_owned(), list.join(","));
        }
        let request = NewImage {
            instance: self.plan.source.clone(),
            name,
            description: format!(
                "ami-lifecycle {deployment}: moving {} to {}",
                self.plan.source, self.plan.launch.zone
            ),
            no_reboot: !reboot,
            exclude_devices: Vec::new(),
            image_tags: image_tags.clone(),
            snapshot_tags: image_tags,
        };
        let text = format!("{} ({}) for the move", request.name, consistency.as_str());
        let subject = self.plan.source.to_string();
        match create_one(self.ctx, &region, &subject, &request, text, self.report).await {
            Made::Created(id) => Some(id),
            Made::Existed => self.by_name(&region, &request.name).await,
            Made::Deferred | Made::Failed => None,
        }
    }

    /// The sealed image of this name (an image of the same minute's slot).
    async fn by_name(&mut self, region: &Region, name: &str) -> Option<ImageId> {
        let ec2 = self.ctx.cloud.ec2(region);
        let found = find_by_name(ec2.as_ref(), name).await.ok()??;
        seal::sealed_one(&self.ctx.sealer, found, &self.ctx.config.deployment, None)
            .await
            .map(|i| i.id)
    }

    async fn wait_image(&mut self, region: &Region, id: &ImageId, what: &str) -> Option<()> {
        let started = Instant::now();
        loop {
            match own_image(self.ctx.cloud.ec2(region).as_ref(), id).await {
                Ok(Some(img)) if img.state == ImageState::Available => return Some(()),
                Ok(Some(img)) if img.state == ImageState::Pending => {}
                Ok(Some(img)) => {
                    self.push(
                        region,
                        Some(id),
                        Outcome::Failed,
                        format!("{what} {id} is {}: nothing launched", img.state.as_str()),
                    );
                    return None;
                }
                Ok(None) => {
                    self.push(
                        region,
                        Some(id),
                        Outcome::Failed,
                        format!("{what} {id} no longer exists: nothing launched"),
                    );
                    return None;
                }
                Err(e) if Outcome::for_error(&e) == Outcome::Deferred => {}
                Err(e) => return self.failed(region, what, &e),
            }
            if started.elapsed() + self.waits.poll > self.waits.max
                || !self.ctx.deadline.fits(self.waits.poll)
            {
                self.push(
                    region,
                    Some(id),
                    Outcome::Deferred,
                    format!("{what} {id} is still pending after {} s; run the same command again to continue", started.elapsed().as_secs()),
                );
                return None;
            }
            tokio::time::sleep(self.waits.poll).await;
        }
    }

    /// The copy in `to`: found again (sealed, copied from `image`) or requested through
    /// replicate.
    async fn copy(&mut self, image: &ImageId, to: &Region) -> Option<ImageId> {
        if let Some(found) = self.find_copy(image, to).await? {
            return Some(found);
        }
        let request = crate::replicate::Request::Image {
            image: image.clone(),
            region: Some(self.plan.from_region.clone()),
            from_event: false,
        };
        let replicated = crate::replicate::run(self.ctx, request, self.now).await;
        for item in replicated.items.iter().filter(|i| &i.region == to) {
            self.report.add(item.clone());
        }
        match self.find_copy(image, to).await? {
            Some(found) => Some(found),
            None => {
                self.push(
                    to,
                    Some(image),
                    Outcome::Deferred,
                    format!("{image} has no copy in {to} yet (see replicate's line above); run the same command again to continue"),
                );
                None
            }
        }
    }

    async fn find_copy(&mut self, image: &ImageId, to: &Region) -> Option<Option<ImageId>> {
        let query = ImageQuery {
            owned_by_self: true,
            tag: Some((key::SOURCE_IMAGE.to_owned(), image.to_string())),
            ..ImageQuery::default()
        };
        let found = match all_images(self.ctx.cloud.ec2(to).as_ref(), &query).await {
            Ok(found) => found,
            Err(e) => return self.failed(to, "looking for the copy", &e),
        };
        let sealed =
            seal::sealed_only(&self.ctx.sealer, found, &self.ctx.config.deployment, None).await;
        Some(
            sealed
                .into_iter()
                .filter(|c| matches!(c.state, ImageState::Available | ImageState::Pending))
                .max_by_key(|c| c.created)
                .map(|c| c.id),
        )
    }

    async fn launch(&mut self, image: &ImageId) -> Option<InstanceId> {
        let spec = &self.plan.launch;
        let fleet = self.fleets.fleet(&spec.region);
        match fleet.launched(&spec.client_token).await {
            Ok(Some(id)) => {
                self.push(
                    &spec.region,
                    Some(image),
                    Outcome::AlreadyExisted,
                    format!("{id} launched by an earlier run of this migration"),
                );
                return Some(id);
            }
            Ok(None) => {}
            Err(e) => return self.failed(&spec.region, "looking for the launched instance", &e),
        }
        let user_data = if spec.user_data {
            let source = self.fleets.fleet(&self.plan.from_region);
            match source.user_data(&self.plan.source).await {
                Ok(data) => data,
                Err(e) => {
                    return self.failed(
                        &self.plan.from_region.clone(),
                        "reading the source's user data",
                        &e,
                    )
                }
            }
        } else {
            None
        };
        let request = Launch {
            spec: spec.clone(),
            image: image.clone(),
            user_data,
        };
        match fleet.launch(&request).await {
            Ok(id) => {
                self.push(
                    &spec.region,
                    Some(image),
                    Outcome::Created,
                    format!(
                        "launched {id} ({}) in {} from {image}",
                        spec.instance_type, spec.zone
                    ),
                );
                Some(id)
            }
            Err(e) => self.failed(&spec.region.clone(), "RunInstances", &e),
        }
    }

    async fn wait_healthy(&mut self, id: &InstanceId) -> Option<()> {
        let region = self.plan.launch.region.clone();
        let fleet = self.fleets.fleet(&region);
        let started = Instant::now();
        let mut last = String::from("not yet reported");
        loop {
            match fleet.health(id).await {
                Ok(Some(h)) if h.healthy => return Some(()),
                Ok(Some(h)) => last = h.summary,
                Ok(None) => {}
                Err(e) if Outcome::for_error(&e) == Outcome::Deferred => {}
                Err(e) => return self.failed(&region, "DescribeInstanceStatus", &e),
            }
            if started.elapsed() + self.waits.poll > self.waits.max
                || !self.ctx.deadline.fits(self.waits.poll)
            {
                self.push(
                    &region,
                    None,
                    Outcome::Deferred,
                    format!("{id} is not healthy after {} s ({last}); the source is untouched; run the same command again to continue", started.elapsed().as_secs()),
                );
                return None;
            }
            tokio::time::sleep(self.waits.poll).await;
        }
    }

    async fn source_after(&mut self, new: &InstanceId) {
        let region = self.plan.from_region.clone();
        match self.plan.source_after {
            SourceAfter::Keep => self.push(&region, None, Outcome::Kept, format!("{} keeps running beside {new} (--stop-source stops it once the new one is healthy)", self.plan.source)),
            SourceAfter::StopWhenHealthy => {
                match self.fleets.fleet(&region).stop(&self.plan.source).await {
                    Ok(()) => self.push(&region, None, Outcome::Unchanged, format!("{} stopped (not terminated) now that {new} is healthy", self.plan.source)),
                    Err(e) => {
                        self.failed::<()>(&region, "StopInstances", &e);
                    }
                }
            }
        }
    }

    async fn address(&mut self, new: &InstanceId) {
        let region = self.plan.from_region.clone();
        match &self.plan.address {
            AddressStep::None => {}
            AddressStep::Report(eip) => self.push(
                &region,
                None,
                Outcome::Kept,
                format!(
                    "Elastic IP {} ({}) stays with {}; --move-eip moves it to {new}",
                    eip.public_ip, eip.allocation_id, self.plan.source
                ),
            ),
            AddressStep::Move(eip) => match self
                .fleets
                .fleet(&region)
                .move_address(&eip.allocation_id, new)
                .await
            {
                Ok(()) => self.push(
                    &region,
                    None,
                    Outcome::Unchanged,
                    format!("Elastic IP {} moved to {new}", eip.public_ip),
                ),
                Err(e) => {
                    self.failed::<()>(&region, &format!("moving Elastic IP {}", eip.public_ip), &e);
                }
            },
        }
    }
}
