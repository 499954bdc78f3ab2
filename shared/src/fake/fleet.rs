//! [`FakeFleet`]: the migration's [`Fleet`] port in memory, with EC2's rules that matter
//! to a move: RunInstances with a known client token answers the first instance (no
//! second launch), status checks start `initializing` and pass after a set number of
//! looks, stopping never terminates, an Elastic IP moves only when asked.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{CloudError, CloudResult};
use crate::migrate::fleet::{Fleet, Fleets, Launch};
use crate::migrate::{SourceInstance, TargetNetwork};
use crate::model::{InstanceHealth, InstanceId, InstanceState, Region};

/// What the fake fleet holds and records.
#[derive(Debug, Default)]
pub struct FleetState {
    pub sources: BTreeMap<InstanceId, SourceInstance>,
    pub networks: BTreeMap<Region, TargetNetwork>,
    /// Launched instances by client token: (region, id, the request).
    pub launched: BTreeMap<String, (Region, InstanceId, Launch)>,
    /// Health looks an instance answers `initializing` before `ok`; `None`: never ok.
    pub healthy_after: Option<u32>,
    pub looks: BTreeMap<InstanceId, u32>,
    pub stopped: Vec<InstanceId>,
    /// Elastic IP allocation → instance.
    pub addresses: BTreeMap<String, InstanceId>,
    pub user_data: BTreeMap<InstanceId, String>,
    /// RunInstances calls that were answered, new or not.
    pub run_calls: usize,
    next: u32,
}

/// A fleet in every region, sharing one [`FleetState`].
#[derive(Debug, Clone, Default)]
pub struct FakeFleet {
    state: Arc<Mutex<FleetState>>,
}

impl FakeFleet {
    /// Instances become healthy at the first look.
    pub fn new() -> Self {
        let fleet = Self::default();
        fleet.state().healthy_after = Some(0);
        fleet
    }

    pub fn state(&self) -> MutexGuard<'_, FleetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_source(&self, source: SourceInstance) {
        let mut s = self.state();
        if let Some(eip) = &source.elastic_ip {
            s.addresses
                .insert(eip.allocation_id.clone(), source.id.clone());
        }
        s.sources.insert(source.id.clone(), source);
    }

    pub fn add_network(&self, network: TargetNetwork) {
        self.state()
            .networks
            .insert(network.region.clone(), network);
    }
}

impl Fleets for FakeFleet {
    fn fleet(&self, region: &Region) -> Arc<dyn Fleet> {
        Arc::new(RegionFleet {
            state: self.state.clone(),
            region: region.clone(),
        })
    }
}

struct RegionFleet {
    state: Arc<Mutex<FleetState>>,
    region: Region,
}

impl RegionFleet {
    fn state(&self) -> MutexGuard<'_, FleetState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn not_found(&self, operation: &'static str, code: &str, what: &str) -> CloudError {
        CloudError::from_code(
            operation,
            Some(self.region.clone()),
            code,
            format!("{what} does not exist"),
        )
    }
}

#[async_trait]
impl Fleet for RegionFleet {
    async fn source(&self, id: &InstanceId) -> CloudResult<SourceInstance> {
        let s = self.state();
        s.sources
            .get(id)
            .filter(|i| i.region == self.region)
            .cloned()
            .ok_or_else(|| {
                self.not_found(
                    "DescribeInstances",
                    "InvalidInstanceID.NotFound",
                    id.as_str(),
                )
            })
    }

    async fn network(&self) -> CloudResult<TargetNetwork> {
        let s = self.state();
        Ok(s.networks
            .get(&self.region)
            .cloned()
            .unwrap_or(TargetNetwork {
                region: self.region.clone(),
                subnets: vec![],
                security_groups: vec![],
                key_pairs: vec![],
                placement_groups: vec![],
            }))
    }

    async fn launched(&self, client_token: &str) -> CloudResult<Option<InstanceId>> {
        let s = self.state();
        Ok(s.launched
            .get(client_token)
            .filter(|(r, _, _)| *r == self.region)
            .map(|(_, id, _)| id.clone()))
    }

    async fn launch(&self, request: &Launch) -> CloudResult<InstanceId> {
        let mut s = self.state();
        s.run_calls += 1;
        let token = request.spec.client_token.clone();
        if let Some((_, id, first)) = s.launched.get(&token) {
            // EC2: the same token answers the first launch; other parameters are refused.
            if first != request {
                return Err(CloudError::from_code(
                    "RunInstances",
                    Some(self.region.clone()),
                    "IdempotentParameterMismatch",
                    "the client token was used with other parameters",
                ));
            }
            return Ok(id.clone());
        }
        s.next += 1;
        let id = InstanceId::new(format!("i-fleet{:04}", s.next));
        s.launched
            .insert(token, (self.region.clone(), id.clone(), request.clone()));
        Ok(id)
    }

    async fn health(&self, id: &InstanceId) -> CloudResult<Option<InstanceHealth>> {
        let mut s = self.state();
        let after = s.healthy_after;
        let looks = s.looks.entry(id.clone()).or_default();
        *looks += 1;
        let healthy = after.is_some_and(|n| *looks > n);
        Ok(Some(InstanceHealth {
            id: id.clone(),
            state: InstanceState::Running,
            healthy,
            summary: if healthy {
                "system ok, instance ok"
            } else {
                "system initializing, instance initializing"
            }
            .to_owned(),
        }))
    }

    async fn user_data(&self, id: &InstanceId) -> CloudResult<Option<String>> {
        Ok(self.state().user_data.get(id).cloned())
    }

    async fn stop(&self, id: &InstanceId) -> CloudResult<()> {
        let mut s = self.state();
        if let Some(src) = s.sources.get_mut(id) {
            src.state = InstanceState::Stopped;
        }
        s.stopped.push(id.clone());
        Ok(())
    }

    async fn move_address(&self, allocation_id: &str, to: &InstanceId) -> CloudResult<()> {
        let mut s = self.state();
        match s.addresses.get_mut(allocation_id) {
            Some(at) => {
                *at = to.clone();
                Ok(())
            }
            None => Err(self.not_found(
                "AssociateAddress",
                "InvalidAllocationID.NotFound",
                allocation_id,
            )),
        }
    }
}
