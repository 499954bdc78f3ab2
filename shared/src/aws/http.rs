//! [`DeferredTlsClient`]: the SDK's HTTPS client (hyper 1.x, rustls with ring),
//! one instance shared by every SDK client of the process, whose TLS set-up waits for the
//! first request.
//!
//! Why: the SDK's default client builds a whole TLS connector — the platform's root
//! certificates read from disk and parsed — in `validate_base_client_config`, which every
//! `Client::new` calls, "so that native certs load at client initialization time". A Lambda
//! start-up builds several clients (STS inside the default credentials chain, EventBridge,
//! KMS, Organizations, SQS, DynamoDB), so it paid for the roots several times before taking
//! its first event. Here that validation is skipped (it only builds a connector and throws
//! it away; it cannot fail) and the first request builds the connector once per timeout
//! setting, cached by the inner client for every SDK client that shares it. No request is
//! made earlier than before; the roots, the crypto provider and the proxy settings
//! (`HTTPS_PROXY`/`NO_PROXY`, as the SDK's default reads them) are the SDK's own.
//!
//! [`PacedRetries`]: the HTTP client of a region's EC2 client, which makes every retry the
//! SDK sends (throttling, 5xx, timeouts) wait for a token of its action's bucket in that
//! region's [`Pacer`] first. The first attempt takes its token at the call site
//! ([`super::ec2`]); EC2 charges each attempt a token, so the client must count each one
//! (see [`crate::pacing`]).

use std::sync::{Arc, OnceLock};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::http::HttpConnectorFuture;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

use crate::pacing::{Bucket, Pacer};

/// The SDK's default HTTPS client, without the connector build at client construction.
#[derive(Debug)]
pub struct DeferredTlsClient {
    inner: SharedHttpClient,
}

impl DeferredTlsClient {
    /// The process's one client (connectors and connection pools shared by all SDK clients).
    pub fn shared() -> SharedHttpClient {
        static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
        CLIENT
            .get_or_init(|| {
                SharedHttpClient::new(Self {
                    inner: default_https_client(),
                })
            })
            .clone()
    }
}

/// What `aws_smithy_runtime`'s `default_https_client` builds for the current behaviour
/// version (that function is not public), but with ring as rustls' crypto provider where
/// the SDK picks aws-lc: the platform's roots, the proxy settings from the environment, the
/// client's timeouts and sleep. Why ring: it is the one crypto provider the build compiles.
/// The SDK crates are built without their `rustls` feature (the legacy hyper 0.14 /
/// rustls 0.21 / ring stack) and without `default-https-client` (aws-lc, whose C library
/// takes minutes to build); every SDK configuration of the suite and its tests sets this
/// client ([`crate::aws::AwsCloud::sdk_from_env`], `ami_sim`). What aws-lc adds and ring
/// lacks is the post-quantum key exchange the SDK prefers; TLS 1.3 with X25519 is kept.
fn default_https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

impl HttpClient for DeferredTlsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        _: &RuntimeComponentsBuilder,
        _: &ConfigBag,
    ) -> Result<(), BoxError> {
        // The inner client's check builds a TLS connector and drops it (always Ok): the
        // first request builds the one that is used.
        Ok(())
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// An EC2 client's HTTP client: `inner`, with each retry paced by `pacer` (one region's).
#[derive(Debug, Clone)]
pub struct PacedRetries {
    inner: SharedHttpClient,
    pacer: Arc<Pacer>,
}

impl PacedRetries {
    pub fn new(inner: SharedHttpClient, pacer: Arc<Pacer>) -> Self {
        Self { inner, pacer }
    }
}

impl HttpClient for PacedRetries {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            pacer: self.pacer.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_base_client_config(components, cfg)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    pacer: Arc<Pacer>,
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match retried_action(&request) {
            None => self.inner.call(request),
            Some(action) => {
                let (inner, pacer) = (self.inner.clone(), self.pacer.clone());
                let bucket = Bucket::for_action(&action);
                HttpConnectorFuture::new(async move {
                    pacer.take(bucket).await;
                    inner.call(request).await
                })
            }
        }
    }
}

