//! [`AwsSeals`]: the [`Seals`] port on KMS — `GenerateMac` and `VerifyMac` with the
//! deployment's HMAC key (`SEAL_KEY`, `HMAC_256`, `GENERATE_VERIFY_MAC`) in the home region.
//!
//! The key never leaves KMS, so only principals the key policy admits (the suite's roles
//! and an operator role) can seal. `VerifyMac` answers an invalid MAC with
//! `KMSInvalidMacException`, which is a verdict here (`Ok(false)`), not a failure.
//! Without `SEAL_KEY` every call fails with `SealKeyNotConfigured`, so nothing is sealed
//! and nothing verifies: the suite then creates nothing and deletes or shares nothing.

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use aws_sdk_kms::Client;

use super::errors::cloud_error;
use crate::error::{CloudError, CloudResult};
use crate::model::Region;
use crate::ports::Seals;

/// The seal port: one KMS client in the home region and the key id.
#[derive(Debug, Clone)]
pub struct AwsSeals {
    client: Client,
    region: Region,
    key: Option<String>,
}

impl AwsSeals {
    pub fn new(client: Client, region: Region, key: Option<String>) -> Self {
        Self {
            client,
            region,
            key,
        }
    }

    fn key(&self, operation: &'static str) -> CloudResult<&str> {
        self.key.as_deref().ok_or_else(|| {
            CloudError::from_code(
                operation,
                Some(self.region.clone()),
                "SealKeyNotConfigured",
                "SEAL_KEY is not set: set it to the ARN of the deployment's HMAC key (the stack's SealKey output)",
            )
        })
    }
}

#[async_trait]
impl Seals for AwsSeals {
    async fn mac(&self, message: &[u8]) -> CloudResult<Vec<u8>> {
        let out = self
            .client
            .generate_mac()
            .key_id(self.key("GenerateMac")?)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .send()
            .await
            .map_err(|e| cloud_error("GenerateMac", Some(&self.region), e))?;
        out.mac().map(|b| b.as_ref().to_vec()).ok_or_else(|| {
            CloudError::from_code(
                "GenerateMac",
                Some(self.region.clone()),
                "MissingMac",
                "GenerateMac answered without a MAC",
            )
        })
    }

    async fn verify(&self, message: &[u8], mac: &[u8]) -> CloudResult<bool> {
        let answer = self
            .client
            .verify_mac()
            .key_id(self.key("VerifyMac")?)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .mac(Blob::new(mac))
            .send()
            .await;
        match answer {
            Ok(out) => Ok(out.mac_valid()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_kms_invalid_mac_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(cloud_error("VerifyMac", Some(&self.region), e)),
        }
    }
}
