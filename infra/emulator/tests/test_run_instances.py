"""RunInstances as a migration launches: ClientToken idempotency, the checks EC2 makes
before launching, the volumes it makes, placement groups (run_instances.py,
launch_checks.py, launch_volumes.py, placement_groups.py)."""
import base64
import datetime

import pytest
from botocore.exceptions import ClientError

from conftest import wait_state

BASE = dict(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro")


def instance_ids(ec2):
    return sorted(i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                  for i in r["Instances"])


def error(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


# ---------------------------------------------------------------- ClientToken

def test_same_token_same_request_answers_the_same_instance_and_launches_nothing(ec2):
    a = ec2.run_instances(ClientToken="migrate-i-1", **BASE)
    b = ec2.run_instances(ClientToken="migrate-i-1", **BASE)
    assert b["ReservationId"] == a["ReservationId"]
    assert [i["InstanceId"] for i in b["Instances"]] == [i["InstanceId"] for i in a["Instances"]]
    assert instance_ids(ec2) == [a["Instances"][0]["InstanceId"]]
    found = ec2.describe_instances(Filters=[{"Name": "client-token", "Values": ["migrate-i-1"]}])
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == \
        [a["Instances"][0]["InstanceId"]]
    assert found["Reservations"][0]["Instances"][0]["ClientToken"] == "migrate-i-1"
    assert ec2.describe_instances(
        Filters=[{"Name": "client-token", "Values": ["other"]}])["Reservations"] == []


def test_same_token_other_parameters_is_a_mismatch_and_launches_nothing(ec2):
    first = ec2.run_instances(ClientToken="migrate-i-2", **BASE)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ClientToken="migrate-i-2", **{**BASE, "InstanceType": "t3.small"})
    code, message = error(e)
    assert code == "IdempotentParameterMismatch"
    assert message.startswith("Arguments on this idempotent request are inconsistent with "
                              "arguments used in previous request(s).")
    assert instance_ids(ec2) == [first]


def test_a_terminated_instance_is_still_the_answer(ec2):
    first = ec2.run_instances(ClientToken="migrate-i-3", **BASE)["Instances"][0]
    ec2.terminate_instances(InstanceIds=[first["InstanceId"]])
    again = ec2.run_instances(ClientToken="migrate-i-3", **BASE)["Instances"][0]
    assert again["InstanceId"] == first["InstanceId"]
    assert instance_ids(ec2) == [first["InstanceId"]]
    (inst,) = ec2.describe_instances(InstanceIds=[first["InstanceId"]])["Reservations"][0]["Instances"]
    assert inst["State"]["Name"] == "terminated"


def test_tokens_are_per_region(emu, ec2):
    west = emu.client("ec2", "us-west-2")
    a = ec2.run_instances(ClientToken="migrate-i-4", **BASE)["Instances"][0]["InstanceId"]
    b = west.run_instances(ClientToken="migrate-i-4", **BASE)["Instances"][0]["InstanceId"]
    assert a != b
    assert instance_ids(west) == [b] and instance_ids(ec2) == [a]


def test_a_token_longer_than_64_characters_is_refused(ec2):
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ClientToken="t" * 65, **BASE)
    code, message = error(e)
    assert code == "InvalidParameterValue"
    assert "clientToken" in message and "64" in message
    assert instance_ids(ec2) == []
    ec2.run_instances(ClientToken="t" * 64, **BASE)
    assert len(instance_ids(ec2)) == 1


def test_a_refused_request_does_not_use_up_its_token(ec2):
    with pytest.raises(ClientError):
        ec2.run_instances(ClientToken="migrate-i-5", KeyName="missing", **BASE)
    ec2.create_key_pair(KeyName="missing")
    ok = ec2.run_instances(ClientToken="migrate-i-5", KeyName="missing", **BASE)
    assert ok["Instances"][0]["KeyName"] == "missing"


# ---------------------------------------------------------------- checks before launch

@pytest.fixture
def net(ec2):
    default_subnet = next(s for s in ec2.describe_subnets()["Subnets"]
                          if s["AvailabilityZone"] == "us-east-1a" and s["DefaultForAz"])
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other_sg = ec2.create_security_group(GroupName="elsewhere", Description="other VPC",
                                         VpcId=other_vpc)["GroupId"]
    return {"subnet": default_subnet["SubnetId"], "vpc": default_subnet["VpcId"],
            "other_sg": other_sg}


