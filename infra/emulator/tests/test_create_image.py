"""CreateImage: tag specs, unique names, reboots, pending->available, per-volume snapshots."""
import time

import pytest
from botocore.exceptions import ClientError

from conftest import launch


def test_tag_specifications_for_image_and_snapshot(ec2, emu):
    iid = launch(ec2)
    image_id = ec2.create_image(
        InstanceId=iid, Name="tagged", NoReboot=True,
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "k", "Value": "img"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "snap"}]},
        ])["ImageId"]
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert {"Key": "k", "Value": "img"} in img["Tags"]
    snap_ids = [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"]]
    snaps = ec2.describe_snapshots(SnapshotIds=snap_ids)["Snapshots"]
    assert snaps and all({"Key": "k", "Value": "snap"} in s["Tags"] for s in snaps)


def test_duplicate_name_is_rejected(ec2, emu):
    iid = launch(ec2)
    ec2.create_image(InstanceId=iid, Name="same-name", NoReboot=True)
    with pytest.raises(ClientError) as err:
        ec2.create_image(InstanceId=iid, Name="same-name", NoReboot=True)
    assert err.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Another region is another namespace.
    ec2w = emu.client("ec2", "us-west-2")
    ec2w.create_image(InstanceId=launch(ec2w), Name="same-name", NoReboot=True)


def test_reboot_recorded_only_for_real_reboots(ec2, emu):
    running = launch(ec2)
    stopped = launch(ec2)
    ec2.stop_instances(InstanceIds=[stopped])
    rebooted = ec2.create_image(InstanceId=running, Name="reboot", NoReboot=False)["ImageId"]
    ec2.create_image(InstanceId=running, Name="no-reboot", NoReboot=True)
    ec2.create_image(InstanceId=stopped, Name="stopped")
    reboots = emu.control("GET", "/reboots")
    assert list(reboots) == [running]
    assert [r["image_id"] for r in reboots[running]] == [rebooted]
    assert reboots[running][0]["time"].endswith("Z")


def test_pending_then_available_after_configured_delay(ec2, emu):
    emu.control("POST", "/config", {"pending_seconds": 0.5})
    image_id = ec2.create_image(InstanceId=launch(ec2), Name="slow", NoReboot=True)["ImageId"]
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "pending"
    time.sleep(0.8)  # the ticker thread flips it without any describe or tick call
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] == "available"


def test_one_snapshot_per_volume_with_size_encryption_and_nodevice(ec2, emu):
    kms = emu.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    iid = launch(ec2)
    az = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    data = ec2.create_volume(Size=40, AvailabilityZone=az, Encrypted=True, KmsKeyId=key)["VolumeId"]
    skipped = ec2.create_volume(Size=7, AvailabilityZone=az)["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=iid, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=skipped, InstanceId=iid, Device="/dev/sdg")
    image_id = ec2.create_image(InstanceId=iid, Name="multi", NoReboot=True,
                                BlockDeviceMappings=[{"DeviceName": "/dev/sdg", "NoDevice": ""}])["ImageId"]
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    bdm = {b["DeviceName"]: b["Ebs"] for b in img["BlockDeviceMappings"]}
    assert set(bdm) == {"/dev/sda1", "/dev/sdf"}
    assert bdm["/dev/sdf"]["VolumeSize"] == 40 and bdm["/dev/sdf"]["Encrypted"] is True
    assert bdm["/dev/sdf"]["KmsKeyId"] == key
    snap = ec2.describe_snapshots(SnapshotIds=[bdm["/dev/sdf"]["SnapshotId"]])["Snapshots"][0]
    assert snap["VolumeSize"] == 40 and snap["Encrypted"] is True and snap["KmsKeyId"] == key
    root = ec2.describe_snapshots(SnapshotIds=[bdm["/dev/sda1"]["SnapshotId"]])["Snapshots"][0]
    assert root["VolumeSize"] == 8 and root["Encrypted"] is False
