//! [`Fleet`] on [`AwsEc2`] and [`Fleets`] on [`AwsCloud`]: the instance, network and
//! address calls of a migration (`amictl migrate`, issue 20), paced like every EC2 call.
//!
//! - [`Fleet::source`]: `DescribeInstances` of the one instance, then what it refers to —
//!   `DescribeVolumes` (type, size, IOPS, throughput, encryption and key),
//!   `DescribeSubnets`/`DescribeVpcs` (their `Name` tags), `DescribeSecurityGroups`
//!   (group names and `Name` tags), `DescribeAddresses` (its Elastic IP) and
//!   `DescribeInstanceAttribute userData` (whether it has user data);
//! - [`Fleet::network`]: every subnet, VPC, security group, key pair and placement group
//!   of the region (paged where EC2 pages);
//! - [`Fleet::launched`]/[`Fleet::launch`]: `DescribeInstances` filtered on `client-token`,
//!   and `RunInstances` of exactly one instance with that `ClientToken`, the spec's volumes
//!   and its tags on the instance and its volumes at creation;
//! - [`Fleet::health`] is [`Instances::health`] (`DescribeInstanceStatus`, one conversion);
//! - [`Fleet::stop`]: `StopInstances` (never forced, never a termination);
//!   [`Fleet::move_address`]: `AssociateAddress` with `AllowReassociation`.
//!
//! Pacing: the pacer has no bucket of its own for `RunInstances`/`StopInstances` (EC2
//! gives them a request bucket plus a per-instance resource bucket: 1000 tokens, refill 2/s
//! for `RunInstances`, 20/s for `StopInstances`); one instance at a time stays far inside
//! the resource buckets, so they take the generic [`Bucket::Mutating`] token (the stricter
//! of the two).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2::types as ec2;

use super::convert::{tag_spec, tags_from_ec2};
use super::ec2::{filter, AwsEc2};
use super::AwsCloud;
use crate::error::{CloudError, CloudResult, ErrorKind};
use crate::migrate::fleet::{Fleet, Fleets, Launch};
use crate::migrate::model::{
    ElasticIp, MetadataOptions, PlacementGroup, SecurityGroup, SourceInstance, Subnet,
    TargetNetwork, VolumeSpec,
};
use crate::model::{DeviceName, InstanceHealth, InstanceId, InstanceState, KeyRef, Region};
use crate::pacing::Bucket;
use crate::ports::Instances;

/// `MaxResults` of DescribeSubnets, DescribeVpcs and DescribeSecurityGroups (model: 5–1000).
const PAGE: i32 = 1000;
/// EC2's tag limit per resource (the instance and each volume get the spec's tags).
pub const MAX_TAGS: usize = 50;
/// RunInstances `ClientToken`: "Maximum 64 ASCII characters".
pub const MAX_CLIENT_TOKEN: usize = 64;
/// Volume types whose IOPS RunInstances takes (gp2's are a function of its size).
const IOPS_TYPES: [&str; 3] = ["io1", "io2", "gp3"];
/// The one volume type whose throughput RunInstances takes.
const THROUGHPUT_TYPE: &str = "gp3";

/// Which resources a Describe call reads: the named ones (no `MaxResults`: with ids EC2
/// answers them all at once), or every one, page by page. Never an empty id list, which
/// EC2 reads as "all".
#[derive(Clone, Copy)]
enum Scope<'a> {
    Ids(&'a [String]),
    All,
}

/// The next page's token, if EC2 gave a non-empty one.
fn next(token: Option<&str>) -> Option<String> {
    token.filter(|t| !t.is_empty()).map(str::to_owned)
}

