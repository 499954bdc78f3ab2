//! Test harness for the emulator integration tests: [`Emulator`] starts our extended moto
//! on a free 127.0.0.1 port (and stops it on drop), builds SDK clients and a [`Context`]
//! pointed at it, seeds instances and keys, drives the control API, and observes the
//! events the emulator puts on its EventBridge bus ([`EventQueue`]).
//!
//! The emulator is `.venv/emulator/bin/python infra/emulator/launcher.py` (installed by
//! `make emulator-venv`). Every test starts its own emulator, so tests never share state.

mod http;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ami_core::aws::AwsCloud;
use ami_core::config::Config;
use ami_core::context::Context;
use anyhow::{bail, Context as _};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice, ResourceType, Tag, TagSpecification};
use serde_json::Value;

pub use http::request as http_request;

/// The account moto uses when the access key names none.
pub const ACCOUNT: &str = "123456789012";
/// A second account, selected by a 12-digit access key id.
pub const OTHER_ACCOUNT: &str = "111122223333";

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running emulator process; killed when dropped. Derefs to its [`EmulatorClient`].
pub struct Emulator {
    child: Child,
    client: EmulatorClient,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl std::ops::Deref for Emulator {
    type Target = EmulatorClient;
    fn deref(&self) -> &EmulatorClient {
        &self.client
    }
}

/// Talks to an emulator at a loopback URL (started by [`Emulator::start`], or already
/// running, as `amictl demo` finds it through `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone)]
pub struct EmulatorClient {
    pub port: u16,
    pub endpoint: String,
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Emulator {
    /// Starts the emulator and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let root = repo_root();
        let python = root.join(".venv/emulator/bin/python");
        if !python.exists() {
            bail!(
                "{} is missing: run `make emulator-venv` first (make test does)",
                python.display()
            );
        }
        let mut last_err = None;
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..3 {
            let port = free_port()?;
            let mut child = Command::new(&python)
                .arg(root.join("infra/emulator/launcher.py"))
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", python.display()))?;
            let stdout = child.stdout.take().context("launcher stdout")?;
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("emulator ready") {
                        let _ = tx.send(());
                    }
                }
            });
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        client: EmulatorClient {
                            port,
                            endpoint: format!("http://127.0.0.1:{port}"),
                        },
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = Some(anyhow::anyhow!(
                        "emulator on port {port} did not get ready: {e}"
                    ));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("emulator did not start")))
    }
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
        let creds =
            aws_credential_types::Credentials::new(access_key, "secret", None, None, "emulator");
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
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

    /// A runner context over [`Emulator::cloud`].
    pub fn context(&self, config: Config) -> Context {
        let cloud = self.cloud(&config);
        Context::new(cloud, config)
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

    /// A running instance with an 8 GiB root volume and 20 GiB data volumes on `data_devices`.
    pub async fn launch_instance(
        &self,
        region: &str,
        tags: &[(&str, &str)],
        data_devices: &[&str],
    ) -> anyhow::Result<String> {
        self.launch_instance_encrypted(region, tags, data_devices, None)
            .await
    }

    /// As [`Emulator::launch_instance`], with every volume encrypted with `kms_key`.
    pub async fn launch_instance_encrypted(
        &self,
        region: &str,
        tags: &[(&str, &str)],
        data_devices: &[&str],
        kms_key: Option<&str>,
    ) -> anyhow::Result<String> {
        let ec2 = self.ec2(region);
        let base = self.base_image(region).await?;
        let mut mappings = Vec::new();
        for (device, size) in
            std::iter::once(("/dev/xvda", 8)).chain(data_devices.iter().map(|d| (*d, 20)))
        {
            let mut ebs = EbsBlockDevice::builder()
                .volume_size(size)
                .delete_on_termination(true);
            if let Some(key) = kms_key {
                ebs = ebs.encrypted(true).kms_key_id(key);
            }
            mappings.push(
                BlockDeviceMapping::builder()
                    .device_name(device)
                    .ebs(ebs.build())
                    .build(),
            );
        }
        let mut tag_spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            tag_spec = tag_spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        // EC2 rejects a tag specification without tags.
        let tag_specs = (!tags.is_empty()).then(|| vec![tag_spec.build()]);
        let out = ec2
            .run_instances()
            .image_id(base)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .set_block_device_mappings(Some(mappings))
            .set_tag_specifications(tag_specs)
            .send()
            .await
            .context("RunInstances")?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_owned)
            .context("RunInstances returned no instance")
    }

    /// An unmanaged base image to launch instances from (registered once per region).
    pub async fn base_image(&self, region: &str) -> anyhow::Result<String> {
        let ec2 = self.ec2(region);
        let name = "base-al2023";
        let found = ec2
            .describe_images()
            .owners("self")
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("name")
                    .values(name)
                    .build(),
            )
            .send()
            .await
            .context("DescribeImages")?;
        if let Some(id) = found.images().first().and_then(|i| i.image_id()) {
            return Ok(id.to_owned());
        }
        let out = ec2
            .register_image()
            .name(name)
            .root_device_name("/dev/xvda")
            .architecture(aws_sdk_ec2::types::ArchitectureValues::X8664)
            .send()
            .await
            .context("RegisterImage")?;
        out.image_id()
            .map(str::to_owned)
            .context("RegisterImage returned no id")
    }

    /// A customer managed KMS key in `region`, with `alias` if given; returns its ARN.
    pub async fn create_key(&self, region: &str, alias: Option<&str>) -> anyhow::Result<String> {
        let kms = self.kms(region);
        let key = kms
            .create_key()
            .description("ami-lifecycle test key")
            .send()
            .await
            .context("CreateKey")?;
        let meta = key.key_metadata().context("no key metadata")?;
        let arn = meta.arn().context("no key ARN")?.to_owned();
        if let Some(alias) = alias {
            kms.create_alias()
                .alias_name(alias)
                .target_key_id(meta.key_id())
                .send()
                .await
                .context("CreateAlias")?;
        }
        Ok(arn)
    }

    /// An EventBridge rule with `pattern` on `region`'s default bus, targeting a new SQS
    /// queue: how a test sees the events the emulator emits, as a deployed rule would.
    pub async fn event_queue(&self, region: &str, pattern: Value) -> anyhow::Result<EventQueue> {
        let n = NEXT_QUEUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("events-{n}");
        let sqs = self.sqs(region);
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .context("CreateQueue")?
            .queue_url()
            .context("no queue url")?
            .to_owned();
        let arn = format!("arn:aws:sqs:{region}:{ACCOUNT}:{name}");
        let events = self.events(region);
        events
            .put_rule()
            .name(&name)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .context("PutRule")?;
        events
            .put_targets()
            .rule(&name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .context("target")?,
            )
            .send()
            .await
            .context("PutTargets")?;
        Ok(EventQueue { sqs, url })
    }
}