REFUSALS = {
    "zone-not-the-subnets": (
        lambda n: {"SubnetId": n["subnet"], "Placement": {"AvailabilityZone": "us-east-1b"}},
        "InvalidParameterValue",
        lambda n: f"Value (us-east-1b) for parameter availabilityZone is invalid. Subnet "
                  f"'{n['subnet']}' is in the availability zone us-east-1a"),
    "group-of-another-vpc": (
        lambda n: {"SubnetId": n["subnet"], "SecurityGroupIds": [n["other_sg"]]},
        "InvalidParameter",
        lambda n: f"Security group {n['other_sg']} and subnet {n['subnet']} belong to "
                  "different networks."),
    "unknown-key-pair": (
        lambda n: {"KeyName": "no-such-key"}, "InvalidKeyPair.NotFound",
        lambda n: "The key pair 'no-such-key' does not exist"),
    "unknown-subnet": (
        lambda n: {"SubnetId": "subnet-0123456789abcdef0"}, "InvalidSubnetID.NotFound",
        lambda n: "The subnet ID 'subnet-0123456789abcdef0' does not exist"),
    "unknown-group": (
        lambda n: {"SecurityGroupIds": ["sg-0123456789abcdef0"]}, "InvalidGroup.NotFound",
        lambda n: "The security group 'sg-0123456789abcdef0' does not exist"),
    "unknown-placement-group": (
        lambda n: {"Placement": {"GroupName": "no-such-group"}}, "InvalidPlacementGroup.Unknown",
        lambda n: "The Placement Group 'no-such-group' is unknown."),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_before_anything_is_launched(ec2, net, case):
    params, code, message = REFUSALS[case]
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ClientToken=f"refused-{case}", **params(net), **BASE)
    assert error(e) == (code, message(net))
    assert instance_ids(ec2) == []
    assert ec2.describe_instances(
        Filters=[{"Name": "client-token", "Values": [f"refused-{case}"]}])["Reservations"] == []


def test_what_the_checks_accept_launches_where_asked(ec2, net):
    ec2.create_key_pair(KeyName="ops")
    sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=net["vpc"])["GroupId"]
    ec2.create_placement_group(GroupName="spread-1", Strategy="spread")
    inst = ec2.run_instances(SubnetId=net["subnet"], Placement={"AvailabilityZone": "us-east-1a",
                                                                 "GroupName": "spread-1"},
                             SecurityGroupIds=[sg], KeyName="ops", **BASE)["Instances"][0]
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1a"
    assert inst["Placement"]["GroupName"] == "spread-1"
    assert inst["SubnetId"] == net["subnet"] and inst["KeyName"] == "ops"
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [sg]


# ---------------------------------------------------------------- placement groups

def test_placement_groups_create_describe_delete(ec2):
    made = ec2.create_placement_group(GroupName="pg-a", Strategy="partition", PartitionCount=3,
                                      TagSpecifications=[{"ResourceType": "placement-group",
                                                          "Tags": [{"Key": "team", "Value": "web"}]}])
    group = made["PlacementGroup"]
    assert group["GroupId"].startswith("pg-") and len(group["GroupId"]) == 20
    assert group["State"] == "available" and group["PartitionCount"] == 3
    ec2.create_placement_group(GroupName="pg-b", Strategy="cluster")
    by_name = ec2.describe_placement_groups(GroupNames=["pg-a"])["PlacementGroups"]
    assert [(g["GroupName"], g["Strategy"], g["GroupId"]) for g in by_name] == \
        [("pg-a", "partition", group["GroupId"])]
    assert [g["GroupName"] for g in ec2.describe_placement_groups(
        Filters=[{"Name": "strategy", "Values": ["cluster"]}])["PlacementGroups"]] == ["pg-b"]
    assert [g["GroupName"] for g in ec2.describe_placement_groups(
        Filters=[{"Name": "tag:team", "Values": ["web"]}])["PlacementGroups"]] == ["pg-a"]
    assert [g["GroupName"] for g in ec2.describe_placement_groups(
        GroupIds=[group["GroupId"]])["PlacementGroups"]] == ["pg-a"]
    with pytest.raises(ClientError) as e:
        ec2.create_placement_group(GroupName="pg-a", Strategy="spread")
    assert error(e) == ("InvalidPlacementGroup.Duplicate", "The Placement Group 'pg-a' already exists.")
    with pytest.raises(ClientError) as e:
        ec2.describe_placement_groups(GroupNames=["pg-z"])
    assert error(e) == ("InvalidPlacementGroup.Unknown", "The Placement Group 'pg-z' is unknown.")
    # in use while an instance is in it
    iid = ec2.run_instances(Placement={"GroupName": "pg-b"}, **BASE)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2.delete_placement_group(GroupName="pg-b")
    assert error(e)[0] == "InvalidPlacementGroup.InUse" and iid in error(e)[1]
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.delete_placement_group(GroupName="pg-b")
    assert [g["GroupName"] for g in ec2.describe_placement_groups()["PlacementGroups"]] == ["pg-a"]
    # per region
    assert emu_west(ec2).describe_placement_groups()["PlacementGroups"] == []


