//! The fake's SSM parameters and launch templates ([`Parameters`], [`LaunchTemplates`]),
//! behaving as AWS documents where publish depends on it: an `aws:ec2:image` value naming
//! no available image of the region is answered but never stored (SSM validates after
//! answering), a label is on one version at a time, 100 versions are kept and a new one
//! is refused while the oldest is labelled (`ParameterMaxVersionLimitExceeded`), and a
//! repeated `ClientToken` makes no second template version.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{not_found, FakeRegion};
use crate::error::{CloudError, CloudResult};
use crate::model::{ImageId, ImageState, Region, Tags};
use crate::ports::{
    LaunchTemplates, NewParameterVersion, NewTemplateVersion, ParameterValue, ParameterVersion,
    Parameters, TrackedTemplate,
};
use crate::tags::key;

/// One parameter: its versions, oldest first, and its data type.
#[derive(Debug, Clone, Default)]
pub struct FakeParameter {
    pub data_type: String,
    pub versions: Vec<ParameterVersion>,
    /// Every version number given so far (numbers are never reused).
    pub last_version: i64,
    /// When the last version was written (the fake's clock).
    pub modified: Option<time::OffsetDateTime>,
}

/// One launch template.
#[derive(Debug, Clone, Default)]
pub struct FakeTemplate {
    pub name: String,
    pub tags: Tags,
    /// (version, image, description).
    pub versions: Vec<(i64, Option<String>, Option<String>)>,
    pub default_version: i64,
    pub tokens: BTreeMap<String, i64>,
}

const VERSIONS_KEPT: usize = 100;

impl FakeParameter {
    /// Its current value as GetParameter and GetParametersByPath answer it.
    fn current(&self, name: &str) -> Option<ParameterValue> {
        let v = self.versions.last()?;
        Some(ParameterValue {
            name: name.to_owned(),
            value: v.value.clone(),
            version: v.version,
            data_type: Some(self.data_type.clone()),
            modified: self.modified,
        })
    }
}

impl super::FakeCloud {
    /// Adds a launch template in `region` whose version 1 launches `image` (an AMI id or a
    /// `resolve:ssm:` reference); returns its id.
    pub fn add_launch_template(
        &self,
        region: &str,
        name: &str,
        image: &str,
        tags: &[(&str, &str)],
    ) -> String {
        let mut s = self.state();
        let id = s.id("lt");
        s.templates.insert(
            (Region::new(region), id.clone()),
            FakeTemplate {
                name: name.to_owned(),
                tags: tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                versions: vec![(1, Some(image.to_owned()), None)],
                default_version: 1,
                tokens: BTreeMap::new(),
            },
        );
        id
    }

    /// A template's (default version, latest version, image of each version).
    pub fn launch_template(&self, region: &str, id: &str) -> Option<FakeTemplate> {
        self.state()
            .templates
            .get(&(Region::new(region), id.to_owned()))
            .cloned()
    }

    /// A parameter's current value in `region`.
    pub fn parameter(&self, region: &str, name: &str) -> Option<String> {
        self.state()
            .parameters
            .get(&(Region::new(region), name.to_owned()))
            .and_then(|p| p.versions.last())
            .map(|v| v.value.clone())
    }

    /// A parameter's versions in `region`, oldest first.
    pub fn parameter_history(&self, region: &str, name: &str) -> Vec<ParameterVersion> {
        self.state()
            .parameters
            .get(&(Region::new(region), name.to_owned()))
            .map(|p| p.versions.clone())
            .unwrap_or_default()
    }
}

fn ssm_error(operation: &'static str, region: &Region, code: &str, message: String) -> CloudError {
    CloudError::from_code(operation, Some(region.clone()), code, message)
}

