//! [`Fleet`]: the narrow port a migration reads its snapshot through and applies its plan
//! with, one per region ([`Fleets`] hands them out). The AWS adapter is `aws/fleet.rs`
//! (EC2's instance, network and address calls, paced like every EC2 call); the fake is
//! `fake/fleet.rs`. Images (create, copy, wait) go through the suite's usual ports.

use std::sync::Arc;

use async_trait::async_trait;

use super::model::{SourceInstance, TargetNetwork};
use super::plan::LaunchSpec;
use crate::error::CloudResult;
use crate::model::{ImageId, InstanceHealth, InstanceId, Region};

/// One RunInstances: the plan's launch, the image it starts from (in the target region)
/// and the user data to replay (`--user-data`), base64 as EC2 holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub spec: LaunchSpec,
    pub image: ImageId,
    pub user_data: Option<String>,
}

/// The instance calls of one region.
#[async_trait]
pub trait Fleet: Send + Sync {
    /// The instance with everything a move repeats (instance, its volumes, subnet and
    /// VPC names, groups, Elastic IP, whether it has user data). `NotFound` when it is
    /// not in this region.
    async fn source(&self, id: &InstanceId) -> CloudResult<SourceInstance>;
    /// The region's subnets (with their VPC's name), security groups, key pairs and
    /// placement groups.
    async fn network(&self) -> CloudResult<TargetNetwork>;
    /// The instance launched with this client token, if any (terminated ones excluded):
    /// how a re-run finds what the first run launched.
    async fn launched(&self, client_token: &str) -> CloudResult<Option<InstanceId>>;
    /// RunInstances of one instance with the spec's client token and tags at creation.
    async fn launch(&self, request: &Launch) -> CloudResult<InstanceId>;
    /// The instance's state and status checks.
    async fn health(&self, id: &InstanceId) -> CloudResult<Option<InstanceHealth>>;
    /// The source's user data (base64), for `--user-data`.
    async fn user_data(&self, id: &InstanceId) -> CloudResult<Option<String>>;
    /// StopInstances (never terminate).
    async fn stop(&self, id: &InstanceId) -> CloudResult<()>;
    /// AssociateAddress with `AllowReassociation`: moves the Elastic IP to `to`.
    async fn move_address(&self, allocation_id: &str, to: &InstanceId) -> CloudResult<()>;
}

/// The [`Fleet`] of each region.
pub trait Fleets: Send + Sync {
    fn fleet(&self, region: &Region) -> Arc<dyn Fleet>;
}