def emu_west(ec2):
    import boto3

    return boto3.client("ec2", region_name="us-west-2", endpoint_url=ec2.meta.endpoint_url,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")


# ---------------------------------------------------------------- block devices

@pytest.fixture
def encrypted_image(ec2, emu):
    """An image whose root and data snapshots are encrypted with a customer key."""
    key = emu.client("kms").create_key()["KeyMetadata"]["Arn"]
    src = ec2.register_image(Name="base", RootDeviceName="/dev/xvda", Architecture="x86_64")["ImageId"]
    iid = ec2.run_instances(BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 10, "Encrypted": True, "KmsKeyId": key}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20, "VolumeType": "st1"}}],
        **{**BASE, "ImageId": src})["Instances"][0]["InstanceId"]
    image_id = ec2.create_image(InstanceId=iid, Name="encrypted", NoReboot=True)["ImageId"]
    wait_state(ec2, image_id, "available", emu)
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snaps = {m["DeviceName"]: m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]}
    return {"image": image_id, "key": key, "snaps": snaps}


def volumes(ec2, instance_id):
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    out = {}
    for m in inst["BlockDeviceMappings"]:
        vol = ec2.describe_volumes(VolumeIds=[m["Ebs"]["VolumeId"]])["Volumes"][0]
        vol["DeleteOnTermination"] = m["Ebs"]["DeleteOnTermination"]
        out[m["DeviceName"]] = vol
    return out


def test_the_new_volumes_are_what_the_request_asks(ec2, emu, encrypted_image):
    other_key = emu.client("kms").create_key()["KeyMetadata"]["Arn"]
    iid = ec2.run_instances(BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": "io2", "Iops": 5000,
                                            "Encrypted": True, "KmsKeyId": other_key,
                                            "DeleteOnTermination": False}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 200, "VolumeType": "gp3", "Iops": 4000,
                                           "Throughput": 250}},
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 5, "Encrypted": False}}],
        TagSpecifications=[{"ResourceType": "volume",
                            "Tags": [{"Key": "ami-lifecycle:migration", "Value": "m-1"}]}],
        **{**BASE, "ImageId": encrypted_image["image"]})["Instances"][0]["InstanceId"]
    vols = volumes(ec2, iid)
    assert set(vols) == {"/dev/xvda", "/dev/sdf", "/dev/sdg"}
    root, data, blank = vols["/dev/xvda"], vols["/dev/sdf"], vols["/dev/sdg"]
    # the image's device overridden: its snapshot, the request's size/type/iops/key
    assert root["SnapshotId"] == encrypted_image["snaps"]["/dev/xvda"]
    assert (root["Size"], root["VolumeType"], root["Iops"]) == (30, "io2", 5000)
    assert root["Encrypted"] is True and root["KmsKeyId"] == other_key
    assert root["DeleteOnTermination"] is False
    assert data["SnapshotId"] == encrypted_image["snaps"]["/dev/sdf"]
    assert (data["Size"], data["VolumeType"], data["Iops"], data["Throughput"]) == \
        (200, "gp3", 4000, 250)
    assert data["Encrypted"] is False and data["DeleteOnTermination"] is True
    assert (blank["Size"], blank["VolumeType"], blank["Encrypted"]) == (5, "gp2", False)
    assert not blank.get("SnapshotId")
    for vol in vols.values():
        assert {"Key": "ami-lifecycle:migration", "Value": "m-1"} in vol.get("Tags", [])


