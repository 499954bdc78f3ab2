//! Finding the source's network again where the new instance goes: the subnet, the
//! security groups and the key pair. Within the source's region and VPC they are the
//! source's own; elsewhere they are matched by `Name` tag (subnet and VPC, groups) or by
//! name (key pair), or given explicitly — never guessed: no match or two matches is a
//! [`PlanError`] naming the flag that resolves it.

use super::error::PlanError;
use super::model::{SecurityGroup, SourceInstance, Subnet, Target, TargetNetwork};

/// The chosen subnet and, for the plan, how it was chosen.
pub(super) struct ChosenSubnet {
    pub subnet: Subnet,
    pub why: String,
}

pub(super) fn choose_subnet(
    source: &SourceInstance,
    target: &Target,
    net: &TargetNetwork,
) -> Result<ChosenSubnet, PlanError> {
    let region = net.region.to_string();
    let same_region = net.region == source.region;
    if let Some(id) = &target.subnet {
        let subnet =
            net.subnets
                .iter()
                .find(|s| &s.id == id)
                .ok_or_else(|| PlanError::SubnetNotFound {
                    subnet: id.clone(),
                    region: region.clone(),
                })?;
        if let Some(zone) = target.zone.as_deref().filter(|z| *z != subnet.zone) {
            return Err(PlanError::SubnetZone {
                subnet: id.clone(),
                subnet_zone: subnet.zone.clone(),
                zone: zone.to_owned(),
            });
        }
        if same_region && subnet.zone == source.zone {
            return Err(PlanError::SameZone {
                instance: source.id.to_string(),
                zone: subnet.zone.clone(),
            });
        }
        return Ok(ChosenSubnet {
            subnet: subnet.clone(),
            why: "given with --subnet".to_owned(),
        });
    }
    let zone_text = target
        .zone
        .as_ref()
        .map(|z| format!(" ({z})"))
        .unwrap_or_default();
    let in_zone = |s: &&Subnet| target.zone.as_ref().is_none_or(|z| &s.zone == z);
    let (vpc_label, candidates, wanted): (String, Vec<&Subnet>, String) = if same_region {
        // A zone move: the same VPC, in the target zone; the subnet of the same Name if
        // there is exactly one, else the VPC's only subnet in that zone.
        let in_vpc: Vec<&Subnet> = net
            .subnets
            .iter()
            .filter(|s| s.vpc_id == source.subnet.vpc_id)
            .filter(in_zone)
            .collect();
        let named: Vec<&Subnet> = match &source.subnet.name {
            Some(n) => in_vpc
                .iter()
                .copied()
                .filter(|s| s.name.as_ref() == Some(n))
                .collect(),
            None => Vec::new(),
        };
        if named.len() == 1 {
            return Ok(ChosenSubnet {
                subnet: named[0].clone(),
                why: format!(
                    "same VPC {}, same Name tag as {}",
                    source.subnet.vpc_id, source.subnet.id
                ),
            });
        }
        if in_vpc.len() == 1 {
            return Ok(ChosenSubnet {
                subnet: in_vpc[0].clone(),
                why: format!(
                    "the only subnet of VPC {} in {}",
                    source.subnet.vpc_id, in_vpc[0].zone
                ),
            });
        }
        (
            format!("VPC {}", source.subnet.vpc_id),
            in_vpc,
            "any Name".to_owned(),
        )
    } else {
        let vpc_name = source
            .subnet
            .vpc_name
            .as_ref()
            .ok_or_else(|| PlanError::UnnamedVpc {
                subnet: source.subnet.id.clone(),
                region: region.clone(),
            })?;
        let name = source
            .subnet
            .name
            .as_ref()
            .ok_or_else(|| PlanError::UnnamedSubnet {
                subnet: source.subnet.id.clone(),
                region: region.clone(),
            })?;
        let matched: Vec<&Subnet> = net
            .subnets
            .iter()
            .filter(|s| s.vpc_name.as_ref() == Some(vpc_name) && s.name.as_ref() == Some(name))
            .filter(in_zone)
            .collect();
        if matched.len() == 1 {
            return Ok(ChosenSubnet {
                subnet: matched[0].clone(),
                why: format!("Name tag {name} in the VPC named {vpc_name}"),
            });
        }
        (
            format!("the VPC named {vpc_name}"),
            matched,
            format!("Name tag {name}"),
        )
    };
    // e.g. "of VPC vpc-1 with Name tag app (us-east-1b)"
    let within = format!("of {vpc_label} with {wanted}{zone_text}");
    if candidates.is_empty() {
        return Err(PlanError::NoSubnet { within, region });
    }
    Err(PlanError::AmbiguousSubnet {
        within,
        region,
        count: candidates.len(),
        candidates: candidates
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The security groups of the new instance, in the chosen subnet's VPC, with how they
/// were found.
pub(super) fn choose_security_groups(
    source: &SourceInstance,
    target: &Target,
    net: &TargetNetwork,
    subnet: &Subnet,
) -> Result<(Vec<SecurityGroup>, String), PlanError> {
    let region = net.region.to_string();
    if let Some(ids) = &target.security_groups {
        let mut out = Vec::new();
        for id in ids {
            let g = net
                .security_groups
                .iter()
                .find(|g| &g.id == id)
                .ok_or_else(|| PlanError::SecurityGroupNotFound {
                    group: id.clone(),
                    region: region.clone(),
                })?;
            if g.vpc_id != subnet.vpc_id {
                return Err(PlanError::SecurityGroupNotInVpc {
                    group: id.clone(),
                    vpc: subnet.vpc_id.clone(),
                    region: region.clone(),
                });
            }
            out.push(g.clone());
        }
        return Ok((out, "given with --security-groups".to_owned()));
    }
    if net.region == source.region && subnet.vpc_id == source.subnet.vpc_id {
        // Security groups belong to a VPC, not a zone: the source's own serve.
        return Ok((
            source.security_groups.clone(),
            "the source's own (same VPC)".to_owned(),
        ));
    }
    let mut out = Vec::new();
    for g in &source.security_groups {
        let name = g
            .name
            .as_ref()
            .ok_or_else(|| PlanError::UnnamedSecurityGroup {
                group: g.id.clone(),
                region: region.clone(),
            })?;
        let matched: Vec<&SecurityGroup> = net
            .security_groups
            .iter()
            .filter(|c| c.vpc_id == subnet.vpc_id && c.name.as_ref() == Some(name))
            .collect();
        match matched.as_slice() {
            [one] => out.push((*one).clone()),
            [] => {
                return Err(PlanError::UnmatchedSecurityGroup {
                    group: g.id.clone(),
                    name: name.clone(),
                    vpc: subnet.vpc_id.clone(),
                    region,
                })
            }
            many => {
                return Err(PlanError::AmbiguousSecurityGroup {
                    name: name.clone(),
                    vpc: subnet.vpc_id.clone(),
                    region,
                    count: many.len(),
                    candidates: many
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    Ok((out, format!("matched by Name tag in VPC {}", subnet.vpc_id)))
}

/// The key pair of the new instance: `--key-name`, else the source's, which must exist
/// in the target region (key pairs are regional).
pub(super) fn choose_key_pair(
    source: &SourceInstance,
    target: &Target,
    net: &TargetNetwork,
) -> Result<Option<String>, PlanError> {
    let wanted = match (&target.key_name, &source.key_name) {
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => return Ok(None),
    };
    if net.region == source.region && target.key_name.is_none() {
        return Ok(Some(wanted.clone()));
    }
    if net.key_pairs.iter().any(|k| k == wanted) {
        Ok(Some(wanted.clone()))
    } else {
        Err(PlanError::KeyPairNotFound {
            key: wanted.clone(),
            instance: source.id.to_string(),
            region: net.region.to_string(),
        })
    }
}
