"""RunInstances: where the instance goes and what it is given, refused as EC2 refuses it.

moto launched into any Availability Zone whatever the subnet's, with security groups of
another VPC, unknown key pairs and unknown placement groups, and checked the subnet only
after it had registered a reservation. check(), called before anything is launched:
* `SubnetId` unknown → `InvalidSubnetID.NotFound` (moto's code and wording).
* `Placement.AvailabilityZone` other than the subnet's → `InvalidParameterValue`
  "Value (<az>) for parameter availabilityZone is invalid. Subnet '<subnet>' is in the
  availability zone <az>" (EC2's wording as its clients report it).
* `SecurityGroupIds`: an unknown group → `InvalidGroup.NotFound` (moto's wording); a group
  of another VPC than the subnet's (the default VPC without a subnet) → `InvalidParameter`
  "Security group <sg> and subnet <subnet> belong to different networks." (EC2's wording).
* `KeyName` unknown in the account+region → `InvalidKeyPair.NotFound` "The key pair
  '<name>' does not exist" (EC2's wording; moto checks only with an environment switch).
* `Placement.GroupName` / `Placement.GroupId` unknown → `InvalidPlacementGroup.Unknown`
  (placement_groups.py).
* `IamInstanceProfile` `Arn` / `Name` unknown in the account's IAM → `InvalidParameterValue`
  "Value (<arn>) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance
  Profile ARN" (`…name…` / "Invalid IAM Instance Profile name"; EC2's wording as clients
  report it; moto answered IAM's `NoSuchEntity`).
"""
from __future__ import annotations

from typing import Any

from . import placement_groups
from .errors import Ec2Error


def _subnet(backend: Any, subnet_id: str) -> Any:
    return backend.get_subnet(subnet_id)  # moto: InvalidSubnetID.NotFound


def check(self) -> None:
    backend = self.ec2_backend
    account, region = self.current_account, self.region
    subnet_id = self._get_param("SubnetId")
    zone = self._get_param("Placement.AvailabilityZone")
    subnet = _subnet(backend, subnet_id) if subnet_id else None
    if subnet is not None and zone and zone != subnet.availability_zone:
        raise Ec2Error("InvalidParameterValue",
                       f"Value ({zone}) for parameter availabilityZone is invalid. Subnet "
                       f"'{subnet_id}' is in the availability zone {subnet.availability_zone}")

    group_ids = self._get_param("SecurityGroupIds", []) or []
    if group_ids:
        if subnet is not None:
            vpc_id, where = subnet.vpc_id, f"subnet {subnet_id}"
        else:
            default_vpc = backend.get_default_vpc()
            vpc_id = default_vpc.id if default_vpc is not None else None
            where = f"the default VPC {vpc_id}"
        for group_id in group_ids:
            group = backend.get_security_group_from_id(group_id)
            if group is None:
                raise Ec2Error("InvalidGroup.NotFound",
                               f"The security group '{group_id}' does not exist")
            if vpc_id is not None and group.vpc_id != vpc_id:
                raise Ec2Error("InvalidParameter",
                               f"Security group {group_id} and {where} belong to different "
                               f"networks.")

    key_name = self._get_param("KeyName")
    if key_name and key_name not in backend.key_pairs:
        raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair '{key_name}' does not exist")

    group_name = self._get_param("Placement.GroupName")
    if group_name and placement_groups.find(account, region, name=group_name) is None:
        raise placement_groups.unknown(group_name)
    group_id = self._get_param("Placement.GroupId")
    if group_id and placement_groups.find(account, region, group_id=group_id) is None:
        raise placement_groups.unknown(group_id)
    _check_profile(self)


def _check_profile(self) -> None:
    from moto.iam.models import iam_backends

    iam = iam_backends[self.current_account][self.partition]
    for member, lookup, what in (("Arn", iam.get_instance_profile_by_arn, "ARN"),
                                 ("Name", iam.get_instance_profile, "name")):
        value = self._get_param(f"IamInstanceProfile.{member}")
        if not value:
            continue
        try:
            lookup(value)
        except Exception:
            raise Ec2Error("InvalidParameterValue",
                           f"Value ({value}) for parameter iamInstanceProfile.{member.lower()} is "
                           f"invalid. Invalid IAM Instance Profile {what}") from None


def place(self, instances: list[Any]) -> None:
    """The instances report their placement group (moto keeps GroupName empty)."""
    account, region = self.current_account, self.region
    name = self._get_param("Placement.GroupName")
    group_id = self._get_param("Placement.GroupId")
    group = (placement_groups.find(account, region, name=name) if name
             else placement_groups.find(account, region, group_id=group_id) if group_id else None)
    if group is None:
        return
    for instance in instances:
        instance.placement.group_name = group["GroupName"]
        instance.placement.group_id = group["GroupId"]