#[async_trait]
impl Parameters for FakeRegion {
    async fn under_path(&self, path: &str) -> CloudResult<Vec<ParameterValue>> {
        let mut s = self.lock();
        s.call(&self.region, "GetParametersByPath", Some(path))?;
        let prefix = format!("{}/", path.trim_end_matches('/'));
        Ok(s.parameters
            .iter()
            .filter(|((r, n), _)| *r == self.region && n.starts_with(&prefix))
            .filter_map(|((_, n), p)| p.current(n))
            .collect())
    }

    async fn get(&self, name: &str) -> CloudResult<Option<ParameterValue>> {
        let mut s = self.lock();
        s.call(&self.region, "GetParameter", Some(name))?;
        Ok(s.parameters
            .get(&(self.region.clone(), name.to_owned()))
            .and_then(|p| p.current(name)))
    }

    async fn history(&self, name: &str) -> CloudResult<Vec<ParameterVersion>> {
        let mut s = self.lock();
        s.call(&self.region, "GetParameterHistory", Some(name))?;
        Ok(s.parameters
            .get(&(self.region.clone(), name.to_owned()))
            .map(|p| p.versions.clone())
            .unwrap_or_default())
    }

    async fn put(&self, parameter: &NewParameterVersion) -> CloudResult<i64> {
        let mut s = self.lock();
        s.call(&self.region, "PutParameter", Some(&parameter.name))?;
        let key = (self.region.clone(), parameter.name.clone());
        let existing = s.parameters.get(&key).cloned().unwrap_or_default();
        if !existing.versions.is_empty() && existing.data_type != parameter.data_type {
            return Err(ssm_error(
                "PutParameter",
                &self.region,
                "ValidationException",
                format!(
                    "the data type of {} cannot change from {} to {}",
                    parameter.name, existing.data_type, parameter.data_type
                ),
            ));
        }
        if existing.versions.len() >= VERSIONS_KEPT
            && existing
                .versions
                .first()
                .is_some_and(|v| !v.labels.is_empty())
        {
            return Err(ssm_error(
                "PutParameter",
                &self.region,
                "ParameterMaxVersionLimitExceeded",
                format!(
                    "the oldest version of {} has a label and cannot be deleted",
                    parameter.name
                ),
            ));
        }
        let version = existing.last_version + 1;
        // aws:ec2:image: answered at once, validated after; an invalid value is never stored.
        if parameter.data_type == "aws:ec2:image" {
            let valid = ImageId::parse(&parameter.value).ok().is_some_and(|id| {
                s.images
                    .get(&id)
                    .is_some_and(|i| i.region == self.region && i.state == ImageState::Available)
            });
            if !valid {
                return Ok(version);
            }
        }
        let now = s.now();
        let p = s.parameters.entry(key).or_default();
        p.data_type = parameter.data_type.to_owned();
        p.modified = Some(now);
        p.last_version = version;
        p.versions.push(ParameterVersion {
            version,
            value: parameter.value.clone(),
            labels: Vec::new(),
            description: Some(parameter.description.clone()),
        });
        if p.versions.len() > VERSIONS_KEPT {
            p.versions.remove(0);
        }
        Ok(version)
    }

    async fn label(&self, name: &str, version: i64, labels: &[String]) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "LabelParameterVersion", Some(name))?;
        let region = self.region.clone();
        let p = s
            .parameters
            .get_mut(&(region.clone(), name.to_owned()))
            .ok_or_else(|| {
                not_found("LabelParameterVersion", &region, "ParameterNotFound", name)
            })?;
        if !p.versions.iter().any(|v| v.version == version) {
            return Err(not_found(
                "LabelParameterVersion",
                &region,
                "ParameterVersionNotFound",
                &format!("version {version} of {name}"),
            ));
        }
        for v in &mut p.versions {
            v.labels.retain(|l| !labels.contains(l));
            if v.version == version {
                v.labels.extend(labels.iter().cloned());
                if v.labels.len() > 10 {
                    return Err(ssm_error(
                        "LabelParameterVersion",
                        &region,
                        "ParameterVersionLabelLimitExceeded",
                        "a version has at most 10 labels".to_owned(),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn unlabel(&self, name: &str, version: i64, labels: &[String]) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "UnlabelParameterVersion", Some(name))?;
        if let Some(p) = s
            .parameters
            .get_mut(&(self.region.clone(), name.to_owned()))
        {
            for v in p.versions.iter_mut().filter(|v| v.version == version) {
                v.labels.retain(|l| !labels.contains(l));
            }
        }
        Ok(())
    }

    async fn delete(&self, name: &str) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "DeleteParameter", Some(name))?;
        match s.parameters.remove(&(self.region.clone(), name.to_owned())) {
            Some(_) => Ok(()),
            None => Err(not_found(
                "DeleteParameter",
                &self.region,
                "ParameterNotFound",
                name,
            )),
        }
    }
}

