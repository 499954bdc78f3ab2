//! [`EmulatorClient`]: talks to a running emulator at a loopback URL: SDK configuration
//! and clients pointed at it, a runner [`Context`] over it, and the control API
//! (`/_emulator/...`: configure faults, tick pending images, counters, reboots).

use std::sync::Arc;
use std::time::Duration;

use ami_core::aws::AwsCloud;
use ami_core::config::Config;
use ami_core::context::Context;
use anyhow::{bail, Context as _};
use aws_config::{BehaviorVersion, SdkConfig};
use serde_json::Value;

use crate::http;

/// Talks to an emulator at a loopback URL (started by [`crate::Emulator::start`], or already
/// running, as `ami-sim demo` finds it through `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone)]
pub struct EmulatorClient {
    pub port: u16,
    pub endpoint: String,
}

impl EmulatorClient {
    /// A client for an emulator already listening at `url` (`http://127.0.0.1:PORT`); only
    /// loopback addresses are accepted, so nothing here can reach a real AWS account.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url:?}: expected http://127.0.0.1:PORT"))?;
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .with_context(|| format!("{url:?}: no port"))?;
        if host != "127.0.0.1" && host != "localhost" {
            bail!(
                "{url:?} is not a loopback address: the demo only runs against the local emulator"
            );
        }
        let port: u16 = port.parse().with_context(|| format!("{url:?}: bad port"))?;
        Ok(Self {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// SDK configuration for `region` as the default account. Two attempts: the emulator's
    /// injected faults must reach the code under test, not be retried away.
    pub fn sdk_config(&self, region: &str) -> SdkConfig {
        self.sdk_config_as(region, "testing")
    }

    /// SDK configuration acting as `account` (a 12-digit access key id selects it).
    pub fn sdk_config_as(&self, region: &str, access_key: &str) -> SdkConfig {
        self.sdk_config_with(
            region,
            aws_credential_types::Credentials::new(access_key, "secret", None, None, "emulator"),
        )
    }

    /// SDK configuration with `creds` (e.g. a session from the emulator's STS
    /// `AssumeRole`: a hub function role, as the Lambda functions run).
    pub fn sdk_config_with(
        &self,
        region: &str,
        creds: aws_credential_types::Credentials,
    ) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(ami_core::aws::http::DeferredTlsClient::shared())
            .region(aws_types::region::Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(creds),
            )
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build()
    }

    /// Settings as the functions read them from the environment; `AWS_REGION` defaults to
    /// us-east-1.
    pub fn config(&self, pairs: &[(&str, &str)]) -> Config {
        let lookup = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| (k == "AWS_REGION").then(|| "us-east-1".to_owned()))
        };
        Config::from_lookup(lookup).unwrap_or_else(|e| panic!("test config: {e}"))
    }

    /// The AWS adapters pointed at the emulator (home region: the config's first region),
    /// pacing off.
    pub fn cloud(&self, config: &Config) -> Arc<AwsCloud> {
        let home = config
            .regions
            .first()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".to_owned());
        Arc::new(AwsCloud::new(self.sdk_config(&home), config, 0.0))
    }

    /// A runner context over [`EmulatorClient::cloud`]. Without a `SEAL_KEY`, the
    /// deployment's seal key is made in the home region first (as the stack would).
    pub fn context(&self, mut config: Config) -> Context {
        if config.seal_key.is_none() {
            let home = config
                .regions
                .first()
                .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
            config.seal_key = Some(
                self.seal_key(&home, &config.deployment)
                    .unwrap_or_else(|e| panic!("the emulator's seal key: {e:#}")),
            );
        }
        let cloud = self.cloud(&config);
        Context::new(cloud, config)
    }

    /// Sets the emulator's clock (what stamps `CreationDate`) to `now`: the simulated time.
    pub fn set_clock(&self, now: time::OffsetDateTime) -> anyhow::Result<()> {
        let offset = (now - time::OffsetDateTime::now_utc()).as_seconds_f64();
        self.control(
            "POST",
            "/_emulator/config",
            Some(serde_json::json!({"clock_offset_seconds": offset})),
        )?;
        Ok(())
    }

    /// The ARN of the deployment's HMAC seal key in `region` (`alias/<deployment>-seal`),
    /// made on first use through the control API.
    pub fn seal_key(&self, region: &str, deployment: &str) -> anyhow::Result<String> {
        let answer = self.control(
            "POST",
            "/_emulator/seal-key",
            Some(serde_json::json!({
                "region": region,
                "alias": format!("alias/{deployment}-seal"),
            })),
        )?;
        answer["arn"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("seal-key answered {answer}"))
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config(region))
    }

    /// An EC2 client acting as another account (e.g. [`OTHER_ACCOUNT`]).
    pub fn ec2_as(&self, region: &str, account: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config_as(region, account))
    }

    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.sdk_config(region))
    }

    pub fn events(&self, region: &str) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk_config(region))
    }

    pub fn sqs(&self, region: &str) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config(region))
    }

    /// Calls the control API (`/_emulator/...`).
    pub fn control(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let (status, text) = http::request(self.port, method, path, body.as_ref())?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: HTTP {status}: {text}");
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }

    /// Merges settings into the fault/behaviour config (`pending_seconds`, `copy_cap`, …).
    pub fn configure(&self, settings: Value) -> anyhow::Result<Value> {
        self.control("POST", "/_emulator/config", Some(settings))
    }

    /// Applies due state transitions now; returns the images that became available.
    pub fn tick(&self) -> anyhow::Result<Vec<String>> {
        let v = self.control("POST", "/_emulator/tick", None)?;
        Ok(v["available"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Recorded reboots: `{instance-id: [{image_id, time}]}`.
    pub fn reboots(&self) -> anyhow::Result<Value> {
        self.control("GET", "/_emulator/reboots", None)
    }

    /// Per-action call counters.
    pub fn counters(&self) -> anyhow::Result<Value> {
        self.control("GET", "/_emulator/counters", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_url_is_accepted() {
        let local = EmulatorClient::from_url("http://127.0.0.1:5000/").map(|c| c.endpoint);
        assert_eq!(local.ok().as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            EmulatorClient::from_url("http://localhost:4566")
                .map(|c| c.port)
                .ok(),
            Some(4566)
        );
        for refused in [
            "https://ec2.us-east-1.amazonaws.com",
            "http://ec2.us-east-1.amazonaws.com:80",
            "http://10.0.0.5:5000",
            "http://127.0.0.1",
        ] {
            let err = EmulatorClient::from_url(refused).map(|c| c.endpoint);
            // An accepted URL fails too: "accepted" does not name the URL.
            let message = format!(
                "{:#}",
                err.err().unwrap_or_else(|| anyhow::anyhow!("accepted"))
            );
            assert!(message.contains(refused), "{refused}: {message}");
        }
    }
}
