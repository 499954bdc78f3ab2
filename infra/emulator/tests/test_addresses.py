"""AssociateAddress moves an Elastic IP only with AllowReassociation=true (addresses.py)."""
import pytest
from botocore.exceptions import ClientError

from conftest import launch


def public_ip(ec2, instance):
    inst = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    return inst.get("PublicIpAddress")


@pytest.fixture
def two(ec2):
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    return launch(ec2, SubnetId=subnet), launch(ec2, SubnetId=subnet)


def test_an_associated_address_moves_only_with_allow_reassociation(ec2, two):
    old, new = two
    eip = ec2.allocate_address(Domain="vpc")
    first = ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=old)["AssociationId"]
    assert public_ip(ec2, old) == eip["PublicIp"]
    for flag in ({}, {"AllowReassociation": False}):
        with pytest.raises(ClientError) as e:
            ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=new, **flag)
        assert e.value.response["Error"]["Code"] == "Resource.AlreadyAssociated"
        assert e.value.response["Error"]["Message"].startswith(
            f"resource {eip['AllocationId']} is already associated with associate-id {first}")
        assert old in e.value.response["Error"]["Message"]
    (addr,) = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
    assert addr["InstanceId"] == old
    moved = ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=new,
                                  AllowReassociation=True)["AssociationId"]
    (addr,) = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
    assert addr["InstanceId"] == new and addr["AssociationId"] == moved != first
    assert public_ip(ec2, new) == eip["PublicIp"]
    assert public_ip(ec2, old) != eip["PublicIp"]


def test_associating_again_with_the_same_instance_is_idempotent(ec2, two):
    instance, _ = two
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=instance)
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=instance)
    (addr,) = ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"]
    assert addr["InstanceId"] == instance
