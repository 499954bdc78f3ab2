//! [`Parameters`] on [`AwsParameters`]: the suite's own latest-image parameters
//! (`GetParametersByPath`, `GetParameter`, `GetParameterHistory`, `PutParameter`, `LabelParameterVersion`,
//! `UnlabelParameterVersion`, `DeleteParameter`).
//!
//! Limits from the API model: `GetParametersByPath` `MaxResults` 1–10,
//! `GetParameterHistory` `MaxResults` 1–50 (oldest version first), 1–10 labels per call.
//! `PutParameter` with `DataType=aws:ec2:image` answers before SSM has validated the image:
//! the answered version may not exist yet, or ever (an image SSM cannot see).

use async_trait::async_trait;
use aws_sdk_ssm::types::ParameterType;

use super::errors::cloud_error;
use super::ssm::AwsParameters;
use crate::error::{CloudResult, ErrorKind};
use crate::ports::{NewParameterVersion, ParameterValue, ParameterVersion, Parameters};

/// `GetParametersByPath` `MaxResults`: the model allows 1–10.
const BY_PATH_PAGE: i32 = 10;
/// `GetParameterHistory` `MaxResults`: the model allows 1–50.
const HISTORY_PAGE: i32 = 50;

#[async_trait]
impl Parameters for AwsParameters {
    async fn under_path(&self, path: &str) -> CloudResult<Vec<ParameterValue>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client()
                .get_parameters_by_path()
                .path(path)
                .recursive(true)
                .max_results(BY_PATH_PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("GetParametersByPath", Some(self.region()), e))?;
            out.extend(page.parameters().iter().filter_map(|p| {
                Some(ParameterValue {
                    name: p.name()?.to_owned(),
                    value: p.value()?.to_owned(),
                    version: p.version(),
                    data_type: p.data_type().map(str::to_owned),
                    modified: p
                        .last_modified_date()
                        .and_then(|d| time::OffsetDateTime::from_unix_timestamp(d.secs()).ok()),
                })
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn get(&self, name: &str) -> CloudResult<Option<ParameterValue>> {
        let sent = self
            .client()
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| cloud_error("GetParameter", Some(self.region()), e));
        match sent {
            Ok(answer) => Ok(answer.parameter().and_then(|p| {
                Some(ParameterValue {
                    name: p.name()?.to_owned(),
                    value: p.value()?.to_owned(),
                    version: p.version(),
                    data_type: p.data_type().map(str::to_owned),
                    modified: p
                        .last_modified_date()
                        .and_then(|d| time::OffsetDateTime::from_unix_timestamp(d.secs()).ok()),
                })
            })),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn history(&self, name: &str) -> CloudResult<Vec<ParameterVersion>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let sent = self
                .client()
                .get_parameter_history()
                .name(name)
                .max_results(HISTORY_PAGE)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cloud_error("GetParameterHistory", Some(self.region()), e));
            let page = match sent {
                Ok(page) => page,
                Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            out.extend(page.parameters().iter().map(|p| ParameterVersion {
                version: p.version(),
                value: p.value().unwrap_or_default().to_owned(),
                labels: p.labels().to_vec(),
                description: p.description().map(str::to_owned),
            }));
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        out.sort_by_key(|v| v.version);
        Ok(out)
    }

    async fn put(&self, parameter: &NewParameterVersion) -> CloudResult<i64> {
        let answer = self
            .client()
            .put_parameter()
            .name(&parameter.name)
            .value(&parameter.value)
            .description(&parameter.description)
            .r#type(ParameterType::String)
            .data_type(parameter.data_type)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| cloud_error("PutParameter", Some(self.region()), e))?;
        Ok(answer.version())
    }

    async fn label(&self, name: &str, version: i64, labels: &[String]) -> CloudResult<()> {
        self.client()
            .label_parameter_version()
            .name(name)
            .parameter_version(version)
            .set_labels(Some(labels.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error("LabelParameterVersion", Some(self.region()), e))?;
        Ok(())
    }

    async fn unlabel(&self, name: &str, version: i64, labels: &[String]) -> CloudResult<()> {
        self.client()
            .unlabel_parameter_version()
            .name(name)
            .parameter_version(version)
            .set_labels(Some(labels.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error("UnlabelParameterVersion", Some(self.region()), e))?;
        Ok(())
    }

    async fn delete(&self, name: &str) -> CloudResult<()> {
        self.client()
            .delete_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| cloud_error("DeleteParameter", Some(self.region()), e))?;
        Ok(())
    }
}