fn name_tag(tags: &[ec2::Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .map(str::to_owned)
}

impl AwsEc2 {
    /// An error this adapter raises itself (nothing was sent, or EC2's answer lacks what
    /// the port promises), named after the operation it stands for.
    fn refused(
        &self,
        operation: &'static str,
        code: &str,
        kind: ErrorKind,
        message: String,
    ) -> CloudError {
        CloudError {
            operation,
            region: Some(self.region.clone()),
            code: code.to_owned(),
            message,
            kind,
            source: None,
        }
    }

    async fn subnets(&self, scope: Scope<'_>) -> CloudResult<Vec<ec2::Subnet>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let req = self.client.describe_subnets().set_next_token(token.take());
            let req = match scope {
                Scope::Ids(ids) => req.set_subnet_ids(Some(ids.to_vec())),
                Scope::All => req.max_results(PAGE),
            };
            let page = req.send().await.map_err(self.err("DescribeSubnets"))?;
            out.extend(page.subnets().iter().cloned());
            match next(page.next_token()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// VPC id → its `Name` tag (VPCs without one are absent).
    async fn vpc_names(&self, scope: Scope<'_>) -> CloudResult<HashMap<String, String>> {
        let mut out = HashMap::new();
        let mut token = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let req = self.client.describe_vpcs().set_next_token(token.take());
            let req = match scope {
                Scope::Ids(ids) => req.set_vpc_ids(Some(ids.to_vec())),
                Scope::All => req.max_results(PAGE),
            };
            let page = req.send().await.map_err(self.err("DescribeVpcs"))?;
            for v in page.vpcs() {
                if let (Some(id), Some(name)) = (v.vpc_id(), name_tag(v.tags())) {
                    out.insert(id.to_owned(), name);
                }
            }
            match next(page.next_token()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    async fn security_groups(&self, scope: Scope<'_>) -> CloudResult<Vec<SecurityGroup>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let req = self
                .client
                .describe_security_groups()
                .set_next_token(token.take());
            let req = match scope {
                Scope::Ids(ids) => req.set_group_ids(Some(ids.to_vec())),
                Scope::All => req.max_results(PAGE),
            };
            let page = req
                .send()
                .await
                .map_err(self.err("DescribeSecurityGroups"))?;
            out.extend(page.security_groups().iter().filter_map(group_from_ec2));
            match next(page.next_token()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// DescribeVolumes of the instance's EBS volumes, each with its mapping's device and
    /// `DeleteOnTermination`, in the instance's mapping order.
    async fn volumes(&self, id: &InstanceId, i: &ec2::Instance) -> CloudResult<Vec<VolumeSpec>> {
        let mapped: Vec<(&str, &str, bool)> = i
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                let ebs = m.ebs()?;
                Some((
                    m.device_name()?,
                    ebs.volume_id()?,
                    ebs.delete_on_termination().unwrap_or(false),
                ))
            })
            .collect();
        if mapped.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = mapped.iter().map(|(_, v, _)| (*v).to_owned()).collect();
        let mut described: HashMap<String, ec2::Volume> = HashMap::new();
        let mut token = None;
        loop {
            self.pacer.take(Bucket::Describe).await;
            let page = self
                .client
                .describe_volumes()
                .set_volume_ids(Some(ids.clone()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(self.err("DescribeVolumes"))?;
            for v in page.volumes() {
                if let Some(vid) = v.volume_id() {
                    described.insert(vid.to_owned(), v.clone());
                }
            }
            match next(page.next_token()) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        mapped
            .into_iter()
            .map(|(device, vid, delete)| {
                let v = described.get(vid).ok_or_else(|| {
                    self.refused(
                        "DescribeVolumes",
                        "InvalidVolume.NotFound",
                        ErrorKind::NotFound,
                        format!("volume {vid} ({device}) of {id} was not described: it was detached or deleted meanwhile; run the migration again"),
                    )
                })?;
                Ok(volume_from_ec2(device, v, delete))
            })
            .collect()
    }

    /// The Elastic IP on the instance's primary private address, else its first one.
    async fn elastic_ip(
        &self,
        id: &InstanceId,
        private_ip: Option<&str>,
    ) -> CloudResult<Option<ElasticIp>> {
        self.pacer.take(Bucket::Describe).await;
        let answer = self
            .client
            .describe_addresses()
            .filters(filter("instance-id", [id.as_str()]))
            .send()
            .await
            .map_err(self.err("DescribeAddresses"))?;
        let eip = |a: &ec2::Address| {
            Some(ElasticIp {
                allocation_id: a.allocation_id()?.to_owned(),
                public_ip: a.public_ip()?.to_owned(),
            })
        };
        let ours: Vec<&ec2::Address> = answer
            .addresses()
            .iter()
            .filter(|a| a.instance_id() == Some(id.as_str()))
            .collect();
        Ok(ours
            .iter()
            .find(|a| private_ip.is_some() && a.private_ip_address() == private_ip)
            .or_else(|| ours.first())
            .and_then(|a| eip(a)))
    }

    fn not_in_region(&self, id: &InstanceId, aws: Option<CloudError>) -> CloudError {
        let detail = aws
            .as_ref()
            .map(|e| format!(" ({}: {})", e.code, e.message))
            .unwrap_or_default();
        let mut e = self.refused(
            "DescribeInstances",
            "InvalidInstanceID.NotFound",
            ErrorKind::NotFound,
            format!(
                "instance {id} is not in {}{detail}; check the instance id and the source region (--region)",
                self.region
            ),
        );
        if let Some(aws) = aws {
            e.code = aws.code.clone();
            e.source = Some(Box::new(aws));
        }
        e
    }
}

fn group_from_ec2(g: &ec2::SecurityGroup) -> Option<SecurityGroup> {
    Some(SecurityGroup {
        id: g.group_id()?.to_owned(),
        vpc_id: g.vpc_id().unwrap_or_default().to_owned(),
        group_name: g.group_name().unwrap_or_default().to_owned(),
        name: name_tag(g.tags()),
    })
}

fn subnet_from_ec2(s: &ec2::Subnet, vpc_names: &HashMap<String, String>) -> Option<Subnet> {
    let vpc_id = s.vpc_id().unwrap_or_default().to_owned();
    Some(Subnet {
        id: s.subnet_id()?.to_owned(),
        zone: s.availability_zone().unwrap_or_default().to_owned(),
        vpc_name: vpc_names.get(&vpc_id).cloned(),
        vpc_id,
        name: name_tag(s.tags()),
    })
}

fn volume_from_ec2(device: &str, v: &ec2::Volume, delete_on_termination: bool) -> VolumeSpec {
    let encrypted = v.encrypted().unwrap_or(false);
    VolumeSpec {
        device: DeviceName::new(device),
        // EC2's default volume type when none is reported.
        volume_type: v
            .volume_type()
            .map_or("standard", |t| t.as_str())
            .to_owned(),
        size_gib: v.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        iops: v.iops(),
        throughput: v.throughput(),
        encrypted,
        kms_key: v.kms_key_id().filter(|_| encrypted).map(KeyRef::new),
        delete_on_termination,
    }
}

/// The instance's metadata options; where EC2 leaves one out, its documented default
/// (tokens optional, hop limit 1, endpoint enabled, tags not in the metadata).
fn metadata_from_ec2(m: Option<&ec2::InstanceMetadataOptionsResponse>) -> MetadataOptions {
    MetadataOptions {
        http_tokens: m
            .and_then(|m| m.http_tokens())
            .map_or("optional", |t| t.as_str())
            .to_owned(),
        hop_limit: m.and_then(|m| m.http_put_response_hop_limit()).unwrap_or(1),
        endpoint_enabled: m.and_then(|m| m.http_endpoint())
            != Some(&ec2::InstanceMetadataEndpointState::Disabled),
        tags_in_metadata: m.and_then(|m| m.instance_metadata_tags())
            == Some(&ec2::InstanceMetadataTagsState::Enabled),
    }
}

fn enabled(on: bool) -> &'static str {
    if on {
        "enabled"
    } else {
        "disabled"
    }
}

/// One RunInstances block device mapping: IOPS only where the type takes them, throughput
/// only for gp3, `Encrypted` only when true (false is EC2's default and can never decrypt
/// the image's encrypted snapshot) and the key only with it.
pub(crate) fn mapping_to_ec2(v: &VolumeSpec) -> ec2::BlockDeviceMapping {
    let kind = v.volume_type.as_str();
    let ebs = ec2::EbsBlockDevice::builder()
        .volume_type(ec2::VolumeType::from(kind))
        .set_volume_size(i32::try_from(v.size_gib).ok().filter(|s| *s > 0))
        .set_iops(v.iops.filter(|_| IOPS_TYPES.contains(&kind)))
        .set_throughput(v.throughput.filter(|_| kind == THROUGHPUT_TYPE))
        .set_encrypted(v.encrypted.then_some(true))
        .set_kms_key_id(
            v.kms_key
                .as_ref()
                .filter(|_| v.encrypted)
                .map(|k| k.as_str().to_owned()),
        )
        .delete_on_termination(v.delete_on_termination)
        .build();
    ec2::BlockDeviceMapping::builder()
        .device_name(v.device.as_str())
        .ebs(ebs)
        .build()
}

#[async_trait]
impl Fleet for AwsEc2 {
    async fn source(&self, id: &InstanceId) -> CloudResult<SourceInstance> {
        let described = match self
            .describe_instances(Vec::new(), std::slice::from_ref(id))
            .await
        {
            Ok(d) => d,
            Err(e) if e.kind == ErrorKind::NotFound => return Err(self.not_in_region(id, Some(e))),
            Err(e) => return Err(e),
        };
        let Some(i) = described
            .into_iter()
            .map(|(_, i)| i)
            .find(|i| i.instance_id() == Some(id.as_str()))
        else {
            return Err(self.not_in_region(id, None));
        };
        let Some(subnet_id) = i.subnet_id().filter(|s| !s.is_empty()).map(str::to_owned) else {
            return Err(self.refused(
                "DescribeInstances",
                "MissingSubnet",
                ErrorKind::Invalid,
                format!(
                    "instance {id} in {} has no subnet (no VPC network interface): there is nothing to match a subnet in the target against",
                    self.region
                ),
            ));
        };
        let subnets = self
            .subnets(Scope::Ids(std::slice::from_ref(&subnet_id)))
            .await?;
        let raw_subnet = subnets
            .iter()
            .find(|s| s.subnet_id() == Some(subnet_id.as_str()))
            .ok_or_else(|| {
                self.refused(
                    "DescribeSubnets",
                    "InvalidSubnetID.NotFound",
                    ErrorKind::NotFound,
                    format!("subnet {subnet_id} of {id} was not described"),
                )
            })?;
        let vpc_ids: Vec<String> = raw_subnet.vpc_id().map(str::to_owned).into_iter().collect();
        let vpc_names = if vpc_ids.is_empty() {
            HashMap::new()
        } else {
            self.vpc_names(Scope::Ids(&vpc_ids)).await?
        };
        let subnet = subnet_from_ec2(raw_subnet, &vpc_names).ok_or_else(|| {
            self.refused(
                "DescribeSubnets",
                "InvalidResponse",
                ErrorKind::Other,
                format!("subnet {subnet_id} answered without an id"),
            )
        })?;
        let group_ids: Vec<String> = i
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect();
        let security_groups = if group_ids.is_empty() {
            Vec::new()
        } else {
            let found = self.security_groups(Scope::Ids(&group_ids)).await?;
            // The instance's order, every group it names.
            group_ids
                .iter()
                .map(|gid| {
                    found.iter().find(|g| &g.id == gid).cloned().ok_or_else(|| {
                        self.refused(
                            "DescribeSecurityGroups",
                            "InvalidGroup.NotFound",
                            ErrorKind::NotFound,
                            format!("security group {gid} of {id} was not described"),
                        )
                    })
                })
                .collect::<CloudResult<Vec<_>>>()?
        };
        let volumes = self.volumes(id, &i).await?;
        let private_ip = i.private_ip_address().map(str::to_owned);
        let elastic_ip = self.elastic_ip(id, private_ip.as_deref()).await?;
        let has_user_data = self.user_data(id).await?.is_some();
        let placement = i.placement();
        Ok(SourceInstance {
            id: id.clone(),
            region: self.region.clone(),
            zone: placement
                .and_then(|p| p.availability_zone())
                .map_or_else(|| subnet.zone.clone(), str::to_owned),
            state: i
                .state()
                .and_then(|s| s.name())
                .map_or(InstanceState::Unknown, |n| {
                    InstanceState::from_aws(n.as_str())
                }),
            instance_type: i
                .instance_type()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default(),
            subnet,
            security_groups,
            instance_profile: i
                .iam_instance_profile()
                .and_then(|p| p.arn())
                .map(str::to_owned),
            key_name: i.key_name().filter(|k| !k.is_empty()).map(str::to_owned),
            tags: tags_from_ec2(i.tags()),
            metadata: metadata_from_ec2(i.metadata_options()),
            monitoring: matches!(
                i.monitoring().and_then(|m| m.state()),
                Some(ec2::MonitoringState::Enabled | ec2::MonitoringState::Pending)
            ),
            volumes,
            placement_group: placement
                .and_then(|p| p.group_name())
                .filter(|g| !g.is_empty())
                .map(str::to_owned),
            private_ip,
            elastic_ip,
            has_user_data,
        })
    }

    async fn network(&self) -> CloudResult<TargetNetwork> {
        let vpc_names = self.vpc_names(Scope::All).await?;
        let subnets = self
            .subnets(Scope::All)
            .await?
            .iter()
            .filter_map(|s| subnet_from_ec2(s, &vpc_names))
            .collect();
        let security_groups = self.security_groups(Scope::All).await?;
        self.pacer.take(Bucket::Describe).await;
        let keys = self
            .client
            .describe_key_pairs()
            .send()
            .await
            .map_err(self.err("DescribeKeyPairs"))?;
        let key_pairs = keys
            .key_pairs()
            .iter()
            .filter_map(|k| k.key_name().map(str::to_owned))
            .collect();
        self.pacer.take(Bucket::Describe).await;
        let groups = self
            .client
            .describe_placement_groups()
            .send()
            .await
            .map_err(self.err("DescribePlacementGroups"))?;
        let placement_groups = groups
            .placement_groups()
            .iter()
            // Only a group that can take an instance (not pending, deleting or deleted).
            .filter(|g| {
                g.state()
                    .is_none_or(|s| *s == ec2::PlacementGroupState::Available)
            })
            .filter_map(|g| {
                Some(PlacementGroup {
                    name: g.group_name()?.to_owned(),
                    strategy: g
                        .strategy()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                })
            })
            .collect();
        Ok(TargetNetwork {
            region: self.region.clone(),
            subnets,
            security_groups,
            key_pairs,
            placement_groups,
        })
    }

    async fn launched(&self, client_token: &str) -> CloudResult<Option<InstanceId>> {
        let found = self
            .describe_instances(vec![filter("client-token", [client_token])], &[])
            .await?;
        Ok(found
            .iter()
            .map(|(_, i)| i)
            .filter(|i| {
                !matches!(
                    i.state().and_then(|s| s.name()),
                    Some(ec2::InstanceStateName::Terminated | ec2::InstanceStateName::ShuttingDown)
                )
            })
            .find_map(|i| i.instance_id().map(InstanceId::new)))
    }

    async fn launch(&self, request: &Launch) -> CloudResult<InstanceId> {
        let spec = &request.spec;
        if spec.tags.len() > MAX_TAGS {
            return Err(self.refused(
                "RunInstances",
                "TagLimitExceeded",
                ErrorKind::Invalid,
                format!(
                    "the new instance would carry {} tags (the source's and the migration's own); EC2 allows {MAX_TAGS} per instance and volume: remove {} tag(s) from the source instance, then run the migration again; nothing was launched",
                    spec.tags.len(),
                    spec.tags.len() - MAX_TAGS
                ),
            ));
        }
        if spec.client_token.is_empty()
            || spec.client_token.len() > MAX_CLIENT_TOKEN
            || !spec.client_token.is_ascii()
        {
            return Err(self.refused(
                "RunInstances",
                "InvalidParameterValue",
                ErrorKind::Invalid,
                format!(
                    "client token {:?} is not 1 to {MAX_CLIENT_TOKEN} ASCII characters; nothing was launched",
                    spec.client_token
                ),
            ));
        }
        let metadata = ec2::InstanceMetadataOptionsRequest::builder()
            .http_tokens(ec2::HttpTokensState::from(
                spec.metadata.http_tokens.as_str(),
            ))
            .http_put_response_hop_limit(spec.metadata.hop_limit)
            .http_endpoint(ec2::InstanceMetadataEndpointState::from(enabled(
                spec.metadata.endpoint_enabled,
            )))
            .instance_metadata_tags(ec2::InstanceMetadataTagsState::from(enabled(
                spec.metadata.tags_in_metadata,
            )))
            .build();
        let tag_specs: Vec<ec2::TagSpecification> = [
            tag_spec(ec2::ResourceType::Instance, &spec.tags),
            tag_spec(ec2::ResourceType::Volume, &spec.tags),
        ]
        .into_iter()
        .flatten()
        .collect();
        // The subnet places the instance in its zone: no Placement.AvailabilityZone
        // beside it, only the placement group's name.
        let placement = spec
            .placement_group
            .as_ref()
            .map(|g| ec2::Placement::builder().group_name(g).build());
        self.pacer.take(Bucket::Mutating).await;
        let answer = self
            .client
            .run_instances()
            .min_count(1)
            .max_count(1)
            .client_token(&spec.client_token)
            .image_id(request.image.as_str())
            .instance_type(ec2::InstanceType::from(spec.instance_type.as_str()))
            .subnet_id(&spec.subnet.id)
            .set_security_group_ids(Some(
                spec.security_groups.iter().map(|g| g.id.clone()).collect(),
            ))
            .set_placement(placement)
            .set_iam_instance_profile(spec.instance_profile.as_ref().map(|arn| {
                ec2::IamInstanceProfileSpecification::builder()
                    .arn(arn)
                    .build()
            }))
            .set_key_name(spec.key_name.clone())
            .monitoring(
                ec2::RunInstancesMonitoringEnabled::builder()
                    .enabled(spec.monitoring)
                    .build(),
            )
            .metadata_options(metadata)
            .set_block_device_mappings(Some(spec.volumes.iter().map(mapping_to_ec2).collect()))
            .set_user_data(request.user_data.clone())
            .set_tag_specifications(Some(tag_specs).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(self.err("RunInstances"))?;
        let Some(instance) = answer.instances().first() else {
            return Err(self.refused(
                "RunInstances",
                "InvalidResponse",
                ErrorKind::Other,
                format!(
                    "no instance in the answer to client token {}",
                    spec.client_token
                ),
            ));
        };
        let id = instance.instance_id().map(InstanceId::new).ok_or_else(|| {
            self.refused(
                "RunInstances",
                "InvalidResponse",
                ErrorKind::Other,
                format!(
                    "an instance without an id in the answer to client token {}",
                    spec.client_token
                ),
            )
        })?;
        // The same token answers the first launch, even once that instance is gone:
        // waiting on it would wait forever.
        if let Some(
            state @ (ec2::InstanceStateName::Terminated | ec2::InstanceStateName::ShuttingDown),
        ) = instance.state().and_then(|s| s.name())
        {
            return Err(self.refused(
                "RunInstances",
                "IncorrectInstanceState",
                ErrorKind::Invalid,
                format!(
                    "client token {} already launched {id}, which is {}: EC2 answers that instance again for this token; nothing new was launched",
                    spec.client_token,
                    state.as_str()
                ),
            ));
        }
        Ok(id)
    }

    async fn health(&self, id: &InstanceId) -> CloudResult<Option<InstanceHealth>> {
        let all = Instances::health(self, std::slice::from_ref(id)).await?;
        Ok(all.into_iter().find(|h| &h.id == id))
    }

    async fn user_data(&self, id: &InstanceId) -> CloudResult<Option<String>> {
        self.pacer.take(Bucket::Describe).await;
        let answer = self
            .client
            .describe_instance_attribute()
            .instance_id(id.as_str())
            .attribute(ec2::InstanceAttributeName::UserData)
            .send()
            .await
            .map_err(self.err("DescribeInstanceAttribute"))?;
        Ok(answer
            .user_data()
            .and_then(|v| v.value())
            .filter(|v| !v.is_empty())
            .map(str::to_owned))
    }

    async fn stop(&self, id: &InstanceId) -> CloudResult<()> {
        self.pacer.take(Bucket::Mutating).await;
        self.client
            .stop_instances()
            .instance_ids(id.as_str())
            .send()
            .await
            .map_err(self.err("StopInstances"))?;
        Ok(())
    }

    async fn move_address(&self, allocation_id: &str, to: &InstanceId) -> CloudResult<()> {
        self.pacer.take(Bucket::Mutating).await;
        self.client
            .associate_address()
            .allocation_id(allocation_id)
            .instance_id(to.as_str())
            .allow_reassociation(true)
            .send()
            .await
            .map_err(self.err("AssociateAddress"))?;
        Ok(())
    }
}

impl Fleets for AwsCloud {
    fn fleet(&self, region: &Region) -> Arc<dyn Fleet> {
        self.aws_ec2(region)
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