impl EmulatorClient {
    /// A plain SQS queue (no rule), e.g. a continuation queue a function sends to.
    pub async fn queue(&self, region: &str, name: &str) -> anyhow::Result<EventQueue> {
        let sqs = self.sqs(region);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .context("CreateQueue")?
            .queue_url()
            .context("no queue url")?
            .to_owned();
        Ok(EventQueue { sqs, url })
    }

    /// Tags an image (the emulator emits a `Tag Change on Resource` event).
    pub async fn tag_image(
        &self,
        region: &str,
        image: &str,
        key: &str,
        value: &str,
    ) -> anyhow::Result<()> {
        self.ec2(region)
            .create_tags()
            .resources(image)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .context("CreateTags")?;
        Ok(())
    }

    /// Removes a tag from an image (the emulator emits a `Tag Change on Resource` event).
    pub async fn untag_image(&self, region: &str, image: &str, key: &str) -> anyhow::Result<()> {
        self.ec2(region)
            .delete_tags()
            .resources(image)
            .tags(Tag::builder().key(key).build())
            .send()
            .await
            .context("DeleteTags")?;
        Ok(())
    }

    /// A launch template whose default version uses `default_image` and whose second,
    /// non-default version uses `image`: a reference cleanup must honour.
    pub async fn launch_template_referencing(
        &self,
        region: &str,
        name: &str,
        default_image: &str,
        image: &str,
    ) -> anyhow::Result<String> {
        use aws_sdk_ec2::types::RequestLaunchTemplateData;
        let ec2 = self.ec2(region);
        let lt = ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id(default_image)
                    .build(),
            )
            .send()
            .await
            .context("CreateLaunchTemplate")?;
        let id = lt
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .context("no launch template id")?
            .to_owned();
        ec2.create_launch_template_version()
            .launch_template_id(&id)
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(image).build())
            .send()
            .await
            .context("CreateLaunchTemplateVersion")?;
        Ok(id)
    }

    /// Accounts with launch permission on an image.
    pub async fn launch_permission_accounts(
        &self,
        region: &str,
        image: &str,
    ) -> anyhow::Result<Vec<String>> {
        let out = self
            .ec2(region)
            .describe_image_attribute()
            .image_id(image)
            .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
            .send()
            .await
            .context("DescribeImageAttribute")?;
        Ok(out
            .launch_permissions()
            .iter()
            .filter_map(|p| p.user_id().map(str::to_owned))
            .collect())
    }
}

static NEXT_QUEUE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// Events delivered by an EventBridge rule to an SQS queue.
pub struct EventQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl EventQueue {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every event delivered so far (removes them from the queue).
    pub async fn drain(&self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .send()
                .await
                .context("ReceiveMessage")?;
            let messages = batch.messages();
            if messages.is_empty() {
                return Ok(out);
            }
            for m in messages {
                if let Some(body) = m.body() {
                    out.push(
                        serde_json::from_str(body)
                            .with_context(|| format!("event is not JSON: {body}"))?,
                    );
                }
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .context("DeleteMessage")?;
                }
            }
        }
    }

    /// Waits up to `timeout` for at least `n` events; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Value>> {
        let start = Instant::now();
        let mut out = Vec::new();
        while out.len() < n && start.elapsed() < timeout {
            out.extend(self.drain().await?);
            if out.len() < n {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(out)
    }
}