#[async_trait]
impl LaunchTemplates for FakeRegion {
    async fn tracked_templates(&self) -> CloudResult<Vec<TrackedTemplate>> {
        let mut s = self.lock();
        s.call(&self.region, "DescribeLaunchTemplates", None)?;
        Ok(s.templates
            .iter()
            .filter(|((r, _), t)| *r == self.region && t.tags.contains_key(key::TRACK))
            .map(|((_, id), t)| {
                let of = |n: i64| t.versions.iter().find(|v| v.0 == n);
                let latest = t.versions.last().map_or(1, |v| v.0);
                TrackedTemplate {
                    id: id.clone(),
                    name: t.name.clone(),
                    tags: t.tags.clone(),
                    default_version: t.default_version,
                    default_image: of(t.default_version).and_then(|v| v.1.clone()),
                    latest_version: latest,
                    latest_image: of(latest).and_then(|v| v.1.clone()),
                    latest_description: of(latest).and_then(|v| v.2.clone()),
                }
            })
            .collect())
    }

    async fn create_version(&self, request: &NewTemplateVersion) -> CloudResult<i64> {
        let mut s = self.lock();
        s.call(
            &self.region,
            "CreateLaunchTemplateVersion",
            Some(&request.template),
        )?;
        let region = self.region.clone();
        let t = s
            .templates
            .get_mut(&(region.clone(), request.template.clone()))
            .ok_or_else(|| {
                not_found(
                    "CreateLaunchTemplateVersion",
                    &region,
                    "InvalidLaunchTemplateId.NotFound",
                    &request.template,
                )
            })?;
        if let Some(v) = t.tokens.get(&request.token) {
            return Ok(*v);
        }
        if !t.versions.iter().any(|v| v.0 == request.source_version) {
            return Err(ssm_error(
                "CreateLaunchTemplateVersion",
                &region,
                "InvalidLaunchTemplateId.VersionNotFound",
                format!("version {} of {}", request.source_version, request.template),
            ));
        }
        let next = t.versions.last().map_or(1, |v| v.0) + 1;
        t.versions.push((
            next,
            Some(request.image.to_string()),
            Some(request.description.clone()),
        ));
        t.tokens.insert(request.token.clone(), next);
        Ok(next)
    }

    async fn set_default_version(&self, template: &str, version: i64) -> CloudResult<()> {
        let mut s = self.lock();
        s.call(&self.region, "ModifyLaunchTemplate", Some(template))?;
        let region = self.region.clone();
        let t = s
            .templates
            .get_mut(&(region.clone(), template.to_owned()))
            .ok_or_else(|| {
                not_found(
                    "ModifyLaunchTemplate",
                    &region,
                    "InvalidLaunchTemplateId.NotFound",
                    template,
                )
            })?;
        if !t.versions.iter().any(|v| v.0 == version) {
            return Err(ssm_error(
                "ModifyLaunchTemplate",
                &region,
                "InvalidLaunchTemplateId.VersionNotFound",
                format!("version {version} of {template}"),
            ));
        }
        t.default_version = version;
        Ok(())
    }
}