/// The EC2 action of a request the SDK is retrying (`amz-sdk-request: attempt=N; …` with
/// N > 1, which the SDK sets on every attempt), from the query body's `Action=`.
fn retried_action(request: &HttpRequest) -> Option<String> {
    let info = request.headers().get("amz-sdk-request")?;
    let attempt: u32 = info
        .split(';')
        .find_map(|p| p.trim().strip_prefix("attempt="))?
        .parse()
        .ok()?;
    if attempt <= 1 {
        return None;
    }
    let body = std::str::from_utf8(request.body().bytes()?).ok()?;
    body.split('&')
        .find_map(|p| p.strip_prefix("Action="))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use aws_credential_types::Credentials;
    use aws_types::region::Region;

    use super::*;

    #[test]
    fn it_reports_itself_as_the_sdk_default_does() {
        // The user agent names the HTTP stack: unchanged by the wrapper.
        let meta = DeferredTlsClient::shared()
            .connector_metadata()
            .expect("metadata");
        assert_eq!(meta.to_string(), "http#hyper-1.x");
    }

    #[tokio::test]
    async fn a_client_built_on_it_makes_its_requests() {
        // One canned GetCallerIdentity answer on 127.0.0.1: the connector is built at this
        // first request, not when the client is.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 16 * 1024];
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("GetCallerIdentity") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let body = "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/x</Arn><UserId>AIDAX</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>";
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body.as_bytes()).unwrap();
        });
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .http_client(DeferredTlsClient::shared())
            .build();
        let me = aws_sdk_sts::Client::from_conf(conf)
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity through the deferred client");
        assert_eq!(me.account(), Some("123456789012"));
        server.join().unwrap();
    }

    /// Reads one HTTP request (headers and the `Content-Length` body) from `s`.
    fn read_request(s: &mut std::net::TcpStream) -> String {
        let mut buf = vec![0u8; 16 * 1024];
        let mut got = Vec::new();
        loop {
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    return text;
                }
            }
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return String::from_utf8_lossy(&got).to_string();
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    fn answer(s: &mut std::net::TcpStream, status: &str, body: &str) {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
    }

    /// The tokens of `bucket` left at once (a pacer scaled so slowly that the test's own
    /// duration refills a small fraction of one).
    fn tokens_left(pacer: &Pacer, bucket: Bucket) -> usize {
        let now = std::time::Instant::now();
        (0..)
            .take_while(|_| pacer.try_take(bucket, now).is_zero())
            .count()
    }

    #[tokio::test]
    async fn a_throttled_call_retried_by_the_sdk_takes_a_token_for_the_retry() {
        // Two answers: RequestLimitExceeded, then success. The call site's own token is not
        // taken here (the client is called directly): only the retry's shows.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for n in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                let req = read_request(&mut s);
                seen.push(req);
                if n == 0 {
                    answer(&mut s, "503 Service Unavailable", "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r-1</RequestID></Response>");
                } else {
                    answer(&mut s, "200 OK", "<DeregisterImageResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r-2</requestId><return>true</return></DeregisterImageResponse>");
                }
            }
            seen
        });
        let pacer = Arc::new(Pacer::new(crate::aws::PACE_SCALE_MIN));
        let full = tokens_left(
            &Pacer::new(crate::aws::PACE_SCALE_MIN),
            Bucket::DeregisterImage,
        );
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .retry_config(
                aws_smithy_types::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1)),
            )
            .http_client(PacedRetries::new(
                DeferredTlsClient::shared(),
                pacer.clone(),
            ))
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
            .deregister_image()
            .image_id("ami-0123456789abcdef0")
            .send()
            .await
            .expect("the retry succeeds");
        let seen = server.join().unwrap();
        assert!(seen[0].contains("attempt=1"), "{}", seen[0]);
        assert!(seen[1].contains("attempt=2"), "{}", seen[1]);
        assert!(seen[1].contains("Action=DeregisterImage"));
        assert_eq!(
            tokens_left(&pacer, Bucket::DeregisterImage),
            full - 1,
            "the retry took one DeregisterImage token"
        );
        // Other buckets untouched.
        assert_eq!(tokens_left(&pacer, Bucket::DeleteSnapshot), full);
    }
}