def test_an_image_device_left_out_keeps_the_image_values_and_key(ec2, encrypted_image):
    iid = ec2.run_instances(**{**BASE, "ImageId": encrypted_image["image"]})["Instances"][0]["InstanceId"]
    root = volumes(ec2, iid)["/dev/xvda"]
    assert root["Encrypted"] is True and root["KmsKeyId"] == encrypted_image["key"]
    assert root["Size"] == 10


BDM_REFUSALS = {
    "decrypt": ({"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": False}},
                "InvalidBlockDeviceMapping", "is encrypted"),
    "smaller-than-snapshot": ({"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 8}},
                              "InvalidBlockDeviceMapping",
                              "Volume of size 8GB is smaller than snapshot '{snap}', expect size >= 20GB"),
    "key-without-encrypted": ({"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 8, "KmsKeyId": "alias/aws/ebs"}},
                              "InvalidParameterDependency",
                              "The parameter [KmsKeyId] requires the parameter Encrypted to be set."),
    "io1-without-iops": ({"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 8, "VolumeType": "io1"}},
                         "InvalidParameterDependency",
                         "The parameter [VolumeType] requires the parameter Iops to be set."),
    "throughput-not-gp3": ({"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 8, "VolumeType": "gp2",
                                                              "Throughput": 300}},
                           "InvalidParameterDependency",
                           "Device /dev/sdg: Throughput is valid only for VolumeType gp3, not gp2."),
    "unknown-snapshot": ({"DeviceName": "/dev/sdg", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}},
                         "InvalidSnapshot.NotFound", "The snapshot 'snap-0123456789abcdef0' does not exist."),
}


@pytest.mark.parametrize("case", sorted(BDM_REFUSALS))
def test_block_device_refusals_launch_nothing(ec2, encrypted_image, case):
    mapping, code, message = BDM_REFUSALS[case]
    before = instance_ids(ec2)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(BlockDeviceMappings=[mapping], **{**BASE, "ImageId": encrypted_image["image"]})
    got_code, got_message = error(e)
    assert got_code == code
    assert message.format(snap=encrypted_image["snaps"]["/dev/sdf"]) in got_message
    assert instance_ids(ec2) == before


# ---------------------------------------------------------------- what moto already did

def test_user_data_tags_metadata_monitoring_and_profile_are_kept(ec2, emu):
    iam = emu.client("iam")
    iam.create_role(RoleName="app", AssumeRolePolicyDocument="{}")
    profile = iam.create_instance_profile(InstanceProfileName="app")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="app", RoleName="app")
    iid = ec2.run_instances(
        UserData="#!/bin/sh\necho migrated\n", IamInstanceProfile={"Arn": profile},
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
        Monitoring={"Enabled": True},
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": "ami-lifecycle:migration", "Value": "m-2"}]}],
        **BASE)["Instances"][0]["InstanceId"]
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]) == b"#!/bin/sh\necho migrated\n"
    found = ec2.describe_instances(
        Filters=[{"Name": "tag:ami-lifecycle:migration", "Values": ["m-2"]}])["Reservations"]
    (inst,) = [i for r in found for i in r["Instances"]]
    assert inst["InstanceId"] == iid
    assert inst["IamInstanceProfile"]["Arn"] == profile
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert inst["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert inst["Monitoring"]["State"] == "enabled"
    missing = profile.replace("/app", "/missing")
    before = instance_ids(ec2)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(IamInstanceProfile={"Arn": missing}, **BASE)
    assert error(e) == ("InvalidParameterValue", f"Value ({missing}) for parameter "
                        "iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN")
    with pytest.raises(ClientError) as e:
        ec2.run_instances(IamInstanceProfile={"Name": "missing"}, **BASE)
    assert error(e) == ("InvalidParameterValue", "Value (missing) for parameter "
                        "iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")
    assert instance_ids(ec2) == before


def test_launch_time_follows_the_emulators_clock(emu, ec2):
    """LaunchTime is stamped like CreationDate: a simulation running days ahead launches
    after the slots it has already played."""
    emu.control("POST", "/config", {"clock_offset_seconds": 3 * 86400})
    try:
        out = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
        launched = out["Instances"][0]["LaunchTime"]
        ahead = launched - datetime.datetime.now(datetime.timezone.utc)
        assert datetime.timedelta(days=2, hours=23) < ahead < datetime.timedelta(days=3, hours=1)
    finally:
        emu.control("POST", "/config", {"clock_offset_seconds": 0})
